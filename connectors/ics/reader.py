"""iCalendar (.ics) exports -> ``Event`` records, for teams that import files instead of syncing.

Google Calendar, Outlook/Exchange and Apple Calendar all export .ics files (Google as a .zip
of them). ``calendar_files`` reads a file or a zip; ``iter_ics_records`` turns one calendar
into the events of one account that overlap a window (``iter_ics_events``: as ``Event``
objects). Storing, detecting unchanged records and tombstoning are the caller's business
(``timeaudit.lake.imports``).

- Recurrences are expanded by ``recurring_ical_events`` only (RRULE, RDATE, EXDATE,
  RECURRENCE-ID overrides including RANGE=THISANDFUTURE), never by hand.
- Ids are stable across re-imports: ``<feed>/<UID>`` for a single event and
  ``<feed>/<UID>/<original start in UTC>`` for an occurrence (a date for all-day series),
  so a moved occurrence keeps its id. The feed is a slug of the calendar's X-WR-RELCALID,
  else X-WR-CALNAME, else the file name.
- Time zones: VTIMEZONE blocks and IANA names (through icalendar), Windows names such as
  "W. Europe Standard Time" (icalendar's Windows->IANA table). Floating times and all-day
  dates are read in the calendar's X-WR-TIMEZONE, else the organisation's time zone. A TZID
  that none of these explains makes the event skipped, not guessed: a wrong zone would move
  every occurrence by hours without anyone noticing.
- A file that is not iCalendar, is cut short or is a broken zip raises ``ImportFileError``.
  A broken event, or a component whose END does not match its BEGIN (``END:VTOOD``), is
  reported through ``on_skip`` with its line and the rest of the file still comes out.
- An event without a UID gets one made from its content (``_content_uid``), the same on every
  import; its ``ical_uid`` stays empty, which is how the import counts them.
- Work is bounded: a series yields at most ``imports.max_occurrences_per_series`` occurrences
  in the window (``_occurrences``), events superseded by another of the same UID and
  RECURRENCE-ID are dropped before either reader (``_without_superseded``), and a zip is
  unpacked one member at a time within ``imports.max_zip_mb`` and ``imports.max_zip_ratio``.

Kept per event: as in the Google connector. Descriptions are only checked for being
non-empty; the title only when ``privacy.store_titles`` is on.

How it reads a file, and why: most of an export is single events written in plain lines, with
dozens of folded ATTENDEE lines each, and reading them line by line in Python (icalendar makes
an object of every line) was nearly all of an import's time. So ``iter_ics_records`` first hands
the file's bytes to ``connectors.ics.plain``, which reads those events column by column (Arrow
kernels over all of them at once, each distinct list of attendees once) and gives them as one
Arrow table of the lake's columns; it takes an event only when it is certain to read exactly as
icalendar reads it. Everything else (series, overrides, time zone definitions, anything unusual,
and whole files that are odd or broken) stays in the text icalendar and recurring_ical_events
read as before, and comes out as one dict per event (the ``Event`` fields, attendees as tuples
of (email, response, optional)). Both paths make the same records: ``_record`` is the reference,
and tests/test_ics.py holds the column-wise reader to it over the fixtures and generated
calendars.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from pathlib import PurePosixPath
from zoneinfo import ZoneInfo

import icalendar
import numpy as np
import pyarrow as pa
import recurring_ical_events
from icalendar.error import BrokenCalendarProperty

from connectors.ics import plain as ics_plain
from connectors.ics.files import ImportFileError as ImportFileError
from connectors.ics.files import ZipLimits as ZipLimits
from connectors.ics.files import calendar_file_count as calendar_file_count
from connectors.ics.files import calendar_files as calendar_files
from connectors.ics.structure import event_lines, parsed_calendars, text_of, without_broken_parts
from connectors.ics.values import (
    CONFERENCE_PREFIXES,
    CONFERENCE_PROPERTIES,
    CONFERENCE_STARTS,
    EPOCH,
    MEETING_URL,
    address,
    as_updated,
    attendee,
    localised,
    same_kind,
    stamp,
    tags,
    utc,
    zone_name,
    zone_named,
)
from timeaudit.core.config import Settings
from timeaudit.core.model import Attendee, Event
from timeaudit.core.tags import vocabulary

SOURCE = "ics"
RECURRING = ("RRULE", "RDATE", "RECURRENCE-ID")  # what makes an event a series or a part of one
TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE")
# The expansion asks for a little more than the window, then keeps exactly what overlaps it.
MARGIN = timedelta(days=2)


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


# -- time zones ----------------------------------------------------------------------------
def _props(component: icalendar.Component, key: str) -> list:
    value = component.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _time_values(component: icalendar.Component) -> Iterator[tuple[str, object, object]]:
    """(property name, property, vDDDTypes) of every date or date-time that places the event."""
    for key in ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE"):
        for prop in _props(component, key):
            for value in getattr(prop, "dts", None) or [prop]:
                yield key, prop, value


# What tells an event without a UID apart: its times, rules, title, organizer and place.
CONTENT_KEYS = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "SUMMARY")
CONTENT_KEYS += ("ORGANIZER", "LOCATION")
CONTENT_UID_PREFIX = "no-uid-"


def _content_uid(component: icalendar.Component) -> str:
    """A stable UID for an event that has none, from its content as written (before any time
    is localised): the same event gets it on every import, distinct events distinct ones."""
    digest = hashlib.sha256()
    for key in CONTENT_KEYS:
        for prop in _props(component, key):
            params = ";".join(f"{k}={v}" for k, v in sorted(getattr(prop, "params", {}).items()))
            value = prop.to_ical() if hasattr(prop, "to_ical") else str(prop).encode()
            digest.update(f"{key};{params}:".encode() + value + b"\n")
    return CONTENT_UID_PREFIX + digest.hexdigest()[:20]


def _problem(component: icalendar.Component) -> str | None:
    """Why an event cannot be imported, or None."""
    for key, message in component.errors:
        if key in TIME_PROPERTIES:
            return f"{key} cannot be read ({message}); fix or remove this event in the source calendar"
    if "DTSTART" not in component:
        return "has no DTSTART; fix or remove this event in the source calendar"
    start, end = component.get("DTSTART").dt, component.get("DTEND")
    if end is not None and _ends_before_start(start, end.dt):
        return "ends before it starts (DTEND is earlier than DTSTART); fix or remove this event in the source calendar"
    for key, prop, value in _time_values(component):
        tzid = str(prop.params.get("TZID") or value.params.get("TZID") or "")
        if tzid and isinstance(value.dt, datetime) and value.dt.tzinfo is None:
            return (
                f"{key} uses time zone '{tzid}', which is neither an IANA nor a Windows zone and is not defined "
                "by a VTIMEZONE in the file; export with time zone definitions or fix the TZID"
            )
    return None


def _ends_before_start(start: date, end: date) -> bool:
    if not same_kind(start, end):
        return False  # a date against a date-time, or floating against zoned: recurring_ical_events decides
    return end < start


def _localise(component: icalendar.Component, zone: tzinfo, utc_too: bool) -> None:
    """Floating times -> the calendar's zone, in place (and UTC times too under Google's X-WR-TIMEZONE).

    X-WR-TIMEZONE means "UTC times recur by this zone's wall clock"; recurring_ical_events would
    apply it itself, but dropping the RANGE parameter of a RECURRENCE-ID on the way.
    """
    for _key, _prop, value in _time_values(component):
        read = localised(value.dt, zone, utc_too)
        if read is not value.dt:
            value.dt = read


# -- one occurrence -> Event ---------------------------------------------------------------
# A record is made from an icalendar component (an occurrence from recurring_ical_events)
# through _ComponentProps; _record is the one place that turns one into an Event (the plain
# events read column-wise, connectors.ics.plain, follow it column by column).
Guest = tuple[str, str, bool]  # (email, response, optional)


def _guests(attendees: Iterable[tuple[str, str, bool, bool]], account: str) -> tuple[tuple[Guest, ...], str | None]:
    """The people among the attendees, and the account's own response when it is listed."""
    guests, responses = _people(attendees)
    return guests, responses.get(account)


