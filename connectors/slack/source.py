"""Slack's Web API as a source (``timeaudit sync slack``): one workspace, one token.

users.list gives each user's email; conversations.list the conversations of the types the
token may read (a type it lacks the scope for is left out and named in the report);
conversations.members the members of shared ones (Slack Connect), whose other organisations'
domains the records carry; conversations.history each conversation's messages newer than the
cursor (``oldest``) and conversations.replies each thread's replies. Threads started in the last
``slack.thread_days`` days are read again on every sync, since a late reply does not show in
the history. Rate limits (HTTP 429 with Retry-After) are waited out by slack_sdk's retry handler.

The cursor is, per conversation, the ts of the newest message read, and the threads still read
again: it is saved once everything it covers has landed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from connectors.base import Cursor, OnFailure, Report, Summary
from connectors.slack.records import SOURCE, BadRecord, Conversation, Directory, chat_record, is_chat, kind_of
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Chat
from timeaudit.core.private_files import read_secret

PAGE = 200
BATCH_SIZE = 5000
RETRIES = 5  # waits for a rate limit per request
REFUSED = frozenset({"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"})
TYPES = {"public_channel": "is_channel", "private_channel": "is_group", "mpim": "is_mpim", "im": "is_im"}


class SlackRefused(UserError):
    """Slack refused the token."""


@dataclass
class SlackReport(Report):
    requests: int = 0
    conversations: int = 0
    threads: int = 0
    left_out: str = ""  # conversation types the token may not read

    def line(self) -> str:
        left = f"; left out (the token lacks the scope): {self.left_out}" if self.left_out else ""
        return (
            f"{self.account}: {self.records:,} messages in {self.conversations} conversations "
            f"({self.threads} threads), {self.requests:,} requests, {self.outcome}{left}"
        )

    def progress_text(self) -> str:
        state = "[red]failed[/red]" if self.error else self.outcome
        return f"{self.conversations} conversations, {self.records:,} messages, {state}"


class SlackSummary(Summary):
    def line(self) -> str:
        return (
            f"Slack: {self.records:,} messages ({self.added:,} added, {self.updated:,} updated), "
            f"{self.total('conversations')} conversations, {self.total('requests'):,} requests, {self.failed} failed"
        )


class SlackSource:
    """The workspace the ``slack.token_file`` token belongs to."""

    name = SOURCE
    table = "chat"
    write_disposition = "merge"
    held_columns = ("ts", "updated")
    shardable = False
    batch_size = BATCH_SIZE

    def __init__(self, settings: Settings, *, since: datetime | None = None, client: WebClient | None = None):
        self.settings, self.since = settings, since
        config = settings.slack
        path = config.file(settings.path)
        if client is None:
            if path is None:
                raise UserError("no slack token_file in the settings; name a file (mode 0600) holding the token")
            token = read_secret(path, "the Slack token")
            client = WebClient(token=token, base_url=config.base_url, timeout=30)
            client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=RETRIES))
        self.client, self.token_path = client, path
        self.requests = 0
        self._identity: dict | None = None

    def _call(self, method: str, **params) -> dict:
        self.requests += 1
        try:
            return self.client.api_call(method, http_verb="GET", params=params).data
        except SlackApiError as e:
            error = e.response.get("error", "") if e.response is not None else ""
            if error in REFUSED:
                raise SlackRefused(
                    f"Slack refused the token in {self.token_path or 'the settings'} ({error}); "
                    "put a valid bot or user token (xoxb-/xoxp-) in slack.token_file"
                ) from None
            raise

    def _pages(self, method: str, key: str, **params) -> Iterator[dict]:
        cursor = ""
        while True:
            page = self._call(method, limit=PAGE, **params, **({"cursor": cursor} if cursor else {}))
            yield from page.get(key) or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return

    def identity(self) -> dict:
        if self._identity is None:
            self._identity = self._call("auth.test")
        return self._identity

    def accounts(self) -> list[str]:
        return [f"slack:{self.identity()['team_id']}"]

    def parts(self, account: str) -> Sequence[str]:
        return [""]

    def report(self, account: str, part: str) -> SlackReport:
        return SlackReport(account, part)

    def summary(self, reports: Sequence[Report]) -> SlackSummary:
        return SlackSummary(reports)

    def read(self, account: str, cursor: Cursor, report: Report | None = None) -> Iterator[Chat]:
        report = report or self.report(account, cursor.part)
        saved = cursor.value or {}
        report.full_sync = not saved
        now = datetime.now(UTC)
        first = self.since or now - timedelta(weeks=self.settings.slack.weeks_back)
        first_ts = f"{first.timestamp():.6f}"
        recent_ts = f"{(now - timedelta(days=self.settings.slack.thread_days)).timestamp():.6f}"
        directory = Directory(self._pages("users.list", "members"))
        latest: dict[str, str] = dict(saved.get("latest") or {})
        threads: dict[str, list[str]] = {k: list(v) for k, v in (saved.get("threads") or {}).items()}
        left_out = []
        for kind in self.settings.slack.types:
            try:
                listed = list(self._pages("conversations.list", "channels", types=kind, exclude_archived="false"))
            except SlackApiError as e:
                if e.response is not None and e.response.get("error") == "missing_scope":
                    left_out.append(kind)
                    continue
                raise
            for item in listed:
                conversation = self._conversation(item, directory)
                report.conversations += 1
                seen: set[str] = set()
                oldest = latest.get(conversation.id, first_ts)
                parents = set(t for t in threads.get(conversation.id, []) if t >= recent_ts)
                for message in self._pages("conversations.history", "messages", channel=conversation.id, oldest=oldest):
                    if message.get("reply_count") and message.get("thread_ts") == message.get("ts"):
                        parents.add(message["ts"])
                    yield from self._records([message], conversation, directory, seen, latest)
                for parent in sorted(parents):
                    report.threads += 1
                    replies = self._pages("conversations.replies", "messages", channel=conversation.id, ts=parent)
                    yield from self._records(replies, conversation, directory, seen, None)
                threads[conversation.id] = sorted(t for t in parents if t >= recent_ts)
                report.requests = self.requests
                report.show_progress()
        report.left_out = ", ".join(left_out)
        report.requests = self.requests
        cursor.new_value = {"latest": latest, "threads": {k: v for k, v in threads.items() if v}}

    def _records(
        self,
        messages,
        conversation: Conversation,
        directory: Directory,
        seen: set[str],
        latest: dict[str, str] | None,
    ) -> Iterator[Chat]:
        """The records of ``messages`` not seen yet; ``latest`` (the history's, not a thread's: a
        top-level message posted while the replies were read must not fall behind the cursor)
        keeps the newest ts per conversation."""
        for message in messages:
            ts = message.get("ts") or ""
            if ts in seen or not is_chat(message):
                continue
            seen.add(ts)
            try:
                record = chat_record(message, conversation, directory, self.settings)
            except BadRecord:
                continue
            if latest is not None and ts > latest.get(conversation.id, ""):
                latest[conversation.id] = ts
            yield record

    def _conversation(self, item: dict, directory: Directory) -> Conversation:
        kind = kind_of(item)
        if kind == "im":
            members = [item.get("user", ""), self.identity().get("user_id", "")]
        elif item.get("is_ext_shared") or item.get("is_shared"):
            members = list(self._pages("conversations.members", "members", channel=item["id"]))
        else:
            members = []
        return directory.conversation(item["id"], kind, members)

    def failed(self, report: Report, error: Exception) -> OnFailure | None:
        if isinstance(error, UserError):
            raise error
        if isinstance(error, (SlackClientError, OSError)):
            report.error = f"{error.__class__.__name__}: {error}"
            return "next account"
        return None

    def finish(self) -> None:
        pass
