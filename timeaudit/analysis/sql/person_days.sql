-- One row per person and local calendar day: the day's bounds and working hours as UTC
-- instants, and its ISO week. Inputs: `zone_days` (the days of each time zone and working
-- hours, computed once per zone by metrics.py) and `person_zones(person, pid, zone)`; `pid`
-- numbers the people, for the queries that sort and join on a person.
CREATE OR REPLACE TEMP TABLE person_days AS
SELECT pz.person, pz.pid, zd.tz, zd.day, zd.week, zd.week_start, zd.day_start, zd.day_end, zd.work_start, zd.work_end
FROM person_zones AS pz
JOIN zone_days AS zd ON zd.zone = pz.zone
