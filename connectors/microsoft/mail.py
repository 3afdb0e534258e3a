"""Outlook mail through Graph's ``messages/delta`` per mail folder -> ``Message`` records,
metadata only.

Only ``SELECT`` is ever asked for: addresses, dates, conversation and message ids, read
state, draft flag, categories, the focused/other classification and the subject (reduced to
keyword tags). Never ``body``, ``bodyPreview`` or ``uniqueBody`` (``Mail.ReadBasic`` would
refuse them anyway).

- One read per folder (well-known names inbox, sentitems, archive, or a custom folder's
  name, resolved once with one ``$batch``): ``/users/{u}/mailFolders/{id}/messages/delta``
  with ``$filter=receivedDateTime ge <since>`` on the first sync, then its ``deltaLink``.
- A message's lake id is its internetMessageId (without brackets), so one message in two
  folders is one record, as in the mail import and Gmail; the cursor keeps each folder's
  Graph id -> lake id, so an ``@removed`` item becomes a tombstone only when no other folder
  still holds the message.
- ``410`` / ``SyncStateNotFound``: the folder is read whole again; what it held and no longer
  has (and no other folder holds) becomes a tombstone.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime

from connectors.base import Cursor
from connectors.mail.headers import message_fields
from connectors.microsoft.calendar import instant, stamp
from connectors.microsoft.graph import FullSyncRequired, GraphClient, GraphError, delta_pages
from timeaudit.core.config import Settings
from timeaudit.core.model import Message, deleted_message

SOURCE = "microsoft"
SELECT = (
    "id,internetMessageId,conversationId,from,sender,toRecipients,ccRecipients,sentDateTime,"
    "receivedDateTime,lastModifiedDateTime,isRead,isDraft,categories,inferenceClassification,subject"
)
NEVER = ("body", "bodyPreview", "uniqueBody")
WELL_KNOWN = {"inbox", "sentitems", "archive", "drafts", "deleteditems", "junkemail"}
LABELS = {"inbox": "INBOX", "sentitems": "SENT", "archive": "ARCHIVE"}


def _recipients(entries: list | None) -> str:
    return ", ".join(
        str((e.get("emailAddress") or {}).get("address") or "") for e in entries or [] if isinstance(e, dict)
    )


def _address(entry: dict | None) -> str:
    return str(((entry or {}).get("emailAddress") or {}).get("address") or "")


def lake_id(item: dict) -> str:
    """internetMessageId without its brackets: one message is one record whatever folder holds it."""
    mid = str(item.get("internetMessageId") or "").strip().strip("<>")
    return mid or item["id"]


def to_message(item: dict, *, account: str, folder: str, settings: Settings, words: tuple[str, ...]) -> Message:
    """One message of ``messages/delta`` -> a Message, through the header rules every mail source uses."""
    sent_at = instant(item.get("sentDateTime")) or instant(item.get("receivedDateTime"))
    received = instant(item.get("receivedDateTime")) or sent_at
    headers = [
        ("From", _address(item.get("from")) or _address(item.get("sender"))),
        ("To", _recipients(item.get("toRecipients"))),
        ("Cc", _recipients(item.get("ccRecipients"))),
        ("Message-ID", f"<{lake_id(item)}>"),
        ("Subject", item.get("subject") or ""),
    ]
    # A custom folder's name can say more than it should (a customer, a case): kept as a label
    # only with store_subjects, as the mail import does.
    custom = folder if settings.privacy.store_subjects else "FOLDER"
    labels = [LABELS.get(folder, custom)]
    if not item.get("isRead", True):
        labels.append("UNREAD")
    labels += [f"CATEGORY:{c}" for c in item.get("categories") or []]
    fields = message_fields(
        headers,
        source=SOURCE,
        account=account,
        id=lake_id(item),
        labels=labels,
        thread_id=str(item.get("conversationId") or ""),
        internal_ts=received,
        updated=instant(item.get("lastModifiedDateTime")) or received,
        settings=settings,
        words=words,
    )
    fields["ts"] = received or fields["ts"]
    return Message(**fields)


def resolve_folders(client: GraphClient, user: str, names: list[str]) -> dict[str, str | None]:
    """{folder name: Graph folder id, None when the mailbox has no such folder}, in one ``$batch``
    (of at most 20 calls each): well-known names are addressed directly, others by display name."""
    calls = {}
    for i, name in enumerate(names):
        if name.lower() in WELL_KNOWN:
            calls[str(i)] = f"users/{user}/mailFolders/{name.lower()}?$select=id"
        else:
            quoted = urllib.parse.quote("displayName eq '" + name.replace("'", "''") + "'")
            calls[str(i)] = f"users/{user}/mailFolders?$filter={quoted}&$select=id"
    found: dict[str, str | None] = {}
    for key, (status, body) in client.batch(calls).items():
        name = names[int(key)]
        if status == 404:
            found[name] = None
            continue
        if status >= 400:
            info = (body or {}).get("error") or {}
            raise GraphError(status, str(info.get("code", "")), str(info.get("message", "")))
        if "value" in body:
            found[name] = body["value"][0]["id"] if body["value"] else None
        else:
            found[name] = body.get("id")
    return found


def iter_folder(
    client: GraphClient,
    user: str,
    folder: str,
    folder_id: str,
    *,
    cursor: Cursor,
    settings: Settings,
    since: datetime,
    held: Mapping[str, tuple] | None = None,
    elsewhere: set[str] | frozenset[str] = frozenset(),
    on_page: Callable[[], None] | None = None,
    now: datetime | None = None,
) -> Iterator[Message]:
    """One folder's changed messages since its saved state (``cursor.value``: ``delta_link`` and
    ``ids``: Graph id -> lake id); every message since ``since`` when there is none.
    ``held``: {lake id: (ts, updated)}; ``elsewhere``: lake ids other folders of the account hold."""
    from timeaudit.core.tags import vocabulary

    now = now or datetime.now(UTC)
    words = vocabulary(settings.rules)
    held = held or {}
    saved = cursor.value or {}
    ids: dict[str, str] = dict(saved.get("ids") or {})

    def gone(message_id: str, here: set[str] | None = None) -> Iterator[Message]:
        here = here if here is not None else set(ids.values())  # other Graph ids of the same message
        if message_id in held and message_id not in elsewhere and message_id not in here:
            ts, updated = held[message_id]
            yield deleted_message(SOURCE, user, message_id, ts, updated)

    def messages(page: dict) -> Iterator[Message]:
        for item in page.get("value") or []:
            if "@removed" in item or item.get("isDraft"):
                message_id = ids.pop(item["id"], None)
                if message_id:
                    yield from gone(message_id)
                continue
            message = to_message(item, account=user, folder=folder, settings=settings, words=words)
            ids[item["id"]] = message.id
            yield message

    if saved.get("delta_link"):
        try:
            for page in delta_pages(client, saved["delta_link"], None, on_page):
                yield from messages(page)
                if page.get("@odata.deltaLink"):
                    cursor.new_value = {"delta_link": page["@odata.deltaLink"], "since": saved.get("since"), "ids": ids}
            return
        except FullSyncRequired:
            cursor.reset = True

    before = set(ids.values())
    ids = {}
    params = {"$select": SELECT, "$filter": f"receivedDateTime ge {stamp(since)}"}
    link = None
    for page in delta_pages(client, f"users/{user}/mailFolders/{folder_id}/messages/delta", params, on_page):
        yield from messages(page)
        link = page.get("@odata.deltaLink") or link
    here = set(ids.values())
    for message_id in sorted(before - here):
        yield from gone(message_id, here)
    if link:
        cursor.new_value = {"delta_link": link, "since": stamp(since), "ids": ids}
