"""Plain VEVENTs of an .ics file read without icalendar's object model, for ``connectors.ics``.

icalendar turns each content line into a property object (name, parameters, typed value), about
20 lines per event and one more per attendee: that was two thirds of an import's time. Most
events of a real export are single events written in plain lines, and an import needs only a
dozen of their values. ``split`` finds those events in the unfolded text and reads their lines
with regular expressions; it leaves everything else, with the calendar's own lines and time zone
definitions, in a *skeleton* text that ``connectors.ics`` gives to icalendar as before.

Only what is certain to read exactly as icalendar reads it is taken:

- the file's BEGIN/END lines are all in canonical form, and each calendar is a VCALENDAR;
- every line of the event is ``NAME(;PARAM=value)*:value`` with an upper-case name and
  parameter values free of quotes inside, backslashes, carets, percent signs, commas and
  surrounding blanks (icalendar rewrites those); a component nested in the event (an alarm)
  is one icalendar parses without error, as it would otherwise fail the whole file;
- values are taken as icalendar gives them: text, address and URI values unescaped the way it
  unescapes them, unknown (X-) properties verbatim, dates and times as ``vDDDTypes`` makes them,
  for the three plain forms only (``20261110``, ``20261110T090000``, ``20261110T090000Z``) and
  for IANA time zone names only (a Windows name or a custom VTIMEZONE depends on the order in
  which icalendar met them).

Whether an event is single (a UID no other event of the calendar shares) and sound is for
``connectors.ics`` to decide; events with RRULE, RDATE, EXDATE or RECURRENCE-ID are never plain.
"""

from __future__ import annotations

import functools
import itertools
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Generic, TypeVar

import icalendar
from icalendar.parser.content_line import UFOLD
from icalendar.parser.property import unescape_backslash
from icalendar.prop import vDDDTypes, vUnknown
from icalendar.timezone import tzp

# Patterns over lines start with the newline before the line (the text gets one in front): a
# literal start is searched for fast, where "^" would be tried at every character.
#
# Every line icalendar could take for a BEGIN or END (it strips blanks from names and upper-cases
# them; "ı" upper-cases to "I"), and the canonical form the fast reader understands.
_ANY_BOUNDARY = re.compile(
    r"\n[^\S\n]*(?:[Bb][ \t]*[Ee][ \t]*[Gg][ \t]*[Iiı][ \t]*[Nn]|[Ee][ \t]*[Nn][ \t]*[Dd])[^\S\n]*[;:]"
)
_BOUNDARY = re.compile(r"\n(BEGIN|END):([A-Z][A-Z0-9-]*)(?=\n)")

# A plain content line: name, parameters, value. A parameter value is quoted (no quote, control
# character, backslash, caret or percent sign inside) or bare (no separator, and no blank at
# either end, which icalendar would strip).
_BARE = r'[^\s";:,%^\\\x00-\x1f\x7f](?:[^";:,%^\\\x00-\x08\x0a-\x1f\x7f]*[^\s";:,%^\\\x00-\x1f\x7f])?'
_QUOTED = r'"[^"%^\\\x00-\x08\x0a-\x1f\x7f]*"'
_PARAMETERS = rf"(?:;[A-Za-z0-9-]+=(?:{_QUOTED}|{_BARE}|))*"
_LINE = re.compile(rf"\n([A-Z][A-Z0-9-]*)({_PARAMETERS}):(.*)")
_ATTENDEE = re.compile(rf"\nATTENDEE({_PARAMETERS}):(.*)")
# An event's lines: a run of ATTENDEE lines as one piece (a team's invitations list the same
# people in the same order, so a run is read, and checked to be plain, once per import), or one
# other plain line.
_EVENT_LINE = re.compile(rf"\n(?:(ATTENDEE[;:].*(?:\nATTENDEE[;:].*)*)|([A-Z][A-Z0-9-]*)({_PARAMETERS}):(.*))")
_PARAMETER = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^;]*)')
_TYPED = re.compile(r";VALUE=", re.I)
_FOLD_AFTER_BLANK_LINES = re.compile(r"\n\n+[ \t]")  # icalendar unfolds these too
_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})(Z?))?")

