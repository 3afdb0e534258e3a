"""The sync driver: runs any ``connectors.base.Source`` into the lake, in batches, with
progress, saving each account's cursor only after the records it covers have landed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from itertools import islice

import pyarrow as pa

from connectors.base import Cursor, Source
from timeaudit.lake.store import Lake, records_to_arrow, utc_now

BATCH_SIZE = 50_000
Progress = Callable[[int], None]  # called with the number of records just handled


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
    """Land ``records`` as new batches; each batch is atomic. Returns the number of rows."""
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
) -> SyncResult:
    """Run one account's connector into the lake: batches land first, then the cursor."""
    cursor = Cursor(value=lake.read_cursor(source, account))
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
) -> list[SyncResult]:
    """Every account of ``source`` into the lake, as its write disposition says."""
    if source.write_disposition == "replace":
        records = (record for account in source.accounts() for record in source.read(account, Cursor()))
        rows = lake.replace_source(source.table, source.name, arrow_batches(source.table, records, progress))
        return [SyncResult(account=", ".join(source.accounts()), rows=rows)]
    return [
        sync_account(lake, source.table, source.name, account, partial(source.read, account), progress, batch_size)
        for account in source.accounts()
    ]
