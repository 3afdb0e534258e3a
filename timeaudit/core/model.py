"""Typed records that connectors produce and the store keeps.

Every timestamp is an aware datetime in UTC by the time it reaches the store. Lists of
addresses are lower-case. Titles and subjects are reduced to keyword tags at ingest
(see ``timeaudit.core.tags``) unless the privacy settings say to keep them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

import pyarrow as pa

SCHEMA_VERSION = 1


@dataclass(slots=True)
class Attendee:
    email: str
    response: str = "needsAction"  # accepted | declined | tentative | needsAction
    optional: bool = False


@dataclass(slots=True)
class Event:
    """One event as seen in one account's calendar (each attendee has their own copy)."""

    source: str
    account: str
    id: str
    start: datetime
    end: datetime
    updated: datetime
    ical_uid: str = ""
    series_id: str = ""  # the recurring series this occurrence belongs to, "" if single
    tz: str = ""
    all_day: bool = False
    status: str = "confirmed"  # confirmed | tentative | cancelled
    self_response: str = "accepted"  # accepted | declined | tentative | needsAction
    transparency: str = "opaque"  # opaque | transparent ("show as free")
    event_type: str = "default"  # default | focusTime | outOfOffice | workingLocation
    organizer: str = ""
    attendees: list[Attendee] = field(default_factory=list)
    has_agenda: bool = False
    has_conference: bool = False
    title_tags: list[str] = field(default_factory=list)
    title: str | None = None
    deleted: bool = False  # tombstone: the record was removed upstream

    @property
    def attendee_count(self) -> int:
        return len(self.attendees)


@dataclass(slots=True)
class Message:
    """Metadata of one email in one mailbox. Never a body."""

    source: str
    account: str
    id: str
    ts: datetime
    updated: datetime
    thread_id: str = ""
    direction: str = "received"  # sent | received
    sender: str = ""
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    self_in: str = "to"  # from | to | cc | bcc
    labels: list[str] = field(default_factory=list)
    unread: bool = False
    bulk: bool = False  # List-Id, Precedence bulk/list, no-reply sender, category labels
    auto: bool = False  # auto-reply or meeting response: not email work
    message_id: str = ""
    in_reply_to: str = ""
    subject_tags: list[str] = field(default_factory=list)
    subject: str | None = None
    deleted: bool = False


@dataclass(slots=True)
class Chat:
    """Metadata of one chat message (Slack), once per workspace. Never its text.

    ``account`` is the workspace ("slack:T0123"); ``conversation_kind`` is public, private,
    mpim or im; ``shared_domains`` are the email domains of the other organisations' members
    of a shared (Slack Connect) conversation or a DM with an outsider. Addresses are emails
    where the workspace's users list gives one, else "slack:<user id>".
    """

    source: str
    account: str
    id: str  # "<conversation id>/<ts>"
    ts: datetime
    updated: datetime  # the last edit, else ``ts``
    conversation: str = ""
    conversation_kind: str = "public"  # public | private | mpim | im
    shared_domains: list[str] = field(default_factory=list)
    sender: str = ""
    bot: bool = False
    thread: str = ""  # "<conversation id>/<thread ts>" of a thread's parent and its replies, else ""
    reply_to: str = ""  # who wrote the thread's parent, for a reply
    mentions: list[str] = field(default_factory=list)
    reactions: int = 0
    tags: list[str] = field(default_factory=list)  # keyword tags of the text, only with privacy.chat_tags
    deleted: bool = False


@dataclass(slots=True)
class Person:
    email: str
    team: str
    name: str = ""
    manager: str = ""
    role: str = "member"  # member | lead | admin
    timezone: str = ""  # "" = the organisation's
    working_hours: str = ""  # "09:00-17:30"; "" = the organisation's
    hourly_cost: float | None = None
    leads: list[str] = field(default_factory=list)  # teams a lead leads besides their own ("Sales;Support")


