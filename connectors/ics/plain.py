"""Plain single events of an .ics file read column by column, for ``connectors.ics.reader``.

Nearly every event of a real export is a single event written in plain lines, and most of its
bytes are folded ATTENDEE lines: a team's meetings list dozens of people, the same people
meeting after meeting. Reading each line in Python (icalendar makes an object of each) cost
about 100 µs an event. Here Python does a few byte searches per event and nothing per line or
per attendee; the rest is done by Arrow kernels over all events of the file at once, or once
per distinct value:

1. ``_spans`` finds each event between a canonical BEGIN:VEVENT and END:VEVENT line and cuts it
   in three: the lines before its first ATTENDEE line, the run of ATTENDEE lines, the lines
   after. Offsets into the file's bytes make these an Arrow array without copying the file.
2. ``_runs``: the runs are hashed where they lie (``dictionary_encode``), and each distinct run
   is unfolded and split into lines, each distinct line read once (``_attendee_line``), then
   spread over the events by index.
3. ``_lines``: the other lines are unfolded, split, checked against the plain line pattern (RE2)
   and cut into name, parameters and value; ``_Lines.column`` gives the value of a property per
   event. Text values are read by Python only where they need it (an escape, blanks to strip),
   other values once per distinct value, with the same functions as elsewhere.
4. Times: UTC date-times and dates, the forms of a Google export, are parsed and converted by
   Arrow; times with a TZID, floating times and durations are read one event at a time with the
   icalendar path's own rules (``_read_span``, ``_span``).
5. An event is *taken* only when it is certain to read exactly as icalendar reads it; every
   other event stays in a *skeleton* text, with the calendar's own lines and time zones, that
   ``connectors.ics.reader`` gives to icalendar as before. Certain means: every line is a plain
   ``NAME(;PARAM=value)*:value`` line (no nested component, no odd line break, no folded line
   that the file's structure check would take for BEGIN or END), the ATTENDEE lines are
   together, no recurrence, no repeated or typed (VALUE=) property the record reads, a UID, a
   DTSTART and an end of the same kind not before it, times in plain form and IANA zones.
   A file that is not UTF-8, or whose skeleton is not one sound calendar, is read whole by
   icalendar: whatever is reported on a broken file does not depend on this reader.
6. ``Taken.records`` makes the lake's columns of the taken events of one calendar (its zone,
   account and feed) that overlap the import window: one Arrow table, no object per event.

tests/test_ics.py holds the two paths to the same records, over the fixtures and generated
calendars.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo

import icalendar
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from icalendar.parser.property import unescape_backslash
from icalendar.prop import vDDDTypes, vUnknown
from icalendar.timezone import tzp

from connectors.columns import each_distinct
from connectors.ics.structure import BEGIN_OR_END, begin_lines, odd_line_breaks
from connectors.ics.values import (
    CONFERENCE_PREFIXES,
    CONFERENCE_PROPERTIES,
    EPOCH,
    MEETING_URL,
    ONE_VALUE,
    address,
    attendee,
    localised,
    same_kind,
    tags,
    utc,
    zone_name,
)
from timeaudit.core.model import EVENT_SCHEMA

# -- the plain line grammar (Python, for attendee runs) -------------------------------------
# A parameter value is quoted (no quote, control character, backslash, caret or percent sign
# inside) or bare (no separator, and no blank at either end, which icalendar would strip).
_BARE = r'[^\s";:,%^\\\x00-\x1f\x7f](?:[^";:,%^\\\x00-\x08\x0a-\x1f\x7f]*[^\s";:,%^\\\x00-\x1f\x7f])?'
_QUOTED = r'"[^"%^\\\x00-\x08\x0a-\x1f\x7f]*"'
_PARAMETERS = rf"(?:;[A-Za-z0-9-]+=(?:{_QUOTED}|{_BARE}|))*"
_ATTENDEE = re.compile(rf"\nATTENDEE({_PARAMETERS}):(.*)")
_PARAMETER = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^;]*)')
_TIME = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})(?:T([0-9]{2})([0-9]{2})([0-9]{2})(Z?))?")

# -- the same grammar in RE2, for the other lines of all events at once ---------------------
# Python's \s (which _BARE excludes at either end) spelled out, and the characters other than
# LF and CRLF that str.splitlines() breaks lines at: the file's structure check then reads the
# file line by line, so a line holding one is left to icalendar.
_BLANKS = r"\t\x0b\x0c\r\x1c-\x1f \x85\xa0\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_BREAKS = r"\r\n\x0b\x0c\x1c\x1d\x1e\x85\x{2028}\x{2029}"
_RE2_BARE = (
    rf'[^{_BLANKS}";:,%^\\\x00-\x1f\x7f]'
    rf'(?:[^";:,%^\\\x00-\x08\x0a-\x1f\x7f\x85\x{{2028}}\x{{2029}}]*[^{_BLANKS}";:,%^\\\x00-\x1f\x7f])?'
)
_RE2_QUOTED = r'"[^"%^\\\x00-\x08\x0a-\x1f\x7f\x85\x{2028}\x{2029}]*"'
_RE2_PARAMETERS = rf"(?:;[A-Za-z0-9-]+=(?:{_RE2_QUOTED}|{_RE2_BARE}|))*"
_RE2_LINE = rf"^[A-Z][A-Z0-9-]*{_RE2_PARAMETERS}:[^{_BREAKS}]*$"
_RE2_LINE_PARTS = rf"^(?P<name>[A-Z][A-Z0-9-]*)(?P<params>{_RE2_PARAMETERS}):(?P<value>[^{_BREAKS}]*)$"
# A folded line going on with BEGIN or END after blanks: the structure check takes it for one.
_RE2_FOLDED_BOUNDARY = rf"\n[ \t][{_BLANKS}]*(?:[Bb][Ee][Gg][Iiı][Nn]|[Ee][Nn][Dd]):"
_RE2_UTC = r"^[0-9]{8}T[0-9]{6}Z$"
_RE2_DATE = r"^[0-9]{8}$"
_RE2_STAMP = r"^[0-9]{8}T[0-9]{6}Z?$"

TIME_NAMES = frozenset({"DTSTART", "DTEND", "DTSTAMP", "LAST-MODIFIED", "CREATED"})
NOT_PLAIN = frozenset({"BEGIN", "END", "ATTENDEE", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
STAMPS = ("LAST-MODIFIED", "DTSTAMP", "CREATED")  # the first one written is the record's `updated`
UTC_ZONE = tzp.localize_utc(datetime(2000, 1, 1)).tzinfo  # what icalendar gives a "Z" time
BOM = b"\xef\xbb\xbf"
UTC_TS = pa.timestamp("us", tz="UTC")


# -- reading one value as icalendar does ----------------------------------------------------
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


def _time(written: str, raw: str, zone_of: bool) -> date | datetime:
    """The date or date-time of a plain line as icalendar reads it. Raises ValueError for
    anything but the plain forms, a VALUE other than DATE or DATE-TIME, or a TZID that is not an
    IANA name (a Windows name or a custom VTIMEZONE depends on the order icalendar met them).
    TZID counts only where icalendar heeds it (``zone_of``)."""
    given = params(written)
    if given.get("VALUE", "DATE").upper() not in ("DATE", "DATE-TIME"):  # another value type
        raise ValueError(f"VALUE={given['VALUE']}")
    zone = _iana(given["TZID"]) if zone_of and "TZID" in given else None
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


def _duration(raw: str) -> timedelta:
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


# -- 1. cutting the file ---------------------------------------------------------------------
class NotPlain(Exception):
    """The file as a whole is not for this reader (icalendar reads all of it)."""


@dataclass
class _Spans:
    """Where the candidate events lie in the file's bytes."""

    texts: list[tuple[int, int]]  # each event's text, BEGIN:VEVENT to END:VEVENT with its line end
    pieces: pa.LargeBinaryArray  # per event: lines before the attendees, line end, run, line end, lines after, gap


