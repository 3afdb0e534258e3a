"""Exports brought in by hand: .ics calendars and mail files, landed as one atomic batch.

An import reads every given file through its connector (``connectors.ics.reader``,
``connectors.mail.reader``), then compares what it read with what the lake holds for that account
and source:

- a record the lake lacks is *imported*; one whose content differs is *updated* (a newer
  version wins, however the export stamped it); an identical one is left alone, so
  importing the same file twice changes nothing;
- a record the lake holds for the same calendar feed or mailbox that the new export no
  longer has is *removed* (a tombstone). For calendars only records inside the expansion
  window count, so a window that moved on does not delete the past.

Mail is one record per message and account, whatever mailboxes hold it (as Gmail's All Mail
holds it): its id is its Message-ID, its labels are those of every copy, each mailbox holding
it among them as ``mailbox:<digest>``. A message one mailbox no longer holds is removed only
when no other mailbox holds it; threads are joined over all of the account's messages
(``connectors.mail.threads``). Records an older version imported with the mailbox's name in
their ids ("inbox/<id>") are replaced when their mailbox is imported again.

Everything an import changes lands in a single batch file, written whole and renamed into
place: a killed import leaves the lake as it was, never half-imported. Items a connector
cannot read are reported with their reason and the rest still import; when no file could
be read at all the import stops with an ``ImportError`` naming each file.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import TABLES, record_columns
from timeaudit.lake.store import Lake, columns_to_arrow, utc_now

Progress = Callable[[str, int, int | None], None]  # (file shown, amount done, total or None)


class NothingImported(UserError):
    """No file of the import could be read."""


@dataclass
class ImportReport:
    source: str
    account: str
    files: int = 0
    folders: int = 0  # mailboxes read (mail)
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
        read = f"{self.folders:,} folder(s), {self.read:,} message(s) read; " if self.source == "mail" else ""
        return (
            f"{noun} import for {self.account}: {read}{self.imported:,} imported, {self.updated:,} updated, "
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


@dataclass(frozen=True)
class MailScope:
    """Which of the lake's messages a mail import speaks for: those that only the mailboxes it
    read hold, and those an older version imported from the same paths ("<slug>/<id>")."""

    mailboxes: frozenset[str]  # the mailboxes' labels (``connectors.mail.folders.Folder.key``)
    slugs: frozenset[str]  # ``connectors.mail.reader.mailbox_of`` of each path read

    def covers(self, row: dict) -> bool:
        held = _mailboxes(row["labels"])
        if held:
            return held <= self.mailboxes
        return row["id"].split("/", 1)[0] in self.slugs


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
    base: Path | None = None,
) -> ImportReport:
    """Import calendar exports (.ics files, or .zip files of them) into ``account``'s calendar.
    A calendar is known by its own id or name (X-WR-RELCALID, X-WR-CALNAME), so a newer export
    under another file name replaces it; a calendar without either by its full path (below
    ``base`` when given: files uploaded to a temporary folder). Ids hold either as a digest."""
    from connectors.ics import reader as ics

    account = _account(account)
    start, end = import_window(settings, since, until)
    report = ImportReport(ics.SOURCE, account)
    slugs: set[str] = set()  # the feeds as ids of older versions began ("<slug>/<UID>")

    limits = ics.ZipLimits(settings.imports.max_zip_mb * 2**20, settings.imports.max_zip_ratio)

    def read(path: Path, skip) -> Iterator:
        total = ics.calendar_file_count(path)
        folder = _place(path, base).rpartition("/")[0] if path.is_file() else _place(path, base)
        for done, (name, data) in enumerate(ics.calendar_files(path, limits), 1):
            place = "" if _CALENDAR_NAME.search(data) else f"{folder}/{name}"
            for item in ics.iter_ics_records(name, data, account, settings, start, end, skip):
                yield _with_calendar_keys(item, place, slugs)
            del data  # one calendar's bytes in memory at a time
            if progress:
                progress(path.name, done, total)

    records = _read_all("events", paths, read, ics.ImportFileError, report)
    report.without_uid = pc.sum(pc.equal(records["ical_uid"], "")).as_py() or 0
    scope = Scope(_id_prefixes(records) | slugs, start, end)
    return _land(lake, "events", report, records, scope)


_CALENDAR_NAME = re.compile(rb"^X-WR-(?:RELCALID|CALNAME)(?:;[^:\r\n]*)?:[ \t]*\S", re.M | re.I)


def _place(path: Path, base: Path | None) -> str:
    """A file's or folder's full path, or its path below ``base``."""
    path = path.resolve()
    return path.relative_to(base.resolve()).as_posix() if base else path.as_posix()


@functools.lru_cache(maxsize=4096)
def _calendar_key(place: str, feed: str) -> str:
    """A calendar's identity in its events' ids: a digest of the feed the connector names it by
    (X-WR-RELCALID, else X-WR-CALNAME, else the file name) and, for a calendar without an id or
    name, of where it was read (the file, and the member of a zip); no name reaches the ids."""
    return "calendar:" + hashlib.sha256(f"ics\0{place}\0{feed}".encode("utf-8", "surrogateescape")).hexdigest()[:20]


def _with_calendar_keys(item: dict | pa.Table, place: str, slugs: set[str]) -> dict | pa.Table:
    """Records of ``connectors.ics.reader`` with the feed that begins their id and series id ("<feed>/...")
    made ``_calendar_key``; each feed is noted in ``slugs``."""
    if isinstance(item, dict):
        feed, rest = item["id"].split("/", 1)
        slugs.add(feed)
        key = _calendar_key(place, feed)
        series = item["series_id"]
        return dict(item, id=f"{key}/{rest}", series_id=f"{key}/{series.split('/', 1)[1]}" if series else "")
    parts = pc.split_pattern(item["id"], "/", max_splits=1)
    feeds = pc.list_element(parts, 0)
    distinct = pc.unique(feeds).to_pylist()
    slugs.update(distinct)
    keys = pa.array([_calendar_key(place, feed) for feed in distinct], pa.string()).take(
        pc.index_in(feeds, value_set=pa.array(distinct, pa.string()))
    )
    ids = pc.binary_join_element_wise(keys, pc.list_element(parts, 1), "/")
    series = item["series_id"]
    series_rest = pc.list_element(pc.split_pattern(pc.if_else(pc.equal(series, ""), "/", series), "/", max_splits=1), 1)
    series = pc.if_else(pc.equal(series, ""), "", pc.binary_join_element_wise(keys, series_rest, "/"))
    item = item.set_column(item.schema.get_field_index("id"), "id", ids)
    return item.set_column(item.schema.get_field_index("series_id"), "series_id", series)


@_without_cycle_collection
def import_mail(
    lake: Lake,
    settings: Settings,
    paths: Iterable[Path],
    account: str,
    *,
    aliases: Iterable[str] = (),
    progress: Progress | None = None,
    base: Path | None = None,
) -> ImportReport:
    """Import mbox files, Maildirs, folders of message files and trees of them (headers only)
    into ``account``'s mail. A mailbox is known by its full path, or by its path below ``base``
    (files uploaded to a temporary folder)."""
    from connectors.mail import reader as mail

    account = _account(account)
    aliases = [_account(a) for a in aliases]
    report = ImportReport(mail.SOURCE, account)
    mailboxes: set[str] = set()
    slugs: set[str] = set()
    gmail_threads: list[pa.Table] = []  # (id, gmail_thread) of the messages read with one

    def read(path: Path, skip) -> Iterator:
        total = path.stat().st_size if path.is_file() else None

        def advanced(done: int) -> None:  # the connector reports running totals
            if progress:
                progress(path.name, done, total)

        folders = mail.mail_folders(path, base)
        for item in mail.read_mail(path, account, settings, aliases, skip, advanced, folders=folders):
            gmail_threads.append(_gmail_threads(item))
            yield item
        report.folders += len(folders)
        mailboxes.update(folder.key for folder in folders)
        slugs.add(mail.mailbox_of(path))

    records = _read_all("messages", paths, read, mail.ImportFileError, report, _one_per_message)
    scope = MailScope(frozenset(mailboxes), frozenset(slugs))
    threads = pa.concat_tables(gmail_threads) if gmail_threads else None
    combine = functools.partial(_with_every_copy, scope=scope, gmail_threads=threads)
    return _land(lake, "messages", report, records, scope, combine)


def _id_prefixes(records: pa.Table) -> frozenset[str]:
    """The feeds or mailboxes the records' ids start with ("<slug>/..."), as ``Scope`` reads them."""
    return frozenset(pc.unique(pc.list_element(pc.split_pattern(records["id"], "/", max_splits=1), 0)).to_pylist())


