"""The sync driver: runs any ``connectors.base.Source`` into the lake, in batches, with
progress, saving each account's cursor only after the records it covers have landed.

``sync_accounts`` runs a remote source's accounts (a ``--shard`` of them, on up to
``--workers`` threads): one read's failure is recorded in its report and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import partial
from itertools import islice
from types import MappingProxyType
from typing import Any, Protocol

import pyarrow as pa

from connectors.base import AccountSource, Cursor, Report, Source, Summary
from connectors.registry import build_source
from timeaudit.core.config import Settings
from timeaudit.lake.mirror import ImportReport, land_mirror
from timeaudit.lake.shards import Shard, check_workers, in_shard, run_each
from timeaudit.lake.store import Lake, records_to_arrow, utc_now

BATCH_SIZE = 50_000
Progress = Callable[[int], None]  # called with the number of records just handled
Held = dict[str, dict[str, tuple]]  # account -> {id: held columns}


def batches(records: Iterable, size: int = BATCH_SIZE) -> Iterator[list]:
    it = iter(records)
    while chunk := list(islice(it, size)):
        yield chunk


def arrow_batches(
    table: str, records: Iterable, progress: Progress | None = None, size: int = BATCH_SIZE
) -> Iterator[pa.Table]:
    stamp = utc_now()
    for chunk in batches(records, size):
        yield records_to_arrow(table, chunk, ingested_at=stamp)
        if progress:
            progress(len(chunk))


def append(
    lake: Lake,
    table: str,
    source: str,
    records: Iterable,
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
) -> int:
    """Merge ``records`` into the table batch by batch, one commit each. Returns the number of rows."""
    rows = 0
    for batch in arrow_batches(table, records, progress, batch_size):
        lake.write_arrow(table, source, batch)
        rows += batch.num_rows
    return rows


@dataclass
class SyncResult:
    account: str
    rows: int = 0
    cursor_saved: bool = False
    error: str = ""


def sync_account(
    lake: Lake,
    table: str,
    source: str,
    account: str,
    fetch: Callable[[Cursor], Iterable],
    progress: Progress | None = None,
    batch_size: int = BATCH_SIZE,
    cursor: Cursor | None = None,
) -> SyncResult:
    """Run one account's connector into the lake: batches land first, then the cursor."""
    cursor = cursor or Cursor()
    cursor.value = lake.read_cursor(source, account)
    rows = append(lake, table, source, fetch(cursor), progress, batch_size)
    result = SyncResult(account=account, rows=rows)
    if cursor.reset and cursor.new_value is None:
        lake.clear_cursor(source, account)
    if cursor.new_value is not None:
        lake.write_cursor(source, account, cursor.new_value)
        result.cursor_saved = True
    return result


def run_source(
    lake: Lake, source: Source, progress: Progress | None = None, batch_size: int = BATCH_SIZE
) -> list[SyncResult] | list[ImportReport]:
    """Every account of ``source`` into the lake, as its write disposition says (a mirror
    source's read lands through ``timeaudit.lake.mirror``, as one commit)."""
    if source.write_disposition == "mirror":
        return [land_mirror(lake, source)]
    if source.write_disposition == "replace":
        records = (record for account in source.accounts() for record in source.read(account, Cursor()))
        rows = lake.replace_source(source.table, source.name, arrow_batches(source.table, records, progress))
        return [SyncResult(account=", ".join(source.accounts()), rows=rows)]
    return [
        sync_account(lake, source.table, source.name, account, partial(source.read, account), progress, batch_size)
        for account in source.accounts()
    ]


class Reporter(Protocol):
    """Watches a run: each read starts, gets on (``Report.show_progress``) and is done."""

    def start(self, report: Report) -> None: ...
    def progress(self, report: Report) -> None: ...
    def done(self, report: Report) -> None: ...


class Silent:
    def start(self, report: Report) -> None:
        pass

    def progress(self, report: Report) -> None:
        pass

    def done(self, report: Report) -> None:
        pass


