-- Each distinct (sender, to, cc) of the messages once, under its hash (`list_id`). Every
-- mailbox's copy of a message carries the same list, so classifying the lists, not the copies,
-- divides the work by the number of copies. Two different lists sharing a 64-bit hash is
-- about as likely as one in a billion for a million lists.
CREATE OR REPLACE TEMP TABLE message_lists AS
SELECT hash(sender, "to", cc) AS list_id, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
FROM messages
GROUP BY list_id