def _account(value: str) -> str:
    address = value.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise UserError(f"--account {value!r}: not an email address; give whose calendar or mailbox this is")
    return address


def _read_all(
    table: str,
    paths: Iterable[Path],
    read,
    file_error: type[Exception],
    report: ImportReport,
    one_per_id: Callable[[pa.Table], pa.Table] | None = None,
) -> pa.Table:
    """Every record of every file as one Arrow table, one per id (``one_per_id``; by default a
    later file winning over an earlier one with the same id); unreadable files are noted.
    ``read`` gives records one at a time (the model's fields by name) or many at once as Arrow
    tables of the lake's columns (``ingested_at`` aside), which a reader that works column by
    column makes without a Python object per record."""
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
    records = (one_per_id or _last_of_each_id)(pa.concat_tables(parts) if parts else _to_arrow(table, [], now))
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


Combine = Callable[[pa.Table, pa.Table], pa.Table]  # (records read, the lake's live ones) -> what to land


def _land(
    lake: Lake,
    table: str,
    report: ImportReport,
    new: pa.Table,
    scope: Scope | MailScope,
    combine: Combine | None = None,
) -> ImportReport:
    """Compare with the lake (column by column, in DuckDB) and write what changed as one batch.
    ``combine`` makes of the records read and the lake's what is to land (mail: every copy of a
    message as one, threads over all of them)."""
    lake.check_schema()
    now = utc_now()
    if not _may_hold(lake, table, report.source, report.account):  # a first import: nothing to compare
        new = combine(new, TABLES[table][1].empty_table()) if combine else new
        report.imported += new.num_rows
        lake.write_arrow(table, report.source, new)  # writes nothing for an empty table
        return report
    con = lake.connect()
    try:
        live = _live_rows(con, table, report.source, report.account)
        new = combine(new, live) if combine else new
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


