-- Every account found in the lake (the people of single-user mode, when there is no roster).
SELECT account FROM events
UNION
SELECT account FROM messages
ORDER BY 1