def _spans(data: bytes, nl: bytes) -> _Spans:
    """Finds each event from a BEGIN:VEVENT to the next END:VEVENT, and its attendees: from the
    first ATTENDEE line to the end of the last (the run between is not searched line by line)."""
    begin, end, attendee = nl + b"BEGIN:VEVENT" + nl, nl + b"END:VEVENT" + nl, nl + b"ATTENDEE"
    find, rfind, blanks, step = data.find, data.rfind, (32, 9), len(nl)
    offsets: list[int] = [0]
    b = find(begin)
    while b >= 0:
        e = find(end, b + len(begin) - step)
        if e < 0:
            break
        head, after = b + len(begin), e + len(end)  # where its first line and the line after it start
        # (an empty event, or an END:VEVENT line folded into more, is left to icalendar)
        if e >= head and (after == len(data) or data[after] not in blanks):
            a = find(attendee, head - step, e)
            if a < 0:
                offsets += (head, e, e, e, e, e)
            else:
                k = find(nl, rfind(attendee, a, e) + step)
                while data[k + step] in blanks:  # the last attendee line goes on
                    k = find(nl, k + step)
                # (when the attendees come first, their line end is the BEGIN line's)
                offsets += (head, max(a, head), a + step, k, k + step if k < e else e, e)
        b = find(begin, after - step)
    offsets.append(len(data))
    # Rows 6i+1: the event's lines before its first ATTENDEE, 6i+3: the run of attendees, 6i+5: the
    # lines after them (the rows between are the line ends, and the gaps between events).
    bounds = np.array(offsets, np.int64)
    texts = list(zip((bounds[1:-1:6] - len(begin) + step).tolist(), (bounds[6::6] + len(end)).tolist(), strict=True))
    pieces = pa.LargeBinaryArray.from_buffers(
        pa.large_binary(), len(offsets) - 1, [None, pa.py_buffer(bounds), pa.py_buffer(data)]
    )
    return _Spans(texts, pieces)


def _utf8(pieces: pa.Array) -> pa.Array:
    try:
        return pieces.cast(pa.string())
    except pa.ArrowInvalid:
        raise NotPlain from None  # the file is not UTF-8: it is read as Latin-1


