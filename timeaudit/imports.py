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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pyarrow as pa

from timeaudit.config import Settings
from timeaudit.errors import UserError
from timeaudit.model import TABLES
from timeaudit.store import Lake, records_to_arrow, utc_now

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
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    failed_files: list[str] = field(default_factory=list)  # whole files that could not be read

    def line(self) -> str:
        noun = {"ics": "calendar", "mail": "mail"}.get(self.source, self.source)
        return (
            f"{noun} import for {self.account}: {self.imported:,} imported, {self.updated:,} updated, "
            f"{self.removed:,} removed, {self.unchanged:,} unchanged, {len(self.skipped):,} skipped"
            + (f", {len(self.failed_files)} file(s) unreadable" if self.failed_files else "")
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

    def read(path: Path, skip) -> Iterator:
        calendars = list(ics.calendar_files(path))
        for done, (name, data) in enumerate(calendars, 1):
            yield from ics.iter_ics_events(name, data, account, settings, start, end, skip)
            if progress:
                progress(path.name, done, len(calendars))

    records = _read_all(paths, read, ics.ImportFileError, report)
    scope = Scope(frozenset(ics.feed_of(i) for i in records), start, end)
    return _land(lake, "events", report, records, scope)


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

        return mail.iter_mail_messages(path, account, settings, aliases, skip, advanced)

    records = _read_all(paths, read, mail.ImportFileError, report)
    scope = Scope(frozenset(i.split("/", 1)[0] for i in records))
    return _land(lake, "messages", report, records, scope)


def _account(value: str) -> str:
    address = value.strip().lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise UserError(f"--account {value!r}: not an email address; give whose calendar or mailbox this is")
    return address


def _read_all(paths: Iterable[Path], read, file_error: type[Exception], report: ImportReport) -> dict[str, object]:
    """Every record of every file by id (a later file wins); unreadable files are noted."""
    records: dict[str, object] = {}
    problems: list[str] = []

    def skip(item: str, reason: str) -> None:
        report.skipped.append((item, reason))

    for path in paths:
        path = Path(path)
        report.files += 1
        if not path.exists():
            problems.append(f"{path}: no such file or folder")
            continue
        try:
            for record in read(path, skip):
                records[record.id] = record
                report.read += 1
        except file_error as e:
            problems.append(str(e))
    report.failed_files = problems
    if problems and not records:
        raise NothingImported("; ".join(problems))
    return records


def _land(lake: Lake, table: str, report: ImportReport, records: dict[str, object], scope: Scope) -> ImportReport:
    """Compare with the lake and write what changed as one batch."""
    lake.check_schema()
    live = _live_rows(lake, table, report.source, report.account)
    now = utc_now()
    new = records_to_arrow(table, records.values(), ingested_at=now)
    if not live:  # a first import: every record is new and nothing can be removed
        report.imported += new.num_rows
        lake.write_arrow(table, report.source, new)  # writes nothing for an empty table
        return report
    new_rows = new.to_pylist()
    changed: list[dict] = []
    for row in new_rows:
        before = live.get(row["id"])
        if before is None:
            report.imported += 1
        elif _content(row) == _content(before):
            report.unchanged += 1
            continue
        else:
            report.updated += 1
            # The import is the newest word on the record, whatever the export's own stamp says.
            row["updated"] = max(row["updated"], before["updated"] + timedelta(microseconds=1))
        changed.append(row)
    seen = set(records)
    for id_, before in live.items():
        if id_ not in seen and scope.covers(before):
            report.removed += 1
            changed.append(dict(before, deleted=True, updated=max(now, before["updated"] + timedelta(microseconds=1))))
    if changed:
        _, schema = TABLES[table]
        for row in changed:
            row["ingested_at"] = now
        lake.write_arrow(table, report.source, pa.Table.from_pylist(changed, schema=schema))
    return report


def _content(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in ("updated", "ingested_at")}


def _live_rows(lake: Lake, table: str, source: str, account: str) -> dict[str, dict]:
    con = lake.connect()
    try:
        columns = ", ".join(f'"{name}"' for name in TABLES[table][1].names)
        query = f"SELECT {columns} FROM {table} WHERE source = $source AND account = $account"
        rows = con.sql(query, params={"source": source, "account": account}).to_arrow_table().to_pylist()
    finally:
        con.close()
    return {r["id"]: r for r in rows}