def _people(attendees: Iterable[tuple[str, str, bool, bool]]) -> tuple[tuple[Guest, ...], dict[str, str]]:
    """The people among the attendees, and each address's response (where it is first listed)."""
    guests: list[Guest] = []
    responses: dict[str, str] = {}
    for email, response, optional, person in attendees:
        responses.setdefault(email, response)
        if person:
            guests.append((email, response, optional))
    return tuple(guests), responses


class _ComponentProps:
    def __init__(self, component: icalendar.Component):
        self.component = component

    def text(self, key: str) -> str:
        return str(self.component.get(key) or "")

    def has(self, key: str) -> bool:
        return key in self.component

    def names(self) -> Iterable[str]:
        return self.component.keys()

    def organizer(self) -> tuple[str, Mapping]:
        prop = self.component.get("ORGANIZER")
        return str(prop or ""), getattr(prop, "params", {})

    def guests(self, account: str) -> tuple[tuple[Guest, ...], str | None]:
        attendees = _props(self.component, "ATTENDEE")
        return _guests((attendee(str(p or ""), getattr(p, "params", {})) for p in attendees), account)

    def updated(self) -> datetime:
        for key in ("LAST-MODIFIED", "DTSTAMP", "CREATED"):
            prop = self.component.get(key)
            try:
                value = prop.dt if prop is not None else None
            except BrokenCalendarProperty:
                continue
            if isinstance(value, date):
                return as_updated(value)
        return EPOCH


