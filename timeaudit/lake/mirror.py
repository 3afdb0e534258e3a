"""The lake's side of mirror sources (exported files): what a read gives is all there is
within what it covers (``connectors.base``), landed as one commit.

The records read are compared with what the lake holds for that account and source:

- a record the lake lacks is *imported*; one whose content differs is *updated* (a newer
  version wins, however the export stamped it); an identical one is left alone, so
  importing the same file twice changes nothing;
- a record the lake holds that the read covers but no longer has is *removed* (deleted).

Everything an import changes lands in one commit (``Lake.write_arrow``: a merge, or an append
when the lake holds none of the account's records): a killed import leaves the lake as it was,
never half-imported. Items a source cannot
read are reported with their reason and the rest still import; when no file could be read
at all the import stops with ``NothingImported`` naming each file.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import Coverage, Cursor, MirrorSource
from timeaudit.core.errors import UserError
from timeaudit.core.model import TABLES, record_columns
from timeaudit.lake.store import Lake, account_rows, columns_to_arrow, utc_now, writer_duckdb


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
        noun = {"ics": "calendar", "mail": "mail", "slack": "Slack"}.get(self.source, self.source)
        read = f"{self.folders:,} folder(s), {self.read:,} message(s) read; " if self.source == "mail" else ""
        read = f"{self.read:,} message(s) read; " if self.source == "slack" else read
        return (
            f"{noun} import for {self.account}: {read}{self.imported:,} imported, {self.updated:,} updated, "
            f"{self.removed:,} removed, {self.unchanged:,} unchanged, {len(self.skipped):,} skipped"
            + (f", {len(self.failed_files)} file(s) unreadable" if self.failed_files else "")
            + (f"; {self.without_uid:,} event(s) had no UID (ids made from their content)" if self.without_uid else "")
        )


def land_mirror(lake: Lake, source: MirrorSource) -> ImportReport:
    """Read a mirror source's one account and land what changed as one commit."""
    [account] = source.accounts()
    report = ImportReport(source.name, account)
    records = read_all(source.table, source.read(account, Cursor()), report)
    records = source.one_per_id(records)
    notes = source.notes
    report.files, report.folders, report.without_uid = notes.files, notes.folders, notes.without_uid
    report.skipped, report.failed_files = notes.skipped, notes.failed
    if notes.failed and not records.num_rows:
        raise NothingImported("; ".join(notes.failed))
    return _land(lake, source.table, report, records, source.coverage(), source.combine)


def read_all(table: str, items: Iterable, report: ImportReport) -> pa.Table:
    """Every record read as one Arrow table. A source gives records one at a time (the model's
    fields by name) or many at once as Arrow tables of the lake's columns (``ingested_at``
    aside), which a reader that works column by column makes without a Python object per record."""
    now = utc_now()
    parts: list[pa.Table] = []
    pending: list[dict] = []

    def take_pending() -> None:
        if pending:
            parts.append(_to_arrow(table, pending, now))
            pending.clear()

    for item in items:
        if isinstance(item, pa.Table):
            take_pending()
            parts.append(_with_ingested_at(table, item, now))
            report.read += item.num_rows
        else:
            pending.append(item)
            report.read += 1
    take_pending()
    return pa.concat_tables(parts) if parts else _to_arrow(table, [], now)


def _with_ingested_at(table: str, data: pa.Table, ingested_at: datetime) -> pa.Table:
    schema = TABLES[table][1]
    stamp = pa.repeat(pa.scalar(ingested_at, schema.field("ingested_at").type), data.num_rows)
    return pa.Table.from_arrays([data[n] if n != "ingested_at" else stamp for n in schema.names], schema=schema)


Combine = Callable[[pa.Table, pa.Table], pa.Table]  # (records read, the lake's live ones) -> what to land


