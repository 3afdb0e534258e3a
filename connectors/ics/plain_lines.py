"""The lines of an .ics file's plain events, read column-wise for ``connectors.ics.plain``: the
plain line grammar (in Python for attendee lines, in RE2 for all other lines at once), one value
read as icalendar reads it, each candidate event found in the file's bytes (``find_spans``), and
its lines cut into name, parameters and value (``read_lines``, ``Lines``)."""

from __future__ import annotations

import functools
import re
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

import icalendar
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from icalendar.parser.property import unescape_backslash
from icalendar.prop import vDDDTypes, vUnknown
from icalendar.timezone import tzp

from connectors.columns import each_distinct

# -- the plain line grammar (Python, for attendee runs) -------------------------------------
# A parameter value is quoted (no quote, control character, backslash, caret or percent sign
# inside) or bare (no separator, and no blank at either end, which icalendar would strip).
_BARE = r'[^\s";:,%^\\\x00-\x1f\x7f](?:[^";:,%^\\\x00-\x08\x0a-\x1f\x7f]*[^\s";:,%^\\\x00-\x1f\x7f])?'
_QUOTED = r'"[^"%^\\\x00-\x08\x0a-\x1f\x7f]*"'
_PARAMETERS = rf"(?:;[A-Za-z0-9-]+=(?:{_QUOTED}|{_BARE}|))*"
ATTENDEE_LINE = re.compile(rf"\nATTENDEE({_PARAMETERS}):(.*)")
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
RE2_FOLDED_BOUNDARY = rf"\n[ \t][{_BLANKS}]*(?:[Bb][Ee][Gg][Iiı][Nn]|[Ee][Nn][Dd]):"
RE2_UTC = r"^[0-9]{8}T[0-9]{6}Z$"
RE2_DATE = r"^[0-9]{8}$"
RE2_STAMP = r"^[0-9]{8}T[0-9]{6}Z?$"

UTC_ZONE = tzp.localize_utc(datetime(2000, 1, 1)).tzinfo  # what icalendar gives a "Z" time


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


def plain_time(written: str, raw: str, zone_of: bool) -> date | datetime:
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


def read_duration(raw: str) -> timedelta:
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
class Spans:
    """Where the candidate events lie in the file's bytes."""

    texts: list[tuple[int, int]]  # each event's text, BEGIN:VEVENT to END:VEVENT with its line end
    pieces: pa.LargeBinaryArray  # per event: lines before the attendees, line end, run, line end, lines after, gap


def find_spans(data: bytes, nl: bytes) -> Spans:
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
    return Spans(texts, pieces)


def as_utf8(pieces: pa.Array) -> pa.Array:
    try:
        return pieces.cast(pa.string())
    except pa.ArrowInvalid:
        raise NotPlain from None  # the file is not UTF-8: it is read as Latin-1


# -- 2. + 3. reading the events' lines --------------------------------------------------------
@dataclass
class Lines:
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


def read_lines(sides: pa.Array, nl: str, count: int) -> Lines:
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
    names = pc.dictionary_encode(masked(plain, name))
    return Lines(
        event=np.asarray(pc.list_parent_indices(lines)) // 2,
        codes=np.asarray(names.indices.fill_null(-1)),
        names=names.dictionary.to_pylist(),
        name_array=name,
        params=params,
        values=value,
        count=count,
    )


def unfold(texts: pa.Array, nl: str) -> pa.Array:
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
    return pc.if_else(needed, each_distinct(masked(needed, values), read, pa.string()), values)


def stripped(values: pa.Array) -> pa.Array:
    """Python's ``str.strip`` of each value (Arrow's trim knows other blanks)."""
    return where_needed(values, pc.match_substring_regex(values, f"^[{_BLANKS}\\n]|[{_BLANKS}\\n]$"), str.strip)


def joined_pairs(params: pa.Array, values: pa.Array) -> pa.Array:
    """Parameters and value of a line as one string, NUL between (neither holds one)."""
    return pc.binary_join_element_wise(params, values, "\x00")


def of_pair(read: Callable[[str, str], object]) -> Callable[[str], object]:
    return lambda pair: read(*pair.split("\x00", 1))


def masked(mask: pa.Array, values: pa.Array) -> pa.Array:
    """The values where ``mask``, else null."""
    return pc.if_else(mask, values, pa.scalar(None, values.type))