def _has_conference(props) -> bool:
    for key in [key for key in props.names() if key.startswith(CONFERENCE_STARTS)]:
        if key in CONFERENCE_PROPERTIES or key.startswith(CONFERENCE_PREFIXES):
            value = props.text(key).strip()
            if value and value.upper() != "FALSE":
                return True
    return any(MEETING_URL.search(props.text(key)) for key in ("LOCATION", "URL"))


@dataclass(frozen=True)
class _Calendar:
    """What every event of one calendar shares."""

    account: str
    feed: str
    zone: ZoneInfo
    utc_too: bool  # UTC times are read in ``zone`` too (X-WR-TIMEZONE)
    words: tuple[str, ...]
    store_titles: bool
    max_occurrences: int = 10_000  # per series, in the window


def _record(props, start: date, end: date, key: str, series_id: str, cal: _Calendar) -> dict:
    """The ``Event`` fields of one occurrence by name, its attendees as (email, response, optional)."""
    start_at, end_at = utc(start, cal.zone), utc(end, cal.zone)
    organizer = address(*props.organizer())
    summary = props.text("SUMMARY").strip()
    busy = props.text("X-MICROSOFT-CDO-BUSYSTATUS").strip().upper()
    status = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}.get(props.text("STATUS").upper())
    guests, own = props.guests(cal.account)
    # An event with no guests, or a copy the account is not listed on, is the account's own time.
    self_response = "accepted" if organizer == cal.account else own or "accepted"
    if busy == "TENTATIVE" and self_response == "accepted" and organizer != cal.account:
        self_response = "tentative"  # Outlook shows the account as tentative in this meeting
    transparent = props.text("TRANSP").upper() == "TRANSPARENT" or busy == "FREE"
    return dict(
        source=SOURCE,
        account=cal.account,
        id=f"{cal.feed}/{key}",
        start=start_at,
        end=max(end_at, start_at),
        updated=props.updated(),
        ical_uid=props.text("UID"),
        series_id=series_id,
        tz=zone_name(start, cal.zone),
        all_day=not isinstance(start, datetime),
        status=status or "confirmed",
        self_response=self_response,
        transparency="transparent" if transparent else "opaque",
        event_type="outOfOffice" if busy == "OOF" else "default",
        organizer=organizer,
        attendees=guests,
        has_agenda=bool(props.text("DESCRIPTION").strip()) or props.has("ATTACH"),
        has_conference=_has_conference(props),
        title_tags=list(tags(summary, cal.words)),
        title=summary if cal.store_titles and summary else None,
        deleted=False,
    )


def event_of(record: dict) -> Event:
    """The ``Event`` of a record made by ``_record``."""
    return Event(**{**record, "attendees": [Attendee(*guest) for guest in record["attendees"]]})


def _event_of_row(row: dict) -> Event:
    """The ``Event`` of a row of the lake's columns."""
    return Event(**{**row, "source": SOURCE, "attendees": [Attendee(**guest) for guest in row["attendees"]]})