# -- 2. + 3. reading the events' lines --------------------------------------------------------
@dataclass
class _Lines:
    """Every line of every event but its attendees: its event, name (also as a code into
    ``names``), parameters as written and raw value."""

    event: np.ndarray
    codes: np.ndarray  # -1: not a plain line
    names: list[str]
    name_array: pa.Array
    params: pa.Array
    values: pa.Array
    count: int  # events

    def __post_init__(self) -> None:
        order = np.argsort(self.codes, kind="stable")
        codes, starts = np.unique(self.codes[order], return_index=True)
        self._rows = dict(zip(codes.tolist(), np.split(order, starts[1:]), strict=False))  # none for no lines

    def rows(self, names: Iterable[str]) -> np.ndarray:
        """The lines of ``names``, in order."""
        found = [self._rows[self.names.index(n)] for n in set(names) if n in self.names]
        return np.sort(np.concatenate(found)) if len(found) > 1 else found[0] if found else np.zeros(0, np.int64)

    def has(self, names: Iterable[str]) -> np.ndarray:
        found = np.zeros(self.count, bool)
        found[self.event[self.rows(names)]] = True
        return found

    def repeated(self, names: Iterable[str]) -> np.ndarray:
        """Per event: whether one of ``names`` is written more than once."""
        rows = self.rows(names)
        counts = np.bincount(
            self.event[rows] * len(self.names) + self.codes[rows], minlength=self.count * len(self.names)
        )
        return (counts.reshape(self.count, len(self.names)) > 1).any(axis=1)

    def typed(self, names: Iterable[str]) -> np.ndarray:
        """Per event: whether a line of ``names`` has a VALUE parameter."""
        rows = self.rows(names)
        typed = each_distinct(self.params.take(pa.array(rows, pa.int64())), lambda p: "VALUE" in params(p), pa.bool_())
        found = np.zeros(self.count, bool)
        found[self.event[rows[np.asarray(typed, bool)]]] = True
        return found

    def column(self, name: str, of: pa.Array | None = None) -> pa.Array:
        """Per event, the value (or ``of``) of its line ``name``: null when absent."""
        rows = self.rows([name])
        at = np.full(self.count, -1, np.int64)
        at[self.event[rows]] = rows
        return (self.values if of is None else of).take(pa.array(at, mask=at < 0))


def _lines(sides: pa.Array, nl: str, count: int) -> _Lines:
    """The lines of the (unfolded) sides of the ``count`` events, parsed."""
    lines = pc.split_pattern(sides, nl)
    flat = pc.list_flatten(lines)
    plain = pc.match_substring_regex(flat, _RE2_LINE)  # the other lines' parts are not read
    written, value = _cut_at(flat, ":", 1)
    quoted = pc.and_(plain, pc.match_substring(written, '"'))  # a quoted parameter may hold the first colon
    if pc.any(quoted).as_py():
        exact = pc.extract_regex(pc.filter(flat, quoted), _RE2_LINE_PARTS)
        written = pc.replace_with_mask(written, quoted, pc.binary_join_element_wise(exact.field(0), exact.field(1), ""))
        value = pc.replace_with_mask(value, quoted, exact.field(2))
    name, params = _cut_at(written, ";", 0)
    names = pc.dictionary_encode(_masked(plain, name))
    return _Lines(
        event=np.asarray(pc.list_parent_indices(lines)) // 2,
        codes=np.asarray(names.indices.fill_null(-1)),
        names=names.dictionary.to_pylist(),
        name_array=name,
        params=params,
        values=value,
        count=count,
    )


def _unfolded(texts: pa.Array, nl: str) -> pa.Array:
    return pc.replace_substring(pc.replace_substring(texts, nl + " ", ""), nl + "\t", "")


def _cut_at(texts: pa.Array, separator: str, skip: int) -> tuple[pa.Array, pa.Array]:
    """Each text cut where ``separator`` first is (the whole text before when it is not),
    leaving out ``skip`` characters there. Offsets into the texts' own bytes cut them in three,
    then the outer thirds are taken: two copies, where splitting makes lists first."""
    bounds = np.frombuffer(texts.buffers()[1], np.int32)[texts.offset : texts.offset + len(texts) + 1]
    starts, ends = bounds[:-1], bounds[1:]
    at = np.asarray(pc.find_substring(texts, separator))  # in bytes
    cut = np.where(at < 0, ends, starts + at)
    offsets = np.empty(3 * len(texts) + 1, np.int32)
    offsets[0:-1:3], offsets[1::3], offsets[2::3], offsets[-1] = starts, cut, np.minimum(cut + skip, ends), bounds[-1]
    thirds = pa.StringArray.from_buffers(3 * len(texts), pa.py_buffer(offsets), texts.buffers()[2])
    return (thirds.take(pa.array(np.arange(first, 3 * len(texts), 3))) for first in (0, 2))


def where_needed(values: pa.Array, needed: pa.Array, read: Callable[[str], str]) -> pa.Array:
    """``read`` of the (string) values where ``needed``, the values as they are elsewhere: for
    columns of mostly distinct values that Python has to read only now and then."""
    if not pc.any(needed).as_py():
        return values
    return pc.if_else(needed, each_distinct(_masked(needed, values), read, pa.string()), values)


def _stripped(values: pa.Array) -> pa.Array:
    """Python's ``str.strip`` of each value (Arrow's trim knows other blanks)."""
    return where_needed(values, pc.match_substring_regex(values, f"^[{_BLANKS}\\n]|[{_BLANKS}\\n]$"), str.strip)


def _pairs(params: pa.Array, values: pa.Array) -> pa.Array:
    """Parameters and value of a line as one string, NUL between (neither holds one)."""
    return pc.binary_join_element_wise(params, values, "\x00")


def _of_pair(read: Callable[[str, str], object]) -> Callable[[str], object]:
    return lambda pair: read(*pair.split("\x00", 1))


