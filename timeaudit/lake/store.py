"""The Parquet lake under ``<data>/lake`` and the sync cursors under ``<data>/state``.

Over 400 lines on purpose: this storage is replaced whole by Delta Lake next, so it is not split first.

Layout: ``lake/<table>/source=<source>/<batch>.parquet``. A batch file is written under a
temporary name and renamed into place, so a reader never sees half a file, and never edited
afterwards. Readers open DuckDB in memory over the files present when they connect; the
newest version of each ``(source, account, id)`` wins by ``updated`` then ``ingested_at``,
and tombstones (``deleted``) hide what they replace.

Events and messages carry the key of their party list (who is on the meeting or the message:
``party_key``), and beside each of their batch files, under
``lake/party_lists/<table>/source=<source>/`` with the same name, lie its distinct party lists,
once each: readers classify lists, not copies, without reading every copy's long lists.
"""

from __future__ import annotations

import functools
import itertools
import json
import operator
import os
import shutil
import tempfile
import uuid
import weakref
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from timeaudit.core.errors import StoreError
from timeaudit.core.model import ATTENDEE_TYPE, SCHEMA_VERSION, TABLES
from timeaudit.lake.party_lists import party_lists_of
from timeaudit.lake.sql import read_sql

DATA_ENV = "TIMEAUDIT_DATA"
MEMORY_ENV = "TIMEAUDIT_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"
SCHEMA_FILE = "schema.json"
_TMP_SUFFIX = ".tmp"
# Readers scan a file's row groups in parallel, so one million-row group would leave a core idle.
ROW_GROUP_ROWS = 100_000
# How DuckDB writes a lake file straight from a query: as write_parquet does.
COPY_OPTIONS = f"FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS}"
PARTY_TABLES = ("events", "messages")
PARTY_KEY = "party_key"
PARTY_LISTS_DIR = "party_lists"


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