# -- one series -> its occurrences in the window -------------------------------------------
def _original_start(occurrence: icalendar.Component, moved: dict[str, timedelta]) -> date:
    """The slot an occurrence was generated for, before any override moved it.

    recurring_ical_events gives every occurrence a RECURRENCE-ID, but the occurrences after a
    RANGE=THISANDFUTURE override carry the override's; they were moved by the same amount.
    """
    rid = occurrence.get("RECURRENCE-ID")
    if rid is None:
        return occurrence.start
    shift = moved.get(stamp(rid.dt))
    if shift is None or str(rid.params.get("RANGE", "")).upper() != "THISANDFUTURE":
        return rid.dt
    return occurrence.start - shift


def _this_and_future_shifts(components: list[icalendar.Component]) -> dict[str, timedelta]:
    shifts = {}
    for c in components:
        rid = c.get("RECURRENCE-ID")
        if rid is not None and str(rid.params.get("RANGE", "")).upper() == "THISANDFUTURE":
            start, original = c.start, rid.dt
            if isinstance(start, datetime) != isinstance(original, datetime):
                continue
            shifts[stamp(original)] = start - original
    return shifts


# A rule whose steps from its start to the window's end could pass this many times the cap is
# not expanded at all: dateutil walks every step from DTSTART, inside the window or not.
STEPS_PER_OCCURRENCE_CAP = 20
_PERIOD_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400, "WEEKLY": 7 * 86400}
_PERIOD_SECONDS |= {"MONTHLY": 28 * 86400, "YEARLY": 365 * 86400}  # the shortest month and year
_DAYS_IN_PERIOD = {"WEEKLY": 7, "MONTHLY": 31, "YEARLY": 366}
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO", "BYMONTH")
_TIME_PARTS = (("BYSECOND", 1), ("BYMINUTE", 60), ("BYHOUR", 3600))