# -- mail: one record per message and account, whatever mailboxes hold it ----------------------
def _mailboxes(labels: list[str] | None) -> set[str]:
    from connectors.mail.reader import MAILBOX_LABEL

    return {label for label in labels or () if label.startswith(MAILBOX_LABEL)}


def _one_per_message(data: pa.Table) -> pa.Table:
    """One row per id: the copies of a message read from several mailboxes become one with the
    labels of all (``_merged_copies``), where the first copy was read."""
    if pc.count_distinct(data["id"]).as_py() == data.num_rows:
        return data
    counts = data.group_by("id", use_threads=False).aggregate([("id", "count")])
    copied = pc.is_in(data["id"], value_set=counts.filter(pc.greater(counts["id_count"], 1))["id"])
    positions = pa.array(range(data.num_rows), pa.int64())
    merged: dict[str, tuple[int, dict]] = {}
    for at, row in zip(positions.filter(copied).to_pylist(), data.filter(copied).to_pylist(), strict=True):
        first = merged.get(row["id"])
        merged[row["id"]] = (at, row) if first is None else (first[0], _merged_copies(first[1], row))
    rows = [row for _, row in merged.values()]
    at = pa.array([at for at, _ in merged.values()], pa.int64())
    joined = pa.concat_tables(
        [
            data.filter(pc.invert(copied)).append_column("at", positions.filter(pc.invert(copied))),
            pa.Table.from_pylist(rows, schema=data.schema).append_column("at", at),
        ]
    )
    return joined.sort_by("at").drop_columns(["at"])


def _merged_copies(earlier: dict, later: dict) -> dict:
    """Two copies of one message as one: the later one's fields, the labels of both (in sorted
    order, so that any order of reading gives the same record), sent when either copy is, unread
    only when both are."""
    unread = bool(earlier["unread"]) and bool(later["unread"])
    labels = sorted(set(earlier["labels"] or ()) | set(later["labels"] or ()))
    row = dict(later, labels=[label for label in labels if unread or label != "UNREAD"], unread=unread)
    if "sent" in (earlier["direction"], later["direction"]):
        row.update(direction="sent", self_in="from")
    return row


def _gmail_threads(item: dict | pa.Table) -> pa.Table:
    """(node, gmail_thread) of the messages read that have Gmail's thread id (X-GM-THRID), their
    node as ``connectors.mail.threads.own_node`` names it."""
    from connectors.mail.threads import own_node

    if isinstance(item, dict):
        item = pa.Table.from_pylist([item]).select(["id", "message_id", "gmail_thread"])
    item = item.filter(pc.not_equal(item["gmail_thread"], ""))
    return pa.table([own_node(item["id"], item["message_id"]), item["gmail_thread"]], GMAIL_THREADS)


GMAIL_THREADS = pa.schema([("node", pa.string()), ("gmail_thread", pa.string())])


