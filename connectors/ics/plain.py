"""Plain single events of an .ics file read column by column, for ``connectors.ics.reader``.

Most of a real export is single events in plain lines, and most of its bytes are folded
ATTENDEE lines naming the same people meeting after meeting; icalendar makes an object of every
line. Here Python does a few byte searches per event and nothing per line or attendee; Arrow
kernels do the rest over all events at once, or once per distinct value:

1. ``plain_lines.find_spans`` cuts each event in three: lines before its ATTENDEE lines, the run
   of them, the lines after (offsets into the file's bytes, no copy).
2. ``_runs`` reads each distinct run, and each distinct ATTENDEE line once (``_attendee_line``).
3. ``plain_lines.read_lines`` cuts the other lines into name, parameters and value.
4. ``plain_times`` reads the start, end and ``updated`` of each event.
5. An event is *taken* only when it is certain to read exactly as icalendar reads it (plain
   ``NAME(;PARAM=value)*:value`` lines, attendees together, no recurrence, no repeated or typed
   property the record reads, a UID, a sound start and end, IANA zones); every other event stays
   in a *skeleton* text for icalendar. A file that is not UTF-8, or whose skeleton is not one
   sound calendar, is read whole by icalendar, so what is reported on a broken file never
   depends on this reader.
6. ``Taken.records`` makes the lake's columns of the taken events of one calendar that overlap
   the import window: one Arrow table, no object per event.

tests/test_ics.py holds both paths to the same records.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from icalendar.timezone import tzp

from connectors.columns import each_distinct
from connectors.ics.plain_lines import (
    ATTENDEE_LINE,
    RE2_FOLDED_BOUNDARY,
    Lines,
    NotPlain,
    Spans,
    as_utf8,
    find_spans,
    joined_pairs,
    masked,
    of_pair,
    params,
    read_lines,
    stripped,
    unfold,
    value_of,
    where_needed,
)
from connectors.ics.plain_times import event_times, overlapping, times_read, updated_column
from connectors.ics.structure import BEGIN_OR_END, begin_lines, odd_line_breaks
from connectors.ics.values import (
    CONFERENCE_PREFIXES,
    CONFERENCE_PROPERTIES,
    MEETING_URL,
    ONE_VALUE,
    address,
    attendee,
    tags,
)
from timeaudit.core.model import EVENT_SCHEMA

TIME_NAMES = frozenset({"DTSTART", "DTEND", "DTSTAMP", "LAST-MODIFIED", "CREATED"})
NOT_PLAIN = frozenset({"BEGIN", "END", "ATTENDEE", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID"})
BOM = b"\xef\xbb\xbf"


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
        start_at, end_at, tz, all_day = event_times(columns, spans, cal)
        keep = overlapping(start_at, end_at, start, end)
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
    spans = find_spans(data, nl)
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


def _read(spans: Spans, nl: str) -> dict:
    """Every candidate event's values that do not depend on the calendar, and whether it is
    plain (``plain``: a bool per event)."""
    count = len(spans.texts)
    # The lines before and after each event's attendees (rows 6i+1 and 6i+5 of the pieces).
    sides = as_utf8(spans.pieces.take(pa.array((6 * np.arange(count)[:, None] + [1, 5]).ravel())))
    sides = masked(pc.not_equal(pc.binary_length(sides), 0), sides)  # an empty side has no line
    unfolded = unfold(sides, nl)
    lines = read_lines(unfolded, nl, count)
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
    key = stripped(ical_uid)
    plain &= np.asarray(pc.not_equal(key, ""))
    plain &= np.asarray(pc.fill_null(pc.match_substring_regex(lines.column("SEQUENCE"), r"^-?[0-9]+$"), True))
    busy = each_distinct(text("X-MICROSOFT-CDO-BUSYSTATUS"), lambda v: v.strip().upper(), pa.string())
    transparent = pc.or_kleene(
        pc.equal(each_distinct(text("TRANSP"), str.upper, pa.string()), "TRANSPARENT"), pc.equal(busy, "FREE")
    )
    statuses = {"CANCELLED": "cancelled", "TENTATIVE": "tentative"}
    organizer = joined_pairs(lines.column("ORGANIZER", lines.params), lines.column("ORGANIZER")).fill_null("\x00")
    values = dict(
        key=key,
        ical_uid=ical_uid,
        summary=stripped(text("SUMMARY")),
        busy=busy,
        status=each_distinct(text("STATUS"), lambda v: statuses.get(v.upper()) or "confirmed", pa.string()),
        transparency=pc.if_else(transparent, "transparent", "opaque"),
        event_type=pc.if_else(pc.equal(busy, "OOF"), "outOfOffice", "default"),
        organizer=each_distinct(organizer, of_pair(_organizer), pa.string()),
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
    values["updated"], stamped = updated_column(lines)
    times, timed = times_read(lines)
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
    found[np.asarray(folded)] = np.asarray(pc.match_substring_regex(texts.take(folded), RE2_FOLDED_BOUNDARY), bool)
    return found


def _organizer(written: str, raw: str) -> str:
    return address(value_of("ORGANIZER", raw), params(written))


def _conference_lines(lines: Lines, names: list[str]) -> np.ndarray:
    """Per event: whether a conference property holds a value (not FALSE)."""
    rows = lines.rows(names)
    pairs = joined_pairs(
        lines.name_array.take(pa.array(rows, pa.int64())), lines.values.take(pa.array(rows, pa.int64()))
    )

    def holds(name: str, raw: str) -> bool:
        value = value_of(name, raw).strip()
        return bool(value) and value.upper() != "FALSE"

    found = np.zeros(lines.count, bool)
    found[lines.event[rows[np.asarray(each_distinct(pairs, of_pair(holds), pa.bool_()), bool)]]] = True
    return found


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
    texts = as_utf8(encoded.dictionary.take(distinct))
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
    match = None if _BREAK.search(line) else ATTENDEE_LINE.match(f"\n{line}")
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
