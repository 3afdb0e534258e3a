SELECT list_id, sender AS email FROM message_lists
UNION ALL
SELECT list_id, unnest("to") AS email FROM message_lists
UNION ALL
SELECT list_id, unnest(cc) AS email FROM message_lists