# -- the events taken --------------------------------------------------------------------------
@dataclass
class Taken:
    """The plain events of one file: read, and where they were in it."""

    skeleton: str  # the file without them, for icalendar
    places: list[int | None]  # per top-level VEVENT in file order: the row of a taken event, or None
    data: bytes
    texts: list[tuple[int, int]]  # where each taken event's text is in ``data``
    columns: dict[str, pa.Array]  # the values that do not depend on the calendar, by record field
    spans: dict[int, tuple]  # by row: (start, end, duration) of the events whose times are read one at a time
    people: _People  # the distinct runs of ATTENDEE lines
    run_of: pa.Array  # per row: its run's index in ``people``

    def uid(self, row: int) -> str:
        return self.columns["key"][row].as_py()

    def alone(self, others: list[str], series: bool) -> np.ndarray:
        """Per row: whether its UID is no other event's, neither another taken one's nor one of
        ``others``; and when there is a series, holds no '/'."""
        keys = self.columns["key"]
        counts = pc.value_counts(keys)
        twice = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        shared = pc.or_(pc.is_in(keys, value_set=twice), pc.is_in(keys, value_set=pa.array(others, pa.string())))
        if series:
            shared = pc.or_(shared, pc.match_substring(keys, "/"))
        return ~np.asarray(shared)

    def text(self, row: int) -> str:
        """The event's text, for when icalendar has to read it after all."""
        start, end = self.texts[row]
        return self.data[start:end].decode()

    def records(self, rows: np.ndarray, cal, start: datetime, end: datetime) -> pa.Table:
        """The lake's columns (``ingested_at`` aside) of the taken events ``rows`` of one calendar
        (a ``connectors.ics.record.CalendarContext``) that overlap [start, end)."""
        picked = pa.array(rows)
        every = len(rows) == len(self.run_of)  # rows are sorted: then they are all, in order
        columns = self.columns if every else {name: values.take(picked) for name, values in self.columns.items()}
        runs = self.run_of if every else self.run_of.take(picked)
        at = {row: int(np.searchsorted(rows, row)) for row in self.spans}
        spans = {at[row]: span for row, span in self.spans.items() if at[row] < len(rows) and rows[at[row]] == row}
        start_at, end_at, tz, all_day = _times(columns, spans, cal)
        keep = _overlapping(start_at, end_at, start, end)
        organizer = columns["organizer"]
        own = self.people.own(cal.account).take(runs)
        itself = pc.equal(organizer, cal.account)
        response = pc.if_else(itself, "accepted", pc.coalesce(own, "accepted"))
        busy_tentative = pc.and_kleene(pc.equal(columns["busy"], "TENTATIVE"), pc.invert(itself))
        response = pc.if_else(pc.and_kleene(busy_tentative, pc.equal(response, "accepted")), "tentative", response)
        summary = columns["summary"]
        attendees = self.people.guests.take(runs)
        record = {
            "account": pa.repeat(pa.scalar(cal.account), len(rows)),
            "id": pc.binary_join_element_wise(f"{cal.feed}/", columns["key"], ""),
            "ical_uid": columns["ical_uid"],
            "series_id": pa.repeat(pa.scalar(""), len(rows)),
            "start": start_at,
            "end": end_at,
            "tz": tz,
            "all_day": all_day,
            "status": columns["status"],
            "self_response": response,
            "transparency": columns["transparency"],
            "event_type": columns["event_type"],
            "organizer": organizer,
            "attendees": attendees,
            "attendee_count": pc.list_value_length(attendees).cast(pa.int32()),
            "has_agenda": columns["has_agenda"],
            "has_conference": columns["has_conference"],
            "title_tags": each_distinct(summary, lambda s: list(tags(s, cal.words)), pa.list_(pa.string())),
            "title": each_distinct(summary, lambda s: s or None, pa.string())
            if cal.store_titles
            else pa.nulls(len(rows), pa.string()),
            "updated": columns["updated"],
            "deleted": pa.repeat(pa.scalar(False), len(rows)),
        }
        schema = pa.schema([f for f in EVENT_SCHEMA if f.name != "ingested_at"])
        table = pa.Table.from_arrays([record[f.name].cast(f.type) for f in schema], schema=schema)
        return table if pc.all(keep).as_py() else table.filter(keep)


def cut(data: bytes) -> Taken | None:
    """The plain single events of an .ics file read, and the rest of it for icalendar; None when
    the file is not for this reader at all (not UTF-8, not one calendar, structure not sound)."""
    if not tzp.uses_zoneinfo():
        return None
    data = data.removeprefix(BOM)
    nl = b"\r\n" if data[: data.find(b"\n") + 1].endswith(b"\r\n") else b"\n"
    spans = _spans(data, nl)
    try:
        taken = _read(spans, nl.decode())
    except NotPlain:
        return None
    rows = np.flatnonzero(taken["plain"])
    skeleton = _skeleton(data, spans.texts, set(rows.tolist()))
    places = _places(*skeleton) if skeleton is not None else None
    if places is None:
        return None
    picked = pa.array(rows, pa.int64())
    columns = {name: taken[name].take(picked) for name in _COLUMNS}
    position = np.full(len(spans.texts), -1)
    position[rows] = np.arange(len(rows))
    return Taken(
        skeleton=skeleton[0],
        places=places,
        data=data,
        texts=[spans.texts[r] for r in rows],
        columns=columns,
        spans={int(position[event]): span for event, span in taken["spans"].items() if position[event] >= 0},
        people=taken["people"],
        run_of=taken["run_of"].take(picked),
    )


_COLUMNS = (
    "key", "ical_uid", "start_utc", "end_utc", "start_date", "end_date", "kind", "status", "transparency",
    "event_type", "busy", "organizer", "has_agenda", "has_conference", "summary", "updated",
)  # fmt: skip