def write_parquet(data: pa.Table, path: Path) -> None:
    """How every lake file is written: zstd, in row groups readers can share out."""
    pq.write_table(data, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)


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
    """One data folder: the lake of batch files plus the cursor state."""

    def __init__(self, data_dir: Path | str):
        self.root = Path(data_dir)
        self.lake_dir = self.root / "lake"
        self.state_dir = self.root / "state"

    # -- schema version -------------------------------------------------------------------
    def _schema_path(self) -> Path:
        return self.lake_dir / SCHEMA_FILE

    def check_schema(self) -> None:
        """Stop with a clear message when the lake was written by another schema version."""
        path = self._schema_path()
        if not path.exists():
            return
        try:
            found = json.loads(path.read_text())["schema_version"]
        except (ValueError, KeyError):
            raise StoreError(
                f"{path}: unreadable schema file; rebuild the lake (delete {self.lake_dir} and sync again)"
            ) from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"{self.lake_dir}: written by schema version {found}, this timeaudit reads version "
                f"{SCHEMA_VERSION}; rebuild it: delete {self.lake_dir} and {self.state_dir}, then sync or import again"
            )

    def _ensure_schema(self) -> None:
        self.check_schema()
        if not self._schema_path().exists():
            _atomic_write_bytes(self._schema_path(), json.dumps({"schema_version": SCHEMA_VERSION}).encode())

    # -- writing --------------------------------------------------------------------------
    def partition(self, table: str, source: str) -> Path:
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}")
        if not source or "/" in source or source.startswith("."):
            raise ValueError(f"bad source name {source!r}")
        return self.lake_dir / table / f"source={source}"

    def write_batch(self, table: str, source: str, records: Iterable) -> Path | None:
        """Write model records as one new batch file; None when there were no records."""
        return self.write_arrow(table, source, records_to_arrow(table, records))

    def write_arrow(self, table: str, source: str, data: pa.Table) -> Path | None:
        if data.num_rows == 0:
            return None
        data = with_party_key(table, newest_per_key(data))
        self._ensure_schema()
        folder = self.partition(table, source)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / _batch_name()
        tmp = folder / f".{final.name}{_TMP_SUFFIX}"
        try:
            write_parquet(data, tmp)
            self.write_party_lists(table, tmp, final, data)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final

    def replace_source(self, table: str, source: str, batches: Iterable[pa.Table]) -> int:
        """Swap a source's whole partition for new batches (used by the demo generator).

        The batches become one file, built beside the old partition and swapped in with
        renames, so a failure part-way leaves the old data in place. A record given twice
        keeps its newest version, as in every batch file (see ``connect``).
        """
        self._ensure_schema()
        final = self.partition(table, source)
        staging = final.with_name(f".staging-{source}-{uuid.uuid4().hex[:8]}")
        path = staging / _batch_name()
        rows = 0
        try:
            writer = None
            for batch in batches:
                if batch.num_rows:
                    batch = with_party_key(table, batch)
                    if writer is None:
                        staging.mkdir(parents=True)
                        writer = pq.ParquetWriter(path, batch.schema, compression="zstd")
                    writer.write_table(batch, row_group_size=ROW_GROUP_ROWS)
                    rows += batch.num_rows
            if writer is not None:
                writer.close()
                rows = _keep_newest_in_file(path, rows)
                self.write_party_lists(table, path, final / path.name)
            old = final.with_name(f".old-{source}-{uuid.uuid4().hex[:8]}")
            if final.exists():
                os.replace(final, old)
            if staging.exists():
                os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
            self.remove_stray_party_lists(table)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return rows

    # -- party lists ----------------------------------------------------------------------
    def party_lists_path(self, table: str, batch: Path) -> Path:
        """Where the party lists of the batch file ``batch`` (its final name) are kept."""
        return self.lake_dir / PARTY_LISTS_DIR / table / batch.parent.name / batch.name

    def write_party_lists(self, table: str, written: Path, batch: Path, data: pa.Table | None = None) -> None:
        """Keep the distinct party lists of ``written`` (a batch file, possibly still under its
        temporary name) for the batch file ``batch``; made from ``data``, the batch still in
        memory, when given (``party_lists_of``), else read from the file (party_lists_<table>.sql).
        Called before the batch is renamed into place, so a batch never lacks them; lists whose
        batch never landed are stray, harmless, and removed by ``remove_stray_party_lists``."""
        if table not in PARTY_TABLES:
            return
        final = self.party_lists_path(table, batch)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}{_TMP_SUFFIX}")
        try:
            if data is not None:
                write_parquet(party_lists_of(table, data), tmp)
            else:
                query = read_sql(f"party_lists_{table}.sql").format(raw=_read_parquet([written], hive=False))
                with writer_duckdb() as con:
                    con.execute(f"COPY ({query}) TO {sql_string(tmp)} ({COPY_OPTIONS})")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def remove_party_lists(self, table: str, batch: Path) -> None:
        self.party_lists_path(table, batch).unlink(missing_ok=True)

    def remove_stray_party_lists(self, table: str) -> None:
        """Remove the party lists whose batch file is gone (compacted, forgotten, replaced)."""
        batches = {self.party_lists_path(table, p) for p in self.files(table)}
        for path in (self.lake_dir / PARTY_LISTS_DIR / table).glob("source=*/*.parquet"):
            if path not in batches:
                path.unlink(missing_ok=True)

    # -- reading --------------------------------------------------------------------------
    def files(self, table: str) -> list[Path]:
        folder = self.lake_dir / table
        if not folder.exists():
            return []
        return sorted(p for p in folder.glob("source=*/*.parquet") if not p.name.startswith("."))

    def sources(self, table: str) -> list[str]:
        return sorted({p.parent.name.removeprefix("source=") for p in self.files(table)})

    def version(self) -> tuple:
        """Changes whenever a batch lands or is compacted: a cache key for readers."""
        return tuple((str(p), p.stat().st_mtime_ns) for t in TABLES for p in self.files(t))

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB (see ``capped_duckdb``) with a view per table holding the latest
        live records."""
        self.check_schema()
        con = capped_duckdb()
        for table in TABLES:
            self._register_latest(con, table)
        return con

    def _register_latest(self, con: duckdb.DuckDBPyConnection, table: str) -> None:
        """The view ``table``: each source held in one file is read as it is (settled.sql),
        the newest version is found only among sources with several files (latest.sql).
        Ranking versions costs seconds per million records; compaction makes it unnecessary."""
        by_source: dict[Path, list[Path]] = {}
        for path in self.files(table):
            by_source.setdefault(path.parent, []).append(path)
        single = [files[0] for files in by_source.values() if len(files) == 1]
        several = [path for files in by_source.values() if len(files) > 1 for path in files]
        parts = [
            read_sql(name).format(raw=_keyed(table, files))
            for name, files in (("settled.sql", single), ("latest.sql", several))
            if files
        ]
        if not parts:
            con.register(f"_empty_{table}", _empty_table(table))
            parts = [f"SELECT * FROM _empty_{table}"]
        con.execute(f"CREATE OR REPLACE VIEW {table} AS\n" + "\nUNION ALL BY NAME\n".join(parts))
        if table in PARTY_TABLES:
            self._register_party_lists(con, table, single + several)

    def _register_party_lists(self, con: duckdb.DuckDBPyConnection, table: str, files: list[Path]) -> None:
        """The view ``<event|message>_party_lists``, one row per list: the lists kept beside the
        batch files, and for a batch without them (written before they were kept, or rewritten
        by ``forget``) its lists found in the batch itself."""
        kept = [self.party_lists_path(table, p) for p in files]
        stored = [lists for lists in kept if lists.exists()]
        missing = [p for p, lists in zip(files, kept, strict=True) if not lists.exists()]
        parts = [f"SELECT * FROM {_read_parquet(stored, hive=False)}"] if stored else []
        if missing or not parts:
            raw = _keyed(table, missing) if missing else table
            parts.append(read_sql(f"party_lists_{table}.sql").format(raw=raw))
        lists = "\nUNION ALL BY NAME\n".join(parts)
        if len(stored) + bool(missing) > 1:
            lists = read_sql("party_lists_once.sql").format(lists=lists)
        con.execute(f"CREATE OR REPLACE VIEW {party_lists_view(table)} AS\n" + lists)

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
        """Call only after the batch the cursor describes has landed."""
        _atomic_write_bytes(self._cursor_path(source, account), json.dumps(cursor, indent=1).encode())

    def clear_cursor(self, source: str, account: str) -> None:
        self._cursor_path(source, account).unlink(missing_ok=True)

    # -- maintenance ----------------------------------------------------------------------
    def compact(self, table: str) -> tuple[int, int]:
        """Merge each source's batches into one file holding only the latest versions, and
        bring a file written by an older version up to date (``_up_to_date``).

        Tombstones whose older versions are all merged are dropped. Returns (files before,
        files after). The merged file lands before the old ones are removed; a reader that
        listed an old file just before it went retries (see ``connect``).
        """
        before = after = 0
        for source in self.sources(table):
            folder = self.partition(table, source)
            old = sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))
            before += len(old)
            if not old or (len(old) == 1 and self._up_to_date(table, old[0])):
                after += len(old)
                continue
            written = self._merge_into_one_file(table, old, folder)
            for p in old:
                p.unlink(missing_ok=True)
            after += 1 if written else 0
        self.remove_stray_party_lists(table)
        return before, after

    def outdated(self, table: str) -> int:
        """How many of the table's batch files an older version wrote (compaction rewrites them)."""
        return sum(not self._up_to_date(table, p) for p in self.files(table))

    def _up_to_date(self, table: str, batch: Path) -> bool:
        """Whether a batch file has what this version stores: for events and messages, the
        party keys and the party lists beside it. Compaction rewrites a file that lacks them."""
        if table not in PARTY_TABLES:
            return True
        return _has_party_key(batch) and self.party_lists_path(table, batch).exists()

    def _merge_into_one_file(self, table: str, files: list[Path], folder: Path) -> Path | None:
        """The newest live version of every record in ``files``, written by DuckDB straight to
        one new batch file (streamed, within the memory cap); None when nothing is live."""
        names = TABLES[table][1].names + ([PARTY_KEY] if table in PARTY_TABLES else [])
        columns = ", ".join(f'"{name}"' for name in names)
        raw = _keyed(table, files, hive=False)
        query = f"SELECT {columns} FROM ({read_sql('compact.sql').format(raw=raw)})"
        final = folder / _batch_name()
        tmp = folder / f".{final.name}{_TMP_SUFFIX}"
        try:
            with writer_duckdb() as con:
                (rows,) = con.execute(f"COPY ({query}) TO {sql_string(tmp)} ({COPY_OPTIONS})").fetchone()
            if not rows:
                return None
            self.write_party_lists(table, tmp, final)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return final


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
    """A connection for the work of writing batches (party keys and lists, a batch's repeated
    records, compaction), to one capped DuckDB kept for the process: starting a DuckDB takes
    about 0.1 s, more than all the work of writing a small batch. Close it after use."""
    return _writers_duckdb().cursor()


