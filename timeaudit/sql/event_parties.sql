SELECT source, account, id, a.email AS email
FROM (SELECT source, account, id, unnest(attendees) AS a FROM events) AS att
UNION ALL
SELECT source, account, id, organizer AS email FROM events WHERE organizer <> ''
