"""Gmail API v1 -> ``Message`` records, metadata only (scope ``gmail.metadata``: headers and
labels, never a body), following Google's synchronisation guide and spending few quota units.

``iter_messages`` is a plain generator over one mailbox:

- First (full) sync: ``getProfile`` gives the mailbox ``historyId`` *before* anything is
  read (changes made while we read are then replayed by the next sync, harmlessly).
  ``messages.list`` pages of 500 ids, newest first. The metadata scope forbids ``q``, so
  the window is found by reading the date of each page's last message (``format=minimal``);
  on the page that crosses the window's start a binary search finds the boundary.
  The ids are grouped by thread: a thread with two or more messages in the window is read
  with one ``threads.get`` (10 units for all its messages), a lone message with
  ``messages.get`` (5 units). Both use ``format=metadata`` and only ``mail_headers.HEADERS``.
  Records the lake holds for the window that Gmail no longer has become tombstones.
- Later: ``history.list`` from the saved ``historyId`` (2 units a page): messages added,
  deleted and relabelled (UNREAD, SENT, categories, TRASH...). Added and relabelled messages
  are read again the same way (a label change can turn a message into a tombstone); deleted
  ones become tombstones. No change costs one request.
- ``404`` from ``history.list`` (history too old, typically after a week): the cursor is
  dropped (``cursor.reset``) and a full sync runs.
- Every fetch goes through ``execute_batch``: batches of at most 50 calls and at most one
  second's units, only failed calls retried. Quota units are paced with Google's published
  costs (``COSTS``) under both per-user limits (per second and per minute) and counted for
  the calls Gmail answered.

Kept per message: what ``connectors.mail.headers.message_from_headers`` makes of the headers
and labels, so Gmail and mail-file records are alike; the thread is the header rule's (the root
of References), which also joins one conversation across mailboxes. ``updated`` is the
message's ``internalDate`` plus its ``historyId`` in microseconds: any label change raises the
history id, so it lands as a newer version. Spam, trash and drafts are not messages of the
mailbox here; a message moving there becomes a tombstone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from googleapiclient.errors import HttpError

from connectors.base import Cursor
from connectors.google.batch import UnitMeter, execute_batch
from connectors.google.http import GoogleClient, http_error_details
from connectors.google.pacing import UnitBudget
from connectors.mail.headers import HEADERS, BadHeaders, message_from_headers
from timeaudit.core.config import Settings
from timeaudit.core.model import Message, deleted_message

SOURCE = "gmail"
PRIMARY_KEY = ("source", "account", "id")  # id: Gmail's message id
CURSOR_FIELD = "historyId"  # saved per mailbox as {"history_id", "since"}
PAGE_SIZE = 500  # the largest page messages.list and history.list serve
# Google's per-user limits and published quota units per method
# (developers.google.com/gmail/api/reference/quota; the per-second one on its earlier version).
UNITS_PER_MINUTE = 15_000
UNITS_PER_SECOND = 250
COSTS = {
    "gmail.users.getProfile": 1,
    "gmail.users.history.list": 2,
    "gmail.users.messages.list": 5,
    "gmail.users.messages.get": 5,
    "gmail.users.threads.list": 10,
    "gmail.users.threads.get": 10,
}
NOT_MAIL = frozenset({"SPAM", "TRASH", "DRAFT"})
FIELDS = "id,threadId,labelIds,historyId,internalDate,payload/headers"


class HistoryExpired(Exception):
    """history.list answered 404: the saved historyId is too old; a full sync is needed."""


class QuotaMeter(UnitMeter):
    """Gmail's quota units (``COSTS``): paced under the per-user limits, per second and per
    minute, and counted for the calls Gmail answered."""

    def __init__(
        self,
        units_per_second: int = UNITS_PER_SECOND,
        units_per_minute: int = UNITS_PER_MINUTE,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(COSTS, UnitBudget([(units_per_second, 1.0), (units_per_minute, 60.0)], clock, sleep))


@dataclass
class Progress:
    """What one mailbox's sync has seen so far, for the caller's progress display."""

    listed: int = 0  # message ids to read (full sync) or changes to apply (incremental)
    fetched: int = 0
    full_sync: bool = False
    skipped: list[str] = field(default_factory=list)  # ids whose headers were unusable


# -- mapping one Gmail message ------------------------------------------------------------------
def internal_ts(item: dict) -> datetime:
    return datetime.fromtimestamp(int(item.get("internalDate") or 0) / 1000, UTC)


def version_of(item: dict) -> datetime:
    """``updated`` of a message: its date plus its history id (which every label change raises) in µs."""
    return internal_ts(item) + timedelta(microseconds=int(item.get("historyId") or 0))


def is_mail(item: dict) -> bool:
    return not NOT_MAIL.intersection(item.get("labelIds") or ())


def to_message(item: dict, *, account: str, aliases: Iterable[str], settings: Settings) -> Message:
    """One message resource (``format=metadata``) -> a Message; ``BadHeaders`` when unusable."""
    headers = [(h.get("name", ""), h.get("value", "")) for h in (item.get("payload") or {}).get("headers") or []]
    return message_from_headers(
        headers,
        source=SOURCE,
        account=account,
        id=item["id"],
        labels=item.get("labelIds") or (),
        aliases=aliases,
        internal_ts=internal_ts(item),
        updated=version_of(item),
        settings=settings,
    )


# -- the mailbox -------------------------------------------------------------------------------------
@dataclass
class Mailbox:
    """One account's mailbox as this run reads it."""

    client: GoogleClient
    account: str
    settings: Settings
    meter: QuotaMeter
    progress: Progress = field(default_factory=Progress)
    aliases: tuple[str, ...] = ()

    @property
    def users(self):
        return self.client.service.users()

    def execute(self, request) -> dict:
        return self.meter.execute(request)

    def metadata(self, kind: str, id_: str):
        resource = self.users.threads() if kind == "thread" else self.users.messages()
        return resource.get(userId="me", id=id_, format="metadata", metadataHeaders=list(HEADERS), fields=_fields(kind))

    def date_of(self, message_id: str) -> datetime | None:
        """A message's internalDate (5 units); None when it is gone."""
        request = self.users.messages().get(userId="me", id=message_id, format="minimal", fields="internalDate")
        try:
            return internal_ts(self.execute(request))
        except HttpError as e:
            if http_error_details(e)[0] == 404:
                return None
            raise

    def fetch(self, wanted: dict[str, str]) -> Iterator[tuple[str, dict | None]]:
        """{message id: thread id} -> (message id, resource or None when gone) for each, in batches.

        A thread holding two or more wanted messages is read whole with threads.get (10 units),
        a lone message with messages.get (5 units).
        """
        by_thread: dict[str, list[str]] = {}
        for message_id, thread_id in wanted.items():
            by_thread.setdefault(thread_id or message_id, []).append(message_id)
        calls: list[tuple[str, list[str]]] = []  # (call key, the wanted ids it answers)
        for thread_id, ids in by_thread.items():
            calls.append((f"t:{thread_id}", ids) if len(ids) > 1 and thread_id else (f"m:{ids[0]}", ids))
        for start in range(0, len(calls), 50):
            chunk = calls[start : start + 50]
            requests = [(key, self.metadata("thread" if key[0] == "t" else "message", key[2:])) for key, _ in chunk]
            results = execute_batch(self.client, requests, meter=self.meter)
            for key, ids in chunk:
                result = results[key]
                if isinstance(result, HttpError):
                    if http_error_details(result)[0] != 404:
                        raise result
                    result = None
                found = {m["id"]: m for m in (result or {}).get("messages", [])} if key[0] == "t" else {}
                if key[0] == "m" and result:
                    found = {result["id"]: result}
                for message_id in ids:
                    yield message_id, found.get(message_id)
                # threads.get also returns the thread's other messages: offered, flagged as extras
                for message_id, item in found.items():
                    if message_id not in ids:
                        yield message_id, dict(item, _extra=True)
            self.progress.fetched += sum(len(ids) for _, ids in chunk)


