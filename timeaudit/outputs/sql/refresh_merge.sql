-- A stored table keyed by person-week (`stored`) with the recomputed rows (`fresh`) in place
-- of the old ones; rows of weeks or people the lake no longer spans (`all_days`) are left out.
SELECT * FROM (
    SELECT * FROM ({fresh})
    UNION ALL BY NAME
    SELECT s.* FROM read_parquet({stored}) AS s
    WHERE EXISTS (SELECT 1 FROM all_days AS d WHERE d.person = s.person AND d.week = s.week)
      AND NOT EXISTS (SELECT 1 FROM refresh_keys AS k WHERE k.person = s.person AND k.week = s.week)
)
ORDER BY {order}
