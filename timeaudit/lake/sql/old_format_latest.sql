-- The live records of a lake of the format before Delta tables (`timeaudit upgrade`): the
-- newest version by (updated, ingested_at) per (source, account, id); a newest version that is
-- a tombstone hides the record.
SELECT * EXCLUDE (version_rank)
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY source, account, id
            ORDER BY updated DESC, ingested_at DESC
        ) AS version_rank
    FROM {raw}
) AS versions
WHERE version_rank = 1 AND NOT deleted
