"""The contract between a source and the sync driver (``timeaudit.lake.sync``).

A source fills one table (events or messages) for one or more accounts. ``read`` is a plain
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
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import pyarrow as pa

PRIMARY_KEY = ("source", "account", "id")
WriteDisposition = Literal["merge", "replace", "mirror"]


@dataclass
class Cursor:
    """Where a source's previous run left off, handed to ``read`` as an argument.

    ``value`` is what was saved last time (None on a first sync). The source sets
    ``new_value`` when it has yielded every record up to that point (e.g. Calendar's
    nextSyncToken after the last page). ``reset`` asks for the saved cursor to be dropped
    (e.g. after a 410 Gone).
    """

    value: dict | None = None
    new_value: dict | None = None
    reset: bool = False


class Source(Protocol):
    """One source of one table; see the module's docstring."""

    name: str  # the ``source`` column of its records
    table: str  # "events" or "messages"
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
