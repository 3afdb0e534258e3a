-- Messages with the key of their party list (sender, to and cc); the lake stores it with
-- every record (Lake.write_arrow).
SELECT *, hash(sender, "to", cc) AS party_key FROM {raw}
