"""One IMAP account -> ``Message`` records, metadata only: ``BODY.PEEK[HEADER.FIELDS (...)]`` of
the headers every mail source reads (``connectors.mail.headers.HEADERS``), FLAGS and
INTERNALDATE; never a body, and PEEK never marks a message read.

The cursor keeps, per folder, its UIDVALIDITY, UIDNEXT, MESSAGES and (where the server offers
CONDSTORE) HIGHESTMODSEQ, and the copies it holds: UID -> (message id, seen). A sync asks each
folder's STATUS (one command); a folder whose values are unchanged costs nothing more. A
changed one is selected read-only and asked for its UIDs (expunges), its flag changes since
the saved HIGHESTMODSEQ (``CHANGEDSINCE``; every known message's FLAGS without CONDSTORE) and
the headers of its new UIDs, in chunks. A changed UIDVALIDITY drops the folder's copies and
reads it again as new; ids do not change, so nothing doubles.

One message is one record per account whatever folders hold it, as the mail-file import
makes it (``connectors.mail.record.message_record``): its id is its Message-ID, its labels
those of every folder holding it, unread only when no copy is \\Seen, sent when any copy is in
a Sent folder. A message no folder holds any more becomes a deletion. A first sync (or one
whose cursor was lost) reads the messages received since ``since`` and deletes the lake's
messages of that window that no folder holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from connectors.imap.folders import ImapFolder
from connectors.mail.headers import HEADERS, BadHeaders, first_id
from connectors.mail.record import Mailbox, _header_hash, _header_items, message_key, message_record
from timeaudit.core.config import Settings
from timeaudit.core.model import Message
from timeaudit.core.tags import vocabulary

SOURCE = "imap"
PRIMARY_KEY = ("source", "account", "id")  # id: "<Message-ID>", as the mail-file import's
CHUNK = 500  # UIDs per FETCH
HEADER_ITEM = "BODY.PEEK[HEADER.FIELDS (" + " ".join(h.upper() for h in HEADERS) + ")]"


@dataclass
class Counts:
    """What one account's read did, for its report."""

    commands: int = 0  # IMAP commands sent (login and capability included)
    folders: int = 0  # folders looked at
    changed: int = 0  # of which read because something changed
    fetched: int = 0  # messages whose headers were read
    skipped: list[str] = field(default_factory=list)