def _rule_steps(rule: Mapping, first: datetime, last: datetime) -> int:
    """At most how many times ``rule`` (an RRULE as icalendar reads it) repeats from ``first``
    to ``last``: whole periods, times what its BY parts may add to each, within its COUNT."""
    freq = str(rule["FREQ"][0]).upper()
    period = _PERIOD_SECONDS[freq] * max(1, int((rule.get("INTERVAL") or [1])[0]))
    if rule.get("UNTIL"):
        last = min(last, _as_utc(rule["UNTIL"][0]) + timedelta(days=1))
    steps = max(0, int((last - first).total_seconds() // period)) + 1
    for part, seconds in _TIME_PARTS:
        if rule.get(part) and seconds < _PERIOD_SECONDS[freq]:
            steps *= len(rule[part])
    if freq in _DAYS_IN_PERIOD and any(rule.get(part) for part in _DAY_PARTS):
        steps *= _DAYS_IN_PERIOD[freq]
    return min(steps, int(rule["COUNT"][0])) if rule.get("COUNT") else steps


def _as_utc(value: date) -> datetime:
    """A date or date-time in UTC, a floating one read as UTC (for bounds only)."""
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return utc(value, UTC)


def _series_steps(components: list[icalendar.Component], last: datetime, since: datetime | None = None) -> int:
    """At most how many times the RRULEs of a series repeat from their DTSTART (or ``since``,
    when later) to ``last``; 0 when a rule cannot be read (recurring_ical_events then says
    what is wrong)."""
    steps = 0
    try:
        for component in components:
            first = _as_utc(component.get("DTSTART").dt) if "DTSTART" in component else last
            first = max(first, since) if since else first
            steps += sum(_rule_steps(rule, first, last) for rule in _props(component, "RRULE"))
    except (KeyError, ValueError, TypeError, IndexError, AttributeError):
        return 0
    return steps


def _occurrences(
    components: list[icalendar.Component], start: datetime, end: datetime, cap: int
) -> tuple[list[icalendar.Component], str | None]:
    """The occurrences of one series around the window, at most ``cap`` of them, and why not
    all were taken (None when they were). A rule that may repeat more often is expanded lazily,
    a stretch of the window at a time, and cut at the cap; one that would take more than
    ``STEPS_PER_OCCURRENCE_CAP`` times the cap in steps from its start is stopped there."""
    series = icalendar.Calendar()
    for component in components:
        series.add_component(component)
    query = recurring_ical_events.of(series)
    low, high = start - MARGIN, end + MARGIN
    if _series_steps(components, high) <= cap:
        return query.between(low, high), None
    setting = f"the cap of {cap:,} occurrences per series (imports.max_occurrences_per_series)"
    budget = STEPS_PER_OCCURRENCE_CAP * cap
    if _series_steps(components, low) > budget:
        return [], f"its RRULE repeats it over {budget:,} times before the window starts, far over {setting}; skipped"
    taken, reached = _first_occurrences(query, components, (low, start, high), cap, budget)
    if len(taken) > cap:
        return taken[:cap], f"its RRULE repeats it more than {setting}; only its first {cap:,} are imported"
    if reached < high:
        return taken, f"its RRULE needs over {budget:,} steps to reach the end ({setting}); cut at {reached:%F}"
    return taken, None


def _first_occurrences(
    query, components: list[icalendar.Component], bounds: tuple[datetime, datetime, datetime], cap: int, budget: int
) -> tuple[list[icalendar.Component], datetime]:
    """Up to cap + 1 occurrences that do not end before the window's start, asked for from
    ``low`` to ``high`` a stretch at a time (the first one as long as the rule's densest cap + 1
    steps, then twice as long each time), lazily, and how far they reach. ``bounds``: (low,
    the window's start, high). recurring_ical_events' own ``between`` would make every
    occurrence of the window at once."""
    low, start, high = bounds
    dense = _series_steps(components, high, since=low)
    span = (high - low) * min(1.0, (cap + 1) / max(dense, 1))
    taken: list[icalendar.Component] = []
    seen: set = set()
    reached = low
    while reached < high and _series_steps(components, min(reached + span, high)) <= budget:
        up = min(reached + span, high)
        for occurrence in (o for one in query.series for o in one.between(reached, up)):
            if occurrence.id in seen or _before(occurrence, start):
                continue
            seen.add(occurrence.id)
            taken.append(occurrence.as_component(query.keep_recurrence_attributes))
            if len(taken) > cap:
                return taken, up
        reached, span = up, span * 2
    return taken, reached


def _before(occurrence, start: datetime) -> bool:
    """Whether an occurrence ends before ``start`` (``_overlaps`` would leave it out)."""
    return _as_utc(occurrence.end) <= start and _as_utc(occurrence.start) < start


def _series_events(
    uid: str, components: list[icalendar.Component], cal: _Calendar, start: datetime, end: datetime
) -> tuple[list[dict], str | None]:
    """The events of one UID's components (a series and its overrides, or a single event), as
    recurring_ical_events expands them, and why some were left (see ``_occurrences``); raises
    whatever it raises on a broken series."""
    occurrences, cut = _occurrences(components, start, end, cal.max_occurrences)
    recurring = any(k in c for c in components for k in RECURRING)
    moved = _this_and_future_shifts(components)
    events = []
    for occurrence in occurrences:
        key = f"{uid}/{stamp(_original_start(occurrence, moved))}" if recurring else uid
        series_id = f"{cal.feed}/{uid}" if recurring else ""
        events.append(_record(_ComponentProps(occurrence), occurrence.start, occurrence.end, key, series_id, cal))
    return events, cut


def _overlaps(s: datetime, e: datetime, start: datetime, end: datetime) -> bool:
    return s < end and (e > start or (e == s and s >= start))


# -- a file -> events ------------------------------------------------------------------------
def iter_ics_events(*args, **kwargs) -> Iterator[Event]:
    """``iter_ics_records`` as ``Event`` objects."""
    for item in iter_ics_records(*args, **kwargs):
        if isinstance(item, pa.Table):
            yield from map(_event_of_row, item.drop_columns(["attendee_count"]).to_pylist())
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
        cal = _Calendar(
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
                problem = _problem(item)
                if problem:
                    on_skip(_where(name, line_of, index - 1, uid or "without UID"), problem)
                    continue
                uid = uid or _content_uid(item)
                _localise(item, cal.zone, utc_too=cal.utc_too)
            groups.setdefault(uid, []).append(item)
            first_event.setdefault(uid, index - 1)

        for uid, items in groups.items():
            try:
                components = [_component(item, taken, cal) for item in items]
                events, cut = _series_events(uid, components, cal, start, end)
            except Exception as e:  # whatever breaks one series must not stop the others
                on_skip(
                    _where(name, line_of, first_event[uid], uid),
                    f"its dates or recurrence rule cannot be expanded ({e}); fix or remove it",
                )
                continue
            if cut:
                on_skip(_where(name, line_of, first_event[uid], uid), cut)
            for event in events:
                if not _overlaps(event["start"], event["end"], start, end):
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
    data = _without_superseded(data)
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


_BLANKED = re.compile(rb"[^\r\n\x0b\x0c\x1c\x1d\x1e\x85]+")
_UID_LINE = re.compile(rb"\nUID:([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
_RID_LINE = re.compile(rb"\nRECURRENCE-ID([;:][^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)")
_SEQUENCE_LINE = re.compile(rb"\nSEQUENCE:([^\r\n]*)")


def _without_superseded(data: bytes) -> bytes:
    """The file with every event that another one of the same UID and RECURRENCE-ID (as
    written) supersedes blanked out, its lines kept empty: a byte-for-byte copy of an earlier
    one, or one with a lower SEQUENCE. recurring_ical_events would keep only the one with the
    highest SEQUENCE (the first of equals) anyway, but each copy cost icalendar a component
    and the series a place: 150,000 copies of one UID took minutes and gigabytes. Events are
    found as the plain reader finds them (``ics_plain._spans``)."""
    if not _many_copies(data):
        return data
    nl = b"\r\n" if data[: data.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    begin, end = nl + b"BEGIN:VEVENT" + nl, nl + b"END:VEVENT" + nl
    kept: dict[tuple, tuple[int, int, int]] = {}  # by (UID, RECURRENCE-ID): (start, stop, SEQUENCE)
    dropped: list[tuple[int, int]] = []
    b = data.find(begin)
    while b >= 0:
        e = data.find(end, b + len(begin) - len(nl))
        if e < 0:
            break
        start, stop = b + len(nl), e + len(end)
        if data.find(begin, b + len(begin) - len(nl), e) < 0:  # holds no other event
            block = data[start - len(nl) : stop]
            key, sequence = _version_key(block)
            if key is not None:
                earlier = kept.setdefault(key, (start, stop, sequence))
                if earlier[0] != start:
                    if sequence > earlier[2]:
                        kept[key] = (start, stop, sequence)
                    dropped.append((start, stop) if sequence <= earlier[2] else earlier[:2])
        b = data.find(begin, stop - len(nl))
    if not dropped:
        return data
    pieces, done = [], 0
    for start, stop in sorted(dropped):
        pieces += (data[done:start], _BLANKED.sub(b"", data[start:stop]))
        done = stop
    return b"".join([*pieces, data[done:]])


COPIES_WORTH_A_LOOK = 50  # a series with this many overrides is rare; looking costs a tenth of a read


def _many_copies(data: bytes) -> bool:
    """Whether some UID line is written ``COPIES_WORTH_A_LOOK`` times or more (one scan in C)."""
    uids = _UID_LINE.findall(data)
    return len(uids) >= COPIES_WORTH_A_LOOK and Counter(uids).most_common(1)[0][1] >= COPIES_WORTH_A_LOOK


def _version_key(block: bytes) -> tuple[tuple | None, int]:
    """(UID, RECURRENCE-ID) of an event's text as written, and its SEQUENCE; no key when its
    UID is missing or its SEQUENCE is not a plain number (icalendar decides those)."""
    uids, rids, sequence = (line.findall(block) for line in (_UID_LINE, _RID_LINE, _SEQUENCE_LINE))
    if len(uids) != 1 or not uids[0].strip() or len(rids) > 1 or len(sequence) > 1:
        return None, 0
    if sequence and not sequence[0].isdigit():
        return None, 0
    return (uids[0], rids[0] if rids else None), int(sequence[0]) if sequence else -1  # as recurring_ical_events


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


def _component(item: icalendar.Component | int, taken: ics_plain.Taken | None, cal: _Calendar) -> icalendar.Component:
    """An event as icalendar reads it: a plain event whose UID turned out to be shared goes to
    recurring_ical_events with the others after all."""
    if not isinstance(item, int):
        return item
    [calendar] = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\n{taken.text(item)}END:VCALENDAR\n", multiple=True)
    component = calendar.subcomponents[0]
    _localise(component, cal.zone, utc_too=cal.utc_too)
    return component
