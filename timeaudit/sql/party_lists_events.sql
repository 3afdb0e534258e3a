-- Each distinct party list of some events once, under its key: the organizer and the
-- attendees' addresses. The lake keeps this beside every batch file (Lake.write_arrow), so
-- readers never read the long attendee lists of every copy of a meeting (event_lists.sql).
SELECT party_key, any_value(organizer) AS organizer, any_value(list_transform(attendees, lambda a: a.email)) AS emails
FROM {raw}
GROUP BY party_key
