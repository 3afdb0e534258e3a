"""Exports brought in by hand: .ics calendars and mail files, landed as one atomic batch.

An import reads every given file through its connector (``connectors.ics``,
``connectors.mail``), then compares what it read with what the lake holds for that account
and source:

- a record the lake lacks is *imported*; one whose content differs is *updated* (a newer
  version wins, however the export stamped it); an identical one is left alone, so
  importing the same file twice changes nothing;
- a record the lake holds for the same calendar feed or mailbox that the new export no
  longer has is *removed* (a tombstone). For calendars only records inside the expansion
  window count, so a window that moved on does not delete the past.

Everything an import changes lands in a single batch file, written whole and renamed into
place: a killed import leaves the lake as it was, never half-imported. Items a connector
cannot read are reported with their reason and the rest still import; when no file could
be read at all the import stops with an ``ImportError`` naming each file.
"""

from __future__ import annotations

import functools
import gc
import operator
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from timeaudit.config import Settings
from timeaudit.errors import UserError
from timeaudit.model import TABLES, record_columns
from timeaudit.store import Lake, columns_to_arrow, utc_now

Progress = Callable[[str, int, int | None], None]  # (file shown, amount done, total or None)


class NothingImported(UserError):
    """No file of the import could be read."""


@dataclass
class ImportReport:
    source: str
    account: str
    files: int = 0
    read: int = 0  # records the files gave
    imported: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    without_uid: int = 0  # calendar events that had no UID: their ids are made from their content
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    failed_files: list[str] = field(default_factory=list)  # whole files that could not be read

    def line(self) -> str:
        noun = {"ics": "calendar", "mail": "mail"}.get(self.source, self.source)
        return (
            f"{noun} import for {self.account}: {self.imported:,} imported, {self.updated:,} updated, "
            f"{self.removed:,} removed, {self.unchanged:,} unchanged, {len(self.skipped):,} skipped"
            + (f", {len(self.failed_files)} file(s) unreadable" if self.failed_files else "")
            + (f"; {self.without_uid:,} event(s) had no UID (ids made from their content)" if self.without_uid else "")
        )


@dataclass(frozen=True)
class Scope:
    """Which of the lake's records an import speaks for: those it may update or remove."""

    prefixes: frozenset[str]  # feed or mailbox slugs: ids start with "<slug>/"
    start: datetime | None = None  # calendars: only records overlapping [start, end)
    end: datetime | None = None

    def covers(self, row: dict) -> bool:
        if row["id"].split("/", 1)[0] not in self.prefixes:
            return False
        if self.start is None or "start" not in row:
            return True
        return row["end"] > self.start and row["start"] < self.end


def import_window(settings: Settings, since: date | None, until: date | None) -> tuple[datetime, datetime]:
    today = utc_now().date()
    start = since or today - timedelta(weeks=settings.imports.weeks_back)
    end = until or today + timedelta(weeks=settings.imports.weeks_ahead)
    if end <= start:
        raise UserError("--since must be before --until; give the first day and the day after the window")
    return datetime.combine(start, time(0), tzinfo=UTC), datetime.combine(end, time(0), tzinfo=UTC)


def _without_cycle_collection(function):
    """Runs ``function`` with Python's cycle collector paused. An import holds hundreds of
    thousands of records, none in a cycle, and the collector went over all of them again and
    again as they were made: a fifth of an import's time."""

    @functools.wraps(function)
    def paused(*args, **kwargs):
        if not gc.isenabled():
            return function(*args, **kwargs)
        gc.disable()
        try:
            return function(*args, **kwargs)
        finally:
            gc.enable()

    return paused


