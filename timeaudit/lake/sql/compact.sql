-- One source's batches merged: the newest version of every record, tombstones dropped
-- (every older version they hid is merged away with them).
SELECT * EXCLUDE (version_rank)
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY account, id
            ORDER BY updated DESC, ingested_at DESC
        ) AS version_rank
    FROM {raw}
) AS versions
WHERE version_rank = 1 AND NOT deleted
