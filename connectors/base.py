"""What every source shares with the sync driver: the cursor it reads from and leaves behind."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Cursor:
    """Where a connector's previous run left off, handed to the connector as an argument.

    ``value`` is what was saved last time (None on a first sync). The connector sets
    ``new_value`` when it has yielded every record up to that point (e.g. Calendar's
    nextSyncToken after the last page); ``sync_account`` saves it only after those records
    have landed. ``reset`` asks for the saved cursor to be dropped (e.g. after a 410 Gone).
    """

    value: dict | None = None
    new_value: dict | None = None
    reset: bool = False
