-- Admin time by kind, per team and week (event minutes of admin events; a minute that
-- overlaps a customer meeting is customer time in the weekly metrics, not here).
-- Inputs: `person_meetings`, `audit_weeks`, `audit_people(person, team)`.
SELECT pm.week, ap.team, coalesce(pm.admin_kind, 'other') AS kind,
       sum(pm.minutes) / 60.0 AS hours, count(*) AS events, count(DISTINCT pm.person) AS people
FROM person_meetings AS pm
JOIN audit_weeks AS aw ON aw.week = pm.week
JOIN audit_people AS ap ON ap.person = pm.person
WHERE pm.category = 'admin'
GROUP BY pm.week, ap.team, coalesce(pm.admin_kind, 'other')
ORDER BY pm.week, ap.team, hours DESC, kind
