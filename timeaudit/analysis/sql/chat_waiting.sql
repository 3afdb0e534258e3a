-- Customer chat waiting: messages a customer wrote in a conversation shared with them that no
-- one on the roster has answered yet: no later message of theirs in the message's thread (a
-- thread's parent or reply), or, for a message outside any thread, no later message of theirs
-- outside threads in the conversation. One row per conversation or thread, from its oldest
-- unanswered message, with that message's age in the organisation's working hours.
-- Inputs: `classified_chat`, `roster_people`, `org_days` (the organisation's days, like
-- person_days), `audit_range(t0, t1, now)`.
WITH from_customer AS (
    SELECT c.*
    FROM classified_chat AS c CROSS JOIN audit_range AS r
    WHERE c.customer IS NOT NULL AND c.from_customer AND c.ts <= r.now
),
team AS (
    SELECT c.source, c.account, c.conversation, c.thread, c.thread = '' OR c.thread = c.id AS top_level, c.ts
    FROM classified_chat AS c
    JOIN roster_people AS rp ON rp.person = c.sender
    CROSS JOIN audit_range AS r
    WHERE NOT c.bot AND c.ts <= r.now
),
-- The newest message of the team at the top level of each conversation and in each thread:
-- a customer message is answered when one is later (a join, not a search per message).
last_top_level AS (
    SELECT source, account, conversation, max(ts) AS ts FROM team WHERE top_level GROUP BY ALL
),
last_in_thread AS (
    SELECT source, account, conversation, thread, max(ts) AS ts FROM team WHERE thread <> '' GROUP BY ALL
),
waiting AS (
    SELECT f.*
    FROM from_customer AS f
    LEFT JOIN last_top_level AS lt
      ON f.thread = '' AND lt.source = f.source AND lt.account = f.account AND lt.conversation = f.conversation
    LEFT JOIN last_in_thread AS lth
      ON f.thread <> '' AND lth.source = f.source AND lth.account = f.account AND lth.conversation = f.conversation
         AND lth.thread = f.thread
    WHERE NOT coalesce(lt.ts > f.ts, false) AND NOT coalesce(lth.ts > f.ts, false)
),
grouped AS (
    SELECT
        source, account, conversation, conversation_kind,
        CASE WHEN thread <> '' AND id <> thread THEN thread ELSE '' END AS thread,
        min(customer) AS customer,
        min(ts) AS waiting_since,
        arg_min(sender, ts) AS sender,
        count(*) AS messages
    FROM waiting
    GROUP BY ALL
)
SELECT
    g.customer,
    g.conversation_kind,
    g.conversation,
    g.thread,
    g.sender,
    g.waiting_since,
    g.messages,
    coalesce(sum(greatest(0.0, epoch(least(od.work_end, r.now)) - epoch(greatest(od.work_start, g.waiting_since)))), 0.0)
        / 3600.0 AS working_hours
FROM grouped AS g
CROSS JOIN audit_range AS r
LEFT JOIN org_days AS od ON od.work_end > g.waiting_since AND od.work_start < r.now
GROUP BY ALL
ORDER BY g.waiting_since
