"""Microsoft 365 (Outlook calendars and mail through Microsoft Graph) as a source; see ``source``."""
