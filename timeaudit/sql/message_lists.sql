-- Each distinct (sender, to, cc) of the messages once, under its key (`list_id`): every
-- mailbox's copy of a message carries the same list (see event_lists.sql). The lists come from
-- `message_party_lists`, kept beside the lake's batch files (party_lists_messages.sql).
CREATE OR REPLACE TEMP TABLE message_lists AS
SELECT party_key AS list_id, any_value(sender) AS sender, any_value("to") AS "to", any_value(cc) AS cc
FROM message_party_lists
GROUP BY party_key
