"""iCalendar (.ics) exports -> ``Event`` records, for teams that import files instead of syncing.

Google Calendar, Outlook/Exchange and Apple Calendar all export .ics files (Google as a .zip
of them). ``calendar_files`` reads a file or a zip; ``iter_ics_events`` turns one calendar
into the events of one account that overlap a window. Storing, detecting unchanged records
and tombstoning are the caller's business (``timeaudit.imports``).

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
  A broken event is reported through ``on_skip`` and the rest of the file still comes out.

Kept per event: as in the Google connector. Descriptions are only checked for being
non-empty; the title only when ``privacy.store_titles`` is on.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from pathlib import Path, PurePosixPath
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import icalendar
import recurring_ical_events
from icalendar.error import BrokenCalendarProperty
from icalendar.timezone.tzid import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from timeaudit.config import Settings
from timeaudit.errors import UserError
from timeaudit.model import Attendee, Event
from timeaudit.tags import tags_of, vocabulary

SOURCE = "ics"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # `updated` of an event that carries no timestamp at all
TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE")
RESPONSES = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
    "NEEDS-ACTION": "needsAction",
    "DELEGATED": "declined",  # someone else goes in the account's place
}
CONFERENCE_PROPERTIES = ("CONFERENCE", "X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL")
CONFERENCE_PREFIXES = ("X-MICROSOFT-ONLINEMEETING",)
MEETING_URL = re.compile(
    r"https?://[^\s]*(zoom\.us|teams\.microsoft\.com|teams\.live\.com|meet\.google\.com|webex\.com|"
    r"gotomeeting\.com|gotomeet\.me|whereby\.com|chime\.aws|bluejeans\.com|meet\.jit\.si|facetime\.apple\.com)",
    re.IGNORECASE,
)
# The expansion asks for a little more than the window, then keeps exactly what overlaps it.
MARGIN = timedelta(days=2)


class ImportFileError(UserError):
    """A calendar file that cannot be read at all."""


# -- files ---------------------------------------------------------------------------------
def calendar_files(path: Path) -> Iterator[tuple[str, bytes]]:
    """(display name, bytes) of a .ics file, of each .ics in a .zip, or of each .ics/.zip in a folder."""
    path = Path(path)
    if path.is_dir():
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() in (".ics", ".zip") and p.is_file())
        for p in found:
            yield from calendar_files(p)
        return
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImportFileError(f"{path.name}: cannot be read ({e.strerror or e}); check the path") from None
    if path.suffix.lower() != ".zip":
        yield path.name, data
        return
    try:
        with zipfile.ZipFile(path) as archive:
            members = [
                m
                for m in archive.infolist()
                if not m.is_dir() and m.filename.lower().endswith(".ics") and "__MACOSX" not in m.filename
            ]
            if not members:
                raise ImportFileError(f"{path.name}: the zip holds no .ics file; export the calendars again")
            for member in members:
                yield f"{path.name}/{member.filename}", archive.read(member)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as e:
        raise ImportFileError(
            f"{path.name}: not a readable zip file ({e}); download the export again, or unpack it and import the .ics"
        ) from None


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


# -- reading and checking the file ---------------------------------------------------------
def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # older Outlook exports; any byte decodes, the structure check decides


def _event_lines(name: str, text: str) -> list[int]:
    """The line of every top-level BEGIN:VEVENT, in order; ImportFileError if the structure is broken.

    icalendar's own messages on a cut-short or foreign file name neither the file nor the line.
    """
    stack: list[tuple[str, int]] = []
    events: list[int] = []
    seen_calendar = False
    last = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        last = number
        upper = line.upper()
        if not seen_calendar and upper != "BEGIN:VCALENDAR":
            raise ImportFileError(
                f"{name}: not an iCalendar file (line {number} should be BEGIN:VCALENDAR); "
                "export the calendar as .ics (iCalendar) and import that file"
            )
        if upper.startswith("BEGIN:"):
            seen_calendar = True
            kind = upper[6:]
            if kind == "VEVENT" and len(stack) == 1:
                events.append(number)
            stack.append((kind, number))
        elif upper.startswith("END:"):
            kind = upper[4:]
            if not stack or stack[-1][0] != kind:
                open_kind = f"{stack[-1][0]} begun at line {stack[-1][1]}" if stack else "nothing"
                raise ImportFileError(
                    f"{name}: line {number} ends {kind} but {open_kind} is open; the file is damaged, export it again"
                )
            stack.pop()
    if not seen_calendar:
        raise ImportFileError(f"{name}: the file is empty; export the calendar as .ics again")
    if stack:
        kind, begun = stack[-1]
        raise ImportFileError(
            f"{name}: cut short at line {last} inside {kind} begun at line {begun} (no END:VCALENDAR); "
            "the export or download was interrupted, export it again"
        )
    return events


def _parse(name: str, data: bytes) -> tuple[list[icalendar.Calendar], list[int]]:
    text = _text(data)
    lines = _event_lines(name, text)
    try:
        calendars = icalendar.Calendar.from_ical(text, multiple=True)
    except ValueError as e:
        raise ImportFileError(f"{name}: not valid iCalendar ({e}); export the calendar as .ics again") from None
    return calendars, lines


# -- time zones ----------------------------------------------------------------------------
def _zone(name: str) -> ZoneInfo | None:
    name = name.strip()
    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name)) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _zone_name(value: date, default: ZoneInfo) -> str:
    """The IANA name of a start's zone: its own when it has one, else (dates, UTC, custom zones) the calendar's."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() == timedelta(0) == value.dst():
        return default.key
    zone = value.tzinfo if isinstance(value.tzinfo, ZoneInfo) else _zone(tzid_from_dt(value) or "")
    return zone.key if zone else default.key


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