def _with_every_copy(
    new: pa.Table, live: pa.Table, scope: MailScope, gmail_threads: pa.Table | None = None
) -> pa.Table:
    """The messages read, each merged with the lake's copy where mailboxes this import did not
    read hold it too; the lake's messages that the mailboxes read no longer hold but others
    still do, without the mailboxes read; and the lake's messages whose thread the messages
    read change. Messages only the mailboxes read held are left out: they are removed."""
    new = _with_copies_elsewhere(new, live, scope)
    kept = live.filter(pc.invert(pc.is_in(live["id"], value_set=new["id"])))
    held_here, held_elsewhere = _held(kept, scope)
    legacy = pc.is_in(
        pc.list_element(pc.split_pattern(kept["id"], "/", max_splits=1), 0), pa.array(sorted(scope.slugs))
    )
    covered = np.where(held_here | held_elsewhere, held_here & ~held_elsewhere, np.asarray(legacy))
    return _threaded(new, kept.filter(pa.array(~covered)), gmail_threads)


def _held(rows: pa.Table, scope: MailScope) -> tuple[np.ndarray, np.ndarray]:
    """For each row, whether mailboxes the import read hold it, and whether others do."""
    from connectors.mail.reader import MAILBOX_LABEL

    labels = rows["labels"].combine_chunks()
    flat, row = pc.list_flatten(labels), np.asarray(pc.list_parent_indices(labels))
    box = np.asarray(pc.starts_with(pc.fill_null(flat, ""), MAILBOX_LABEL))
    read = np.asarray(pc.is_in(flat, value_set=pa.array(sorted(scope.mailboxes), pa.string())))
    here, elsewhere = np.zeros(rows.num_rows, bool), np.zeros(rows.num_rows, bool)
    here[row[box & read]] = True
    elsewhere[row[box & ~read]] = True
    return here, elsewhere


def _with_copies_elsewhere(new: pa.Table, live: pa.Table, scope: MailScope) -> pa.Table:
    others = live.filter(pa.array(_held(live, scope)[1]))
    if not others.num_rows:
        return new
    at_new = pc.index_in(others["id"], value_set=new["id"])
    reread = pc.is_valid(at_new)
    read_again = dict(zip(pc.drop_null(at_new).to_pylist(), new.take(pc.drop_null(at_new)).to_pylist(), strict=True))
    changed: dict[int, dict] = {}
    added: list[dict] = []
    ingested_at = utc_now()
    for row, at, again in zip(others.to_pylist(), at_new.to_pylist(), reread.to_pylist(), strict=True):
        rest = dict(row, labels=[label for label in row["labels"] if label not in scope.mailboxes])
        if again:
            changed[at] = _merged_copies(rest, read_again[at])
        elif len(rest["labels"]) < len(row["labels"]):  # a mailbox read no longer holds it
            added.append(dict(rest, ingested_at=ingested_at))
    if changed:
        keep = np.ones(new.num_rows, bool)
        keep[list(changed)] = False
        parts = [new.filter(pa.array(keep)).append_column("at", pa.array(np.flatnonzero(keep)))]
        redone = pa.Table.from_pylist(list(changed.values()), schema=new.schema)
        parts.append(redone.append_column("at", pa.array(list(changed), pa.int64())))
        new = pa.concat_tables(parts).sort_by("at").drop_columns(["at"])
    if added:
        new = pa.concat_tables([new, pa.Table.from_pylist(added, schema=new.schema)])
    return new


def _threaded(new: pa.Table, kept: pa.Table, gmail_threads: pa.Table | None) -> pa.Table:
    """``new`` with each message's thread joined over all of the account's messages (and Gmail's
    thread ids of the messages read), and the ``kept`` ones (the lake's, not read again) whose
    thread that changes."""
    from connectors.mail.threads import joined_threads

    both = pa.concat_tables([new, kept.select(new.schema.names)])
    groups = (gmail_threads["node"], gmail_threads["gmail_thread"]) if gmail_threads else None
    threads = joined_threads(
        both["id"], both["message_id"], both["thread_id"], both["in_reply_to"], both["ts"], groups=groups
    )
    column = new.schema.get_field_index("thread_id")
    new = new.set_column(column, "thread_id", threads.slice(0, new.num_rows))
    kept_threads = threads.slice(new.num_rows)
    moved = pc.fill_null(pc.not_equal(kept_threads, kept["thread_id"]), False)
    if not pc.any(moved).as_py():
        return new
    moved_rows = kept.filter(moved).set_column(column, "thread_id", kept_threads.filter(moved))
    ingested = pa.repeat(pa.scalar(utc_now(), new.schema.field("ingested_at").type), moved_rows.num_rows)
    moved_rows = moved_rows.set_column(new.schema.get_field_index("ingested_at"), "ingested_at", ingested)
    return pa.concat_tables([new, moved_rows.select(new.schema.names)])
