"""CalDAV calendars as a source: Nextcloud, iCloud, Fastmail, Radicale, any CalDAV server."""