def _problem(component: icalendar.Component) -> str | None:
    """Why an event cannot be imported, or None."""
    if not str(component.get("UID") or "").strip():
        return "has no UID, so it cannot be told apart on the next import; give it one or remove it"
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
    if type(start) is not type(end):
        return False  # a date against a date-time: recurring_ical_events decides
    if isinstance(start, datetime) and (start.tzinfo is None) != (end.tzinfo is None):
        return False  # floating against zoned: only comparable once localised
    return end < start


def _localise(component: icalendar.Component, zone: tzinfo, utc_too: bool) -> None:
    """Floating times -> the calendar's zone, in place (and UTC times too under Google's X-WR-TIMEZONE).

    X-WR-TIMEZONE means "UTC times recur by this zone's wall clock"; recurring_ical_events would
    apply it itself, but dropping the RANGE parameter of a RECURRENCE-ID on the way.
    """
    for _key, _prop, value in _time_values(component):
        dt = value.dt
        if not isinstance(dt, datetime):
            continue
        if dt.tzinfo is None:
            value.dt = dt.replace(tzinfo=zone)
        elif utc_too and dt.utcoffset() == timedelta(0) and str(dt.tzname()).upper() == "UTC":
            value.dt = dt.astimezone(zone)


def _utc(value: date, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


def _stamp(value: date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


# -- one occurrence -> Event ---------------------------------------------------------------
def _email(prop) -> str:
    address = str(prop or "").strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    if "@" not in address:
        address = str(getattr(prop, "params", {}).get("EMAIL") or "")
    return address.strip().lower() if "@" in address else ""


def _attendees(component: icalendar.Component) -> list[Attendee]:
    out = []
    for prop in _props(component, "ATTENDEE"):
        params = getattr(prop, "params", {})
        email = _email(prop)
        if not email or str(params.get("CUTYPE", "")).upper() in ("ROOM", "RESOURCE"):
            continue
        response = RESPONSES.get(str(params.get("PARTSTAT", "")).upper(), "needsAction")
        optional = str(params.get("ROLE", "")).upper() in ("OPT-PARTICIPANT", "NON-PARTICIPANT")
        out.append(Attendee(email, response, optional))
    return out


def _self_response(component: icalendar.Component, account: str, organizer: str) -> str:
    if organizer == account:
        return "accepted"
    for prop in _props(component, "ATTENDEE"):
        if _email(prop) == account:
            return RESPONSES.get(str(prop.params.get("PARTSTAT", "")).upper(), "needsAction")
    return "accepted"  # an event with no guests, or a copy the account is not listed on: its own time


def _updated(component: icalendar.Component) -> datetime:
    for key in ("LAST-MODIFIED", "DTSTAMP", "CREATED"):
        prop = component.get(key)
        try:
            value = prop.dt if prop is not None else None
        except BrokenCalendarProperty:
            continue
        if isinstance(value, datetime):
            return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, date):
            return datetime.combine(value, time(0), tzinfo=UTC)
    return EPOCH


def _has_conference(component: icalendar.Component) -> bool:
    for key in component:
        if key in CONFERENCE_PROPERTIES or key.startswith(CONFERENCE_PREFIXES):
            if str(component[key]).strip() and str(component[key]).strip().upper() != "FALSE":
                return True
    return any(MEETING_URL.search(str(component.get(key) or "")) for key in ("LOCATION", "URL"))


@dataclass(frozen=True)
class _Calendar:
    """What every event of one calendar shares."""

    account: str
    feed: str
    zone: ZoneInfo
    words: tuple[str, ...]
    store_titles: bool


def _to_event(occurrence: icalendar.Component, key: str, series_id: str, cal: _Calendar) -> Event:
    start, end = occurrence.start, occurrence.end
    all_day = not isinstance(start, datetime)
    start_at, end_at = _utc(start, cal.zone), _utc(end, cal.zone)
    organizer = _email(occurrence.get("ORGANIZER"))
    summary = str(occurrence.get("SUMMARY") or "").strip()
    busy = str(occurrence.get("X-MICROSOFT-CDO-BUSYSTATUS") or "").strip().upper()
    status = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}.get(str(occurrence.get("STATUS", "")).upper())
    self_response = _self_response(occurrence, cal.account, organizer)
    if busy == "TENTATIVE" and self_response == "accepted" and organizer != cal.account:
        self_response = "tentative"  # Outlook shows the account as tentative in this meeting
    transparent = str(occurrence.get("TRANSP", "")).upper() == "TRANSPARENT" or busy == "FREE"
    return Event(
        source=SOURCE,
        account=cal.account,
        id=f"{cal.feed}/{key}",
        start=start_at,
        end=max(end_at, start_at),
        updated=_updated(occurrence),
        ical_uid=str(occurrence.get("UID")),
        series_id=series_id,
        tz=_zone_name(start, cal.zone),
        all_day=all_day,
        status=status or "confirmed",
        self_response=self_response,
        transparency="transparent" if transparent else "opaque",
        event_type="outOfOffice" if busy == "OOF" else "default",
        organizer=organizer,
        attendees=_attendees(occurrence),
        has_agenda=bool(str(occurrence.get("DESCRIPTION") or "").strip()) or "ATTACH" in occurrence,
        has_conference=_has_conference(occurrence),
        title_tags=tags_of(summary, cal.words),
        title=summary if cal.store_titles and summary else None,
    )


