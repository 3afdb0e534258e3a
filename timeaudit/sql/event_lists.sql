-- Each distinct (organizer, attendees) of the events once, under its hash (`list_id`), with
-- the attendees' addresses: every attendee's copy of a meeting carries the same list (see
-- message_lists.sql).
CREATE OR REPLACE TEMP TABLE event_lists AS
SELECT list_id, any_value(organizer) AS organizer, any_value(list_transform(attendees, lambda a: a.email)) AS emails
FROM (SELECT hash(organizer, attendees) AS list_id, * FROM (SELECT DISTINCT organizer, attendees FROM events) AS lists) AS hashed
GROUP BY list_id
