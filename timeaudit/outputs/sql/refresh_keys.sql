-- The person-weeks a refresh recomputes: those whose days a changed record covers (its old or
-- new times, in the person's own days: `touched`), and every person-week of a week the lake
-- spans now and the stored table does not, or of a person it does not hold yet. Inputs:
-- `person_days` (everyone's, of the weeks the lake spans now), `changed_records(account, t0,
-- t1)`, the stored weekly table (`weekly`).
CREATE OR REPLACE TEMP TABLE refresh_keys AS
WITH stored_weeks AS (SELECT DISTINCT week FROM read_parquet({weekly})),
stored_people AS (SELECT DISTINCT person FROM read_parquet({weekly})),
touched AS (
    SELECT DISTINCT pd.person, pd.week
    FROM changed_records AS c
    JOIN person_days AS pd
      ON pd.person = c.account AND pd.day_start <= c.t1 AND c.t0 < pd.day_end
),
widened AS (
    SELECT DISTINCT pd.person, pd.week
    FROM person_days AS pd
    WHERE pd.week NOT IN (SELECT week FROM stored_weeks) OR pd.person NOT IN (SELECT person FROM stored_people)
)
SELECT person, week, bool_or(touched) AS touched
FROM (SELECT *, true AS touched FROM touched UNION ALL SELECT *, false AS touched FROM widened)
GROUP BY person, week
