-- Events with the key of their party list (organizer and attendees); the lake stores it with
-- every record (Lake.write_arrow).
SELECT *, hash(organizer, attendees) AS party_key FROM {raw}
