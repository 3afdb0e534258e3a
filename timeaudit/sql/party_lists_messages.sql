-- Each distinct party list of some messages once, under its key: sender, to and cc. The lake
-- keeps this beside every batch file (Lake.write_arrow), so readers never read the address
-- lists of every mailbox's copy of a message (message_lists.sql).
SELECT party_key, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
FROM {raw}
GROUP BY party_key
