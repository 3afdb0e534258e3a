"""How one iCalendar value reads, the same for the icalendar path (``connectors.ics.reader``)
and the column-wise one (``connectors.ics.plain``): times and zones, attendees and addresses,
conference properties, title tags, and which properties a record reads as one value."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar.timezone.tzid import tzid_from_dt
from icalendar.timezone.windows_to_olson import WINDOWS_TO_OLSON

from timeaudit.core.tags import tags_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)  # `updated` of an event that carries no timestamp at all


RESPONSES = {
    "ACCEPTED": "accepted",
    "DECLINED": "declined",
    "TENTATIVE": "tentative",
    "NEEDS-ACTION": "needsAction",
    "DELEGATED": "declined",  # someone else goes in the account's place
}
CONFERENCE_PROPERTIES = ("CONFERENCE", "X-GOOGLE-CONFERENCE", "X-MICROSOFT-SKYPETEAMSMEETINGURL")
CONFERENCE_PREFIXES = ("X-MICROSOFT-ONLINEMEETING",)
CONFERENCE_STARTS = (*CONFERENCE_PROPERTIES, *CONFERENCE_PREFIXES)  # how every conference property's name starts
MEETING_URL = re.compile(
    r"https?://[^\s]*(zoom\.us|teams\.microsoft\.com|teams\.live\.com|meet\.google\.com|webex\.com|"
    r"gotomeeting\.com|gotomeet\.me|whereby\.com|chime\.aws|bluejeans\.com|meet\.jit\.si|facetime\.apple\.com)",
    re.IGNORECASE,
)


def zone_named(name: str) -> ZoneInfo | None:
    name = name.strip()
    try:
        return ZoneInfo(WINDOWS_TO_OLSON.get(name, name)) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_name(value: date, default: ZoneInfo) -> str:
    """The IANA name of a start's zone: its own when it has one, else (dates, UTC, custom zones) the calendar's."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() == timedelta(0) == value.dst():
        return default.key
    zone = value.tzinfo if isinstance(value.tzinfo, ZoneInfo) else zone_named(tzid_from_dt(value) or "")
    return zone.key if zone else default.key


def same_kind(start: date, end: date) -> bool:
    """Both dates, both floating date-times or both zoned ones."""
    if type(start) is not type(end):
        return False
    return not isinstance(start, datetime) or (start.tzinfo is None) == (end.tzinfo is None)


def localised(value: date, zone: tzinfo, utc_too: bool) -> date:
    if not isinstance(value, datetime):
        return value
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    if utc_too and value.utcoffset() == timedelta(0) and str(value.tzname()).upper() == "UTC":
        return value.astimezone(zone)
    return value


def utc(value: date, zone: tzinfo) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.combine(value, time(0), tzinfo=zone).astimezone(UTC)


def stamp(value: date) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return value.strftime("%Y%m%d")


def as_updated(value: date) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), tzinfo=UTC)


def address(value: str, params: Mapping) -> str:
    address = value.strip()
    if address.lower().startswith("mailto:"):
        address = address[7:]
    if "@" not in address:
        address = str(params.get("EMAIL") or "")
    return address.strip().lower() if "@" in address else ""


def attendee(value: str, params: Mapping) -> tuple[str, str, bool, bool]:
    """(email, response, optional, a person rather than a room or resource) of one ATTENDEE."""
    email = address(value, params)
    response = RESPONSES.get(str(params.get("PARTSTAT", "")).upper(), "needsAction")
    optional = str(params.get("ROLE", "")).upper() in ("OPT-PARTICIPANT", "NON-PARTICIPANT")
    person = bool(email) and str(params.get("CUTYPE", "")).upper() not in ("ROOM", "RESOURCE")
    return email, response, optional, person


@functools.lru_cache(maxsize=65536)  # titles repeat (weekly meetings), and tagging one is slow
def tags(summary: str, words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(tags_of(summary, words))


# The properties a record (``connectors.ics.record.event_record``) and recurring_ical_events read
# as one value (SEQUENCE is compared): a plain event that repeats one of them, or types one with a
# VALUE parameter, is read by icalendar.
ONE_VALUE = frozenset(
    {"UID", "DTSTART", "DTEND", "DURATION", "LAST-MODIFIED", "DTSTAMP", "CREATED", "SEQUENCE", "ORGANIZER"}
    | {"SUMMARY", "STATUS", "TRANSP", "DESCRIPTION", "LOCATION", "URL", "X-MICROSOFT-CDO-BUSYSTATUS"}
    | set(CONFERENCE_PROPERTIES)
)
