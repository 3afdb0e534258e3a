-- Every configured customer with its last meeting, last email and the hours spent with it
-- over the chosen period. Inputs: `classified_events`, `classified_messages`,
-- `rule_customers`, `audit_people`, `audit_range(t0, t1, now)`.
WITH meetings AS (
    SELECT ce.customer, ce.start AS ts, ce.minutes, ce.person
    FROM classified_events AS ce
    JOIN audit_people AS ap ON ap.person = ce.person
    CROSS JOIN audit_range AS r
    WHERE ce.category = 'customer' AND ce.start <= r.now
),
mails AS (
    SELECT cm.customer, cm.ts, cm.minutes, cm.person, cm.direction
    FROM classified_messages AS cm
    JOIN audit_people AS ap ON ap.person = cm.person
    CROSS JOIN audit_range AS r
    WHERE cm.category = 'customer' AND cm.ts <= r.now
),
met AS (
    SELECT m.customer, max(m.ts) AS last_meeting,
           sum(CASE WHEN m.ts >= r.t0 AND m.ts < r.t1 THEN m.minutes ELSE 0 END) / 60.0 AS meeting_hours
    FROM meetings AS m CROSS JOIN audit_range AS r
    GROUP BY m.customer
),
wrote AS (
    SELECT m.customer, max(m.ts) AS last_email,
           sum(CASE WHEN m.ts >= r.t0 AND m.ts < r.t1 THEN m.minutes ELSE 0 END) / 60.0 AS email_hours
    FROM mails AS m CROSS JOIN audit_range AS r
    GROUP BY m.customer
)
SELECT
    c.customer,
    c.tier,
    c.owner,
    c.position,
    met.last_meeting,
    wrote.last_email,
    greatest(coalesce(met.last_meeting, wrote.last_email), coalesce(wrote.last_email, met.last_meeting)) AS last_contact,
    coalesce(met.meeting_hours, 0) AS meeting_hours,
    coalesce(wrote.email_hours, 0) AS email_hours
FROM rule_customers AS c
LEFT JOIN met ON met.customer = c.customer
LEFT JOIN wrote ON wrote.customer = c.customer
ORDER BY c.position
