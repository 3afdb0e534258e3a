-- Messages with the key of their party list (sender, to and cc). The lake stores it with
-- every record (Lake.write_arrow); readers compute it for files written before it was.
SELECT *, hash(sender, "to", cc) AS party_key FROM {raw}