@dataclass
class FolderState:
    uidvalidity: int
    uidnext: int
    messages: int
    modseq: int | None
    copies: dict[int, tuple[str, bool]]  # uid -> (message id, seen)

    def to_json(self) -> dict:
        return {
            "uidvalidity": self.uidvalidity,
            "uidnext": self.uidnext,
            "messages": self.messages,
            "modseq": self.modseq,
            "copies": {str(uid): [mid, seen] for uid, (mid, seen) in self.copies.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> FolderState:
        copies = {int(uid): (mid, bool(seen)) for uid, (mid, seen) in data.get("copies", {}).items()}
        return cls(data["uidvalidity"], data["uidnext"], data.get("messages", 0), data.get("modseq"), copies)


class Session:
    """An IMAP client whose commands are counted."""

    def __init__(self, client, counts: Counts):
        self.client, self.counts = client, counts

    def __getattr__(self, name: str) -> Callable:
        method = getattr(self.client, name)

        def counted(*args, **kwargs):
            self.counts.commands += 1
            return method(*args, **kwargs)

        return counted


def _status_items(condstore: bool) -> list[bytes]:
    return [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES", *([b"HIGHESTMODSEQ"] if condstore else [])]


def _header_block(data: dict) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER"):
            return value or b""
    return b""


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Read:
    """What this read met: the header block (and arrival time) of each message id read, and
    the ids whose record must be made again (new, changed flags, a copy gone)."""

    blocks: dict[str, tuple[bytes, datetime | None]] = field(default_factory=dict)
    affected: set[str] = field(default_factory=set)


def read_account(
    session: Session,
    *,
    account: str,
    aliases: tuple[str, ...],
    settings: Settings,
    folders: list[ImapFolder],
    saved: dict | None,
    since: date,
    known: Mapping[str, tuple[datetime, datetime]],
    condstore: bool,
    on_progress: Callable[[], None] = lambda: None,
) -> tuple[Iterator[Message], dict]:
    """The account's changed messages since ``saved`` (a cursor value) and the new cursor value."""
    counts = session.counts
    old = {name: FolderState.from_json(f) for name, f in (saved or {}).get("folders", {}).items()}
    full = saved is None
    read, states = Read(), {}
    for folder in folders:
        counts.folders += 1
        state = _read_folder(session, folder.name, old.get(folder.name), since, condstore, read)
        states[folder.name] = state
        on_progress()
    for name, state in old.items():  # folders gone or no longer read: their copies vanish
        if name not in states:
            read.affected.update(mid for mid, _ in state.copies.values())

    labels_of = {f.name: f.labels for f in folders}
    copies: dict[str, list[tuple[str, int, bool]]] = {}
    for name, state in states.items():
        for uid, (mid, seen) in state.copies.items():
            copies.setdefault(mid, []).append((name, uid, seen))
    if full:
        read.affected.update(copies)
    missing = [mid for mid in read.affected if mid in copies and mid not in read.blocks]
    _fetch_missing(session, missing, copies, read)
    cursor = {"since": since.isoformat(), "folders": {name: s.to_json() for name, s in states.items()}}

    def records() -> Iterator[Message]:
        words = vocabulary(settings.rules)
        for mid in sorted(read.affected):
            held = known.get(mid)
            if mid not in copies or mid not in read.blocks:
                if held:
                    ts, updated = held
                    yield Message(source=SOURCE, account=account, id=mid, ts=ts, updated=updated, deleted=True)
                continue
            message = _record(mid, copies[mid], labels_of, read.blocks[mid], account, aliases, settings, words)
            if message is not None:
                yield message
        if full:  # what the lake holds of the window and no folder holds any more
            start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
            for mid, (ts, updated) in sorted(known.items()):
                if mid not in copies and mid not in read.affected and ts >= start:
                    yield Message(source=SOURCE, account=account, id=mid, ts=ts, updated=updated, deleted=True)

    return records(), cursor


def _record(
    mid: str,
    held_in: list[tuple[str, int, bool]],
    labels_of: dict[str, tuple[str, ...]],
    block: tuple[bytes, datetime | None],
    account: str,
    aliases: tuple[str, ...],
    settings: Settings,
    words: tuple[str, ...],
) -> Message | None:
    labels = tuple(dict.fromkeys(label for name, _, _ in held_in for label in labels_of[name]))
    box = Mailbox(account, settings, aliases, words, labels, None)
    unread = not any(seen for _, _, seen in held_in)
    header, internal = block
    try:
        fields = message_record(header, box, lambda: internal, {"UNREAD"} if unread else set())
    except BadHeaders:
        return None
    if fields is None:
        return None
    fields.pop("gmail_thread", None)
    fields["id"] = mid
    return Message(**fields)


def message_id_of(header: bytes, uid: int, folder: str) -> str:
    """The record id of a message: "<Message-ID>" as the import's, else a digest of its headers."""
    items = _header_items(header) if header.strip() else []
    for name, value in items:
        if name.lower() == "message-id":
            found = first_id(value)
            if found:
                return message_key(found)
    return _header_hash(items) if items else f"imap-{folder}-{uid}"


def _read_folder(
    session: Session, name: str, old: FolderState | None, since: date, condstore: bool, read: Read
) -> FolderState:
    status = session.folder_status(name, _status_items(condstore))
    uidvalidity, uidnext = int(status[b"UIDVALIDITY"]), int(status[b"UIDNEXT"])
    messages, modseq = int(status[b"MESSAGES"]), status.get(b"HIGHESTMODSEQ")
    modseq = int(modseq) if modseq is not None else None
    if old is not None and old.uidvalidity != uidvalidity:
        read.affected.update(mid for mid, _ in old.copies.values())
        old = None  # the folder's UIDs mean other messages now: read it whole again
    if old is not None and condstore and (old.uidnext, old.messages, old.modseq) == (uidnext, messages, modseq):
        return old
    session.counts.changed += 1
    session.select_folder(name, readonly=True)
    copies: dict[int, tuple[str, bool]] = {}
    if old is None:
        new_uids = sorted(session.search(["SINCE", since]))
    else:
        current = set(session.search("ALL"))
        for uid, (mid, seen) in old.copies.items():
            if uid in current:
                copies[uid] = (mid, seen)
            else:
                read.affected.add(mid)  # expunged (or moved) from this folder
        new_uids = sorted(uid for uid in current if uid >= old.uidnext and uid not in copies)
        known = sorted(copies)
        if known:
            modifiers = [f"CHANGEDSINCE {old.modseq}"] if condstore and old.modseq is not None else None
            for start in range(0, len(known), CHUNK):
                chunk = known[start : start + CHUNK]
                answer = session.fetch(chunk, ["FLAGS"], modifiers=modifiers)
                for uid, data in answer.items():
                    if uid not in copies:
                        continue
                    mid, seen = copies[uid]
                    now_seen = b"\\Seen" in (data.get(b"FLAGS") or ())
                    if now_seen != seen:
                        copies[uid] = (mid, now_seen)
                        read.affected.add(mid)
    for start in range(0, len(new_uids), CHUNK):
        chunk = new_uids[start : start + CHUNK]
        answer = session.fetch(chunk, ["FLAGS", "INTERNALDATE", HEADER_ITEM])
        for uid, data in answer.items():
            header = _header_block(data)
            mid = message_id_of(header, uid, name)
            copies[uid] = (mid, b"\\Seen" in (data.get(b"FLAGS") or ()))
            read.blocks.setdefault(mid, (header, _utc(data.get(b"INTERNALDATE"))))
            read.affected.add(mid)
            session.counts.fetched += 1
    return FolderState(uidvalidity, uidnext, messages, modseq, copies)


def _fetch_missing(
    session: Session, missing: list[str], copies: dict[str, list[tuple[str, int, bool]]], read: Read
) -> None:
    """The headers of changed messages not read yet (a flag change, a copy gone elsewhere), from
    one folder holding each."""
    by_folder: dict[str, list[int]] = {}
    for mid in missing:
        name, uid, _ = copies[mid][0]
        by_folder.setdefault(name, []).append(uid)
    for name, uids in by_folder.items():
        session.select_folder(name, readonly=True)
        for start in range(0, len(uids), CHUNK):
            answer = session.fetch(sorted(uids[start : start + CHUNK]), ["INTERNALDATE", HEADER_ITEM])
            for uid, data in answer.items():
                header = _header_block(data)
                read.blocks.setdefault(message_id_of(header, uid, name), (header, _utc(data.get(b"INTERNALDATE"))))
