-- Chat per person-week: `chat_minutes_per_sent` per message the person sent, and
-- `chat_minutes_per_read` per message of others (bots included) in a conversation they wrote
-- in that week; customer chat is the part in conversations shared with a customer
-- (classify_chat.sql). Interruptions from chat_interruptions.sql. Every person-week of
-- `person_days` gets a row, zeros where there was no chat.
-- Inputs: `classified_chat`, `chat_interruptions`, `person_days`, `roster_people`, `rule_settings`.
WITH person_weeks AS (
    SELECT person, week, min(week_start) AS week_start FROM person_days GROUP BY person, week
),
sent AS (
    SELECT pd.person, pd.week, c.source, c.account, c.conversation, c.customer
    FROM classified_chat AS c
    JOIN person_days AS pd ON pd.person = c.sender AND c.ts >= pd.day_start AND c.ts < pd.day_end
    WHERE NOT c.bot
),
takes_part AS (
    SELECT DISTINCT person, week, source, account, conversation FROM sent
),
read AS (
    SELECT tp.person, tp.week, c.customer
    FROM takes_part AS tp
    JOIN classified_chat AS c
      ON c.source = tp.source AND c.account = tp.account AND c.conversation = tp.conversation
     AND c.sender <> tp.person
    JOIN person_days AS pd ON pd.person = tp.person AND pd.week = tp.week AND c.ts >= pd.day_start AND c.ts < pd.day_end
),
counted AS (
    SELECT person, week, 1 AS sent, 0 AS read, customer IS NOT NULL AS customer FROM sent
    UNION ALL
    SELECT person, week, 0, 1, customer IS NOT NULL FROM read
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
