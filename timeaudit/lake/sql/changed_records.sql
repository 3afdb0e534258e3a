-- The records that differ between the files a run of commits added ({added}) and the files
-- it removed ({removed}): a new or changed record is in the added files only, the version
-- it replaced and a deleted record in the removed files only. Every write stamps
-- `ingested_at`, so a record written again differs even when nothing else about it does.
SELECT account, t0, t1 FROM (SELECT * FROM {added} EXCEPT SELECT * FROM {removed})
UNION ALL
SELECT account, t0, t1 FROM (SELECT * FROM {removed} EXCEPT SELECT * FROM {added})