def table_of(source: AccountSource, part: str) -> str:
    """The table ``part`` fills: ``source.table``, unless the source's parts fill several
    (``table_of(part)``, with ``tables``: table -> held columns; Microsoft 365's calendar and folders)."""
    pick = getattr(source, "table_of", None)
    return pick(part) if pick else source.table


def held_records(lake: Lake, source: AccountSource, table: str | None = None) -> Held:
    """What the lake holds live for ``source`` in ``table`` (its own by default): account -> {id:
    its held columns}."""
    table = table or source.table
    held_columns = getattr(source, "tables", {}).get(table, source.held_columns)
    columns = ", ".join(f'"{c}"' for c in held_columns)
    con = lake.connect()
    try:
        rows = con.execute(f"SELECT account, id, {columns} FROM {table} WHERE source = ?", [source.name]).fetchall()
    finally:
        con.close()
    held: Held = {}
    for account, id_, *values in rows:
        held.setdefault(account, {})[id_] = tuple(values)
    return held


def _counted(records: Iterable[Any], held: Mapping[str, tuple], report: Report) -> Iterator[Any]:
    """``records`` as they come, counting each in ``report`` as added, updated or deleted
    against what the lake held (a deletion of an unknown record, or a record whose
    ``updated`` is unchanged, changes nothing)."""
    outcome: dict[str, str] = {}
    for record in records:
        report.records += 1
        before = held.get(record.id)
        if record.deleted:
            outcome[record.id] = "deleted" if before else "unchanged"
        elif before is None:
            outcome[record.id] = "added"
        else:
            outcome[record.id] = "updated" if record.updated != before[-1] else "unchanged"
        yield record
    kinds = list(outcome.values())
    report.added, report.updated, report.deleted = (kinds.count(k) for k in ("added", "updated", "deleted"))


def sync_accounts(
    lake: Lake,
    source: AccountSource,
    *,
    shard: Shard | None = None,
    workers: int = 1,
    reporter: Reporter | None = None,
) -> Summary:
    """Every account of ``source`` (those of ``shard`` only), on up to ``workers`` at a time,
    part by part: one read's failure is recorded and the others go on, unless the source
    says the failure ends the run. Returns the source's summary of every read."""
    reporter = reporter or Silent()
    accounts = in_shard(source.accounts(), shard if source.shardable else None, str)
    tables = getattr(source, "tables", None) or {source.table: source.held_columns}
    held = {table: held_records(lake, source, table) for table in tables}

    def sync_one(account: str) -> list[Report]:
        reports = []
        for part in source.parts(account):
            report = source.report(account, part)
            report.on_progress = reporter.progress
            reports.append(report)
            reporter.start(report)
            table = table_of(source, part)
            cursor = Cursor(part=part, held=MappingProxyType(held[table].get(account, {})))
            next_step = "next part"
            try:
                fetch = partial(_read_counted, source, account, report)
                sync_account(lake, table, source.name, account, fetch, None, source.batch_size, cursor)
            except Exception as e:
                next_step = source.failed(report, e)
                if next_step is None:
                    raise
                report.added = report.updated = report.deleted = 0
            reporter.done(report)
            if next_step == "next account":
                break
        return reports

    reports = [r for account_reports in run_each(accounts, sync_one, workers) for r in account_reports]
    source.finish()
    return source.summary(reports)


def _read_counted(source: AccountSource, account: str, report: Report, cursor: Cursor) -> Iterator[Any]:
    return _counted(source.read(account, cursor, report), cursor.held, report)


def sync_registered(
    lake: Lake,
    settings: Settings,
    name: str,
    *,
    shard: Shard | None = None,
    workers: int = 1,
    reporter: Reporter | None = None,
    **options: Any,
) -> Summary:
    """Sync the registered source ``name`` (``connectors.registry``) built with ``settings`` and
    ``options`` into ``lake``; see ``sync_accounts``."""
    lake.check_schema()
    workers = check_workers(workers)
    source = build_source(name, settings, **options)
    return sync_accounts(lake, source, shard=shard, workers=workers, reporter=reporter)
