-- Internal email threads that cost the most people-minutes over the chosen period.
-- A thread is known by its first Message-ID (in_reply_to chains) where mailboxes differ;
-- within a mailbox by its thread id. Inputs: `classified_messages`, `audit_people`,
-- `audit_range(t0, t1)`.
SELECT
    coalesce(nullif(m.thread_id, ''), m.id) AS thread,
    min(array_to_string(m.subject_tags, ', ')) AS subject_tags,
    count(*) AS messages,
    count(DISTINCT m.person) AS people,
    CAST(sum(CASE WHEN m.category = 'cc_only' THEN 1 ELSE 0 END) AS BIGINT) AS cc_copies,
    sum(m.minutes) AS people_minutes,
    min(m.ts) AS first_ts,
    max(m.ts) AS last_ts
FROM classified_messages AS m
JOIN audit_people AS ap ON ap.person = m.person
CROSS JOIN audit_range AS r
WHERE m.category IN ('internal', 'cc_only') AND m.ts >= r.t0 AND m.ts < r.t1
GROUP BY coalesce(nullif(m.thread_id, ''), m.id)
ORDER BY round(people_minutes, 6) DESC, thread  -- float sums differ in the last bits from run to run