# -- one series -> its occurrences in the window -------------------------------------------
def _original_start(occurrence: icalendar.Component, moved: dict[str, timedelta]) -> date:
    """The slot an occurrence was generated for, before any override moved it.

    recurring_ical_events gives every occurrence a RECURRENCE-ID, but the occurrences after a
    RANGE=THISANDFUTURE override carry the override's; they were moved by the same amount.
    """
    rid = occurrence.get("RECURRENCE-ID")
    if rid is None:
        return occurrence.start
    shift = moved.get(_stamp(rid.dt))
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
            shifts[_stamp(original)] = start - original
    return shifts


def _occurrences(components: list[icalendar.Component], start: datetime, end: datetime) -> list[icalendar.Component]:
    series = icalendar.Calendar()
    for component in components:
        series.add_component(component)
    return recurring_ical_events.of(series).between(start - MARGIN, end + MARGIN)


def _overlaps(s: datetime, e: datetime, start: datetime, end: datetime) -> bool:
    return s < end and (e > start or (e == s and s >= start))


def iter_ics_events(
    name: str,
    data: bytes,
    account: str,
    settings: Settings,
    start: datetime,
    end: datetime,
    on_skip: Callable[[str, str], None],
) -> Iterator[Event]:
    """The events of one .ics file, as seen by ``account``, overlapping [start, end) (aware UTC).

    ``on_skip(item, reason)`` hears of every event that could not be imported; ``item`` names
    the file, the line and the UID (never the title). Raises ImportFileError for a file that
    cannot be read at all.
    """
    account = account.strip().lower()
    calendars, lines = _parse(name, data)
    words = vocabulary(settings.rules)
    org_zone = ZoneInfo(settings.organisation.timezone)
    seen: set[str] = set()
    index = 0
    for calendar in calendars:
        x_wr = _zone(str(calendar.get("X-WR-TIMEZONE") or ""))
        cal = _Calendar(account, _feed(calendar, name), x_wr or org_zone, words, settings.privacy.store_titles)
        groups: dict[str, list[icalendar.Component]] = {}
        first_line: dict[str, int] = {}
        for component in calendar.subcomponents:
            if component.name != "VEVENT":
                continue
            line = lines[index] if index < len(lines) else 0
            index += 1
            uid = str(component.get("UID") or "").strip()
            problem = _problem(component)
            if problem:
                on_skip(f"{name} line {line}: event {uid or 'without UID'}", problem)
                continue
            _localise(component, cal.zone, utc_too=x_wr is not None)
            groups.setdefault(uid, []).append(component)
            first_line.setdefault(uid, line)

        for uid, components in groups.items():
            item = f"{name} line {first_line[uid]}: event {uid}"
            try:
                occurrences = _occurrences(components, start, end)
            except Exception as e:  # whatever breaks one series must not stop the others
                on_skip(item, f"its dates or recurrence rule cannot be expanded ({e}); fix or remove it")
                continue
            recurring = any(k in c for c in components for k in ("RRULE", "RDATE", "RECURRENCE-ID"))
            moved = _this_and_future_shifts(components)
            for occurrence in occurrences:
                key = f"{uid}/{_stamp(_original_start(occurrence, moved))}" if recurring else uid
                event = _to_event(occurrence, key, f"{cal.feed}/{uid}" if recurring else "", cal)
                if not _overlaps(event.start, event.end, start, end):
                    continue
                if event.id in seen:
                    on_skip(item, f"repeats id {event.id}; only its first copy is imported")
                    continue
                seen.add(event.id)
                yield event
