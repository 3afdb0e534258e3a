"""Calendar exports (.ics files, .zip files of them, folders of either) as a mirror source.

A calendar is known by its own id or name (X-WR-RELCALID, X-WR-CALNAME), so a newer export
under another file name replaces it; a calendar without either by its full path (below
``base`` when given). Ids hold either only as a digest, so no calendar name reaches them.
A read covers the calendars it met, and of those only events inside the expansion window,
so a window that moved on does not remove the past.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from connectors.base import ReadNotes
from connectors.files import FilesSource, Progress, last_of_each_id, place
from connectors.ics.reader import (
    SOURCE,
    ImportFileError,
    ZipLimits,
    calendar_file_count,
    calendar_files,
    iter_ics_records,
)
from timeaudit.core.config import Settings

_CALENDAR_NAME = re.compile(rb"^X-WR-(?:RELCALID|CALNAME)(?:;[^:\r\n]*)?:[ \t]*\S", re.M | re.I)


@dataclass(frozen=True)
class CalendarCoverage:
    """The lake's events of the calendars read (ids starting "<calendar>/") inside [start, end)."""

    prefixes: frozenset[str]
    start: datetime
    end: datetime

    def covers(self, row: dict) -> bool:
        if row["id"].split("/", 1)[0] not in self.prefixes:
            return False
        return row["end"] > self.start and row["start"] < self.end


class IcsSource(FilesSource):
    name = SOURCE
    file_error = ImportFileError
    table = "events"

    def __init__(
        self,
        settings: Settings,
        paths: Sequence[Path],
        account: str,
        window: tuple[datetime, datetime],
        progress: Progress | None = None,
        base: Path | None = None,
    ):
        self.settings, self.paths, self.account, self.window = settings, list(paths), account, window
        self.progress, self.base = progress, base
        self.limits = ZipLimits(settings.imports.max_zip_mb * 2**20, settings.imports.max_zip_ratio)
        self.notes = ReadNotes()
        self._calendars: set[str] = set()  # the calendars' keys, as ids begin
        self._feeds: set[str] = set()  # the feeds as ids of older versions began ("<feed>/<UID>")

    def _read_file(self, path: Path) -> Iterator:
        total = calendar_file_count(path)
        folder = place(path, self.base).rpartition("/")[0] if path.is_file() else place(path, self.base)
        start, end = self.window
        for done, (name, data) in enumerate(calendar_files(path, self.limits), 1):
            where = "" if _CALENDAR_NAME.search(data) else f"{folder}/{name}"
            for item in iter_ics_records(name, data, self.account, self.settings, start, end, self.notes.skip):
                yield self._with_calendar_keys(item, where)
            del data  # one calendar's bytes in memory at a time
            if self.progress:
                self.progress(path.name, done, total)

    def coverage(self) -> CalendarCoverage:
        return CalendarCoverage(frozenset(self._calendars | self._feeds), *self.window)

    def one_per_id(self, records: pa.Table) -> pa.Table:
        records = last_of_each_id(records)
        self.notes.without_uid = pc.sum(pc.equal(records["ical_uid"], "")).as_py() or 0
        return records

    def combine(self, read: pa.Table, held: pa.Table) -> pa.Table:
        return read

    def _with_calendar_keys(self, item: dict | pa.Table, where: str) -> dict | pa.Table:
        """Records of ``connectors.ics.reader`` with the feed that begins their id and series id
        ("<feed>/...") made ``calendar_key``."""
        if isinstance(item, dict):
            feed, rest = item["id"].split("/", 1)
            self._feeds.add(feed)
            key = calendar_key(where, feed)
            self._calendars.add(key)
            series = item["series_id"]
            return dict(item, id=f"{key}/{rest}", series_id=f"{key}/{series.split('/', 1)[1]}" if series else "")
        parts = pc.split_pattern(item["id"], "/", max_splits=1)
        feeds = pc.list_element(parts, 0)
        distinct = pc.unique(feeds).to_pylist()
        self._feeds.update(distinct)
        each_key = [calendar_key(where, feed) for feed in distinct]
        self._calendars.update(each_key)
        keys = pa.array(each_key, pa.string()).take(pc.index_in(feeds, value_set=pa.array(distinct, pa.string())))
        ids = pc.binary_join_element_wise(keys, pc.list_element(parts, 1), "/")
        series = item["series_id"]
        series_rest = pc.list_element(
            pc.split_pattern(pc.if_else(pc.equal(series, ""), "/", series), "/", max_splits=1), 1
        )
        series = pc.if_else(pc.equal(series, ""), "", pc.binary_join_element_wise(keys, series_rest, "/"))
        item = item.set_column(item.schema.get_field_index("id"), "id", ids)
        return item.set_column(item.schema.get_field_index("series_id"), "series_id", series)


@functools.lru_cache(maxsize=4096)
def calendar_key(where: str, feed: str) -> str:
    """A calendar's identity in its events' ids: a digest of the feed the reader names it by
    (X-WR-RELCALID, else X-WR-CALNAME, else the file name) and, for a calendar without an id or
    name, of where it was read (the file, and the member of a zip)."""
    return "calendar:" + hashlib.sha256(f"ics\0{where}\0{feed}".encode("utf-8", "surrogateescape")).hexdigest()[:20]
