-- The weekly step's floor: one pass over the same snapshot that only sums event minutes and
-- counts messages per person-week (no classification, no person-day sweep).
WITH event_weeks AS (
    SELECT account, date_trunc('week', start) AS week, sum(date_diff('minute', start, "end")) AS minutes
    FROM events
    WHERE NOT all_day
    GROUP BY ALL
),
message_weeks AS (
    SELECT account, date_trunc('week', ts) AS week, count(*) AS messages
    FROM messages
    GROUP BY ALL
)
SELECT account, week, coalesce(minutes, 0) AS minutes, coalesce(messages, 0) AS messages
FROM event_weeks FULL JOIN message_weeks USING (account, week)