def _read(spans: _Spans, nl: str) -> dict:
    """Every candidate event's values that do not depend on the calendar, and whether it is
    plain (``plain``: a bool per event)."""
    count = len(spans.texts)
    # The lines before and after each event's attendees (rows 6i+1 and 6i+5 of the pieces).
    sides = _utf8(spans.pieces.take(pa.array((6 * np.arange(count)[:, None] + [1, 5]).ravel())))
    sides = _masked(pc.not_equal(pc.binary_length(sides), 0), sides)  # an empty side has no line
    unfolded = _unfolded(sides, nl)
    lines = _lines(unfolded, nl, count)
    plain = ~_folded_boundaries(sides, unfolded).reshape(count, 2).any(axis=1)
    plain &= np.bincount(lines.event[lines.codes < 0], minlength=count) == 0  # a line that is not plain
    plain &= ~lines.has(NOT_PLAIN)
    conference = [n for n in lines.names if n in CONFERENCE_PROPERTIES or n.startswith(CONFERENCE_PREFIXES)]
    read_once = [*ONE_VALUE, *conference]
    plain &= ~lines.repeated(read_once)
    plain &= ~lines.typed([n for n in read_once if n not in TIME_NAMES])

    def text(name: str) -> pa.Array:
        raw = lines.column(name).fill_null("")
        return where_needed(raw, pc.match_substring(raw, "\\"), functools.partial(value_of, name))

    ical_uid = text("UID")
    key = _stripped(ical_uid)
    plain &= np.asarray(pc.not_equal(key, ""))
    plain &= np.asarray(pc.fill_null(pc.match_substring_regex(lines.column("SEQUENCE"), r"^-?[0-9]+$"), True))
    busy = each_distinct(text("X-MICROSOFT-CDO-BUSYSTATUS"), lambda v: v.strip().upper(), pa.string())
    transparent = pc.or_kleene(
        pc.equal(each_distinct(text("TRANSP"), str.upper, pa.string()), "TRANSPARENT"), pc.equal(busy, "FREE")
    )
    statuses = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}
    organizer = _pairs(lines.column("ORGANIZER", lines.params), lines.column("ORGANIZER")).fill_null("\x00")
    values = dict(
        key=key,
        ical_uid=ical_uid,
        summary=_stripped(text("SUMMARY")),
        busy=busy,
        status=each_distinct(text("STATUS"), lambda v: statuses.get(v.upper()) or "confirmed", pa.string()),
        transparency=pc.if_else(transparent, "transparent", "opaque"),
        event_type=pc.if_else(pc.equal(busy, "OOF"), "outOfOffice", "default"),
        organizer=each_distinct(organizer, _of_pair(_organizer), pa.string()),
        has_agenda=pc.or_kleene(
            each_distinct(text("DESCRIPTION"), lambda v: bool(v.strip()), pa.bool_()), pa.array(lines.has(["ATTACH"]))
        ),
        has_conference=pc.or_kleene(
            pa.array(_conference_lines(lines, conference)),
            pc.or_kleene(
                *(
                    each_distinct(text(n), lambda v: bool(MEETING_URL.search(v)), pa.bool_())
                    for n in ("LOCATION", "URL")
                )
            ),
        ),
    )
    values["updated"], stamped = _updated(lines)
    times, timed = _times_read(lines)
    people, run_of, attended = _runs(spans.pieces, count, nl)
    plain &= stamped & timed & attended
    return dict(values, **times, plain=plain, people=people, run_of=run_of)


def _folded_boundaries(texts: pa.Array, unfolded: pa.Array) -> np.ndarray:
    """Whether a folded line of each text goes on with BEGIN or END (after blanks): the file's
    structure check would take it for one. Every other line of a plain event starts with its
    name, and the line pattern leaves out the other characters the check stops at."""
    lengths = pc.not_equal(pc.binary_length(texts), pc.binary_length(unfolded))
    folded = pa.array(np.flatnonzero(np.asarray(pc.fill_null(lengths, False))))
    found = np.zeros(len(texts), bool)
    found[np.asarray(folded)] = np.asarray(pc.match_substring_regex(texts.take(folded), _RE2_FOLDED_BOUNDARY), bool)
    return found


def _organizer(written: str, raw: str) -> str:
    return address(value_of("ORGANIZER", raw), params(written))


def _conference_lines(lines: _Lines, names: list[str]) -> np.ndarray:
    """Per event: whether a conference property holds a value (not FALSE)."""
    rows = lines.rows(names)
    pairs = _pairs(lines.name_array.take(pa.array(rows, pa.int64())), lines.values.take(pa.array(rows, pa.int64())))

    def holds(name: str, raw: str) -> bool:
        value = value_of(name, raw).strip()
        return bool(value) and value.upper() != "FALSE"

    found = np.zeros(lines.count, bool)
    found[lines.event[rows[np.asarray(each_distinct(pairs, _of_pair(holds), pa.bool_()), bool)]]] = True
    return found


# -- times ---------------------------------------------------------------------------------------
UTC_KIND, DATE_KIND, ONE_BY_ONE = 0, 1, 2  # how an event's start and end are read


def _plain_params(written: str) -> bool:
    """Parameters that leave a date or date-time as written: no TZID, VALUE DATE or DATE-TIME."""
    given = params(written)
    return "TZID" not in given and given.get("VALUE", "DATE").upper() in ("DATE", "DATE-TIME")


