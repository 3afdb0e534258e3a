"""Google Calendar API v3 -> ``Event`` records, following Google's incremental-sync guide.

``iter_events`` is a plain generator over one calendar of one account:

- First (full) sync: ``events.list`` with ``singleEvents=true``, ``showDeleted=true``,
  ``timeMin``/``timeMax`` = the window, ``maxResults=2500``, following ``nextPageToken``.
- Later: ``syncToken`` only (Google forbids the window with it), same other parameters.
- ``nextSyncToken`` arrives on the last page only; it becomes ``cursor.new_value`` after
  every record has been yielded, and the caller saves it after they have landed.
- ``410 Gone`` (``fullSyncRequired``): the token is dropped (``cursor.reset``) and a full
  sync runs. After any full sync, records the lake holds for this calendar in the window
  but Google no longer lists are yielded as tombstones (``known`` tells which).
- A page may be empty and still carry ``nextPageToken``; paging goes on.

Kept per event: times in UTC (all-day dates at midnight in the calendar's time zone), the
event's time zone, status, the account's own response, transparency, event type,
organizer, attendees (rooms and other resources left out) with their responses, recurring
series, whether a conference and an agenda (description or attachment) exist, and title
tags. Descriptions are never kept; the title only when ``privacy.store_titles`` is on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from googleapiclient.errors import HttpError

from connectors.base import Cursor
from timeaudit.core.config import Settings
from timeaudit.core.model import Attendee, Event, deleted_event
from timeaudit.core.tags import tags_of, vocabulary

SOURCE = "google_calendar"
PRIMARY_KEY = ("source", "account", "id")  # id: the event id; "<calendar id>/<event id>" off the primary calendar
CURSOR_FIELD = "nextSyncToken"  # saved per calendar as {"sync_token", "time_min", "time_max"}
PRIMARY = "primary"
MAX_RESULTS = 2500  # the largest page Google serves
EVENT_TYPES = {"default", "focusTime", "outOfOffice", "workingLocation"}
RESPONSES = {"accepted", "declined", "tentative", "needsAction"}


class FullSyncRequired(Exception):
    """Google answered 410 Gone: the sync token is no longer valid."""


@dataclass(frozen=True)
class Window:
    """The span a full sync asks for: events ending after ``start`` and starting before ``end``."""

    start: datetime
    end: datetime

    @classmethod
    def around(cls, now: datetime, weeks_back: int, weeks_ahead: int) -> Window:
        return cls(now - timedelta(weeks=weeks_back), now + timedelta(weeks=weeks_ahead))

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return end > self.start and start < self.end


def default_window(settings: Settings, now: datetime | None = None) -> Window:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    return Window.around(now, settings.google.weeks_back, settings.google.weeks_ahead)


def primary_address(service) -> str:
    """Whose credentials ``service`` uses: the id of their primary calendar (one request)."""
    return str(service.calendars().get(calendarId=PRIMARY).execute().get("id", "")).lower()


def is_primary(calendar_id: str, account: str) -> bool:
    return calendar_id in (PRIMARY, account)


def record_id(calendar_id: str, account: str, event_id: str) -> str:
    """The lake id of an event: Google's id on the primary calendar, else prefixed by the calendar."""
    return event_id if is_primary(calendar_id, account) else f"{calendar_id}/{event_id}"


def belongs_to(calendar_id: str, account: str, lake_id: str) -> bool:
    """Whether a lake id of ``account`` came from ``calendar_id`` (event ids never hold '/')."""
    if is_primary(calendar_id, account):
        return "/" not in lake_id
    return lake_id.startswith(f"{calendar_id}/")


# -- mapping one Google event -------------------------------------------------------------
def _rfc3339(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def when(value: dict | None, calendar_tz: str) -> tuple[datetime, bool, str] | None:
    """A start/end object -> (UTC instant, all-day, time-zone name)."""
    if not value:
        return None
    tz = value.get("timeZone") or calendar_tz
    if value.get("dateTime"):
        parsed = datetime.fromisoformat(value["dateTime"])
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=_zone(tz))
        return parsed.astimezone(UTC), False, tz
    if value.get("date"):
        local = datetime.combine(date.fromisoformat(value["date"]), time(0), tzinfo=_zone(tz))
        return local.astimezone(UTC), True, tz
    return None


def _self_response(item: dict) -> str:
    for attendee in item.get("attendees") or []:
        if attendee.get("self"):
            response = attendee.get("responseStatus", "needsAction")
            return response if response in RESPONSES else "needsAction"
    # The organizer's own copy, or an event with no guests: the account's own time.
    return "accepted"


def _attendees(item: dict) -> list[Attendee]:
    out = []
    for a in item.get("attendees") or []:
        email = (a.get("email") or "").strip().lower()
        if not email or a.get("resource"):
            continue
        response = a.get("responseStatus", "needsAction")
        out.append(Attendee(email, response if response in RESPONSES else "needsAction", bool(a.get("optional"))))
    return out


