-- Each distinct (organizer, attendees) of the events once, under its hash (`list_id`), with
-- the attendees' addresses: every attendee's copy of a meeting carries the same list (see
-- message_lists.sql). The lists are long (a team meeting names the whole team), so one record
-- stands for each and only those records' lists are read out; `source/account/id` names a
-- record uniquely, as neither a source nor an address holds a "/".
CREATE OR REPLACE TEMP TABLE event_lists AS
WITH representatives AS (
    SELECT hash(organizer, attendees) AS list_id, min(source || '/' || account || '/' || id) AS record
    FROM events
    GROUP BY list_id
)
SELECT r.list_id, any_value(e.organizer) AS organizer, any_value(list_transform(e.attendees, lambda a: a.email)) AS emails
FROM events AS e
JOIN representatives AS r ON r.record = e.source || '/' || e.account || '/' || e.id
GROUP BY r.list_id