@_without_cycle_collection
def import_ics(
    lake: Lake,
    settings: Settings,
    paths: Iterable[Path],
    account: str,
    *,
    since: date | None = None,
    until: date | None = None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import calendar exports (.ics files, or .zip files of them) into ``account``'s calendar."""
    from connectors import ics

    account = _account(account)
    start, end = import_window(settings, since, until)
    report = ImportReport(ics.SOURCE, account)

    limits = ics.ZipLimits(settings.imports.max_zip_mb * 2**20, settings.imports.max_zip_ratio)

    def read(path: Path, skip) -> Iterator:
        total = ics.calendar_file_count(path)
        for done, (name, data) in enumerate(ics.calendar_files(path, limits), 1):
            yield from ics.iter_ics_records(name, data, account, settings, start, end, skip)
            del data  # one calendar's bytes in memory at a time
            if progress:
                progress(path.name, done, total)

    records = _read_all("events", paths, read, ics.ImportFileError, report)
    report.without_uid = pc.sum(pc.equal(records["ical_uid"], "")).as_py() or 0
    scope = Scope(_id_prefixes(records), start, end)
    return _land(lake, "events", report, records, scope)


@_without_cycle_collection
def import_mail(
    lake: Lake,
    settings: Settings,
    paths: Iterable[Path],
    account: str,
    *,
    aliases: Iterable[str] = (),
    progress: Progress | None = None,
) -> ImportReport:
    """Import mbox files, Maildirs or .eml folders (headers only) into ``account``'s mailbox."""
    from connectors import mail

    account = _account(account)
    aliases = [_account(a) for a in aliases]
    report = ImportReport(mail.SOURCE, account)

    def read(path: Path, skip) -> Iterator:
        total = path.stat().st_size if path.is_file() else None

        def advanced(done: int) -> None:  # the connector reports running totals
            if progress:
                progress(path.name, done, total)

        return mail.read_mail(path, account, settings, aliases, skip, advanced)

    records = _read_all("messages", paths, read, mail.ImportFileError, report)
    scope = Scope(_id_prefixes(records))
    return _land(lake, "messages", report, records, scope)


def _id_prefixes(records: pa.Table) -> frozenset[str]:
    """The feeds or mailboxes the records' ids start with ("<slug>/..."), as ``Scope`` reads them."""
    return frozenset(pc.unique(pc.list_element(pc.split_pattern(records["id"], "/", max_splits=1), 0)).to_pylist())


def _account(value: str) -> str:
    address = value.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise UserError(f"--account {value!r}: not an email address; give whose calendar or mailbox this is")
    return address


def _read_all(table: str, paths: Iterable[Path], read, file_error: type[Exception], report: ImportReport) -> pa.Table:
    """Every record of every file as one Arrow table, a later file winning over an earlier one with
    the same id; unreadable files are noted. ``read`` gives records one at a time (the model's
    fields by name) or many at once as Arrow tables of the lake's columns (``ingested_at`` aside),
    which a reader that works column by column makes without a Python object per record."""
    now = utc_now()
    parts: list[pa.Table] = []
    pending: list[dict] = []
    problems: list[str] = []

    def skip(item: str, reason: str) -> None:
        report.skipped.append((item, reason))

    def take_pending() -> None:
        if pending:
            parts.append(_to_arrow(table, pending, now))
            pending.clear()

    for path in paths:
        path = Path(path)
        report.files += 1
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        try:
            for item in read(path, skip):
                if isinstance(item, pa.Table):
                    take_pending()
                    parts.append(_with_ingested_at(table, item, now))
                    report.read += item.num_rows
                else:
                    pending.append(item)
                    report.read += 1
        except file_error as e:
            problems.append(str(e))
    take_pending()
    report.failed_files = problems
    records = _last_of_each_id(pa.concat_tables(parts) if parts else _to_arrow(table, [], now))
    if problems and not records.num_rows:
        raise NothingImported("; ".join(problems))
    return records


def _with_ingested_at(table: str, data: pa.Table, ingested_at: datetime) -> pa.Table:
    schema = TABLES[table][1]
    stamp = pa.repeat(pa.scalar(ingested_at, schema.field("ingested_at").type), data.num_rows)
    return pa.Table.from_arrays([data[n] if n != "ingested_at" else stamp for n in schema.names], schema=schema)


def _last_of_each_id(data: pa.Table) -> pa.Table:
    """One row per id: the last one read, where the id was first read (as a dict by id keeps them)."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:
        return data
    positions = pa.table({"id": data["id"], "at": pa.array(range(data.num_rows), pa.int64())})
    each = positions.group_by("id", use_threads=False).aggregate([("at", "min"), ("at", "max")])
    return data.take(each.sort_by("at_min")["at_max"])


def _land(lake: Lake, table: str, report: ImportReport, new: pa.Table, scope: Scope) -> ImportReport:
    """Compare with the lake (column by column, in DuckDB) and write what changed as one batch."""
    lake.check_schema()
    now = utc_now()
    if not _may_hold(lake, table, report.source, report.account):  # a first import: nothing to compare
        report.imported += new.num_rows
        lake.write_arrow(table, report.source, new)  # writes nothing for an empty table
        return report
    con = lake.connect()
    try:
        live = _live_rows(con, table, report.source, report.account)
        before, same = _compare(con, new, live)
    finally:
        con.close()
    unchanged, imported = pc.sum(same).as_py() or 0, before.null_count
    report.imported += imported
    report.unchanged += unchanged
    report.updated += new.num_rows - imported - unchanged
    # The import is the newest word on a record, whatever the export's own stamp says.
    later = pc.add(before, ONE_MICROSECOND)  # null where the lake lacks the record
    updated = pc.if_else(pc.fill_null(pc.greater(later, new["updated"]), False), later, new["updated"])
    new = new.set_column(new.schema.get_field_index("updated"), "updated", updated)
    tombstones = _tombstones(table, live.filter(pc.invert(pc.is_in(live["id"], value_set=new["id"]))), scope, now)
    report.removed += tombstones.num_rows
    lake.write_arrow(table, report.source, pa.concat_tables([new.filter(pc.invert(same)), tombstones]))
    return report


def _to_arrow(table: str, records: list[dict], ingested_at: datetime) -> pa.Table:
    """Records as the connectors give them -> the table's Arrow schema, one column at a time
    (a model object per record, and one per attendee, cost as much as reading the files)."""
    names = [name for name in record_columns(TABLES[table][0]) if name in TABLES[table][1].names]
    rows = map(operator.itemgetter(*names), records)  # one tuple per record, made in C
    given = dict(zip(names, zip(*rows, strict=True), strict=True)) if records else dict.fromkeys(names, ())
    return columns_to_arrow(table, given, len(records), ingested_at)


def _tombstones(table: str, gone: pa.Table, scope: Scope, now: datetime) -> pa.Table:
    """Tombstones for the lake's records the export no longer has, where the import speaks for them."""
    rows = [
        dict(row, deleted=True, updated=max(now, row["updated"] + ONE_MICROSECOND), ingested_at=now)
        for row in gone.to_pylist()
        if scope.covers(row)
    ]
    return pa.Table.from_pylist(rows, schema=TABLES[table][1])


ONE_MICROSECOND = timedelta(microseconds=1)


def _live_rows(con, table: str, source: str, account: str) -> pa.Table:
    columns = ", ".join(f'"{name}"' for name in TABLES[table][1].names)
    query = f"SELECT {columns} FROM {table} WHERE source = $source AND account = $account"
    return con.sql(query, params={"source": source, "account": account}).to_arrow_table()


def _compare(con, new: pa.Table, live: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """For each row of ``new``, in order: the ``updated`` of the lake's version (null when the lake
    lacks the record) and whether its content (everything but ``updated``, ``ingested_at``) is the same."""
    con.register("new_rows", new.append_column("position", pa.array(range(new.num_rows), pa.int64())))
    con.register("live_rows", live)
    content = [name for name in new.schema.names if name not in ("updated", "ingested_at")]
    same = " AND ".join(f'n."{name}" IS NOT DISTINCT FROM l."{name}"' for name in content)
    result = con.sql(
        f"SELECT l.updated AS before, l.id IS NOT NULL AND {same} AS same "
        "FROM new_rows AS n LEFT JOIN live_rows AS l ON n.id = l.id ORDER BY n.position"
    ).to_arrow_table()
    return result["before"], result["same"]


def _may_hold(lake: Lake, table: str, source: str, account: str) -> bool:
    """Whether any batch file of ``source`` can hold records of ``account``, by the min/max
    statistics of its account column. A first import of an account then opens no DuckDB, which
    costs about 0.1 s, as much as reading a few thousand messages."""
    folder = lake.partition(table, source)
    for path in lake.files(table):
        if path.parent == folder:
            ranges = _account_ranges(str(path), path.stat().st_mtime_ns)
            if any(low is None or low <= account <= high for low, high in ranges):
                return True
    return False


@functools.lru_cache(maxsize=4096)  # batch files never change; a new one has a new name
def _account_ranges(path: str, _mtime_ns: int) -> tuple[tuple[str | None, str | None], ...]:
    """(min, max) of the account column in each row group of a batch file; (None, None) unknown."""
    metadata = pq.read_metadata(path)
    column = next(i for i in range(metadata.num_columns) if metadata.schema.column(i).path == "account")
    ranges = []
    for group in range(metadata.num_row_groups):
        stats = metadata.row_group(group).column(column).statistics
        ranges.append((stats.min, stats.max) if stats is not None and stats.has_min_max else (None, None))
    return tuple(ranges)