def _fields(kind: str) -> str:
    return f"id,historyId,messages({FIELDS})" if kind == "thread" else FIELDS


def profile_address(service) -> str:
    """Whose credentials ``service`` uses: the mailbox's address (``getProfile``, 1 unit)."""
    return str(service.users().getProfile(userId="me").execute().get("emailAddress", "")).lower()


# -- full sync ---------------------------------------------------------------------------------------
def _listed_since(box: Mailbox, since: datetime) -> dict[str, str]:
    """{message id: thread id} of the messages received since ``since``, newest first."""
    wanted: dict[str, str] = {}
    page_token = None
    while True:
        request = box.users.messages().list(userId="me", maxResults=PAGE_SIZE, pageToken=page_token)
        page = box.execute(request)
        refs = page.get("messages") or []
        page_token = page.get("nextPageToken")
        if refs:
            last = box.date_of(refs[-1]["id"])
            if last is not None and last < since:
                refs = refs[: _first_older(box, refs, since)]
                page_token = None
        for ref in refs:
            wanted[ref["id"]] = ref.get("threadId", "")
        box.progress.listed = len(wanted)
        if not page_token:
            return wanted


def _first_older(box: Mailbox, refs: list[dict], since: datetime) -> int:
    """Index of the first message older than ``since`` in a newest-first page whose last one is."""
    low, high = 0, len(refs) - 1  # refs[high] is known to be older
    while low < high:
        middle = (low + high) // 2
        date = box.date_of(refs[middle]["id"])
        if date is not None and date < since:
            high = middle
        else:
            low = middle + 1
    return low


