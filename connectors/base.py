"""The contract between a source and the sync driver (``timeaudit.lake.sync``).

A source fills one table (events, messages or chat) for one or more accounts. ``read`` is a plain
generator in the spirit of dlt's resources: it pages inside, yields records (model objects,
dicts of their fields, or Arrow tables of the table's columns) and, when it has yielded
everything up to a point, sets ``cursor.new_value``. The driver lands the records and only
then saves the cursor, so a killed run re-reads at most one batch and never loses or doubles
anything. ``write_disposition`` says what one read means:

- ``merge``: what was read is upserted by ``PRIMARY_KEY`` (the newer ``updated`` wins);
  deletions come from the source as records marked deleted (Google's incremental syncs);
- ``replace``: what one run reads over all accounts is the source's whole content
  (the generated demo organisation);
- ``mirror``: what one read gives is all there is within what it covers (``coverage``):
  records the lake holds there and the read lacks are removed, others added or updated, and
  identical ones left alone (exported files: reading the same file twice changes nothing).
  A mirror source also says how to keep one record per id among what it read
  (``one_per_id``) and how its records combine with those the lake already holds for the
  account (``combine``: e.g. one message held in several mailboxes).

A remote source (``AccountSource``) is synced account by account, and an account in parts
(Calendar: its calendars), each part with its own ``Report``. Its full syncs must delete
what vanished upstream, so the driver hands each read what the lake holds for the account
(``Cursor.held``: id -> the source's ``held_columns``, read once per run, read-only) and the
source yields a deletion for every held id its complete read did not see. The deletions stay
the source's: only it knows the scope a read covers (a calendar's window, a mailbox's
"since"), and they travel as ordinary records, through the same batches and cursor rule;
a driver that deleted "the rest of scope S" would need every source's scopes in SQL.
A mirror source's scope is its files, so there the source says what a read covers and the
driver removes what it covers and the read lacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, Literal, Protocol

import pyarrow as pa

PRIMARY_KEY = ("source", "account", "id")
WriteDisposition = Literal["merge", "replace", "mirror"]
OnFailure = Literal["next part", "next account"]  # what the driver does after a recorded failure


@dataclass
class Cursor:
    """Where a source's previous run left off, handed to ``read`` as an argument.

    ``value`` is what was saved last time (None on a first sync). The source sets
    ``new_value`` when it has yielded every record up to that point (e.g. Calendar's
    nextSyncToken after the last page). ``reset`` asks for the saved cursor to be dropped
    (e.g. after a 410 Gone). ``part`` names the part of the account read (a calendar; "" for
    the whole) and ``held`` is what the lake holds live for the account (see the module).
    """

    value: dict | None = None
    new_value: dict | None = None
    reset: bool = False
    part: str = ""
    held: Mapping[str, tuple] = field(default_factory=dict)


@dataclass
class Report:
    """What one read of one account (or of one part of it) did. The driver counts the records
    against ``Cursor.held`` and fills ``error``; a source adds its own counts in a subclass."""

    account: str
    part: str = ""
    _: KW_ONLY
    records: int = 0  # records received, deletions included
    added: int = 0
    updated: int = 0
    deleted: int = 0
    full_sync: bool = False
    error: str = ""
    on_progress: Callable[[Report], None] | None = field(default=None, repr=False, compare=False)

    def show_progress(self) -> None:
        """Tell whoever watches the run how this read is getting on."""
        if self.on_progress:
            self.on_progress(self)

    @property
    def outcome(self) -> str:
        return "full sync" if self.full_sync else "changes only"

    def line(self) -> str:
        """One plain line for a log when the read went well."""
        return f"{self.account} {self.part}".strip() + f": {self.records:,} records, {self.outcome}"

    def progress_text(self) -> str:
        """What a live progress line shows after the account's name."""
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.records:,} records {state}"


class Summary:
    """Sums over a run's per-read ``reports``; a source's subclass adds its ``line``."""

    def __init__(self, reports: Sequence[Report]):
        self.reports = list(reports)

    def total(self, name: str) -> int:
        return sum(getattr(r, name) for r in self.reports)

    records = property(lambda self: self.total("records"))
    added = property(lambda self: self.total("added"))
    updated = property(lambda self: self.total("updated"))
    deleted = property(lambda self: self.total("deleted"))
    failed = property(lambda self: sum(1 for r in self.reports if r.error))

    def failures(self) -> list[tuple[str, str]]:
        """(what, error) of every read that failed."""
        return [(f"{r.account} {r.part}".strip(), r.error) for r in self.reports if r.error]

    def line(self) -> str:
        return (
            f"{len(self.reports)} read(s), {self.added:,} added, {self.updated:,} updated, "
            f"{self.deleted:,} deleted, {self.failed} failed"
        )


class Source(Protocol):
    """One source of one table; see the module's docstring."""

    name: str  # the ``source`` column of its records
    table: str  # "events", "messages" or "chat"
    write_disposition: WriteDisposition

    def accounts(self) -> Sequence[str]:
        """The accounts this run reads, in order."""
        ...

    def read(self, account: str, cursor: Cursor) -> Iterator[Any]:
        """The account's records since ``cursor.value``; sets ``cursor.new_value`` when done."""
        ...


@dataclass
class ReadNotes:
    """What a read met besides its records, for the closing summary."""

    files: int = 0
    folders: int = 0  # mailboxes read
    without_uid: int = 0  # calendar events whose ids were made from their content
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (item, reason)
    failed: list[str] = field(default_factory=list)  # whole files that could not be read

    def skip(self, item: str, reason: str) -> None:
        self.skipped.append((item, reason))


class Coverage(Protocol):
    """Which of the lake's records a mirror read speaks for."""

    def covers(self, row: dict) -> bool: ...


class MirrorSource(Source, Protocol):
    """A ``mirror`` source; see the module's docstring."""

    notes: ReadNotes

    def coverage(self) -> Coverage:
        """What the read just made covers; asked after ``read``."""
        ...

    def one_per_id(self, records: pa.Table) -> pa.Table:
        """One row per id among the records read, in the order ids were first read."""
        ...

    def combine(self, read: pa.Table, held: pa.Table) -> pa.Table:
        """What is to land, from the records read and the live ones the lake holds."""
        ...


class AccountSource(Source, Protocol):
    """A merge source synced account by account, each read's failure its own (remote APIs).
    It yields model objects (``Event``, ``Message``): the driver counts them against ``held``.

    ``read`` fills the report ``report(account, part)`` gave for that read (``cursor.part``).
    ``failed`` is asked about an error a read raised: it fills ``report.error`` and says
    whether the account's next part or the next account comes next, returns None for an
    error that is not the source's (the run ends with it), or raises one that ends the run
    (a refused personal token). ``finish`` runs once after every account went well.

    A source whose parts fill different tables (Microsoft 365: the calendar ``events``, each mail
    folder ``messages``) also has ``tables`` (table -> its held columns) and ``table_of(part)``;
    the driver then hands each read what the lake holds in that part's table.
    """

    batch_size: int
    held_columns: tuple[str, ...]  # ends with "updated"
    shardable: bool  # False: every --shard reads all the accounts (one person's token is no roster)

    def parts(self, account: str) -> Sequence[str]: ...

    def report(self, account: str, part: str) -> Report: ...

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Any]: ...

    def failed(self, report: Report, error: Exception) -> OnFailure | None: ...

    def summary(self, reports: Sequence[Report]) -> Summary: ...

    def finish(self) -> None: ...
