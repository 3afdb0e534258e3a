"""Slack messages -> ``Chat`` records, the same from an export's daily files and from the Web
API (both give a message as the same JSON object), so an import and a sync agree.

A workspace's users give each sender's email; a user of another organisation (another
``team_id`` than the workspace's own) makes a conversation shared with their email domain
(Slack Connect, or a DM with an outsider). Only metadata is kept: the text is read for
mentions, and for keyword tags when ``privacy.chat_tags`` is on, then dropped.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta

from timeaudit.core.config import Settings
from timeaudit.core.model import Chat
from timeaudit.core.tags import tags_of, vocabulary

SOURCE = "slack"
# Messages people wrote; joins, topic changes, pins and the like are not chat work.
KEPT_SUBTYPES = frozenset({"", "thread_broadcast", "file_share", "bot_message", "me_message"})
_USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
_GROUP_MENTION = re.compile(r"<!(channel|here|everyone)(?:\|[^>]*)?>")


class BadRecord(ValueError):
    """A message that cannot be read (no ts)."""


@dataclass(frozen=True)
class Conversation:
    id: str
    kind: str  # public | private | mpim | im
    shared_domains: tuple[str, ...] = ()


class Directory:
    """The workspace's users: id -> email (or "slack:<id>"), and which are of other organisations."""

    def __init__(self, users: Iterable[dict]):
        users = [u for u in users if isinstance(u, dict) and u.get("id")]
        teams = Counter(u.get("team_id", "") for u in users if not u.get("is_bot"))
        self.team = teams.most_common(1)[0][0] if teams else ""
        self.address = {u["id"]: _email(u) or f"slack:{u['id']}" for u in users}
        self.external = {u["id"] for u in users if u.get("team_id") and u.get("team_id") != self.team}

    @property
    def account(self) -> str:
        return f"slack:{self.team}" if self.team else "slack"

    def of(self, user: str) -> str:
        return self.address.get(user, f"slack:{user}") if user else ""

    def conversation(self, id: str, kind: str, members: Iterable[str]) -> Conversation:
        domains = {self.of(m).rpartition("@")[2] for m in members if m in self.external and "@" in self.of(m)}
        return Conversation(id, kind, tuple(sorted(domains)))


def _email(user: dict) -> str:
    email = (user.get("profile") or {}).get("email") or ""
    return email.strip().lower()


def kind_of(conversation: dict) -> str:
    """public | private | mpim | im, from a conversations.list object."""
    if conversation.get("is_im"):
        return "im"
    if conversation.get("is_mpim"):
        return "mpim"
    if conversation.get("is_private") or conversation.get("is_group"):
        return "private"
    return "public"


def slack_time(ts: str) -> datetime:
    """A Slack ts ("1700000000.000100") -> an aware UTC datetime, to the microsecond."""
    seconds, _, fraction = ts.partition(".") if isinstance(ts, str) else ("", "", "")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()):
        raise BadRecord(f"ts {ts!r} is not a Slack timestamp")
    return _EPOCH + timedelta(seconds=int(seconds), microseconds=int((fraction + "000000")[:6]))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def is_chat(message: dict) -> bool:
    return message.get("type", "message") == "message" and (message.get("subtype") or "") in KEPT_SUBTYPES


def chat_record(message: dict, conversation: Conversation, directory: Directory, settings: Settings) -> Chat:
    """One message's record. Raises BadRecord for one without a ts."""
    ts = message.get("ts")
    if not isinstance(ts, str) or not ts:
        raise BadRecord("a message without a ts")
    at = slack_time(ts)
    edited = (message.get("edited") or {}).get("ts")
    updated = max(at, slack_time(edited)) if edited else at
    bot = bool(message.get("bot_id")) and not message.get("user") or message.get("subtype") == "bot_message"
    sender = f"bot:{message.get('bot_id', '')}" if bot else directory.of(message.get("user", ""))
    thread_ts = message.get("thread_ts") or ""
    reply = bool(thread_ts) and thread_ts != ts
    text = message.get("text") or ""
    mentions = list(dict.fromkeys(directory.of(u) for u in _USER_MENTION.findall(text)))
    mentions += list(dict.fromkeys(f"@{g}" for g in _GROUP_MENTION.findall(text)))
    reactions = sum(int(r.get("count") or len(r.get("users") or [])) for r in message.get("reactions") or [])
    return Chat(
        source=SOURCE,
        account=directory.account,
        id=f"{conversation.id}/{ts}",
        ts=at,
        updated=updated,
        conversation=conversation.id,
        conversation_kind=conversation.kind,
        shared_domains=list(conversation.shared_domains),
        sender=sender,
        bot=bot,
        thread=f"{conversation.id}/{thread_ts}" if thread_ts else "",
        reply_to=directory.of(message.get("parent_user_id", "")) if reply else "",
        mentions=mentions,
        reactions=reactions,
        tags=tags_of(text, vocabulary(settings.rules)) if settings.privacy.chat_tags else [],
    )


CHAT_FIELDS = tuple(f.name for f in fields(Chat))


def as_fields(record: Chat) -> dict:
    """A record as the dict of its fields that a mirror read yields."""
    return {name: getattr(record, name) for name in CHAT_FIELDS}