def _masked(mask: pa.Array, values: pa.Array) -> pa.Array:
    """The values where ``mask``, else null."""
    return pc.if_else(mask, values, pa.scalar(None, values.type))


def _utc_times(values: pa.Array) -> pa.Array:
    """``20261110T090000Z`` -> a UTC timestamp; null where Python's datetime would refuse it."""
    return _parsed(values, "%Y%m%dT%H%M%S", 15)


def _parsed(values: pa.Array, layout: str, width: int) -> pa.Array:
    """The date or date-time in the first ``width`` characters, as UTC; null where Python's
    datetime would refuse it (Arrow's strptime takes 24:00 or 30 February)."""
    digits = pc.utf8_slice_codeunits(values, 0, width)
    parsed = pc.strptime(digits, layout, "s", error_is_null=True)
    in_range = pc.match_substring_regex(digits, _RE2_IN_RANGE[width])
    day = pc.if_else(in_range, pc.utf8_slice_codeunits(digits, 6, 8), "0").cast(pa.int64())
    same_day = pc.equal(pc.day(parsed), day)
    sound = pc.and_kleene(in_range, same_day)
    return pc.if_else(sound, parsed, pa.scalar(None, parsed.type)).cast(pa.timestamp("us")).cast(UTC_TS)


_DAY = r"(?:000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})(?:0[1-9]|1[0-2])(?:0[1-9]|[12][0-9]|3[01])"
_RE2_IN_RANGE = {8: rf"^{_DAY}$", 15: rf"^{_DAY}T(?:[01][0-9]|2[0-3])[0-5][0-9][0-5][0-9]$"}


def _updated(lines: _Lines) -> tuple[pa.Array, np.ndarray]:
    """``updated`` per event: the first of LAST-MODIFIED, DTSTAMP, CREATED written, as UTC (a
    TZID does not count there); and whether it reads (icalendar would fail the event otherwise)."""
    raw = pc.coalesce(*(lines.column(n) for n in STAMPS))
    written = pc.coalesce(*(lines.column(n, lines.params) for n in STAMPS))
    typed = each_distinct(
        written, lambda w: params(w).get("VALUE", "DATE").upper() in ("DATE", "DATE-TIME"), pa.bool_()
    )
    dates = pc.match_substring_regex(raw, _RE2_DATE)
    stamp = pc.coalesce(
        _parsed(_masked(dates, raw), "%Y%m%d", 8),
        _parsed(_masked(pc.match_substring_regex(raw, _RE2_STAMP), raw), "%Y%m%dT%H%M%S", 15),
    )
    reads = pc.or_kleene(pc.is_null(raw), pc.and_kleene(pc.is_valid(stamp), typed))
    return pc.if_else(pc.is_null(raw), pa.scalar(EPOCH, UTC_TS), stamp), np.asarray(pc.fill_null(reads, False))


def _times_read(lines: _Lines) -> tuple[dict[str, pa.Array], np.ndarray]:
    """How each event's start and end are read (``kind``), what of them can be read before the
    calendar's zone is known, and whether they read as icalendar reads them without complaint
    (an end of the same kind not before the start, a DURATION only after a date-time and not
    negative; else the event goes to icalendar, which reports or settles it)."""
    raw = {name: lines.column(name) for name in ("DTSTART", "DTEND", "DURATION")}
    written = {name: lines.column(name, lines.params) for name in ("DTSTART", "DTEND")}
    plain = {name: pc.fill_null(each_distinct(written[name], _plain_params, pa.bool_()), False) for name in written}
    no_end = pc.is_null(raw["DTEND"])

    def written_as(form: str) -> np.ndarray:
        start = pc.and_kleene(plain["DTSTART"], pc.fill_null(pc.match_substring_regex(raw["DTSTART"], form), False))
        end = pc.or_kleene(
            no_end, pc.and_kleene(plain["DTEND"], pc.fill_null(pc.match_substring_regex(raw["DTEND"], form), False))
        )
        return np.asarray(pc.and_kleene(pc.and_kleene(start, end), pc.is_null(raw["DURATION"])))

    utc, day = written_as(_RE2_UTC), written_as(_RE2_DATE)
    kind = np.where(utc, UTC_KIND, np.where(day, DATE_KIND, ONE_BY_ONE))
    utc_column, day_column = pa.array(utc), pa.array(day)
    start_utc = _utc_times(_masked(utc_column, raw["DTSTART"]))
    end_utc = pc.if_else(no_end, start_utc, _utc_times(_masked(utc_column, raw["DTEND"])))
    utc_read = utc & np.asarray(pc.fill_null(pc.greater_equal(end_utc, start_utc), False))

    def is_date(values: pa.Array) -> pa.Array:
        return pc.is_valid(_parsed(_masked(day_column, values), "%Y%m%d", 8))

    later = pc.or_kleene(no_end, pc.and_kleene(is_date(raw["DTEND"]), pc.greater_equal(raw["DTEND"], raw["DTSTART"])))
    day_read = day & np.asarray(pc.fill_null(pc.and_kleene(is_date(raw["DTSTART"]), later), False))
    spans: dict[int, tuple] = {}  # by event
    one_by_one = np.flatnonzero((kind == ONE_BY_ONE) & np.asarray(pc.is_valid(raw["DTSTART"])))
    picked = pa.array(one_by_one, pa.int64())
    given = zip(
        *(
            values.take(picked).to_pylist()
            for values in (written["DTSTART"], raw["DTSTART"], written["DTEND"], raw["DTEND"], raw["DURATION"])
        ),
        strict=True,
    )
    for row, (start_written, start, end_written, end, duration) in zip(one_by_one.tolist(), given, strict=False):
        span = _read_span((start_written, start), None if end is None else (end_written, end), duration)
        if span is not None:
            spans[row] = span
    read_one_by_one = np.zeros(lines.count, bool)
    read_one_by_one[list(spans)] = True
    columns = {
        "kind": pa.array(kind, pa.int8()),
        "start_utc": start_utc,
        "end_utc": end_utc,
        "start_date": _masked(day_column, raw["DTSTART"]),
        "end_date": _masked(day_column, raw["DTEND"]),
        "spans": spans,
    }
    return columns, utc_read | day_read | read_one_by_one


