"""Small builders for hand-made records in tests."""

from __future__ import annotations

from datetime import UTC, datetime

from timeaudit.core.model import Attendee, Event, Message

UPDATED = datetime(2026, 1, 1, tzinfo=UTC)
_counter = iter(range(1, 10**9))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def event(
    account: str, start: datetime, end: datetime, *, with_: list[str] = (), organizer: str | None = None, **kwargs
) -> Event:
    attendees = [Attendee(account, kwargs.get("self_response", "accepted"))] + [Attendee(a, "accepted") for a in with_]
    return Event(
        source="test",
        account=account,
        id=kwargs.pop("id", f"e{next(_counter)}"),
        start=start,
        end=end,
        updated=kwargs.pop("updated", UPDATED),
        organizer=organizer if organizer is not None else account,
        attendees=attendees if with_ else [],
        **kwargs,
    )


def message(account: str, ts: datetime, **kwargs) -> Message:
    return Message(
        source="test",
        account=account,
        id=kwargs.pop("id", f"m{next(_counter)}"),
        ts=ts,
        updated=kwargs.pop("updated", UPDATED),
        **kwargs,
    )
