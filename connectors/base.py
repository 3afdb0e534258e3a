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
  (the generated demo organisation).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

PRIMARY_KEY = ("source", "account", "id")
WriteDisposition = Literal["merge", "replace"]


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
