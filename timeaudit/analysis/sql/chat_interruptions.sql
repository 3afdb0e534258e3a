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
    SELECT pd.person, pd.week, pd.day, greatest(ce.start, pd.work_start) AS bs, least(ce."end", pd.work_end) AS be
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
    -- Each within one day's working hours: a message in a block is on the block's day.
    SELECT person, week, day, prev_end AS bs, s AS be
    FROM ordered CROSS JOIN rule_settings AS rs
    WHERE prev_end IS NOT NULL AND epoch(s) - epoch(prev_end) >= rs.focus_min_minutes * 60
    UNION
    SELECT person, week, day, bs, be FROM focus_events WHERE be > bs
),
zones AS (
    SELECT DISTINCT person, tz FROM person_days
),
conversations AS (
    -- The conversations each person wrote in.
    SELECT DISTINCT c.sender AS person, c.source, c.account, c.conversation
    FROM classified_chat AS c
    WHERE NOT c.bot AND c.sender IN (SELECT DISTINCT person FROM person_days)
),
own AS (
    -- Each message of a person in a conversation they wrote in, with their message before it there.
    SELECT tp.person, c.source, c.account, c.conversation, c.ts AS replied_at,
           lag(c.ts) OVER (PARTITION BY tp.person, c.source, c.account, c.conversation ORDER BY c.ts) AS previous
    FROM conversations AS tp
    JOIN classified_chat AS c
      ON c.source = tp.source AND c.account = tp.account AND c.conversation = tp.conversation AND c.sender = tp.person
),
slotted_own AS (
    -- A message of others is answered by the person's first message strictly after it (at equal
    -- times their own comes first), so by the reply whose previous message is not later than
    -- it; a reflex when the reply came within `interruption_reply_minutes`. Time is cut into
    -- slots of that length: such a message is in its reply's slot or the one before, so each
    -- reply meets only the messages of two slots of its conversation, not all of them (a
    -- channel of 250 people and 490,000 messages took minutes that way).
    SELECT o.*, CAST(floor(epoch(o.replied_at) / greatest(rs.interruption_reply_minutes * 60, 1)) AS BIGINT) - k AS slot
    FROM own AS o
    CROSS JOIN rule_settings AS rs
    CROSS JOIN (SELECT 0 AS k UNION ALL SELECT 1 AS k) AS shifts
),
slotted_chat AS (
    SELECT c.source, c.account, c.conversation, c.sender, c.ts,
           CAST(floor(epoch(c.ts) / greatest(rs.interruption_reply_minutes * 60, 1)) AS BIGINT) AS slot
    FROM classified_chat AS c CROSS JOIN rule_settings AS rs
),
answered AS (
    SELECT o.person, o.source, o.account, o.conversation, c.ts, o.replied_at
    FROM slotted_own AS o
    CROSS JOIN rule_settings AS rs
    JOIN slotted_chat AS c
      ON c.source = o.source AND c.account = o.account AND c.conversation = o.conversation AND c.slot = o.slot
    WHERE c.sender <> o.person
      AND c.ts < o.replied_at
      AND (o.previous IS NULL OR c.ts >= o.previous)
      AND epoch(o.replied_at) - epoch(c.ts) <= rs.interruption_reply_minutes * 60
),
reflex AS (
    SELECT DISTINCT b.person, b.week, b.bs, b.be, a.source, a.account, a.conversation, a.replied_at
    FROM answered AS a
    JOIN zones AS z ON z.person = a.person
    JOIN blocks AS b
      ON b.person = a.person AND b.day = CAST(timezone(z.tz, a.ts) AS DATE) AND a.ts >= b.bs AND a.ts < b.be
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