def _land(
    lake: Lake,
    table: str,
    report: ImportReport,
    new: pa.Table,
    scope: Coverage,
    combine: Combine | None = None,
) -> ImportReport:
    """Compare with the lake (column by column, in DuckDB) and write what changed as one commit.
    ``combine`` makes of the records read and the lake's what is to land (mail: every copy of a
    message as one, threads over all of them)."""
    lake.check_schema()
    now = utc_now()
    live = _live_rows(lake, table, report.source, report.account)
    new = combine(new, live) if combine else new
    if not live.num_rows:  # a first import: nothing to compare, and the write is an append
        report.imported += new.num_rows
        lake.write_arrow(table, report.source, new)  # writes nothing for an empty table
        return report
    before, same = _compare(new, live)
    unchanged, imported = pc.sum(same).as_py() or 0, before.null_count
    report.imported += imported
    report.unchanged += unchanged
    report.updated += new.num_rows - imported - unchanged
    # The import is the newest word on a record, whatever the export's own stamp says.
    later = pc.add(before, ONE_MICROSECOND)  # null where the lake lacks the record
    updated = pc.if_else(pc.fill_null(pc.greater(later, new["updated"]), False), later, new["updated"])
    new = new.set_column(new.schema.get_field_index("updated"), "updated", updated)
    deletions = _deletions(table, live.filter(pc.invert(pc.is_in(live["id"], value_set=new["id"]))), scope, now)
    report.removed += deletions.num_rows
    lake.write_arrow(table, report.source, pa.concat_tables([new.filter(pc.invert(same)), deletions]))
    return report


def _to_arrow(table: str, records: list[dict], ingested_at: datetime) -> pa.Table:
    """Records as the connectors give them -> the table's Arrow schema, one column at a time
    (a model object per record, and one per attendee, cost as much as reading the files)."""
    names = [name for name in record_columns(TABLES[table][0]) if name in TABLES[table][1].names]
    rows = map(operator.itemgetter(*names), records)  # one tuple per record, made in C
    given = dict(zip(names, zip(*rows, strict=True), strict=True)) if records else dict.fromkeys(names, ())
    return columns_to_arrow(table, given, len(records), ingested_at)


def _deletions(table: str, gone: pa.Table, scope: Coverage, now: datetime) -> pa.Table:
    """Deletions of the lake's records the export no longer has, where the import speaks for them."""
    rows = [
        dict(row, deleted=True, updated=max(now, row["updated"] + ONE_MICROSECOND), ingested_at=now)
        for row in gone.to_pylist()
        if scope.covers(row)
    ]
    return pa.Table.from_pylist(rows, schema=TABLES[table][1])


ONE_MICROSECOND = timedelta(microseconds=1)


def _live_rows(lake: Lake, table: str, source: str, account: str) -> pa.Table:
    """The account's records in the lake (its bucket's files of the latest snapshot)."""
    dt = lake.table(table)
    return account_rows(dt, table, source, [account], TABLES[table][1].names) if dt else TABLES[table][1].empty_table()


def _compare(new: pa.Table, live: pa.Table) -> tuple[pa.ChunkedArray, pa.ChunkedArray]:
    """For each row of ``new``, in order: the ``updated`` of the lake's version (null when the lake
    lacks the record) and whether its content (everything but ``updated``, ``ingested_at``) is the same."""
    content = [name for name in new.schema.names if name not in ("updated", "ingested_at")]
    same = " AND ".join(f'n."{name}" IS NOT DISTINCT FROM l."{name}"' for name in content)
    with writer_duckdb() as con:
        con.register("new_rows", new.append_column("position", pa.array(range(new.num_rows), pa.int64())))
        con.register("live_rows", live)
        result = con.sql(
            f"SELECT l.updated AS before, l.id IS NOT NULL AND {same} AS same "
            "FROM new_rows AS n LEFT JOIN live_rows AS l ON n.id = l.id ORDER BY n.position"
        ).to_arrow_table()
    return result["before"].cast(new.schema.field("updated").type), result["same"]


# -- mail: one record per message and account, whatever mailboxes hold it ----------------------
