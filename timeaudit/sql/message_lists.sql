-- Each distinct (sender, to, cc) of the messages once, under its hash (`list_id`). Every
-- mailbox's copy of a message carries the same list, so classifying the lists, not the copies,
-- divides the work by the number of copies. Should two lists share a 64-bit hash (about one
-- chance in a billion for a million lists), one of them stands for both.
CREATE OR REPLACE TEMP TABLE message_lists AS
SELECT list_id, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
FROM (SELECT hash(sender, "to", cc) AS list_id, * FROM (SELECT DISTINCT sender, "to", cc FROM messages) AS lists) AS hashed
GROUP BY list_id
