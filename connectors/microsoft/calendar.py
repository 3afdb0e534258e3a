"""Outlook calendars through Graph's ``calendarView/delta`` -> ``Event`` records, mapped so that
one meeting classifies the same whether it came from Outlook or from Google Calendar.

- First (full) sync: ``/users/{u}/calendarView/delta?startDateTime=..&endDateTime=..`` with
  ``Prefer: odata.maxpagesize=N, outlook.timezone="UTC"``, following ``@odata.nextLink``; the
  last page carries ``@odata.deltaLink``, the cursor (saved after everything has landed).
- Later: the deltaLink alone: what changed (``@removed`` items become tombstones). No
  change costs one request.
- ``410`` / ``SyncStateNotFound`` (an expired delta token): ``cursor.reset`` and a full sync;
  held events in the window it no longer lists become tombstones; nothing is doubled.

Mapping: showAs free -> transparent ("show as free" never counts), oof -> outOfOffice,
workingElsewhere -> workingLocation; isCancelled -> a tombstone; responseStatus -> the
account's own response (organizer = accepted); attendees of type resource (rooms, equipment)
are not people; isOnlineMeeting -> a conference; categories join the title in the keyword
tags; ``seriesMasterId`` the series. The body is read by Graph's delta whole, but only whether
it is blank is kept (an agenda), like Google's description.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta

from connectors.base import Cursor
from connectors.microsoft.graph import FullSyncRequired, GraphClient, delta_pages
from timeaudit.core.config import Settings
from timeaudit.core.model import Attendee, Event, deleted_event
from timeaudit.core.tags import tags_of, vocabulary

SOURCE = "microsoft"
CALENDAR_PREFER = 'outlook.timezone="UTC"'  # every time in UTC, whatever the mailbox's zone
RESPONSES = {
    "accepted": "accepted",
    "organizer": "accepted",
    "tentativelyAccepted": "tentative",
    "declined": "declined",
    "notResponded": "needsAction",
}


def window_of(settings: Settings, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = (now or datetime.now(UTC)).replace(microsecond=0)
    ms = settings.microsoft
    return now - timedelta(weeks=ms.weeks_back), now + timedelta(weeks=ms.weeks_ahead)


def stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(value: dict | None) -> datetime | None:
    """A dateTimeTimeZone (UTC, as asked with outlook.timezone) -> an aware UTC datetime."""
    if not value or not value.get("dateTime"):
        return None
    text = value["dateTime"]
    head, _, fraction = text.partition(".")
    parsed = datetime.fromisoformat(head + ("." + fraction[:6] if fraction else ""))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def instant(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _address(entry: dict | None) -> str:
    return str(((entry or {}).get("emailAddress") or {}).get("address") or "").strip().lower()


def _self_response(item: dict) -> str:
    if item.get("isOrganizer"):
        return "accepted"
    response = (item.get("responseStatus") or {}).get("response", "none")
    if response == "none":  # no invitation: the account's own time
        return "accepted"
    return RESPONSES.get(response, "needsAction")


def _attendees(item: dict) -> list[Attendee]:
    out = []
    for a in item.get("attendees") or []:
        email = _address(a)
        if not email or a.get("type") == "resource":
            continue
        response = RESPONSES.get((a.get("status") or {}).get("response", ""), "needsAction")
        out.append(Attendee(email, response, a.get("type") == "optional"))
    return out


def to_event(item: dict, *, account: str, words: tuple[str, ...], store_titles: bool, now: datetime) -> Event:
    """One event of ``calendarView/delta`` -> an Event (a tombstone when cancelled)."""
    updated = instant(item.get("lastModifiedDateTime")) or now
    series_id = item.get("seriesMasterId") or ""
    start, end = graph_time(item.get("start")), graph_time(item.get("end"))
    if item.get("isCancelled") or start is None:
        return deleted_event(SOURCE, account, item["id"], updated, start or updated, series_id)
    show_as = item.get("showAs", "busy")
    event_type = {"oof": "outOfOffice", "workingElsewhere": "workingLocation"}.get(show_as, "default")
    subject = item.get("subject") or ""
    categories = " ".join(item.get("categories") or [])
    attendees = _attendees(item)
    organizer = _address(item.get("organizer"))
    if attendees and organizer and organizer not in {a.email for a in attendees}:
        # Google lists the organizer among the attendees when there are guests; so do we.
        attendees.insert(0, Attendee(organizer, "accepted", False))
    return Event(
        source=SOURCE,
        account=account,
        id=item["id"],
        start=start,
        end=max(end or start, start),
        updated=updated,
        ical_uid=item.get("iCalUId") or "",
        series_id=series_id,
        tz=item.get("originalStartTimeZone") or "",
        all_day=bool(item.get("isAllDay")),
        status="tentative" if show_as == "tentative" else "confirmed",
        self_response=_self_response(item),
        transparency="transparent" if show_as == "free" else "opaque",
        event_type=event_type,
        organizer=organizer,
        attendees=attendees,
        has_agenda=bool((item.get("bodyPreview") or "").strip()) or bool(item.get("hasAttachments")),
        has_conference=bool(item.get("isOnlineMeeting")) or bool(item.get("onlineMeeting")),
        title_tags=tags_of(f"{subject} {categories}".strip(), words),
        title=subject if store_titles and subject else None,
    )


def iter_events(
    client: GraphClient,
    user: str,
    *,
    cursor: Cursor,
    settings: Settings,
    window: tuple[datetime, datetime],
    held: Mapping[str, tuple] | None = None,
    on_page: Callable[[], None] | None = None,
    now: datetime | None = None,
) -> Iterator[Event]:
    """One mailbox's calendar changes since ``cursor.value`` (its ``delta_link``); the window whole
    when there is none. ``held``: {id: (start, end, updated)} the lake holds for the account."""
    now = now or datetime.now(UTC)
    words, titles = vocabulary(settings.rules), settings.privacy.store_titles
    held = held or {}

    def events(page: dict, seen: set[str] | None = None) -> Iterator[Event]:
        for item in page.get("value") or []:
            if "@removed" in item:
                before = held.get(item["id"])
                if before:
                    yield deleted_event(SOURCE, user, item["id"], before[-1], before[0])
                continue
            event = to_event(item, account=user, words=words, store_titles=titles, now=now)
            if seen is not None:
                seen.add(event.id)
            yield event

    saved = cursor.value or {}
    if saved.get("delta_link"):
        try:
            for page in delta_pages(client, saved["delta_link"], None, on_page, CALENDAR_PREFER):
                yield from events(page)
                if page.get("@odata.deltaLink"):
                    cursor.new_value = dict(saved, delta_link=page["@odata.deltaLink"])
            return
        except FullSyncRequired:
            cursor.reset = True

    start, end = window
    params = {"startDateTime": stamp(start), "endDateTime": stamp(end)}
    seen: set[str] = set()
    link = None
    for page in delta_pages(client, f"users/{user}/calendarView/delta", params, on_page, CALENDAR_PREFER):
        yield from events(page, seen)
        link = page.get("@odata.deltaLink") or link
    for event_id, (first, last, updated) in sorted(held.items()):
        if event_id not in seen and last > start and first < end:
            yield deleted_event(SOURCE, user, event_id, updated, now)
    if link:
        cursor.new_value = {"delta_link": link, "start": stamp(start), "end": stamp(end)}
