"""The lake under ``<data>/lake`` (one Delta Lake table per record kind) and the sync cursors
under ``<data>/state``.

Each table (``lake/events``, ``lake/messages``, ``lake/chat``) is a Delta table written through
``deltalake`` (delta-rs), partitioned by ``source`` and an account bucket. A write is one commit: a
merge on (source, account, id), or an append when the snapshot holds none of its keys. The newer
``updated`` wins (on a tie, the later write), a record marked ``deleted`` is deleted, so the table
holds each record once and readers rank nothing. Readers take one snapshot (a table version) and
hand its file list to DuckDB (``connect``). Events and messages carry the key of their party list
(``party_key``); the distinct lists are found at read time (party_lists_<table>.sql).

File statistics are kept for time columns only, so the transaction log never names a person
(``forget`` relies on it).

Over 400 lines on purpose: writing, snapshots, compaction and forgetting share the table
layout, the writer lock and the commit retries, and read best beside them.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import os
import random
import shutil
import tempfile
import threading
import time
import uuid
import weakref
import zlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import ColumnProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError, TableNotFoundError

from timeaudit.core.errors import StoreError
from timeaudit.core.model import ATTENDEE_TYPE, TABLES
from timeaudit.lake.sql import read_sql

DATA_ENV = "TIMEAUDIT_DATA"
MEMORY_ENV = "TIMEAUDIT_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"
_TMP_SUFFIX = ".tmp"
# Readers scan a file's row groups in parallel, so one million-row group would leave a core idle.
ROW_GROUP_ROWS = 100_000
# The columns a record's party list is made of (hashed by party_keys_<table>.sql).
PARTY_COLUMNS = {"events": ["organizer", "attendees"], "messages": ["sender", "to", "cc"]}
PARTY_TABLES = tuple(PARTY_COLUMNS)
PARTY_KEY = "party_key"
PARTITION = "source"
# Each source's records are spread over buckets by account (``account_bucket``), so that a merge
# for a few accounts reads and rewrites only their buckets, not the source's every record.
BUCKET = "bucket"
# How many: a merge rewrites every file holding a record it changes, and scans its buckets'
# files to find them, so the fewer accounts share a bucket, the less it copies; but every
# reader opens one file per bucket and table. At 1,000 people x 52 weeks (docs/performance.md)
# a merge of one person's changed events took 365 ms with 64 buckets, 134 ms with 256, 63 ms
# with 1,024, and the weekly metrics read 10-20% slower with 256 than with 64, 30% with 1,024.
# A table says its count in its description; tables made before the first count say none.
BUCKETS = 256
OLD_BUCKETS = 16
BUCKETS_DESCRIPTION = "partitioned by source and bucket = crc32(account) % {}"
# Only these columns get file statistics in the transaction log: none of them names anyone.
STATS_COLUMNS = {
    "events": "start,end,updated,ingested_at",
    "messages": "ts,updated,ingested_at",
    "chat": "ts,updated,ingested_at",
}
# Files a compaction or merge replaced stay this long before ``compact`` removes them: longer
# than any reader holds one snapshot (a reader re-snapshots whenever the table version moves).
VACUUM_RETENTION_HOURS = 1
COMMIT_ATTEMPTS = 20
# Parquet statistics only for the columns readers filter on (accounts, times): those of every
# other string cost about a fifth of a write and named people in every file's footer.
PRUNING_COLUMNS = {table: ["account", *columns.split(",")] for table, columns in STATS_COLUMNS.items()}
WRITER_PROPERTIES = WriterProperties(
    compression="ZSTD",
    max_row_group_size=ROW_GROUP_ROWS,
    default_column_properties=ColumnProperties(statistics_enabled="NONE"),
    column_properties={
        name: ColumnProperties(statistics_enabled="CHUNK") for name in set().union(*PRUNING_COLUMNS.values())
    },
)


# The data folder holds personal data: what timeaudit creates is its user's only.
PRIVATE_UMASK = 0o077


def keep_private() -> None:
    """Every file and folder this process creates from now on is readable by its user only
    (0600 files, 0700 folders), whoever writes it: pyarrow, DuckDB, Spark, xlsxwriter."""
    os.umask(os.umask(PRIVATE_UMASK) | PRIVATE_UMASK)


def looser_than_private(root: Path) -> list[Path]:
    """``root`` and everything under it that others than its owner may read, write or enter."""
    if not root.exists():
        return []
    return [p for p in [root, *sorted(root.rglob("*"))] if permission_bits(p) & PRIVATE_UMASK]


def permission_bits(path: Path) -> int:
    """A path's own permission bits; 0 for a link (its target's are what count) or one just removed."""
    try:
        return 0 if path.is_symlink() else path.stat().st_mode & 0o777
    except OSError:
        return 0


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or "data")


def utc_now() -> datetime:
    return datetime.now(UTC)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_parquet(
    data: pa.Table, path: Path, use_dictionary: bool | list[str] = True, statistics: bool | list[str] = True
) -> None:
    """How every lake file is written: zstd, in row groups readers can share out
    (``use_dictionary``: the columns worth dictionary-encoding, when the caller knows them;
    ``statistics``: the columns readers prune row groups by, ``PRUNING_COLUMNS`` in the lake).

    Strings held as dictionaries are written as they are, without encoding them again; the
    file then leaves out its Arrow schema, so that every reader sees plain strings."""
    pq.write_table(
        data,
        path,
        compression="zstd",
        row_group_size=ROW_GROUP_ROWS,
        use_dictionary=use_dictionary,
        write_statistics=statistics,
        store_schema=not any(dictionary_leaves(f.name, f.type) for f in data.schema),
    )


def dictionary_leaves(path: str, kind: pa.DataType) -> list[str]:
    """The Parquet paths of the dictionary strings inside a column ``path`` of type ``kind``."""
    if pa.types.is_dictionary(kind):
        return [path]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return dictionary_leaves(f"{path}.list.element", kind.value_type)
    if pa.types.is_struct(kind):
        return [leaf for f in kind for leaf in dictionary_leaves(f"{path}.{f.name}", f.type)]
    return []


def records_to_arrow(table: str, records: Iterable, ingested_at: datetime | None = None) -> pa.Table:
    """Model records -> an Arrow table with the lake schema (without ``source``).

    Fields are read directly: ``dataclasses.asdict`` deep-copies every record, which made this
    about 20 times slower (most of the demo generator's time, a fifth of a mail import's)."""
    records = list(records)
    names = [name for name in TABLES[table][1].names if name not in ("ingested_at", "attendee_count")]
    given = {name: [getattr(r, name) for r in records] for name in names}
    if "attendees" in given:
        given["attendees"] = [tuple(map(_ATTENDEE_FIELDS, r.attendees)) for r in records]
    return columns_to_arrow(table, given, len(records), ingested_at or utc_now())


_ATTENDEE_FIELDS = operator.attrgetter(*ATTENDEE_TYPE.names)


def columns_to_arrow(table: str, given: dict[str, Sequence], rows: int, ingested_at: datetime) -> pa.Table:
    """The lake's columns of ``rows`` records, each given whole (attendee lists as tuples of
    (email, response, optional)) -> an Arrow table with the lake schema, one column at a time
    (connectors that yield plain values skip a model object per record and per attendee)."""
    columns = []
    for column in TABLES[table][1]:
        if column.name == "ingested_at":
            values = pa.repeat(pa.scalar(ingested_at, column.type), rows)
        elif column.name == "attendee_count":
            values = pa.array(map(len, given["attendees"]), column.type, size=rows)
        elif column.name == "attendees":
            values = _attendee_lists(given["attendees"], column.type)
        else:
            values = pa.array(given[column.name], column.type)
        columns.append(values)
    return pa.Table.from_arrays(columns, schema=TABLES[table][1])


def _attendee_lists(lists: Iterable[tuple[tuple[str, str, bool], ...]], list_type: pa.ListType) -> pa.Array:
    """Tuples of (email, response, optional) -> one list-of-struct column. The .ics connector
    gives every event with the same list of people the same tuple, so each distinct one (by
    identity: the records keep them all alive) is converted once, then repeated by Arrow."""
    positions: dict[int, int] = {}
    distinct = []
    picks = []
    for people in lists:
        position = positions.setdefault(id(people), len(distinct))
        if position == len(distinct):
            distinct.append(people)
        picks.append(position)
    offsets = pa.array(itertools.accumulate(map(len, distinct), initial=0), pa.int32())
    flat = list(itertools.chain.from_iterable(distinct))
    fields = list(list_type.value_type)
    values = [pa.array([a[i] for a in flat], f.type) for i, f in enumerate(fields)]
    each = pa.ListArray.from_arrays(offsets, pa.StructArray.from_arrays(values, fields=fields), type=list_type)
    return each.take(pa.array(picks, pa.int32()))


class Lake:
    """One data folder: a Delta table per record kind plus the cursor state."""

    def __init__(self, data_dir: Path | str):
        self.root = Path(data_dir)
        self.lake_dir = self.root / "lake"
        self.state_dir = self.root / "state"
        # Opening a table reads its log (10-50 ms); bringing an open one up to date, under 1 ms.
        # Each thread keeps its own (a table object is not shared between threads).
        self._open = threading.local()

    # -- format ---------------------------------------------------------------------------
    def old_format(self) -> bool:
        """Whether the lake holds batch files of the format before Delta tables."""
        if (self.lake_dir / "schema.json").exists():
            return True
        return any(
            not (self.lake_dir / t / "_delta_log").is_dir() and any((self.lake_dir / t).glob("source=*/batch-*"))
            for t in TABLES
        )

    def check_schema(self) -> None:
        """Stop with one clear line when the lake is of the format before Delta tables."""
        if self.old_format():
            raise StoreError(
                f"{self.lake_dir}: a lake of the format before Delta tables; convert it once with "
                f"`timeaudit upgrade --data {self.root}`"
            )

    def table_path(self, table: str) -> Path:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        return self.lake_dir / table

    def table(self, table: str) -> DeltaTable | None:
        """The table's latest snapshot, or None before its first write. The same object each
        time in a thread, brought up to date: keep its version, not the object, to hold one snapshot."""
        log = self.table_path(table) / "_delta_log"
        try:  # a table removed and created again is another table
            stat = (log / f"{0:020}.json").stat()
            identity = (stat.st_ino, stat.st_mtime_ns)
        except FileNotFoundError:
            identity = None  # no table, or its first commits cleaned up after a checkpoint
        opened = self._open.__dict__.setdefault("tables", {})
        known, dt = opened.get(table, (None, None))
        if dt is not None and identity is not None and known == identity:
            dt.update_incremental()
            return dt
        try:
            dt = DeltaTable(self.table_path(table))
        except TableNotFoundError:
            return None
        opened[table] = (identity, dt)
        return dt

    def _create(self, table: str) -> DeltaTable:
        schema = stored_schema(table)
        # No change data feed: it made every merge write the changed rows twice more (2.2 s against
        # 1.5 s for a 1% sync at 1,000 people), and with small buckets the files a commit added
        # and removed tell what changed as cheaply (timeaudit.lake.changes).
        config = {"delta.dataSkippingStatsColumns": STATS_COLUMNS[table]}
        for attempt in range(COMMIT_ATTEMPTS):
            try:
                return DeltaTable.create(
                    self.table_path(table),
                    schema,
                    mode="ignore",
                    partition_by=[PARTITION, BUCKET],
                    description=BUCKETS_DESCRIPTION.format(BUCKETS),
                    configuration=config,
                )
            except DeltaError:  # another writer created it at the same moment
                if attempt == COMMIT_ATTEMPTS - 1:
                    raise
                time.sleep(0.05)
        raise AssertionError("unreachable")

    # -- writing --------------------------------------------------------------------------
    def write_batch(self, table: str, source: str, records: Iterable) -> int | None:
        """Merge model records into the table; returns the new table version (None: no records)."""
        return self.write_arrow(table, source, records_to_arrow(table, records))

    def write_arrow(self, table: str, source: str, data: pa.Table) -> int | None:
        """Merge ``data`` (the lake schema, without ``source``) into ``source``'s partition as one
        commit: newer ``updated`` wins, ``deleted`` rows delete. Returns the new table version
        (None: nothing to write)."""
        _check_source(source)
        if data.num_rows == 0:
            return None
        self.check_schema()
        data = stored_rows(table, source, newest_per_key(data), table_buckets(self.table(table) or self._create(table)))
        buckets = ", ".join(map(str, sorted(set(data[BUCKET].to_pylist()))))
        predicate = (
            f"t.{PARTITION} = {sql_string(source)} AND t.{BUCKET} IN ({buckets}) AND t.{PARTITION} = s.{PARTITION} "
            f"AND t.{BUCKET} = s.{BUCKET} AND t.account = s.account AND t.id = s.id"
        )

        def merge(dt: DeltaTable) -> None:
            # A merge costs 0.15-0.3 s however small (planning, scanning the buckets' files); when
            # the snapshot holds none of the keys it can only insert, which an append does alone.
            if not holds_any(dt, table, source, data):
                inserts = data.filter(pc.invert(data["deleted"]))
                if inserts.num_rows:
                    write_deltalake(dt, inserts, mode="append", writer_properties=WRITER_PROPERTIES)
                return
            (
                dt.merge(data, predicate, source_alias="s", target_alias="t", writer_properties=WRITER_PROPERTIES)
                .when_matched_update_all(predicate="NOT s.deleted AND s.updated >= t.updated")
                .when_matched_delete(predicate="s.deleted AND s.updated >= t.updated")
                .when_not_matched_insert_all(predicate="NOT s.deleted")
                .execute()
            )

        return self.commit(table, merge)

    def commit(self, table: str, change) -> int:
        """Run ``change(DeltaTable)`` (one commit) on the latest snapshot, again on a newer one
        when another writer committed first. Threads of one process (``--workers``) take turns
        per table; processes (``--shard``) retry after a random pause. Returns the new version."""
        with _table_lock(self.table_path(table)):
            for attempt in range(COMMIT_ATTEMPTS):
                dt = self.table(table) or self._create(table)
                try:
                    change(dt)
                    return dt.version()
                except CommitFailedError:
                    if attempt == COMMIT_ATTEMPTS - 1:
                        raise
                    time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    def replace_source(self, table: str, source: str, batches: Iterable[pa.Table]) -> int:
        """Swap a source's whole partition for new records in one commit (the demo generator).
        A record given twice keeps its newest version."""
        _check_source(source)
        self.check_schema()
        parts = [b for b in batches if b.num_rows]
        data = pa.concat_tables(parts) if parts else TABLES[table][1].empty_table()
        count = table_buckets(self.table(table) or self._create(table))
        data = stored_rows(table, source, newest_per_key(data), count) if data.num_rows else None

        def overwrite(dt: DeltaTable) -> None:
            if data is None:
                dt.delete(f"{PARTITION} = {sql_string(source)}")
                return
            write_deltalake(
                dt,
                data,
                mode="overwrite",
                predicate=f"{PARTITION} = {sql_string(source)}",
                writer_properties=WRITER_PROPERTIES,
            )

        self.commit(table, overwrite)
        return 0 if data is None else data.num_rows

    # -- reading --------------------------------------------------------------------------
    def files(self, table: str, source: str | None = None, account: str | None = None) -> list[Path]:
        """The data files of the table's latest snapshot (of one source; of one account's bucket)."""
        dt = self.table(table)
        return snapshot_files(dt, source, account) if dt else []

    def sources(self, table: str) -> list[str]:
        dt = self.table(table)
        return sorted({p[PARTITION] for p in dt.partitions()}) if dt else []

    def version(self) -> tuple:
        """(table, table id, version) of each table: changes with every commit; a cache key."""
        versions = []
        for table in TABLES:
            dt = self.table(table)
            versions.append((table, dt.metadata().id, dt.version()) if dt else (table, None, -1))
        return tuple(versions)

    def connect(self, accounts: Iterable[str] | None = None) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB (see ``capped_duckdb``) with a view per table over one snapshot of
        it (its file list), and the party lists of events and messages. Given ``accounts``, also
        ``<table>_of_accounts``: the same snapshot's files of those accounts' buckets alone, so a
        reader of a few accounts' records skips the files that cannot hold them."""
        self.check_schema()
        con = capped_duckdb()
        accounts = None if accounts is None else list(accounts)
        for table in TABLES:
            dt = self.table(table)
            files = snapshot_files(dt) if dt else []
            con.register(f"_empty_{table}", stored_schema(table).empty_table())
            empty = f"(SELECT * EXCLUDE ({BUCKET}) FROM _empty_{table})"
            con.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {read_files(files) if files else empty}")
            if accounts is not None:
                count = table_buckets(dt) if dt else BUCKETS
                buckets = {account_bucket(a, count) for a in accounts}
                theirs = [f for f in files if partition_of(f)[1] in buckets]
                relation = read_files(theirs) if theirs else empty
                con.execute(f"CREATE OR REPLACE VIEW {table}_of_accounts AS SELECT * FROM {relation}")
            if table in PARTY_TABLES:
                lists = read_sql(f"party_lists_{table}.sql").format(raw=table)
                con.execute(f"CREATE OR REPLACE VIEW {party_lists_view(table)} AS\n" + lists)
        return con

    # -- cursors --------------------------------------------------------------------------
    def _cursor_path(self, source: str, account: str) -> Path:
        safe = "".join(c if c.isalnum() or c in "@._-" else "_" for c in account)
        return self.state_dir / source / f"{safe}.json"

    def read_cursor(self, source: str, account: str) -> dict | None:
        path = self._cursor_path(source, account)
        if not path.exists():
            return None
        return json.loads(path.read_text())

    def write_cursor(self, source: str, account: str, cursor: dict) -> None:
        """Call only after the commit holding the records the cursor covers."""
        _atomic_write_bytes(self._cursor_path(source, account), json.dumps(cursor, indent=1).encode())

    def clear_cursor(self, source: str, account: str) -> None:
        self._cursor_path(source, account).unlink(missing_ok=True)

    # -- maintenance ----------------------------------------------------------------------
    def compact(self, table: str) -> tuple[int, int]:
        """Optimize (small files of each partition rewritten into few), then vacuum the files no
        snapshot of the last ``VACUUM_RETENTION_HOURS`` uses, so no reader mid-read loses one.
        Returns (files before, files after) in the latest snapshot."""
        self.check_schema()
        before = len(self.files(table))
        if before:
            self.commit(table, lambda dt: dt.optimize.compact(writer_properties=WRITER_PROPERTIES))
            self.vacuum(table, VACUUM_RETENTION_HOURS)
        return before, len(self.files(table))

    def vacuum(self, table: str, retention_hours: int, full: bool = False) -> int:
        """Remove the files that no snapshot younger than ``retention_hours`` uses (``full``: and
        files no commit ever took, left by a write killed before its commit); how many."""
        dt = self.table(table)
        if dt is None:
            return 0
        removed = dt.vacuum(retention_hours=retention_hours, dry_run=False, enforce_retention_duration=False, full=full)
        return len(removed)


