"""One series (or single event) -> its occurrences in the import window, expanded by
recurring_ical_events only, with ids that stay the same across imports (an occurrence keeps the
slot it was generated for, also after a RANGE=THISANDFUTURE override moved it). Work is bounded:
at most ``imports.max_occurrences_per_series`` occurrences, and a rule that would take far more
steps than that from its start is not expanded at all."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import icalendar
import recurring_ical_events

from connectors.ics.record import CalendarContext, ComponentProps, event_record, properties
from connectors.ics.values import stamp, utc

RECURRING = ("RRULE", "RDATE", "RECURRENCE-ID")  # what makes an event a series or a part of one
# The expansion asks for a little more than the window, then keeps exactly what overlaps it.
MARGIN = timedelta(days=2)


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
            steps += sum(_rule_steps(rule, first, last) for rule in properties(component, "RRULE"))
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
    """Whether an occurrence ends before ``start`` (``overlaps`` would leave it out)."""
    return _as_utc(occurrence.end) <= start and _as_utc(occurrence.start) < start


def series_events(
    uid: str, components: list[icalendar.Component], cal: CalendarContext, start: datetime, end: datetime
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
        events.append(event_record(ComponentProps(occurrence), occurrence.start, occurrence.end, key, series_id, cal))
    return events, cut


def overlaps(s: datetime, e: datetime, start: datetime, end: datetime) -> bool:
    return s < end and (e > start or (e == s and s >= start))
