"""The generated demo organisation: roster, customers, calendars and mail."""
