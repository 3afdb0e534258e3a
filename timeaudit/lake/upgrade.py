"""`timeaudit upgrade`: a lake of the format before Delta tables (batch files under
``lake/<table>/source=<source>/``, tombstones, party lists beside them) converted into one
Delta table per record kind.

Each table's live records (the newest version of each, tombstones dropped:
sql/old_format_latest.sql) are written as a new Delta table beside the old folder, which is
then swapped out with renames and removed, so a failure part-way leaves the old lake readable
by this command again.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from timeaudit.core.model import TABLES
from timeaudit.lake.sql import read_sql
from timeaudit.lake.store import Lake, capped_duckdb, sql_string

OLD_FILES = ("schema.json", "party_lists")


@dataclass
class Converted:
    table: str
    files: int  # batch files read
    records: int  # live records written to the Delta table
    sources: list[str]

    def line(self) -> str:
        return (
            f"{self.table}: {self.files:,} batch files -> Delta table with {self.records:,} records"
            f" ({', '.join(self.sources) or 'no sources'})"
        )


def upgrade_lake(lake: Lake) -> list[Converted]:
    """Convert every table of the old format; an empty list when there was nothing to convert."""
    if not lake.old_format():
        return []
    done = []
    for table in TABLES:
        folder = lake.table_path(table)
        if folder.is_dir() and not (folder / "_delta_log").is_dir():
            done.append(_convert(lake, table))
    for name in OLD_FILES:
        path = lake.lake_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    return done


def _convert(lake: Lake, table: str) -> Converted:
    old = lake.table_path(table)
    files = sorted(p for p in old.glob("source=*/*.parquet") if not p.name.startswith("."))
    live = _live_records(table, files)
    staging = Lake(lake.root / f".upgrade-{uuid.uuid4().hex[:8]}")
    try:
        sources = sorted(set(live["source"].to_pylist())) if live.num_rows else []
        for source in sources:
            rows = live.filter(pc.equal(live["source"], source)).drop_columns(["source"])
            staging.replace_source(table, source, [rows])
        moved = old.with_name(f".old-{table}-{uuid.uuid4().hex[:8]}")
        os.replace(old, moved)
        if staging.table_path(table).exists():
            os.replace(staging.table_path(table), old)
        shutil.rmtree(moved)
    finally:
        shutil.rmtree(staging.root, ignore_errors=True)
    return Converted(table, len(files), live.num_rows, sources)


def _live_records(table: str, files: list) -> pa.Table:
    """The newest live version of every record in the old batch files, with ``source``."""
    schema = TABLES[table][1]
    if not files:
        return schema.append(pa.field("source", pa.string())).empty_table()
    columns = ", ".join(f'"{name}"' for name in [*schema.names, "source"])
    raw = _old_files(files)
    con = capped_duckdb()
    try:
        query = f"SELECT {columns} FROM ({read_sql('old_format_latest.sql').format(raw=raw)})"
        return con.sql(query).to_arrow_table()
    finally:
        con.close()


def _old_files(files: list) -> str:
    listing = "[" + ", ".join(sql_string(p) for p in files) + "]"
    return f"read_parquet({listing}, hive_partitioning = true, union_by_name = true)"