TIME_NAMES = frozenset({"DTSTART", "DTEND", "DTSTAMP", "LAST-MODIFIED", "CREATED"})
RECURRENCE = frozenset({"RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
UTC_ZONE = tzp.localize_utc(datetime(2000, 1, 1)).tzinfo  # what icalendar gives a "Z" time

Line = tuple[str, str]  # (parameters as written, raw value)
T = TypeVar("T")


@dataclass
class Plan(Generic[T]):
    """The file cut in two: the events taken, and the skeleton text for icalendar."""

    skeleton: str
    calendars: list[list[T | None]] = field(default_factory=list)  # per VEVENT: taken, or None (in the skeleton)


@dataclass
class PlainEvent:
    """One VEVENT read from plain lines, and its text for when icalendar has to read it after all."""

    once: dict[str, Line]  # each property written once, by name
    attendees: tuple[str, ...]  # runs of ATTENDEE lines (without the newline before each run), see attendee_lines
    repeated: frozenset[str]  # other names written more than once (their values are not kept)
    typed: bool  # a line has a VALUE parameter
    source: str  # the unfolded file, and where in it the event's lines are (BEGIN:VEVENT to END:VEVENT)
    span: tuple[int, int]

    def has(self, name: str) -> bool:
        return name in self.once or name in self.repeated or (name == "ATTENDEE" and bool(self.attendees))

    def names(self) -> Iterable[str]:
        return itertools.chain(self.once, self.repeated)

    def text_of(self, name: str) -> str:
        """The value icalendar gives a property written once, "" when absent."""
        line = self.once.get(name)
        return value_of(name, line[1]) if line else ""

    def params_of(self, name: str) -> Mapping[str, str]:
        line = self.once.get(name)
        return params(line[0]) if line else {}

    def time_of(self, name: str, zone_of: bool = True) -> date | datetime | None:
        """The date or date-time of a property written once, as icalendar reads it; None when absent.

        Raises ValueError for anything but the plain forms, a VALUE other than DATE or DATE-TIME,
        or a TZID that is not an IANA name. TZID counts only where icalendar heeds it (``zone_of``)."""
        line = self.once.get(name)
        return _time(*line, zone_of) if line else None

    def component(self) -> icalendar.Event:
        """The event as icalendar reads it."""
        text = self.source[self.span[0] : self.span[1]]
        [calendar] = icalendar.Calendar.from_ical(f"BEGIN:VCALENDAR\n{text}END:VCALENDAR\n", multiple=True)
        return calendar.subcomponents[0]


def split(text: str, take: Callable[[PlainEvent], T | None]) -> Plan[T] | None:
    """The plain top-level events of ``text`` that ``take`` takes (it returns what to keep of
    one, or None), and the rest as a skeleton; None when the file's structure is anything but
    canonical (icalendar then reads the whole file)."""
    unfolded = _unfold(text)
    if unfolded is None or not tzp.uses_zoneinfo():
        return None
    text = f"\n{unfolded}" if unfolded.endswith("\n") else f"\n{unfolded}\n"
    boundaries = list(_BOUNDARY.finditer(text))
    if len(boundaries) != len(_ANY_BOUNDARY.findall(text)):
        return None
    plan: Plan[T] = Plan("")
    kept: list[str] = []
    done = 0  # where the skeleton's next piece starts
    stack: list[str] = []
    event_start = None
    for boundary in boundaries:
        verb, kind = boundary.groups()
        if verb == "BEGIN":
            if not stack and kind != "VCALENDAR":
                return None  # a top-level component other than a calendar
            if not stack:
                plan.calendars.append([])
            if kind == "VEVENT" and len(stack) == 1:
                event_start = boundary
            stack.append(kind)
            continue
        if not stack or stack.pop() != kind:
            return None
        if kind == "VEVENT" and len(stack) == 1:
            event = _plain_event(text, event_start, boundary)
            taken = take(event) if event is not None else None
            plan.calendars[-1].append(taken)
            if taken is not None:
                kept.append(text[done : event_start.start()])
                done = boundary.end()
    if stack:
        return None
    kept.append(text[done:])
    plan.skeleton = "".join(kept)[1:]  # without the newline put in front
    return plan


def _unfold(text: str) -> str | None:
    """``text`` unfolded into content lines as icalendar unfolds it, with LF line ends; None when
    a carriage return stands alone (icalendar keeps it inside a line, other readers break there)."""
    text = text.replace("\r\n", "\n")
    if "\r" in text:
        return None
    if _FOLD_AFTER_BLANK_LINES.search(text):
        return UFOLD.sub("", text)
    return text.replace("\n ", "").replace("\n\t", "")  # the same, without UFOLD's lookbehinds


def _plain_event(text: str, begin: re.Match, end: re.Match) -> PlainEvent | None:
    """The event between a BEGIN:VEVENT and its END:VEVENT (matches of _BOUNDARY in ``text``)."""
    first, last = begin.end(), end.start()
    lines = _EVENT_LINE.findall(text, first, last)
    attendees = tuple(run for run, _, _, _ in lines if run)
    once = {name: (written, raw) for run, name, written, raw in lines if not run}
    read = len(lines) + sum(run.count("\n") for run in attendees)
    if read != text.count("\n", first, last) or None in map(attendee_lines, attendees):
        return None  # a line that is not plain, or an empty one
    repeated: frozenset[str] = frozenset()
    if len(once) + len(attendees) != len(lines) or "BEGIN" in once:
        fields = _with_repeats(_LINE.findall(text, first, last))
        if fields is None:
            return None
        once, attendees, repeated = fields
    if not RECURRENCE.isdisjoint(once) or not RECURRENCE.isdisjoint(repeated):
        return None
    typed = _TYPED.search(text, first, last) is not None
    return PlainEvent(once, attendees, repeated, typed, text, (begin.start() + 1, end.end() + 1))


def _with_repeats(lines: list[tuple[str, str, str]]) -> tuple[dict[str, Line], tuple[str, ...], frozenset[str]] | None:
    """The event's fields when a name repeats or a component (an alarm) is nested in it; None
    when icalendar would fail on the nested component."""
    once: dict[str, Line] = {}
    attendees: list[str] = []
    repeated: set[str] = set()
    nested: list[str] = []
    depth = 0
    for name, written, raw in lines:
        if depth or name == "BEGIN":
            nested.append(f"{name}{written}:{raw}\n")
            depth += (name == "BEGIN") - (name == "END")
            if not depth:
                if not _parses("".join(nested)):
                    return None
                nested = []
        elif name == "ATTENDEE":
            attendees.append(f"ATTENDEE{written}:{raw}")
        elif name in once or name in repeated:
            once.pop(name, None)
            repeated.add(name)
        else:
            once[name] = (written, raw)
    return once, tuple(attendees), frozenset(repeated)


@functools.lru_cache(maxsize=1024)  # alarms repeat from event to event
def _parses(component: str) -> bool:
    """Whether icalendar reads a nested component without error (an alarm's errors fail the file)."""
    try:
        icalendar.Component.from_ical(component)
    except Exception:
        return False
    return True


@functools.lru_cache(maxsize=4096)  # the same lists of people are invited again and again
def attendee_lines(run: str) -> tuple[Line, ...] | None:
    """The lines of a run of ATTENDEE lines (``PlainEvent.attendees``); None when one is not plain."""
    lines = tuple(_ATTENDEE.findall(f"\n{run}"))
    return lines if len(lines) == run.count("\n") + 1 else None


@functools.lru_cache(maxsize=4096)  # a calendar has few distinct parameter lists
def params(written: str) -> Mapping[str, str]:
    """Parameters of a plain line by upper-case name (a later one wins, as in icalendar)."""
    return {name.upper(): value.strip('"') for name, value in _PARAMETER.findall(written)}


@functools.lru_cache(maxsize=256)
def _verbatim(name: str) -> bool:
    """Whether icalendar keeps the property's value as written (UNKNOWN values: X- properties)."""
    return icalendar.Component.types_factory.for_property(name) is vUnknown


def value_of(name: str, raw: str) -> str:
    return raw if "\\" not in raw or _verbatim(name) else unescape_backslash(raw)


@functools.lru_cache(maxsize=65536)  # exports repeat times (the export's DTSTAMP, meeting slots)
def _time(written: str, raw: str, zone_of: bool) -> date | datetime:
    given = params(written)
    if given.get("VALUE", "DATE").upper() not in ("DATE", "DATE-TIME"):  # another value type
        raise ValueError(f"VALUE={given['VALUE']}")
    return _parse_time(raw, _iana(given["TZID"]) if zone_of and "TZID" in given else None)


def _parse_time(raw: str, zone: tzinfo | None) -> date | datetime:
    """``vDDDTypes.from_ical(raw, tzid)`` for the plain forms, with the TZID already looked up."""
    m = _TIME.fullmatch(raw)
    if not m:
        raise ValueError(f"not a plain date or date-time: {raw!r}")
    year, month, day, hour, minute, second, utc = m.groups()
    if hour is None:
        return datetime(int(year), int(month), int(day), tzinfo=zone) if zone else date(int(year), int(month), int(day))
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))
    if zone:
        return value.replace(tzinfo=zone)  # icalendar lets a TZID win over a "Z"
    return value.replace(tzinfo=UTC_ZONE) if utc else value


def parse_duration(raw: str) -> timedelta:
    value = vDDDTypes.from_ical(raw)
    if not isinstance(value, timedelta):
        raise ValueError(f"not a duration: {raw!r}")
    return value


@functools.lru_cache(maxsize=1024)
def _iana(tzid: str) -> tzinfo:
    if tzid not in _available_zones():
        raise ValueError(f"TZID {tzid!r} is not an IANA name")
    return zoneinfo.ZoneInfo(tzid)


@functools.cache
def _available_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
