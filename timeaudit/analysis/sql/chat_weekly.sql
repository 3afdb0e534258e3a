-- Chat per person-week: `chat_minutes_per_sent` per message the person sent, and
-- `chat_minutes_per_read` per message of others (bots included) in a conversation they wrote
-- in that week; customer chat is the part in conversations shared with a customer
-- (classify_chat.sql). Interruptions from chat_interruptions.sql. Every person-week of
-- `person_days` gets a row, zeros where there was no chat.
-- Inputs: `classified_chat`, `chat_interruptions`, `person_days`, `roster_people`, `rule_settings`.
WITH person_weeks AS (
    SELECT person, week, min(week_start) AS week_start FROM person_days GROUP BY person, week
),
zones AS (
    SELECT DISTINCT person, tz FROM person_days
),
zone_weeks AS (
    SELECT DISTINCT tz, day, week FROM person_days
),
located AS (
    -- Every message's week on the calendar of each time zone the roster uses (a person's week
    -- is that of their zone): counting per conversation-week, not joining every message of a
    -- conversation to everyone in it, keeps the work to the messages (a channel of 250 people
    -- and 490,000 messages made that join run for minutes).
    SELECT c.source, c.account, c.conversation, c.sender, c.bot, c.customer IS NOT NULL AS customer, zw.tz, zw.week
    FROM (
        SELECT c.*, z.tz, CAST(timezone(z.tz, c.ts) AS DATE) AS day
        FROM classified_chat AS c
        CROSS JOIN (SELECT DISTINCT tz FROM zones) AS z
    ) AS c
    JOIN zone_weeks AS zw ON zw.tz = c.tz AND zw.day = c.day
),
own AS (
    -- Each person's messages in their own zone's weeks, per conversation.
    SELECT l.sender AS person, l.week, l.source, l.account, l.conversation, l.customer, l.bot
    FROM located AS l
    JOIN zones AS z ON z.person = l.sender AND z.tz = l.tz
),
sent AS (
    SELECT person, week, customer, count(*) AS messages FROM own WHERE NOT bot GROUP BY person, week, customer
),
takes_part AS (
    SELECT DISTINCT person, week, source, account, conversation FROM own WHERE NOT bot
),
conversation_weeks AS (
    SELECT source, account, conversation, tz, week, customer, count(sender) AS messages
    FROM located
    GROUP BY source, account, conversation, tz, week, customer
),
own_weeks AS (
    SELECT person, week, source, account, conversation, customer, count(*) AS messages
    FROM own
    GROUP BY person, week, source, account, conversation, customer
),
read AS (
    -- The messages of others (bots included) in the conversations a person wrote in that week.
    SELECT tp.person, tp.week, cw.customer, sum(cw.messages - coalesce(o.messages, 0)) AS messages
    FROM takes_part AS tp
    JOIN zones AS z ON z.person = tp.person
    JOIN conversation_weeks AS cw
      ON cw.source = tp.source AND cw.account = tp.account AND cw.conversation = tp.conversation
     AND cw.tz = z.tz AND cw.week = tp.week
    LEFT JOIN own_weeks AS o
      ON o.person = tp.person AND o.week = tp.week AND o.source = tp.source AND o.account = tp.account
     AND o.conversation = tp.conversation AND o.customer = cw.customer
    GROUP BY tp.person, tp.week, cw.customer
),
counted AS (
    SELECT person, week, customer, messages AS sent, 0 AS read FROM sent
    UNION ALL
    SELECT person, week, customer, 0 AS sent, messages AS read FROM read
),
weeks AS (
    SELECT
        person,
        week,
        CAST(sum(sent) AS BIGINT) AS chats_sent,
        CAST(sum(read) AS BIGINT) AS chats_read,
        sum(sent * rs.chat_minutes_per_sent + read * rs.chat_minutes_per_read) / 60.0 AS chat_hours,
        sum(CASE WHEN customer THEN sent * rs.chat_minutes_per_sent + read * rs.chat_minutes_per_read ELSE 0 END) / 60.0
            AS customer_chat_hours
    FROM counted CROSS JOIN rule_settings AS rs
    GROUP BY person, week
)
SELECT
    pw.week,
    pw.week_start,
    pw.person,
    rp.team,
    coalesce(w.chat_hours, 0.0) AS chat_hours,
    coalesce(w.customer_chat_hours, 0.0) AS customer_chat_hours,
    coalesce(w.chat_hours - w.customer_chat_hours, 0.0) AS internal_chat_hours,
    coalesce(w.chats_sent, 0) AS chats_sent,
    coalesce(w.chats_read, 0) AS chats_read,
    coalesce(i.interruptions, 0) AS interruptions,
    coalesce(i.refocus_hours, 0.0) AS refocus_hours
FROM person_weeks AS pw
LEFT JOIN roster_people AS rp ON rp.person = pw.person
LEFT JOIN weeks AS w ON w.person = pw.person AND w.week = pw.week
LEFT JOIN chat_interruptions AS i ON i.person = pw.person AND i.week = pw.week
ORDER BY pw.week, pw.person
