SELECT list_id, unnest(emails) AS email FROM event_lists
UNION ALL
SELECT list_id, organizer AS email FROM event_lists WHERE organizer <> ''
