-- What the lake holds per table and source: live records, accounts, the span they cover
-- and when the newest batch landed. Used by `timeaudit doctor` and the dashboard's Data page.
SELECT 'events' AS "table", source, count(*) AS records, count(DISTINCT account) AS accounts,
       min(start) AS first, max(start) AS last, max(ingested_at) AS landed
FROM events GROUP BY source
UNION ALL
SELECT 'messages', source, count(*), count(DISTINCT account), min(ts), max(ts), max(ingested_at)
FROM messages GROUP BY source
UNION ALL
-- Chat is held once per workspace: its "accounts" are the people who wrote.
SELECT 'chat', source, count(*), count(DISTINCT sender) FILTER (WHERE NOT bot), min(ts), max(ts), max(ingested_at)
FROM chat GROUP BY source
ORDER BY 1, 2
