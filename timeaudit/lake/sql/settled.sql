-- The live records of sources held in a single batch file. A batch holds each record at most
-- once (Lake.write_arrow sees to it), so there are no older versions to rank: only the
-- tombstones go, and they hide nothing that is still in the lake.
SELECT * FROM {raw} WHERE NOT deleted
