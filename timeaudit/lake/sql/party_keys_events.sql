-- Events with the key of their party list (organizer and attendees). The lake stores it with
-- every record (Lake.write_arrow); readers compute it for files written before it was.
SELECT *, hash(organizer, attendees) AS party_key FROM {raw}