_TABLE_LOCKS: dict[Path, threading.Lock] = {}
_TABLE_LOCKS_LOCK = threading.Lock()


def _table_lock(path: Path) -> threading.Lock:
    with _TABLE_LOCKS_LOCK:
        return _TABLE_LOCKS.setdefault(path.resolve(), threading.Lock())


def _check_source(source: str) -> None:
    if not source or "/" in source or "'" in source or source.startswith("."):
        raise ValueError(f"bad source name {source!r}")


def stored_schema(table: str) -> pa.Schema:
    """The Delta table's schema: the lake columns, ``source``, ``bucket``, and ``party_key`` for
    events and messages."""
    schema = TABLES[table][1].append(pa.field(PARTITION, pa.string())).append(pa.field(BUCKET, pa.int32()))
    return schema.append(pa.field(PARTY_KEY, pa.int64())) if table in PARTY_TABLES else schema


def has_change_feed(dt: DeltaTable) -> bool:
    return dt.metadata().configuration.get("delta.enableChangeDataFeed") == "true"


def account_bucket(account: str, buckets: int) -> int:
    """The bucket of an account's records: the same in every process and engine."""
    return zlib.crc32(account.encode()) % buckets


def table_buckets(dt: DeltaTable) -> int:
    """How many buckets ``dt`` spreads accounts over (``BUCKETS_DESCRIPTION``)."""
    described = dt.metadata().description or ""
    prefix = BUCKETS_DESCRIPTION.format("")
    return int(described.removeprefix(prefix)) if described.startswith(prefix) else OLD_BUCKETS


