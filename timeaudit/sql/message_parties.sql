SELECT source, account, id, sender AS email FROM messages
UNION ALL
SELECT source, account, id, unnest("to") AS email FROM messages
UNION ALL
SELECT source, account, id, unnest(cc) AS email FROM messages
