-- Each distinct (organizer, attendees) of the events once, under its key (`list_id`): every
-- attendee's copy of a meeting carries the same list, so classifying lists, not copies,
-- divides the work by the number of copies. The lists come from `event_party_lists`, which
-- the lake keeps beside its batch files (party_lists_events.sql); a list held by several
-- batches is taken once. Should two lists share a 64-bit key (about one chance in a billion
-- for a million lists), one of them stands for both.
CREATE OR REPLACE TEMP TABLE event_lists AS
SELECT party_key AS list_id, any_value(organizer) AS organizer, any_value(emails) AS emails
FROM event_party_lists
GROUP BY party_key