def _read_span(start: tuple[str, str], end: tuple[str, str] | None, duration: str | None) -> tuple | None:
    """(start, end, duration) as icalendar reads them, None when they are not for this reader."""
    try:
        first = _time(*start, True)
        last = _time(*end, True) if end else None
        length = _duration(duration) if duration is not None else None
    except ValueError:
        return None
    if last is not None and (not same_kind(first, last) or last < first):
        return None
    if last is None and length is not None and (not isinstance(first, datetime) or length < timedelta(0)):
        return None
    return first, last, length


def _span(read: tuple, cal) -> tuple[datetime, datetime, str, bool]:
    """(start, end, tz, all day) of an event read one at a time, as recurring_ical_events and
    ``connectors.ics.record.event_record`` make them: localised, the end as the start plus its length (on
    the start's wall clock)."""
    first, last, length = read
    start = localised(first, cal.zone, cal.utc_too)
    if last is not None:
        end = start + (localised(last, cal.zone, cal.utc_too) - start)
    elif length is not None:
        end = start + length
    else:
        end = start if isinstance(start, datetime) else start + timedelta(days=1)
    return (
        utc(start, cal.zone),
        utc(end, cal.zone),
        zone_name(start, cal.zone),
        not isinstance(start, datetime),
    )


_SPAN_TYPES = (UTC_TS, UTC_TS, pa.string(), pa.bool_())


def _times(columns: dict[str, pa.Array], spans: dict[int, tuple], cal) -> tuple[pa.Array, ...]:
    """start, end, tz and all_day of the events in the calendar's zone; ``spans``: what ``_read_span``
    read of those read one at a time, by position."""
    zone = cal.zone
    kind = np.asarray(columns["kind"])
    end = columns["end_utc"]
    if cal.utc_too:
        end = _on_the_wall_clock(end, zone)
    midnight = functools.partial(_midnight, zone=zone)
    next_day = each_distinct(columns["start_date"], functools.partial(midnight, days=1), UTC_TS)
    day_end = pc.if_else(
        pc.is_null(columns["end_date"]), next_day, each_distinct(columns["end_date"], midnight, UTC_TS)
    )
    one_by_one = [[None] * len(kind) for _ in range(4)]  # start, end, tz, all day of the few read so
    for position, span in spans.items():
        for values, value in zip(one_by_one, _span(span, cal), strict=True):
            values[position] = value
    one_by_one = [pa.array(values, type) for values, type in zip(one_by_one, _SPAN_TYPES, strict=True)]
    start = pc.coalesce(columns["start_utc"], each_distinct(columns["start_date"], midnight, UTC_TS), one_by_one[0])
    end = pc.coalesce(end, day_end, one_by_one[1])
    tz = pc.if_else(pa.array(kind == ONE_BY_ONE), one_by_one[2], zone.key)
    all_day = pc.if_else(pa.array(kind == ONE_BY_ONE), one_by_one[3], pa.array(kind == DATE_KIND))
    return start, pc.if_else(pc.less(end, start), start, end), tz, all_day


def _on_the_wall_clock(ends: pa.Array, zone: zoneinfo.ZoneInfo) -> pa.Array:
    """UTC ends as ``_span`` makes them under X-WR-TIMEZONE, read on the zone's wall clock: the
    same instant, but the earlier one when the clock shows that time twice."""
    try:
        local = pc.local_timestamp(ends.cast(pa.timestamp("us", zone.key)))
        return pc.assume_timezone(local, zone.key, ambiguous="earliest").cast(UTC_TS)
    except pa.ArrowInvalid:  # Arrow has no time zone database here (Windows without tzdata for it)
        return each_distinct(ends, lambda end: end.astimezone(zone).replace(fold=0).astimezone(UTC), UTC_TS)


def _midnight(raw: str, zone: tzinfo, days: int = 0) -> datetime:
    return utc(_time("", raw, False) + timedelta(days=days), zone)


def _overlapping(starts: pa.Array, ends: pa.Array, start: datetime, end: datetime) -> pa.Array:
    """``connectors.ics.series.overlaps`` of each event."""
    start, end = pa.scalar(start, UTC_TS), pa.scalar(end, UTC_TS)
    touching = pc.and_kleene(pc.equal(ends, starts), pc.greater_equal(starts, start))
    return pc.and_kleene(pc.less(starts, end), pc.or_kleene(pc.greater(ends, start), touching))


