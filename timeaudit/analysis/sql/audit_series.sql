-- Internal meetings and recurring series over the chosen weeks, ranked by person-hours,
-- with the facts behind each waste flag. One row per series (a one-off meeting is its own
-- series). Inputs: `person_meetings` (meetings.sql), `audit_weeks(week)`,
-- `audit_people(person)`, `rule_settings`.
WITH chosen AS (
    SELECT pm.*
    FROM person_meetings AS pm
    JOIN audit_weeks AS aw ON aw.week = pm.week
    JOIN audit_people AS ap ON ap.person = pm.person
),
invited AS (
    -- Every roster copy of an internal meeting: counted, tentative or unanswered.
    SELECT * FROM chosen
    WHERE others > 0 AND customer IS NULL AND (category IN ('internal', 'admin', 'tentative'))
),
counted AS (
    SELECT * FROM invited WHERE category IN ('internal', 'admin')
),
double_booked AS (
    -- Copies that overlap another counted event of the same person: double-booked attendees.
    SELECT DISTINCT c.person, c.id
    FROM counted AS c
    JOIN chosen AS o
        ON o.person = c.person AND o.id <> c.id
       AND o.category IN ('customer', 'admin', 'internal', 'focus')
       AND o.start < c."end" AND c.start < o."end"
),
occurrences AS (
    SELECT series_key, start, max(minutes) AS minutes
    FROM counted
    GROUP BY series_key, start
),
cadence AS (
    SELECT series_key, avg(gap_days) AS cadence_days
    FROM (
        SELECT series_key,
               (epoch(start) - epoch(lag(start) OVER (PARTITION BY series_key ORDER BY start))) / 86400.0 AS gap_days
        FROM occurrences
    ) AS gaps
    WHERE gap_days IS NOT NULL
    GROUP BY series_key
)
SELECT
    i.series_key,
    min(i.title) AS title,
    count(DISTINCT CASE WHEN i.category <> 'tentative' THEN i.start END) AS occurrences,
    min(i.start) AS first_start,
    max(i.start) AS last_start,
    avg(i.minutes) AS minutes,
    max(i.attendee_count) AS attendees,
    count(DISTINCT CASE WHEN i.category <> 'tentative' THEN i.person END) AS people,
    sum(CASE WHEN i.category <> 'tentative' THEN i.minutes ELSE 0 END) / 60.0 AS person_hours,
    sum(CASE WHEN i.category <> 'tentative' THEN i.own_cost ELSE 0 END) AS cost,
    avg(CASE WHEN i.category = 'tentative' THEN 1.0 ELSE 0.0 END) AS tentative_share,
    avg(CASE WHEN ov.id IS NOT NULL THEN 1.0 ELSE 0.0 END) AS double_booked_share,
    avg(CASE WHEN i.has_agenda THEN 1.0 ELSE 0.0 END) AS agenda_share,
    bool_or(i.recurring) AS recurring,
    min(i.committee_keyword) AS committee_keyword,
    min(i.admin_kind) AS admin_kind,
    bool_and(i.external_email IS NULL) AS internal_only,
    min(c.cadence_days) AS cadence_days
FROM invited AS i
LEFT JOIN double_booked AS ov ON ov.person = i.person AND ov.id = i.id
LEFT JOIN cadence AS c ON c.series_key = i.series_key
GROUP BY i.series_key
HAVING sum(CASE WHEN i.category <> 'tentative' THEN i.minutes ELSE 0 END) > 0
ORDER BY person_hours DESC, series_key
