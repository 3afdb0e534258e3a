-- Reply-all storms: internal threads with at least `storm_min_replies` replies that each went
-- to `storm_min_recipients` people or more (To and Cc, the sender left out), ranked by the
-- people-minutes all of the thread's copies cost the audit's people over the period. A thread
-- is known as in audit_threads.sql; a message by its Message-ID (else its record id).
-- `gives_back_minutes`: had each large reply gone only to the sender of the message it
-- answers, every other received copy of it would not have been read.
-- The large replies are found first, on the lake's records alone, so only the few threads
-- that could be storms are joined with their classified copies.
-- Inputs: `classified_messages`, the lake's `messages` (To and Cc), `audit_people`,
-- `audit_range(t0, t1)`, `rule_settings`.
WITH replies AS (
    SELECT
        coalesce(nullif(m.thread_id, ''), m.id) AS thread,
        coalesce(nullif(m.message_id, ''), m.id) AS message,
        m.in_reply_to,
        array_length(list_distinct(list_filter(
            list_transform(list_concat(m."to", m.cc), lambda x: lower(x)), lambda x: x <> '' AND x <> lower(m.sender)
        ))) AS recipients
    FROM messages AS m
    CROSS JOIN audit_range AS r
    CROSS JOIN rule_settings AS rs
    WHERE m.in_reply_to <> '' AND m.ts >= r.t0 AND m.ts < r.t1
        AND array_length(m."to") + array_length(m.cc) >= rs.storm_min_recipients  -- cheap: the exact count follows
),
large AS (
    SELECT thread, message, any_value(in_reply_to) AS in_reply_to, max(recipients) AS recipients
    FROM replies
    CROSS JOIN rule_settings AS rs
    WHERE recipients >= rs.storm_min_recipients
    GROUP BY thread, message
),
candidates AS (  -- enough large replies in any mailbox; the count in the audit's copies follows
    SELECT thread
    FROM large
    CROSS JOIN rule_settings AS rs
    GROUP BY thread
    HAVING count(*) >= any_value(rs.storm_min_replies)
),
authors AS (  -- who sent each message a large reply answers
    SELECT m.message_id, min(lower(m.sender)) AS sender
    FROM messages AS m
    JOIN (SELECT DISTINCT in_reply_to FROM large) AS l ON l.in_reply_to = m.message_id
    GROUP BY m.message_id
),
copies AS (
    SELECT
        c.person,
        c.ts,
        c.direction,
        c.minutes,
        c.subject_tags,
        coalesce(nullif(c.thread_id, ''), c.id) AS thread,
        coalesce(nullif(c.message_id, ''), c.id) AS message
    FROM classified_messages AS c
    JOIN audit_people AS ap ON ap.person = c.person
    CROSS JOIN audit_range AS r
    WHERE c.category IN ('internal', 'cc_only') AND c.ts >= r.t0 AND c.ts < r.t1
        AND coalesce(nullif(c.thread_id, ''), c.id) IN (SELECT thread FROM candidates)
),
threads AS (
    SELECT
        c.thread,
        min(array_to_string(c.subject_tags, ', ')) AS subject_tags,
        count(DISTINCT c.message) AS messages,
        count(DISTINCT l.message) AS large_replies,
        coalesce(max(l.recipients), 0) AS largest_list,
        count(DISTINCT c.person) AS people,
        sum(c.minutes) AS people_minutes,
        sum(
            CASE
                WHEN l.message IS NOT NULL AND c.direction = 'received' AND c.person IS DISTINCT FROM a.sender
                THEN c.minutes ELSE 0.0
            END
        ) AS gives_back_minutes,
        min(c.ts) AS first_ts,
        max(c.ts) AS last_ts
    FROM copies AS c
    LEFT JOIN large AS l ON l.thread = c.thread AND l.message = c.message
    LEFT JOIN authors AS a ON a.message_id = l.in_reply_to
    GROUP BY c.thread
)
SELECT t.*
FROM threads AS t
CROSS JOIN rule_settings AS rs
WHERE t.large_replies >= rs.storm_min_replies
ORDER BY t.people_minutes DESC, t.thread
