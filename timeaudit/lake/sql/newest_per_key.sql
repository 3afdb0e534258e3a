-- Each (account, id) of one batch once: its newest version by updated, then ingested_at,
-- then the later row. {raw} has a `position` column: the row's place in the batch.
SELECT * EXCLUDE (version_rank, position)
FROM (
    SELECT
        *,
        row_number() OVER (
            PARTITION BY account, id
            ORDER BY updated DESC, ingested_at DESC, position DESC
        ) AS version_rank
    FROM {raw}
) AS versions
WHERE version_rank = 1
