"""When the plain events of an .ics file happen, read column-wise for ``connectors.ics.plain``:
UTC date-times and dates (the forms of a Google export) parsed and converted by Arrow, times with
a TZID, floating times and durations read one event at a time with the icalendar path's own
rules (``connectors.ics.record``); ``updated`` from the first time stamp written."""

from __future__ import annotations

import functools
import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.columns import each_distinct
from connectors.ics.plain_lines import RE2_DATE, RE2_STAMP, RE2_UTC, Lines, masked, params, plain_time, read_duration
from connectors.ics.values import EPOCH, localised, same_kind, utc, zone_name

STAMPS = ("LAST-MODIFIED", "DTSTAMP", "CREATED")  # the first one written is the record's `updated`
UTC_TS = pa.timestamp("us", tz="UTC")


# -- times ---------------------------------------------------------------------------------------
UTC_KIND, DATE_KIND, ONE_BY_ONE = 0, 1, 2  # how an event's start and end are read


def _plain_params(written: str) -> bool:
    """Parameters that leave a date or date-time as written: no TZID, VALUE DATE or DATE-TIME."""
    given = params(written)
    return "TZID" not in given and given.get("VALUE", "DATE").upper() in ("DATE", "DATE-TIME")


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


def updated_column(lines: Lines) -> tuple[pa.Array, np.ndarray]:
    """``updated`` per event: the first of LAST-MODIFIED, DTSTAMP, CREATED written, as UTC (a
    TZID does not count there); and whether it reads (icalendar would fail the event otherwise)."""
    raw = pc.coalesce(*(lines.column(n) for n in STAMPS))
    written = pc.coalesce(*(lines.column(n, lines.params) for n in STAMPS))
    typed = each_distinct(
        written, lambda w: params(w).get("VALUE", "DATE").upper() in ("DATE", "DATE-TIME"), pa.bool_()
    )
    dates = pc.match_substring_regex(raw, RE2_DATE)
    stamp = pc.coalesce(
        _parsed(masked(dates, raw), "%Y%m%d", 8),
        _parsed(masked(pc.match_substring_regex(raw, RE2_STAMP), raw), "%Y%m%dT%H%M%S", 15),
    )
    reads = pc.or_kleene(pc.is_null(raw), pc.and_kleene(pc.is_valid(stamp), typed))
    return pc.if_else(pc.is_null(raw), pa.scalar(EPOCH, UTC_TS), stamp), np.asarray(pc.fill_null(reads, False))


def times_read(lines: Lines) -> tuple[dict[str, pa.Array], np.ndarray]:
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

    utc, day = written_as(RE2_UTC), written_as(RE2_DATE)
    kind = np.where(utc, UTC_KIND, np.where(day, DATE_KIND, ONE_BY_ONE))
    utc_column, day_column = pa.array(utc), pa.array(day)
    start_utc = _utc_times(masked(utc_column, raw["DTSTART"]))
    end_utc = pc.if_else(no_end, start_utc, _utc_times(masked(utc_column, raw["DTEND"])))
    utc_read = utc & np.asarray(pc.fill_null(pc.greater_equal(end_utc, start_utc), False))

    def is_date(values: pa.Array) -> pa.Array:
        return pc.is_valid(_parsed(masked(day_column, values), "%Y%m%d", 8))

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
        "start_date": masked(day_column, raw["DTSTART"]),
        "end_date": masked(day_column, raw["DTEND"]),
        "spans": spans,
    }
    return columns, utc_read | day_read | read_one_by_one


def _read_span(start: tuple[str, str], end: tuple[str, str] | None, duration: str | None) -> tuple | None:
    """(start, end, duration) as icalendar reads them, None when they are not for this reader."""
    try:
        first = plain_time(*start, True)
        last = plain_time(*end, True) if end else None
        length = read_duration(duration) if duration is not None else None
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


def event_times(columns: dict[str, pa.Array], spans: dict[int, tuple], cal) -> tuple[pa.Array, ...]:
    """start, end, tz and all_day of the events in the calendar's zone; ``spans``: what ``_read_span``
    read of those read one at a time, by position."""
    zone = cal.zone
    kind = np.asarray(columns["kind"])
    end = columns["end_utc"]
    if cal.utc_too:
        end = on_the_wall_clock(end, zone)
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


def on_the_wall_clock(ends: pa.Array, zone: zoneinfo.ZoneInfo) -> pa.Array:
    """UTC ends as ``_span`` makes them under X-WR-TIMEZONE, read on the zone's wall clock: the
    same instant, but the earlier one when the clock shows that time twice."""
    try:
        local = pc.local_timestamp(ends.cast(pa.timestamp("us", zone.key)))
        return pc.assume_timezone(local, zone.key, ambiguous="earliest").cast(UTC_TS)
    except pa.ArrowInvalid:  # Arrow has no time zone database here (Windows without tzdata for it)
        return each_distinct(ends, lambda end: end.astimezone(zone).replace(fold=0).astimezone(UTC), UTC_TS)


def _midnight(raw: str, zone: tzinfo, days: int = 0) -> datetime:
    return utc(plain_time("", raw, False) + timedelta(days=days), zone)


def overlapping(starts: pa.Array, ends: pa.Array, start: datetime, end: datetime) -> pa.Array:
    """``connectors.ics.series.overlaps`` of each event."""
    start, end = pa.scalar(start, UTC_TS), pa.scalar(end, UTC_TS)
    touching = pc.and_kleene(pc.equal(ends, starts), pc.greater_equal(starts, start))
    return pc.and_kleene(pc.less(starts, end), pc.or_kleene(pc.greater(ends, start), touching))
