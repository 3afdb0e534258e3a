-- Customer emails received by someone on the roster (on To), and the first reply to each
-- from anyone on the roster: a sent message answering its Message-ID, or a later message
-- sent from the same mailbox in the same thread. Waiting time is counted in the holder's
-- working hours. Inputs: `classified_messages`, `audit_people`, `person_days`,
-- `audit_range(t0, t1, now)`.
CREATE OR REPLACE TEMP TABLE customer_replies AS
WITH received AS (
    SELECT m.person, m.id, m.message_id, m.thread_id, m.ts, m.customer, m.sender
    FROM classified_messages AS m
    JOIN audit_people AS ap ON ap.person = m.person
    CROSS JOIN audit_range AS r
    WHERE m.category = 'customer' AND m.direction = 'received' AND m.self_in = 'to' AND m.ts <= r.now
),
sent AS (
    SELECT m.person, m.thread_id, m.in_reply_to, m.ts
    FROM classified_messages AS m
    CROSS JOIN audit_range AS r
    WHERE m.direction = 'sent' AND m.category <> 'automatic' AND m.ts <= r.now
),
answers AS (
    SELECT r.person, r.id, s.ts, s.person AS replier
    FROM received AS r JOIN sent AS s ON s.in_reply_to = r.message_id AND s.ts > r.ts
    WHERE r.message_id <> ''
    UNION ALL
    SELECT r.person, r.id, s.ts, s.person AS replier
    FROM received AS r JOIN sent AS s ON s.person = r.person AND s.thread_id = r.thread_id AND s.ts > r.ts
    WHERE r.thread_id <> ''
),
first_answer AS (
    SELECT person, id, min(ts) AS replied_at, arg_min(replier, ts) AS replier
    FROM answers
    GROUP BY person, id
),
later_in_thread AS (
    -- A newer customer message in the same mailbox thread supersedes this one while waiting.
    SELECT a.person, a.id
    FROM received AS a JOIN received AS b
      ON b.person = a.person AND b.thread_id = a.thread_id AND b.ts > a.ts AND a.thread_id <> ''
    GROUP BY a.person, a.id
),
spans AS (
    SELECT r.*, fa.replied_at, fa.replier, lt.id IS NOT NULL AS superseded,
           coalesce(fa.replied_at, rng.now) AS until
    FROM received AS r
    CROSS JOIN audit_range AS rng
    LEFT JOIN first_answer AS fa ON fa.person = r.person AND fa.id = r.id
    LEFT JOIN later_in_thread AS lt ON lt.person = r.person AND lt.id = r.id
),
working AS (
    SELECT s.person, s.id,
           sum(greatest(0.0, epoch(least(pd.work_end, s.until)) - epoch(greatest(pd.work_start, s.ts)))) / 3600.0
               AS working_hours
    FROM spans AS s
    JOIN person_days AS pd
      ON pd.person = s.person AND pd.work_end > s.ts AND pd.work_start < s.until
    GROUP BY s.person, s.id
)
SELECT
    s.person, s.id, s.message_id, s.thread_id, s.customer, s.sender, s.ts AS received_at,
    s.replied_at, s.replier, s.superseded,
    coalesce(w.working_hours, 0.0) AS working_hours
FROM spans AS s
LEFT JOIN working AS w ON w.person = s.person AND w.id = s.id