def stored_rows(table: str, source: str, data: pa.Table, buckets: int) -> pa.Table:
    """``data`` (lake columns) as the table stores it: with ``source``, the bucket, the party key."""
    data = data.select(TABLES[table][1].names).cast(TABLES[table][1])
    data = data.append_column(PARTITION, pa.repeat(pa.scalar(source, pa.string()), data.num_rows))
    accounts = pc.unique(data["account"])
    each = pa.array([account_bucket(a, buckets) for a in accounts.to_pylist()], pa.int32())
    data = data.append_column(BUCKET, each.take(pc.index_in(data["account"], value_set=accounts)))
    return with_party_key(table, data)


def snapshot_files(dt: DeltaTable, source: str | None = None, account: str | None = None) -> list[Path]:
    """The data files of one snapshot of ``dt`` (of one source; of one account's bucket)."""
    filters = [(PARTITION, "=", source)] if source is not None else []
    filters += [(BUCKET, "=", str(account_bucket(account, table_buckets(dt))))] if account is not None else []
    uris = dt.file_uris(file_pruning_predicate=filters or None)
    return sorted(Path(uri.removeprefix("file://")) for uri in uris)


def account_rows(dt: DeltaTable, table: str, source: str, accounts: Sequence[str], columns: Sequence[str]) -> pa.Table:
    """``columns`` of the records of ``accounts`` in ``source`` in one snapshot, read straight from
    their buckets' files (no DuckDB, no view of the whole lake): what a write or an import for a
    few accounts needs to know of what the lake holds."""
    schema = pa.schema([stored_schema(table).field(name) for name in columns])
    buckets = sorted({str(account_bucket(a, table_buckets(dt))) for a in accounts})
    uris = dt.file_uris(file_pruning_predicate=[(PARTITION, "=", source), (BUCKET, "in", buckets)])
    wanted = pa.array(sorted(set(accounts)), pa.string())
    parts = [_rows_of(uri.removeprefix("file://"), wanted, schema) for uri in uris]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def _rows_of(path: str, accounts: pa.Array, schema: pa.Schema) -> pa.Table:
    """``schema``'s columns of one file's rows of ``accounts``: the account column first, the rest
    only when some row is theirs (delta-rs writes strings as views, which Arrow's filters and
    statistics cannot take, hence read whole and cast)."""
    file = pq.ParquetFile(path)
    mask = pc.is_in(file.read(columns=["account"]).column(0).cast(pa.string()), value_set=accounts)
    if not pc.any(mask).as_py():
        return schema.empty_table()
    return file.read(columns=schema.names).select(schema.names).cast(schema).filter(mask)


