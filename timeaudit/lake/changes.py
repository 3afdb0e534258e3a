"""What changed in a lake table between two of its versions.

A table made with Delta's change data feed on (lakes of 2026-12-03; ``delta.enableChangeDataFeed``)
has each commit's inserted, deleted and updated rows (before and after) written apart, and those
rows are all a reader needs. For the others (new tables have it off: it made every merge write
the changed rows twice more, ``store._create``), the commit log does: each commit file
(``_delta_log/<version>.json``) lists the data files it added and removed.
Between version ``since`` and the latest, the files added and not removed again hold every
record written since, and the files removed that had been there hold the versions they
replaced (a merge rewrites whole files, so most rows of both are the same rows). Their
difference on the record's identity and stamps (``updated``, ``ingested_at``, which every
write sets anew) is the changed records: new versions from the added side, old versions and
deleted records from the removed side. The derived tables use their accounts and times to
recompute only the person-weeks they touch (``timeaudit.outputs.refresh``).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import unquote

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError

from timeaudit.lake.sql import read_sql
from timeaudit.lake.store import PARTITION, Lake, has_change_feed, sql_string, writer_duckdb

# The columns of a changed record the derived tables need: whose it is and the time it covers.
TIMES = {"events": ("start", '"end"'), "messages": ("ts", "ts")}
CHANGES_SCHEMA = pa.schema(
    [("account", pa.string()), ("t0", pa.timestamp("us", tz="UTC")), ("t1", pa.timestamp("us", tz="UTC"))]
)


def commit_files(table_path: Path, since: int, until: int) -> tuple[list[Path], list[Path]] | None:
    """(files added, files removed) by the commits after ``since`` up to ``until``, netted: a
    file added and removed again in between is in neither. None when a commit file is gone
    (the log was cleaned up): the caller then recomputes everything."""
    added: set[str] = set()
    removed: set[str] = set()
    log = table_path / "_delta_log"
    for version in range(since + 1, until + 1):
        try:
            lines = (log / f"{version:020d}.json").read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return None
        for line in lines:
            action = json.loads(line) if line.strip() else {}
            if "add" in action:
                added.add(action["add"]["path"])
            elif "remove" in action:
                path = action["remove"]["path"]
                if path in added:
                    added.discard(path)
                else:
                    removed.add(path)
    return [table_path / unquote(p) for p in sorted(added)], [table_path / unquote(p) for p in sorted(removed)]


def changed_records(lake: Lake, table: str, since: int, until: int) -> pa.Table | None:
    """(account, t0, t1) of every record of ``table`` added, changed or deleted after version
    ``since`` up to ``until`` (a changed record twice: its old and new times): from the
    change data feed when the table had it on at ``since``, else from the files the commits
    added and removed. None when that cannot be told: the log or a file is gone (vacuumed)."""
    if until <= since:
        return CHANGES_SCHEMA.empty_table()
    try:
        if has_change_feed(DeltaTable(lake.table_path(table), version=since)):
            return _from_feed(lake, table, since, until)
    except (DeltaError, OSError):
        return None
    return _from_files(lake, table, since, until)


def _from_feed(lake: Lake, table: str, since: int, until: int) -> pa.Table:
    """The changed rows as the commits wrote them: inserted, deleted, and both images of updated."""
    columns = ["account", *dict.fromkeys(TIMES[table])]  # the reader's SQL wants "end" quoted
    dt = DeltaTable(lake.table_path(table), version=until)
    rows = pa.table(dt.load_cdf(starting_version=since + 1, ending_version=until, columns=columns).read_all())
    times = [name.strip('"') for name in TIMES[table]]
    return pa.table([rows["account"], rows[times[0]], rows[times[1]]], names=CHANGES_SCHEMA.names).cast(CHANGES_SCHEMA)


def _from_files(lake: Lake, table: str, since: int, until: int) -> pa.Table | None:
    files = commit_files(lake.table_path(table), since, until)
    if files is None:
        return None
    added, removed = files
    if any(not p.exists() for p in removed):
        return None
    t0, t1 = TIMES[table]
    sides = {name: _stamps(paths, t0, t1) for name, paths in (("added", added), ("removed", removed))}
    query = read_sql("changed_records.sql").format(**sides)
    with writer_duckdb() as con:
        return con.sql(query).to_arrow_table().cast(CHANGES_SCHEMA)


def _stamps(paths: list[Path], t0: str, t1: str) -> str:
    """The identity, stamps and times of the records in ``paths`` as a DuckDB relation."""
    columns = f"{PARTITION}, account, id, updated, ingested_at, {t0} AS t0, {t1} AS t1"
    if not paths:
        return (
            f"(SELECT * FROM (SELECT NULL::VARCHAR AS {PARTITION}, NULL::VARCHAR AS account, NULL::VARCHAR AS id, "
            "NULL::TIMESTAMPTZ AS updated, NULL::TIMESTAMPTZ AS ingested_at, NULL::TIMESTAMPTZ AS t0, "
            "NULL::TIMESTAMPTZ AS t1) WHERE false)"
        )
    listing = "[" + ", ".join(sql_string(p) for p in paths) + "]"
    return (
        f"(SELECT {columns} FROM read_parquet({listing}, hive_partitioning = true, "
        f"hive_types = {{'{PARTITION}': VARCHAR, 'bucket': INTEGER}}))"
    )
