-- Interruptions: a chat message that came in while the person was in a focus block and that
-- they answered in the same conversation within `interruption_reply_minutes` (the reflex
-- reply). One reply answering several messages is one interruption. Each costs the focus
-- block `refocus_minutes`, at most what was left of the block after the reply, and a block
-- loses at most its own length.
-- Focus blocks are as daily.sql counts focus: focus-time and solo blocks, and free working
-- time in unbroken gaps of at least `focus_min_minutes` between counted events.
-- Inputs: `classified_chat`, `classified_events`, `person_days`, `rule_settings`.
-- Output: temp table chat_interruptions(person, week, interruptions, refocus_hours).
CREATE OR REPLACE TEMP TABLE chat_interruptions AS
WITH focus_events AS (
    SELECT pd.person, pd.week, greatest(ce.start, pd.work_start) AS bs, least(ce."end", pd.work_end) AS be
    FROM classified_events AS ce
    JOIN person_days AS pd ON pd.person = ce.person AND ce.start < pd.work_end AND ce."end" > pd.work_start
    WHERE ce.category = 'focus'
),
busy AS (
    SELECT pd.person, pd.week, pd.day, greatest(ce.start, pd.work_start) AS s, least(ce."end", pd.work_end) AS e
    FROM classified_events AS ce
    JOIN person_days AS pd ON pd.person = ce.person AND ce.start < pd.work_end AND ce."end" > pd.work_start
    WHERE ce.category IN ('customer', 'admin', 'internal', 'focus', 'out_of_office')
    UNION ALL
    SELECT person, week, day, work_start, work_start FROM person_days WHERE work_end > work_start
    UNION ALL
    SELECT person, week, day, work_end, work_end FROM person_days WHERE work_end > work_start
),
ordered AS (
    SELECT *, max(e) OVER (PARTITION BY person, day ORDER BY s, e ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
        AS prev_end
    FROM busy
),
blocks AS (
    SELECT person, week, prev_end AS bs, s AS be
    FROM ordered CROSS JOIN rule_settings AS rs
    WHERE prev_end IS NOT NULL AND epoch(s) - epoch(prev_end) >= rs.focus_min_minutes * 60
    UNION
    SELECT person, week, bs, be FROM focus_events WHERE be > bs
),
conversations AS (
    -- The conversations each person wrote in.
    SELECT DISTINCT c.sender AS person, c.source, c.account, c.conversation
    FROM classified_chat AS c
    WHERE NOT c.bot AND c.sender IN (SELECT DISTINCT person FROM person_days)
),
timeline AS (
    SELECT tp.person, c.source, c.account, c.conversation, c.ts, c.sender = tp.person AS own
    FROM conversations AS tp
    JOIN classified_chat AS c ON c.source = tp.source AND c.account = tp.account AND c.conversation = tp.conversation
),
answered AS (
    -- Each message of others with the person's next message in the conversation. At equal
    -- times the person's own messages sort first, so "next" is strictly later whatever order
    -- an engine gives ties (Spark and DuckDB agree).
    SELECT *
    FROM (
        SELECT *, min(CASE WHEN own THEN ts END) OVER (
            PARTITION BY person, source, account, conversation ORDER BY ts, own DESC
            ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING
        ) AS replied_at
        FROM timeline
    ) AS t
    WHERE NOT own AND replied_at > ts
),
reflex AS (
    SELECT DISTINCT b.person, b.week, b.bs, b.be, a.source, a.account, a.conversation, a.replied_at
    FROM answered AS a
    CROSS JOIN rule_settings AS rs
    JOIN blocks AS b ON b.person = a.person AND a.ts >= b.bs AND a.ts < b.be
    WHERE epoch(a.replied_at) - epoch(a.ts) <= rs.interruption_reply_minutes * 60
),
per_block AS (
    SELECT r.person, r.week, r.bs, r.be, count(*) AS interruptions,
           least(sum(least(rs.refocus_minutes, greatest(0.0, epoch(r.be) - epoch(r.replied_at)) / 60.0)),
                 (epoch(r.be) - epoch(r.bs)) / 60.0) AS refocus_minutes
    FROM reflex AS r CROSS JOIN rule_settings AS rs
    GROUP BY r.person, r.week, r.bs, r.be
)
SELECT person, week, CAST(sum(interruptions) AS BIGINT) AS interruptions, sum(refocus_minutes) / 60.0 AS refocus_hours
FROM per_block
GROUP BY person, week