@dataclass(slots=True)
class Customer:
    name: str
    domains: list[str]
    tier: str = ""
    owner: str = ""


ATTENDEE_TYPE = pa.struct([("email", pa.string()), ("response", pa.string()), ("optional", pa.bool_())])
UTC_TS = pa.timestamp("us", tz="UTC")

# Arrow schemas of the lake tables. ``source`` is the lake's partition folder, so it is not
# stored inside the files; ``ingested_at`` is stamped by the store when a batch lands.
EVENT_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("id", pa.string()),
        ("ical_uid", pa.string()),
        ("series_id", pa.string()),
        ("start", UTC_TS),
        ("end", UTC_TS),
        ("tz", pa.string()),
        ("all_day", pa.bool_()),
        ("status", pa.string()),
        ("self_response", pa.string()),
        ("transparency", pa.string()),
        ("event_type", pa.string()),
        ("organizer", pa.string()),
        ("attendees", pa.list_(ATTENDEE_TYPE)),
        ("attendee_count", pa.int32()),
        ("has_agenda", pa.bool_()),
        ("has_conference", pa.bool_()),
        ("title_tags", pa.list_(pa.string())),
        ("title", pa.string()),
        ("updated", UTC_TS),
        ("deleted", pa.bool_()),
        ("ingested_at", UTC_TS),
    ]
)

MESSAGE_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("id", pa.string()),
        ("thread_id", pa.string()),
        ("ts", UTC_TS),
        ("direction", pa.string()),
        ("sender", pa.string()),
        ("to", pa.list_(pa.string())),
        ("cc", pa.list_(pa.string())),
        ("self_in", pa.string()),
        ("labels", pa.list_(pa.string())),
        ("unread", pa.bool_()),
        ("bulk", pa.bool_()),
        ("auto", pa.bool_()),
        ("message_id", pa.string()),
        ("in_reply_to", pa.string()),
        ("subject_tags", pa.list_(pa.string())),
        ("subject", pa.string()),
        ("updated", UTC_TS),
        ("deleted", pa.bool_()),
        ("ingested_at", UTC_TS),
    ]
)

CHAT_SCHEMA = pa.schema(
    [
        ("account", pa.string()),
        ("id", pa.string()),
        ("ts", UTC_TS),
        ("conversation", pa.string()),
        ("conversation_kind", pa.string()),
        ("shared_domains", pa.list_(pa.string())),
        ("sender", pa.string()),
        ("bot", pa.bool_()),
        ("thread", pa.string()),
        ("reply_to", pa.string()),
        ("mentions", pa.list_(pa.string())),
        ("reactions", pa.int32()),
        ("tags", pa.list_(pa.string())),
        ("updated", UTC_TS),
        ("deleted", pa.bool_()),
        ("ingested_at", UTC_TS),
    ]
)

TABLES: dict[str, tuple[type, pa.Schema]] = {
    "events": (Event, EVENT_SCHEMA),
    "messages": (Message, MESSAGE_SCHEMA),
    "chat": (Chat, CHAT_SCHEMA),
}

# Primary key of every lake table: newer versions win by ``updated`` then ``ingested_at``.
PRIMARY_KEY = ("source", "account", "id")


def deleted_event(source: str, account: str, id: str, updated: datetime, at: datetime, series_id: str = "") -> Event:
    """The record a source yields for an event deleted upstream (a zero-length cancelled event at ``at``)."""
    return Event(
        source=source,
        account=account,
        id=id,
        start=at,
        end=at,
        updated=updated,
        series_id=series_id,
        status="cancelled",
        deleted=True,
    )


def deleted_message(source: str, account: str, id: str, ts: datetime, updated: datetime) -> Message:
    """The record a source yields for a message deleted upstream."""
    return Message(source=source, account=account, id=id, ts=ts, updated=updated, deleted=True)


def record_columns(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]