def _batch_name() -> str:
    # Names sort by time, so compaction and people reading the folder see the order.
    return f"batch-{utc_now():%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"


def holdings(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """(table, source, records, accounts, first, last, landed) for each source of each table."""
    return con.execute(read_sql("holdings.sql")).fetchall()


def sql_string(path: Path | str) -> str:
    """A path as a quoted SQL string literal, for the file functions DuckDB takes no parameter in."""
    return "'" + str(path).replace("'", "''") + "'"


def _read_parquet(paths: list[Path], hive: bool = True) -> str:
    listing = "[" + ", ".join(sql_string(p) for p in paths) + "]"
    return f"read_parquet({listing}, hive_partitioning = {str(hive).lower()}, union_by_name = true)"


def _keyed(table: str, paths: list[Path], hive: bool = True) -> str:
    """``paths`` read as one relation; for events and messages with ``party_key`` in every row,
    computed for the files written before the lake stored it (party_keys_<table>.sql)."""
    if table not in PARTY_TABLES:
        return _read_parquet(paths, hive)
    stored = [p for p in paths if _has_party_key(p)]
    missing = [p for p in paths if p not in stored]
    parts = [f"SELECT * FROM {_read_parquet(stored, hive)}"] if stored else []
    if missing:
        parts.append(read_sql(f"party_keys_{table}.sql").format(raw=_read_parquet(missing, hive)))
    return "(" + " UNION ALL BY NAME ".join(parts) + ")"


def _has_party_key(path: Path) -> bool:
    return _file_has_party_key(str(path), path.stat().st_mtime_ns)


@functools.lru_cache(maxsize=4096)  # batch files never change; a rewritten one has a new mtime
def _file_has_party_key(path: str, _mtime_ns: int) -> bool:
    return PARTY_KEY in pq.read_schema(path).names


def party_lists_view(table: str) -> str:
    """The view a reader gets the party lists of ``table`` from: event_party_lists, message_party_lists."""
    return f"{table.removesuffix('s')}_party_lists"


def with_party_key(table: str, data: pa.Table) -> pa.Table:
    """``data`` with the key of each record's party list (party_keys_<table>.sql), computed by
    DuckDB as readers compute it for files that lack it."""
    if table not in PARTY_TABLES:
        return data
    if PARTY_KEY in data.column_names:
        data = data.drop_columns([PARTY_KEY])
    query = read_sql(f"party_keys_{table}.sql").format(raw="batch")
    with writer_duckdb() as con:
        con.register("batch", data)
        key = con.sql(f"SELECT {PARTY_KEY} FROM ({query})").to_arrow_table().column(PARTY_KEY)
    return data.append_column(PARTY_KEY, key)


def newest_per_key(data: pa.Table) -> pa.Table:
    """``data`` with each (account, id) once, its newest version. Batches from connectors
    rarely repeat a record; when one does, this keeps the promise every reader relies on: a
    batch file holds each record at most once."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:  # the common case, told cheaply
        return data
    keys = data.select(["account", "id"]).group_by(["account", "id"]).aggregate([])
    if keys.num_rows == data.num_rows:
        return data
    with writer_duckdb() as con:
        con.register("batch", data.append_column("position", pa.array(range(data.num_rows), pa.int64())))
        return con.sql(read_sql("newest_per_key.sql").format(raw="batch")).to_arrow_table().cast(data.schema)


def _keep_newest_in_file(path: Path, rows: int) -> int:
    """Rewrite ``path`` with each record once when it repeats one; returns the rows kept."""
    numbered = f"read_parquet({sql_string(path)}, file_row_number = true)"
    raw = f"(SELECT * RENAME (file_row_number AS position) FROM {numbered})"
    with writer_duckdb() as con:
        if con.execute(f"SELECT count(DISTINCT (account, id)) FROM {raw}").fetchall()[0][0] == rows:
            return rows
        data = con.sql(read_sql("newest_per_key.sql").format(raw=raw)).to_arrow_table()
    write_parquet(data, path)
    return data.num_rows


def _empty_table(table: str) -> pa.Table:
    schema = TABLES[table][1].append(pa.field("source", pa.string()))
    if table in PARTY_TABLES:
        schema = schema.append(pa.field(PARTY_KEY, pa.uint64()))
    return schema.empty_table()