def holds_any(dt: DeltaTable, table: str, source: str, data: pa.Table) -> bool:
    """Whether the snapshot holds any (account, id) of ``data`` (stored rows of ``source``)."""
    held = account_rows(dt, table, source, pc.unique(data["account"]).to_pylist(), ["account", "id"])
    held = held.filter(pc.is_in(held["id"], value_set=data["id"]))
    return held.num_rows > 0 and held.join(data.select(["account", "id"]), ["account", "id"]).num_rows > 0


def partition_of(path: Path) -> tuple[str, int]:
    """(source, bucket) of a data file, from its partition folders."""
    return path.parent.parent.name.removeprefix(f"{PARTITION}="), int(path.parent.name.removeprefix(f"{BUCKET}="))


def read_files(paths: list[Path]) -> str:
    """A snapshot's files as one DuckDB relation, ``source`` from the partition folders (the
    bucket is the store's business, left out)."""
    listing = "[" + ", ".join(sql_string(p) for p in paths) + "]"
    options = "hive_partitioning = true, hive_types = {'source': VARCHAR, 'bucket': INTEGER}"
    return f"(SELECT * EXCLUDE ({BUCKET}) FROM read_parquet({listing}, {options}))"


def capped_duckdb() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB in UTC whose memory is capped (``TIMEAUDIT_MEMORY_LIMIT``, default
    1GB): work on a large organisation spills what does not fit to a private temporary folder,
    removed when the connection goes, instead of taking most of the machine's memory, which is
    DuckDB's default."""
    con = duckdb.connect(":memory:")
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")
    spill = tempfile.mkdtemp(prefix="timeaudit-")
    weakref.finalize(con, shutil.rmtree, spill, True)
    con.execute("SET temp_directory = $spill", {"spill": spill})
    limit = os.environ.get(MEMORY_ENV) or DEFAULT_MEMORY_LIMIT
    try:
        con.execute("SET memory_limit = $limit", {"limit": limit})
    except duckdb.Error:
        raise StoreError(f"{MEMORY_ENV}={limit!r}: not an amount of memory; use e.g. 2GB or 512MB") from None
    return con


