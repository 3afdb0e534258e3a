-- The person-weeks the lake spans now (`all_days`), then only the days of those being
-- recomputed (`refresh_keys`) kept: daily.sql sweeps those alone, each day as a full
-- computation would (its bounds and its person's records are all there).
CREATE OR REPLACE TEMP TABLE all_days AS SELECT DISTINCT person, week FROM person_days;
DELETE FROM person_days AS pd
WHERE NOT EXISTS (SELECT 1 FROM refresh_keys AS k WHERE k.person = pd.person AND k.week = pd.week);