def _full_sync(
    box: Mailbox, cursor: Cursor, since: datetime, known: Mapping[str, tuple[datetime, datetime]]
) -> Iterator[Message]:
    box.progress.full_sync = True
    profile = box.execute(box.users.getProfile(userId="me"))
    start_history = str(profile["historyId"])
    box.aliases = tuple(dict.fromkeys((*box.aliases, str(profile.get("emailAddress", "")).lower())))
    wanted = _listed_since(box, since)
    seen: set[str] = set()
    for message_id, item in box.fetch(wanted):
        if item is None or message_id in seen or not is_mail(item) or internal_ts(item) < since:
            continue
        message = _message(box, item)
        if message is not None:
            seen.add(message_id)
            yield message
    for message_id, (ts, updated) in sorted(known.items()):
        if ts >= since and message_id not in seen:
            yield deleted_message(SOURCE, box.account, message_id, ts, updated)
    cursor.new_value = {"history_id": start_history, "since": _stamp(since)}


def _message(box: Mailbox, item: dict) -> Message | None:
    try:
        return to_message(item, account=box.account, aliases=box.aliases, settings=box.settings)
    except BadHeaders:
        box.progress.skipped.append(item["id"])
        return None


# -- incremental sync ------------------------------------------------------------------------------
def _history(box: Mailbox, start: str) -> tuple[list[dict], str]:
    """Every history record after ``start`` and the mailbox's current historyId."""
    records: list[dict] = []
    page_token = None
    while True:
        request = box.users.history().list(
            userId="me", startHistoryId=start, maxResults=PAGE_SIZE, pageToken=page_token
        )
        try:
            page = box.execute(request)
        except HttpError as e:
            if http_error_details(e)[0] == 404:
                raise HistoryExpired() from e
            raise
        records.extend(page.get("history") or [])
        page_token = page.get("nextPageToken")
        if not page_token:
            return records, str(page.get("historyId") or start)


def changes(records: list[dict], known: Iterable[str]) -> tuple[dict[str, str], set[str]]:
    """History records -> ({id: thread id} to read again, ids deleted), in the order they happened.

    A relabelled message is read again only when the lake holds it (one outside the window
    that never landed stays out); an added one always.
    """
    known = set(known)
    to_read: dict[str, str] = {}
    deleted: set[str] = set()
    for record in records:
        for entry in record.get("messagesAdded") or []:
            ref = entry["message"]
            to_read[ref["id"]] = ref.get("threadId", "")
            deleted.discard(ref["id"])
        for kind in ("labelsAdded", "labelsRemoved"):
            for entry in record.get(kind) or []:
                ref = entry["message"]
                if ref["id"] in known or ref["id"] in to_read:
                    to_read[ref["id"]] = ref.get("threadId", "")
        for entry in record.get("messagesDeleted") or []:
            ref = entry["message"]
            to_read.pop(ref["id"], None)
            deleted.add(ref["id"])
    return to_read, deleted


def _incremental(
    box: Mailbox, cursor: Cursor, saved: dict, known: Mapping[str, tuple[datetime, datetime]]
) -> Iterator[Message]:
    records, current = _history(box, saved["history_id"])
    to_read, deleted = changes(records, known)
    box.progress.listed = len(to_read) + len(deleted)
    for message_id, item in box.fetch(to_read):
        if item is not None and item.get("_extra"):
            continue  # another message of a thread read for its changed ones: unchanged
        if item is not None and is_mail(item):
            message = _message(box, item)
            if message is not None:
                yield message
                continue
        deleted.add(message_id)  # gone since the change, or moved to spam/trash/drafts
    for message_id in sorted(deleted):
        if message_id in known:
            ts, updated = known[message_id]
            yield deleted_message(SOURCE, box.account, message_id, ts, updated)
    cursor.new_value = dict(saved, history_id=current)


def iter_messages(
    client: GoogleClient,
    account: str,
    *,
    cursor: Cursor,
    settings: Settings,
    since: datetime,
    known: Mapping[str, tuple[datetime, datetime]] | None = None,
    meter: QuotaMeter | None = None,
    progress: Progress | None = None,
    aliases: Iterable[str] = (),
) -> Iterator[Message]:
    """Every changed message of one mailbox since ``cursor.value``; the window from ``since`` when none.

    ``known``: {message id: (ts, updated)} of the live records the lake holds for this account;
    deletions and the full sync's vanished messages become tombstones of those.
    """
    box = Mailbox(
        client,
        account,
        settings,
        meter or QuotaMeter(),
        progress or Progress(),
        tuple(a.lower() for a in (account, *aliases) if a),
    )
    known = known or {}
    saved = cursor.value or {}
    if saved.get("history_id"):
        try:
            yield from _incremental(box, cursor, saved, known)
            return
        except HistoryExpired:
            cursor.reset = True  # the saved history id is too old; the full sync below replaces it
    yield from _full_sync(box, cursor, since, known)


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
