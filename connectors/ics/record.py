"""One icalendar event -> one record (the ``Event`` fields by name): what makes an event
unreadable (``problem_of``), a UID for one without (``content_uid``), floating times read in the
calendar's zone (``localise``), and ``event_record``, the one place an occurrence becomes a record
(``connectors.ics.plain`` makes the same records column by column, and the tests hold it to this)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from zoneinfo import ZoneInfo

import icalendar
from icalendar.error import BrokenCalendarProperty

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
    tags,
    utc,
    zone_name,
)
from timeaudit.core.model import Attendee, Event

SOURCE = "ics"
TIME_PROPERTIES = ("DTSTART", "DTEND", "DURATION", "RECURRENCE-ID", "RRULE", "RDATE", "EXDATE")


def properties(component: icalendar.Component, key: str) -> list:
    value = component.get(key)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _time_values(component: icalendar.Component) -> Iterator[tuple[str, object, object]]:
    """(property name, property, vDDDTypes) of every date or date-time that places the event."""
    for key in ("DTSTART", "DTEND", "RECURRENCE-ID", "RDATE", "EXDATE"):
        for prop in properties(component, key):
            for value in getattr(prop, "dts", None) or [prop]:
                yield key, prop, value


# What tells an event without a UID apart: its times, rules, title, organizer and place.
CONTENT_KEYS = ("DTSTART", "DTEND", "DURATION", "RRULE", "RDATE", "EXDATE", "RECURRENCE-ID", "SUMMARY")
CONTENT_KEYS += ("ORGANIZER", "LOCATION")
CONTENT_UID_PREFIX = "no-uid-"


def content_uid(component: icalendar.Component) -> str:
    """A stable UID for an event that has none, from its content as written (before any time
    is localised): the same event gets it on every import, distinct events distinct ones."""
    digest = hashlib.sha256()
    for key in CONTENT_KEYS:
        for prop in properties(component, key):
            params = ";".join(f"{k}={v}" for k, v in sorted(getattr(prop, "params", {}).items()))
            value = prop.to_ical() if hasattr(prop, "to_ical") else str(prop).encode()
            digest.update(f"{key};{params}:".encode() + value + b"\n")
    return CONTENT_UID_PREFIX + digest.hexdigest()[:20]


def problem_of(component: icalendar.Component) -> str | None:
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


def localise(component: icalendar.Component, zone: tzinfo, utc_too: bool) -> None:
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
# through ComponentProps; event_record is the one place that turns one into an Event (the plain
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


class ComponentProps:
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
        attendees = properties(self.component, "ATTENDEE")
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
class CalendarContext:
    """What every event of one calendar shares."""

    account: str
    feed: str
    zone: ZoneInfo
    utc_too: bool  # UTC times are read in ``zone`` too (X-WR-TIMEZONE)
    words: tuple[str, ...]
    store_titles: bool
    max_occurrences: int = 10_000  # per series, in the window


def event_record(props, start: date, end: date, key: str, series_id: str, cal: CalendarContext) -> dict:
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
    """The ``Event`` of a record made by ``event_record``."""
    return Event(**{**record, "attendees": [Attendee(*guest) for guest in record["attendees"]]})


def event_of_row(row: dict) -> Event:
    """The ``Event`` of a row of the lake's columns."""
    return Event(**{**row, "source": SOURCE, "attendees": [Attendee(**guest) for guest in row["attendees"]]})