@functools.cache
def _writers_duckdb() -> duckdb.DuckDBPyConnection:
    return capped_duckdb()


def writer_duckdb() -> duckdb.DuckDBPyConnection:
    """A connection for the work of writing batches (party keys, a batch's repeated records), to
    one capped DuckDB kept for the process: starting a DuckDB takes about 0.1 s, more than all the
    work of writing a small batch. Close it after use."""
    return _writers_duckdb().cursor()


def holdings(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(table, source, records, accounts, first, last, landed) for each source of each table."""
    return con.execute(read_sql("holdings.sql")).fetchall()


def sql_string(path: Path | str) -> str:
    """A path or name as a quoted SQL string literal."""
    return "'" + str(path).replace("'", "''") + "'"


def sql_list(values: Iterable[str]) -> str:
    """Values as the inside of a SQL ``IN (...)``: quoted, sorted; NULL when there are none."""
    return ", ".join(sql_string(v) for v in sorted(values)) or "NULL"


def party_lists_view(table: str) -> str:
    """The view a reader gets the party lists of ``table`` from: event_party_lists, message_party_lists."""
    return f"{table.removesuffix('s')}_party_lists"


def with_party_key(table: str, data: pa.Table) -> pa.Table:
    """``data`` with the key of each record's party list (party_keys_<table>.sql)."""
    if table not in PARTY_TABLES:
        return data
    if PARTY_KEY in data.column_names:
        data = data.drop_columns([PARTY_KEY])
    query = read_sql(f"party_keys_{table}.sql").format(raw="batch")
    with writer_duckdb() as con:
        con.register("batch", data)
        key = con.sql(f"SELECT {PARTY_KEY} FROM ({query})").to_arrow_table().column(PARTY_KEY)
    return data.append_column(PARTY_KEY, key.cast(pa.int64(), safe=False))  # the same 64 bits, signed


def newest_per_key(data: pa.Table) -> pa.Table:
    """``data`` with each (account, id) once, its newest version: a merge takes each key once."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:  # the common case, told cheaply
        return data
    keys = data.select(["account", "id"]).group_by(["account", "id"]).aggregate([])
    if keys.num_rows == data.num_rows:
        return data
    with writer_duckdb() as con:
        con.register("batch", data.append_column("position", pa.array(range(data.num_rows), pa.int64())))
        return con.sql(read_sql("newest_per_key.sql").format(raw="batch")).to_arrow_table().cast(data.schema)
