"""iCalendar (.ics) exports -> ``Event`` records, for teams that import files instead of syncing.

``calendar_files`` reads a .ics file, a .zip export or a folder (``connectors.ics.files``);
``iter_ics_records`` turns one calendar into the events of one account that overlap a window
(``iter_ics_events``: as ``Event`` objects). Storing, detecting unchanged records and
tombstoning are the caller's business (``timeaudit.lake.imports``).

- Recurrences are expanded by ``recurring_ical_events`` only (``connectors.ics.series``).
- Ids are stable across re-imports: ``<feed>/<UID>`` for a single event and
  ``<feed>/<UID>/<original start in UTC>`` for an occurrence, so a moved occurrence keeps its
  id. The feed is a slug of X-WR-RELCALID, else X-WR-CALNAME, else the file name.
- Time zones: VTIMEZONE blocks, IANA and Windows names. Floating times and all-day dates are
  read in X-WR-TIMEZONE, else the organisation's zone. A TZID none of these explains makes
  the event skipped, not guessed: a wrong zone would move every occurrence by hours unseen.
- A file that is not iCalendar, is cut short or is a broken zip raises ``ImportFileError``; a
  broken event or component is reported through ``on_skip`` with its line, and the rest of
  the file still comes out. An event without a UID gets one from its content.
- Work is bounded: occurrences per series are capped, superseded copies are dropped first
  (``connectors.ics.superseded``), zips are unpacked within limits.

Two readers make the same records: ``connectors.ics.plain`` reads the plain single events
column by column into one Arrow table (most of an export, and where line-by-line reading would
spend nearly all the time); everything else goes through icalendar as one dict per event
(``connectors.ics.record.event_record``, the reference the tests hold the plain reader to).
Titles are kept only when ``privacy.store_titles`` is on; descriptions only count as non-empty.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

import icalendar
import numpy as np
import pyarrow as pa

from connectors.ics import plain as ics_plain
from connectors.ics.files import ImportFileError as ImportFileError
from connectors.ics.files import ZipLimits as ZipLimits
from connectors.ics.files import calendar_file_count as calendar_file_count
from connectors.ics.files import calendar_files as calendar_files
from connectors.ics.record import SOURCE as SOURCE
from connectors.ics.record import (
    CalendarContext,
    content_uid,
    event_of,
    event_of_row,
    localise,
    problem_of,
)
from connectors.ics.series import RECURRING, overlaps, series_events
from connectors.ics.structure import event_lines, parsed_calendars, text_of, without_broken_parts
from connectors.ics.superseded import without_superseded
from connectors.ics.values import (
    zone_named,
)
from timeaudit.core.config import Settings
from timeaudit.core.model import Event
from timeaudit.core.tags import vocabulary


def feed_of(event_id: str) -> str:
    """The feed part of an id made by ``iter_ics_events`` (feeds never hold '/')."""
    return event_id.split("/", 1)[0]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:48].strip("-")


def _feed(calendar: icalendar.Calendar, name: str) -> str:
    for key in ("X-WR-RELCALID", "X-WR-CALNAME"):
        slug = _slug(str(calendar.get(key) or ""))
        if slug:
            return slug
    return _slug(PurePosixPath(name).stem) or "calendar"


# -- a file -> events ------------------------------------------------------------------------
def iter_ics_events(*args, **kwargs) -> Iterator[Event]:
    """``iter_ics_records`` as ``Event`` objects."""
    for item in iter_ics_records(*args, **kwargs):
        if isinstance(item, pa.Table):
            yield from map(event_of_row, item.drop_columns(["attendee_count"]).to_pylist())
        else:
            yield event_of(item)


def iter_ics_records(
    name: str,
    data: bytes,
    account: str,
    settings: Settings,
    start: datetime,
    end: datetime,
    on_skip: Callable[[str, str], None],
    *,
    plain: bool = True,
) -> Iterator[dict | pa.Table]:
    """The events of one .ics file, as seen by ``account``, overlapping [start, end) (aware UTC):
    ``Event`` fields by name, attendees as (email, response, optional) (see ``event_of``), and
    the plain single events as one Arrow table of the lake's columns (``ingested_at`` aside).

    ``on_skip(item, reason)`` hears of every event that could not be imported; ``item`` names
    the file, the line and the UID (never the title). Raises ImportFileError for a file that
    cannot be read at all. ``plain=False`` reads every event through icalendar, the reference
    the tests hold the plain reader (``connectors.ics.plain``) to.
    """
    account = account.strip().lower()
    calendars, line_of, taken = _read(name, data, plain, on_skip)
    words = vocabulary(settings.rules)
    org_zone = ZoneInfo(settings.organisation.timezone)
    seen: set[str] = set()
    index = 0
    for calendar in calendars:
        x_wr = zone_named(str(calendar.get("X-WR-TIMEZONE") or ""))
        zone = x_wr or org_zone
        cal = CalendarContext(
            account, _feed(calendar, name), zone, x_wr is not None, words, settings.privacy.store_titles,
            settings.imports.max_occurrences_per_series,
        )  # fmt: skip
        groups: dict[str, list] = {}
        first_event: dict[str, int] = {}  # the index in the file of each UID's first event
        alone = _alone(calendar, taken) if taken else None
        if taken and alone.any():
            yield taken.records(np.flatnonzero(alone), cal, start, end)
        for item in _vevents(calendar, taken.places if taken else None):
            index += 1
            if isinstance(item, int):
                if alone[item]:
                    continue
                uid = taken.uid(item)
            else:
                uid = str(item.get("UID") or "").strip()
                problem = problem_of(item)
                if problem:
                    on_skip(_where(name, line_of, index - 1, uid or "without UID"), problem)
                    continue
                uid = uid or content_uid(item)
                localise(item, cal.zone, utc_too=cal.utc_too)
            groups.setdefault(uid, []).append(item)
            first_event.setdefault(uid, index - 1)

        for uid, items in groups.items():
            try:
                components = [_component(item, taken, cal) for item in items]
                events, cut = series_events(uid, components, cal, start, end)
            except Exception as e:  # whatever breaks one series must not stop the others
                on_skip(
                    _where(name, line_of, first_event[uid], uid),
                    f"its dates or recurrence rule cannot be expanded ({e}); fix or remove it",
                )
                continue
            if cut:
                on_skip(_where(name, line_of, first_event[uid], uid), cut)
            for event in events:
                if not overlaps(event["start"], event["end"], start, end):
                    continue
                if event["id"] in seen:
                    on_skip(
                        _where(name, line_of, first_event[uid], uid),
                        f"repeats id {event['id']}; only its first copy is imported",
                    )
                    continue
                seen.add(event["id"])
                yield event


def _read(
    name: str, data: bytes, plain: bool, on_skip: Callable[[str, str], None]
) -> tuple[list[icalendar.Calendar], Callable[[int], int], ics_plain.Taken | None]:
    """The file's calendars as icalendar reads them, the line of each VEVENT, and the plain
    events taken out of the text icalendar read (None: it read the whole file). The plain reader
    takes a file only when the rest of it is sound and one calendar; any other file is read
    whole, so that what is reported on it and how does not depend on the plain reader. Broken
    components are blanked out first and reported through ``on_skip``."""
    data = without_superseded(data)
    read = _read_plain(name, data) if plain else None
    if read is not None:
        return read
    text, broken = without_broken_parts(name, text_of(data))
    for item, reason in broken:
        on_skip(item, reason)
    if broken and plain and _is_utf8(data):
        read = _read_plain(name, text.encode())
        if read is not None:
            return read
    line_of = event_lines(name, text)
    return parsed_calendars(name, text), line_of, None


def _read_plain(
    name: str, data: bytes
) -> tuple[list[icalendar.Calendar], Callable[[int], int], ics_plain.Taken] | None:
    """``_read`` with the plain reader, None when it does not take the file."""
    taken = ics_plain.cut(data)
    if taken is None:
        return None
    try:
        calendars = icalendar.Calendar.from_ical(taken.skeleton, multiple=True)
    except ValueError:
        return None
    if len(calendars) != 1:
        return None
    lines = functools.cache(lambda: event_lines(name, text_of(data)))  # only a skip needs them
    return calendars, lambda n: lines()(n), taken


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _alone(calendar: icalendar.Calendar, taken: ics_plain.Taken) -> np.ndarray:
    """Per taken event: whether it is one occurrence. Its UID must be no other event's (else it
    goes to recurring_ical_events with the others) and, when the calendar has a series, hold no
    '/' (so that no occurrence's id can be its id)."""
    others = [c for c in calendar.subcomponents if c.name == "VEVENT"]
    series = any(key in c for c in others for key in RECURRING)
    return taken.alone([str(c.get("UID") or "").strip() for c in others], series)


def _where(name: str, line_of: Callable[[int], int], index: int, uid: str) -> str:
    """How a skip names the event: the file, the line of the index-th event and the UID."""
    return f"{name} line {line_of(index)}: event {uid}"


def _vevents(calendar: icalendar.Calendar, places: list[int | None] | None) -> Iterator:
    """The calendar's events in file order: its icalendar components, with the rows of the
    plain events taken out of the text icalendar read in their places."""
    components = (c for c in calendar.subcomponents if c.name == "VEVENT")
    if places is None:
        yield from components
        return
    for row in places:
        yield next(components) if row is None else row


def _component(
    item: icalendar.Component | int, taken: ics_plain.Taken | None, cal: CalendarContext
) -> icalendar.Component:
    """An event as icalendar reads it: a plain event whose UID turned out to be shared goes to
    recurring_ical_events with the others after all."""
    if not isinstance(item, int):
        return item
    [calendar] = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\n{taken.text(item)}END:VCALENDAR\n", multiple=True)
    component = calendar.subcomponents[0]
    localise(component, cal.zone, utc_too=cal.utc_too)
    return component