# -- attendees -----------------------------------------------------------------------------------
@dataclass
class _People:
    """The distinct runs of ATTENDEE lines of a file, read."""

    guests: pa.Array  # per run: its people as the lake lists them
    run: np.ndarray  # per ATTENDEE line: its run
    emails: pa.Array  # per ATTENDEE line: its address (null when the line is not read)
    responses: pa.Array

    def own(self, account: str) -> pa.Array:
        """Per run: the account's response where it is first listed, else null (``connectors.ics.reader._guests``)."""
        lines = np.flatnonzero(np.asarray(pc.fill_null(pc.equal(self.emails, account), False)))
        runs, first = np.unique(self.run[lines], return_index=True)
        at = np.full(len(self.guests), -1, np.int64)
        at[runs] = lines[first]
        return self.responses.take(pa.array(at, mask=at < 0))


def _runs(pieces: pa.Array, count: int, nl: str) -> tuple[_People, pa.Array, np.ndarray]:
    """The distinct runs read (each distinct line once), each event's run, and whether it reads
    as icalendar reads it."""
    # Encoding all the pieces hashes the runs where they lie; taking them out first copies them.
    encoded = pc.dictionary_encode(pieces)
    runs = encoded.indices.take(pa.array(np.arange(3, 6 * count, 6)))
    distinct = pc.unique(runs)
    texts = _utf8(encoded.dictionary.take(distinct))
    run_of = pc.index_in(runs, value_set=distinct)
    # Cut before each ATTENDEE name: lines stay folded (a folded line goes on after a blank).
    lines = pc.list_slice(pc.split_pattern(pc.binary_join_element_wise(nl, texts, ""), nl + "ATTENDEE"), 1)
    run = np.asarray(pc.list_parent_indices(lines))
    codes = pc.dictionary_encode(pc.list_flatten(lines))
    read = [_attendee_line(line, nl) for line in codes.dictionary.to_pylist()]
    fields = [pa.array([r[i] if r else None for r in read], t).take(codes.indices) for i, t in enumerate(_LINE_TYPES)]
    email, response, optional, person = fields
    reads = np.bincount(run[~np.asarray(pc.is_valid(email))], minlength=len(texts)) == 0
    people = np.flatnonzero(np.asarray(pc.fill_null(person, False)))
    at = pa.array(people, pa.int64())
    listed = pa.StructArray.from_arrays([email.take(at), response.take(at), optional.take(at)], fields=list(_GUEST))
    offsets = np.concatenate([[0], np.cumsum(np.bincount(run[people], minlength=len(texts)))])
    guests = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), listed, type=EVENT_SCHEMA.field("attendees").type)
    return _People(guests, run, email, response), run_of, reads[np.asarray(run_of)]


_GUEST = EVENT_SCHEMA.field("attendees").type.value_type
_LINE_TYPES = (pa.string(), pa.string(), pa.bool_(), pa.bool_())


# What makes the file's structure check stop at an ATTENDEE line as written: a folded line going
# on with BEGIN or END after blanks (taken for a boundary); once unfolded, a line break of any kind.
_FOLDED_BOUNDARY = re.compile(r"\n[ \t][^\S\n]*(?:[Bb][Ee][Gg][Iiı][Nn]|[Ee][Nn][Dd]):")
_BREAK = re.compile("[\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")


@functools.lru_cache(maxsize=65536)  # the same people are invited again and again, line for line
def _attendee_line(folded: str, nl: str) -> tuple[str, str, bool, bool] | None:
    """(email, response, optional, a person) of an ATTENDEE line as written (folded, without its
    name), as icalendar reads it (``connectors.ics.values.attendee``); None when the line is not plain
    or is typed (VALUE=)."""
    if _FOLDED_BOUNDARY.search(folded):
        return None
    line = "ATTENDEE" + folded.replace(nl + " ", "").replace(nl + "\t", "")
    match = None if _BREAK.search(line) else _ATTENDEE.match(f"\n{line}")
    if match is None:
        return None
    written, raw = match.groups()
    given = params(written)
    return None if "VALUE" in given else attendee(value_of("ATTENDEE", raw), given)


# -- the skeleton ----------------------------------------------------------------------------------
def _skeleton(data: bytes, texts: list[tuple[int, int]], taken: set[int]) -> tuple[str, list[int]] | None:
    """The file without the taken events, and where in it (as text) each was."""
    pieces: list[str] = []
    cuts: list[int] = []
    done = length = 0
    try:
        for row, (start, end) in enumerate(texts):
            if row in taken:
                if start > done:
                    pieces.append(data[done:start].decode())
                    length += len(pieces[-1])
                cuts.append(length)
                done = end
        pieces.append(data[done:].decode())
    except UnicodeDecodeError:
        return None
    return "".join(pieces), cuts


def _places(skeleton: str, cuts: list[int]) -> list[int | None] | None:
    """Per top-level VEVENT of the file, in order: None for one left in the skeleton, else the
    row of the taken event. None when the skeleton's structure is anything the structure check
    (``connectors.ics.structure.event_lines``) would report, or a taken event was not directly inside
    the VCALENDAR."""
    if odd_line_breaks(skeleton) or begin_lines(skeleton) is None:
        return None
    places: list[int | None] = []
    stack: list[str] = []
    row = 0
    for boundary in BEGIN_OR_END.finditer(f"\n{skeleton}"):
        while row < len(cuts) and cuts[row] <= boundary.start():
            if stack != ["VCALENDAR"]:
                return None
            places.append(row)
            row += 1
        upper = boundary.group().strip().upper()
        if upper.startswith("BEGIN:"):
            if upper == "BEGIN:VEVENT" and len(stack) == 1:
                places.append(None)
            stack.append(upper[6:])
        else:
            stack.pop()
    return places if row == len(cuts) else None
