-- Reply-all storms: internal threads with at least `storm_min_replies` replies that each went
-- to `storm_min_recipients` people or more (To and Cc, the sender left out), ranked by the
-- people-minutes all of the thread's copies cost the audit's people over the period. A thread
-- is known as in audit_threads.sql; a message by its Message-ID (else its record id).
-- `gives_back_minutes`: had each large reply gone only to the sender of the message it
-- answers, every other received copy of it would not have been read.
-- Inputs: `classified_messages`, the lake's `messages` (To and Cc), `audit_people`,
-- `audit_range(t0, t1)`, `rule_settings`.
WITH copies AS (
    SELECT
        c.person,
        c.ts,
        c.direction,
        c.minutes,
        c.subject_tags,
        c.in_reply_to,
        coalesce(nullif(c.thread_id, ''), c.id) AS thread,
        coalesce(nullif(c.message_id, ''), c.id) AS message,
        len(list_distinct(list_filter(
            list_transform(list_concat(m."to", m.cc), lambda x: lower(x)), lambda x: x <> '' AND x <> lower(m.sender)
        ))) AS recipients
    FROM classified_messages AS c
    JOIN messages AS m ON m.source = c.source AND m.account = c.account AND m.id = c.id
    JOIN audit_people AS ap ON ap.person = c.person
    CROSS JOIN audit_range AS r
    WHERE c.category IN ('internal', 'cc_only') AND c.ts >= r.t0 AND c.ts < r.t1
),
authors AS (  -- who sent each message: the person a reply to it could have gone to alone
    SELECT message_id, min(lower(sender)) AS sender
    FROM messages
    WHERE message_id <> ''
    GROUP BY message_id
),
large AS (
    SELECT DISTINCT c.thread, c.message
    FROM copies AS c
    CROSS JOIN rule_settings AS rs
    WHERE c.in_reply_to <> '' AND c.recipients >= rs.storm_min_recipients
),
threads AS (
    SELECT
        c.thread,
        min(array_to_string(c.subject_tags, ', ')) AS subject_tags,
        count(DISTINCT c.message) AS messages,
        count(DISTINCT l.message) AS large_replies,
        max(c.recipients) AS largest_list,
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
    LEFT JOIN authors AS a ON a.message_id = c.in_reply_to
    GROUP BY c.thread
)
SELECT t.*
FROM threads AS t
CROSS JOIN rule_settings AS rs
WHERE t.large_replies >= rs.storm_min_replies
ORDER BY t.people_minutes DESC, t.thread