def to_event(
    item: dict,
    *,
    account: str,
    calendar_id: str,
    calendar_tz: str,
    words: tuple[str, ...],
    store_titles: bool,
    now: datetime,
) -> Event:
    """One item of ``events.list`` -> an Event (a tombstone when it was cancelled)."""
    lake_id = record_id(calendar_id, account, item["id"])
    updated = _rfc3339(item.get("updated")) or now
    series_id = item.get("recurringEventId", "")
    start, end = when(item.get("start"), calendar_tz), when(item.get("end"), calendar_tz)
    if item.get("status") == "cancelled" or start is None:
        original = when(item.get("originalStartTime"), calendar_tz)
        at = (start or original or (updated, False, ""))[0]
        return deleted_event(SOURCE, account, lake_id, updated, at or updated, series_id)
    start_at, all_day, tz = start
    end_at = end[0] if end else start_at
    summary = item.get("summary") or ""
    organizer = item.get("organizer") or {}
    event_type = item.get("eventType", "default")
    return Event(
        source=SOURCE,
        account=account,
        id=lake_id,
        start=start_at,
        end=max(end_at, start_at),
        updated=updated,
        ical_uid=item.get("iCalUID", ""),
        series_id=series_id,
        tz=tz,
        all_day=all_day,
        status=item.get("status", "confirmed"),
        self_response=_self_response(item),
        transparency=item.get("transparency", "opaque"),
        event_type=event_type if event_type in EVENT_TYPES else "default",
        organizer=(organizer.get("email") or "").lower(),
        attendees=_attendees(item),
        has_agenda=bool((item.get("description") or "").strip()) or bool(item.get("attachments")),
        has_conference=bool(item.get("conferenceData")) or bool(item.get("hangoutLink")),
        title_tags=tags_of(summary, words),
        title=summary if store_titles and summary else None,
    )


# -- paging -------------------------------------------------------------------------------------
def _status(e: HttpError) -> int:
    return int(getattr(e.resp, "status", 0) or 0)


def _pages(service, calendar_id: str, params: dict, on_page: Callable[[int], None] | None) -> Iterator[dict]:
    """Every page of one ``events.list`` query, following ``nextPageToken``."""
    page_token = None
    while True:
        request = service.events().list(calendarId=calendar_id, pageToken=page_token, **params)
        try:
            page = request.execute()
        except HttpError as e:
            if _status(e) == 410:
                raise FullSyncRequired() from e
            raise
        if on_page:
            on_page(len(page.get("items") or []))
        yield page
        page_token = page.get("nextPageToken")
        if not page_token:
            return


def iter_events(
    service,
    calendar_id: str,
    account: str,
    *,
    cursor: Cursor,
    settings: Settings,
    window: Window,
    known: Callable[[Window], dict[str, datetime]] | None = None,
    on_page: Callable[[int], None] | None = None,
    now: datetime | None = None,
) -> Iterator[Event]:
    """Every changed event of one calendar since ``cursor.value``; all of the window when there is none.

    ``known(window)`` -> {lake id: updated} of the live records the lake holds for this
    account and calendar overlapping the window; after a full sync those Google no longer
    lists become tombstones. ``on_page(n)`` is told the size of every page.
    """
    now = now or datetime.now(UTC)
    words = vocabulary(settings.rules)

    def events_of(page: dict) -> Iterator[Event]:
        tz = page.get("timeZone") or "UTC"
        for item in page.get("items") or []:
            yield to_event(
                item,
                account=account,
                calendar_id=calendar_id,
                calendar_tz=tz,
                words=words,
                store_titles=settings.privacy.store_titles,
                now=now,
            )

    common = {"singleEvents": True, "showDeleted": True, "maxResults": MAX_RESULTS}
    saved = cursor.value or {}
    if saved.get("sync_token"):
        params = dict(common, syncToken=saved["sync_token"])
        try:
            for page in _pages(service, calendar_id, params, on_page):
                yield from events_of(page)
                if page.get("nextSyncToken"):
                    cursor.new_value = dict(saved, sync_token=page["nextSyncToken"])
            return
        except FullSyncRequired:
            cursor.reset = True  # the saved token is dead; the full sync below replaces it

    params = dict(common, timeMin=_stamp(window.start), timeMax=_stamp(window.end))
    seen: set[str] = set()
    next_token = None
    for page in _pages(service, calendar_id, params, on_page):
        for event in events_of(page):
            seen.add(event.id)
            yield event
        next_token = page.get("nextSyncToken")
    for lake_id, updated in sorted((known(window) if known else {}).items()):
        if lake_id not in seen:
            # Same `updated` as the live version: the later ingest wins, and an event that
            # reappears (same `updated`, ingested later still) comes back to life.
            yield deleted_event(SOURCE, account, lake_id, updated, now)
    if next_token:
        cursor.new_value = {"sync_token": next_token, "time_min": _stamp(window.start), "time_max": _stamp(window.end)}


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
