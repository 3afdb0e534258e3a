-- Customer emails received in a shared mailbox ([[shared_mailboxes]]) within the audit's
-- period, and the first reply to each: a message sent from the same mailbox in the same
-- thread, or any sent message (a roster member's own mailbox too) answering its Message-ID.
-- A mailbox has no working hours of its own: the wait is in clock hours.
-- Inputs: `classified_messages`, the rule table `shared_mailboxes(mailbox, team)`, `audit_range(t0, t1, now)`.
CREATE OR REPLACE TEMP TABLE shared_mailbox_replies AS
WITH received AS (
    SELECT m.person AS mailbox, sm.team, m.id, m.message_id, m.thread_id, m.ts, m.customer, m.sender
    FROM classified_messages AS m
    JOIN shared_mailboxes AS sm ON sm.mailbox = m.person
    CROSS JOIN audit_range AS r
    WHERE m.category = 'customer' AND m.direction = 'received' AND m.ts >= r.t0 AND m.ts < r.t1 AND m.ts <= r.now
),
sent AS (
    SELECT m.person, m.thread_id, m.in_reply_to, m.ts
    FROM classified_messages AS m
    CROSS JOIN audit_range AS r
    WHERE m.direction = 'sent' AND m.category <> 'automatic' AND m.ts <= r.now
),
answers AS (
    SELECT r.mailbox, r.id, s.ts
    FROM received AS r JOIN sent AS s ON s.in_reply_to = r.message_id AND s.ts > r.ts
    WHERE r.message_id <> ''
    UNION ALL
    SELECT r.mailbox, r.id, s.ts
    FROM received AS r JOIN sent AS s ON s.person = r.mailbox AND s.thread_id = r.thread_id AND s.ts > r.ts
    WHERE r.thread_id <> ''
),
first_answer AS (
    SELECT mailbox, id, min(ts) AS replied_at FROM answers GROUP BY mailbox, id
),
later_in_thread AS (
    SELECT a.mailbox, a.id
    FROM received AS a JOIN received AS b
      ON b.mailbox = a.mailbox AND b.thread_id = a.thread_id AND b.ts > a.ts AND a.thread_id <> ''
    GROUP BY a.mailbox, a.id
)
SELECT
    r.mailbox, r.team, r.id, r.message_id, r.customer, r.sender, r.ts AS received_at, fa.replied_at,
    lt.id IS NOT NULL AS superseded,
    (epoch(coalesce(fa.replied_at, rng.now)) - epoch(r.ts)) / 3600.0 AS hours
FROM received AS r
CROSS JOIN audit_range AS rng
LEFT JOIN first_answer AS fa ON fa.mailbox = r.mailbox AND fa.id = r.id
LEFT JOIN later_in_thread AS lt ON lt.mailbox = r.mailbox AND lt.id = r.id
ORDER BY r.mailbox, r.ts
