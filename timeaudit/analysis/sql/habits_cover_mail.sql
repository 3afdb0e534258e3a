-- Cover-yourself mail: internal mail a person sent that copies their own manager (the
-- roster's `manager`) on Cc without addressing them on To, per person-week, with the time
-- the manager spends reading it: one read each (`minutes_per_read`), whether or not the
-- manager's own mailbox is in the lake.
-- Inputs: `classified_messages` (category, direction), the lake's `messages` (To and Cc),
-- `roster_managers(person, manager)`, `person_days` (the person's local weeks), `rule_settings`.
WITH sent AS (
    SELECT
        c.person,
        c.ts,
        rm.manager,
        list_transform(m."to", lambda x: lower(x)) AS to_list,
        list_transform(m.cc, lambda x: lower(x)) AS cc_list
    FROM classified_messages AS c
    JOIN roster_managers AS rm ON rm.person = c.person
    JOIN messages AS m ON m.source = c.source AND m.account = c.account AND m.id = c.id
    WHERE c.direction = 'sent' AND c.category = 'internal'
)
SELECT
    d.week,
    s.person,
    s.manager,
    count(*) AS cover_mails,
    count(*) * max(rs.minutes_per_read) / 60.0 AS manager_hours
FROM sent AS s
JOIN person_days AS d ON d.person = s.person AND s.ts >= d.day_start AND s.ts < d.day_end
CROSS JOIN rule_settings AS rs
WHERE list_contains(s.cc_list, s.manager) AND NOT list_contains(s.to_list, s.manager)
GROUP BY d.week, s.person, s.manager
ORDER BY d.week, s.person
