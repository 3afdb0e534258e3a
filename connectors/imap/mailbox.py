"""One IMAP account -> ``Message`` records, metadata only: ``BODY.PEEK[HEADER.FIELDS (...)]`` of
the headers every mail source reads (``connectors.mail.headers.HEADERS``), FLAGS and
INTERNALDATE; never a body, and PEEK never marks a message read.

The cursor keeps, per folder (known by its digest, never its name), its UIDVALIDITY, UIDNEXT,
MESSAGES and (with CONDSTORE) HIGHESTMODSEQ, and for each UID it holds only 64 bits of the
message's id and its \\Seen flag: enough to tell which record an expunge or a flag change
touches (the ids themselves are the lake's). A sync asks each folder's STATUS (one command); a
folder whose values are unchanged costs nothing more. A changed one is read in one of three
ways, by what the server offers:

- QRESYNC (RFC 7162: Dovecot, Fastmail, Gmail's IMAP does not): ``EXAMINE folder (QRESYNC
  (uidvalidity modseq))`` answers, in one command, the UIDs expunged since the saved
  HIGHESTMODSEQ (``VANISHED (EARLIER)``) and the messages whose flags changed since;
- CONDSTORE only: the folder's UIDs (``UID SEARCH ALL``: what is missing was expunged) and the
  flags changed since the saved HIGHESTMODSEQ (``CHANGEDSINCE``);
- neither (Exchange): the folder's UIDs and every known message's FLAGS.

Then the headers of its new UIDs, in chunks. A changed UIDVALIDITY drops the folder's copies
and reads it again as new; ids do not change, so nothing doubles.

One message is one record per account whatever folders hold it, as the mail-file import
makes it (``connectors.mail.record.message_record``): its id is its Message-ID, its labels
those of every folder holding it, unread only when no copy is \\Seen, sent when any copy is in
a Sent folder. A message no folder holds any more becomes a deletion. A first sync (or one
whose cursor was lost) reads the messages received since ``since`` and deletes the lake's
messages of that window that no folder holds.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from imapclient.exceptions import IMAPClientError
from imapclient.response_parser import parse_fetch_response

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
CURSOR_FORMAT = 2  # folders by digest, UIDs with id digests; a cursor of another format reads again
QRESYNC, CONDSTORE, PLAIN = "qresync", "condstore", "plain"  # what the server offers to find changes


@dataclass
class Counts:
    """What one account's read did, for its report."""

    commands: int = 0  # IMAP commands sent (login and capability included)
    folders: int = 0  # folders looked at
    changed: int = 0  # of which read because something changed
    fetched: int = 0  # messages whose headers were read
    skipped: list[str] = field(default_factory=list)


def id_digest(mid: str) -> int:
    """64 bits of a record id, the lowest cleared (the cursor keeps \\Seen there)."""
    digest = hashlib.blake2b(mid.encode("utf-8", "surrogateescape"), digest_size=8).digest()
    return int.from_bytes(digest, "big") & ~1


@dataclass
class FolderState:
    uidvalidity: int
    uidnext: int
    messages: int
    modseq: int | None
    copies: dict[int, tuple[int, bool]]  # uid -> (id digest, seen)

    def to_json(self) -> dict:
        uids = sorted(self.copies)
        packed = struct.pack(
            f"<{len(uids)}I{len(uids)}Q", *uids, *(self.copies[u][0] | self.copies[u][1] for u in uids)
        )
        return {
            "uidvalidity": self.uidvalidity,
            "uidnext": self.uidnext,
            "messages": self.messages,
            "modseq": self.modseq,
            "copies": base64.b64encode(packed).decode("ascii"),  # UIDs (4 bytes each), then digests (8)
        }

    @classmethod
    def from_json(cls, data: dict) -> FolderState:
        packed = base64.b64decode(data.get("copies", ""))
        n = len(packed) // 12
        values = struct.unpack(f"<{n}I{n}Q", packed)
        copies = {uid: (value & ~1, bool(value & 1)) for uid, value in zip(values[:n], values[n:], strict=True)}
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

    def examine_changes(self, name: str, uidvalidity: int, modseq: int) -> tuple[bytes, dict[int, dict]]:
        """``EXAMINE name (QRESYNC (uidvalidity modseq))``: the UIDs expunged since ``modseq``
        (the set of ``VANISHED (EARLIER)``) and the FETCH answers of the messages changed since.
        imapclient's select_folder takes no parameters, so the command goes through imaplib."""
        self.counts.commands += 1
        imap = self.client._imap
        imap.untagged_responses = {}  # as imaplib's own select does
        folder = self.client._normalise_folder(name)
        typ, data = imap._simple_command("EXAMINE", folder, f"(QRESYNC ({uidvalidity} {modseq}))")
        if typ != "OK":
            raise IMAPClientError(f"EXAMINE {name} (QRESYNC) failed: {data[-1]!r}")
        imap.state, imap.is_readonly = "SELECTED", True  # what imaplib's select sets
        untagged = imap.untagged_responses
        vanished = b",".join(v.removeprefix(b"(EARLIER)").strip() for v in untagged.pop("VANISHED", []))
        fetched = untagged.pop("FETCH", [])
        return vanished, parse_fetch_response(fetched, False, True) if fetched else {}


def uid_ranges(uid_set: bytes) -> list[tuple[int, int]]:
    """An IMAP UID set ("1:3,7,9:12") as sorted (first, last) pairs."""
    ranges = []
    for part in uid_set.split(b","):
        if part.strip():
            first, _, last = part.strip().partition(b":")
            a, b = int(first), int(last or first)
            ranges.append((min(a, b), max(a, b)))
    return sorted(ranges)


def in_ranges(uid: int, ranges: list[tuple[int, int]]) -> bool:
    i = bisect.bisect_right(ranges, (uid, float("inf"))) - 1
    return i >= 0 and ranges[i][0] <= uid <= ranges[i][1]


def _status_items(mode: str) -> list[bytes]:
    return [b"UIDVALIDITY", b"UIDNEXT", b"MESSAGES", *([b"HIGHESTMODSEQ"] if mode != PLAIN else [])]


def _header_block(data: dict) -> bytes:
    for key, value in data.items():
        if key.startswith(b"BODY[HEADER"):
            return value or b""
    return b""


def _seen(data: dict) -> bool:
    return b"\\Seen" in (data.get(b"FLAGS") or ())


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class Read:
    """What this read met: the id, header block and arrival time of each message read (by id
    digest), and the digests whose record must be made again (new, changed flags, a copy gone)."""

    blocks: dict[int, tuple[str, bytes, datetime | None]] = field(default_factory=dict)
    affected: set[int] = field(default_factory=set)

    def add(self, uid: int, data: dict, folder: ImapFolder) -> int:
        header = _header_block(data)
        mid = message_id_of(header, uid, folder.key)
        digest = id_digest(mid)
        self.blocks.setdefault(digest, (mid, header, _utc(data.get(b"INTERNALDATE"))))
        return digest


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
    mode: str,
    on_progress: Callable[[], None] = lambda: None,
) -> tuple[Iterator[Message], dict]:
    """The account's changed messages since ``saved`` (a cursor value) and the new cursor value.
    ``mode``: QRESYNC, CONDSTORE or PLAIN, what the server offers (and was enabled)."""
    counts = session.counts
    if saved is not None and saved.get("format") != CURSOR_FORMAT:
        saved = None  # an older cursor: read the window again (ids do not change: nothing doubles)
    old = {key: FolderState.from_json(f) for key, f in (saved or {}).get("folders", {}).items()}
    full = saved is None
    read, states = Read(), {}
    for folder in folders:
        counts.folders += 1
        states[folder.key] = _read_folder(session, folder, old.get(folder.key), since, mode, read)
        on_progress()
    for key, state in old.items():  # folders gone or no longer read: their copies vanish
        if key not in states:
            read.affected.update(digest for digest, _ in state.copies.values())

    labels_of = {f.key: f.labels for f in folders}
    copies: dict[int, list[tuple[str, int, bool]]] = {}
    for key, state in states.items():
        for uid, (digest, seen) in state.copies.items():
            copies.setdefault(digest, []).append((key, uid, seen))
    if full:
        read.affected.update(copies)
    missing = [d for d in read.affected if d in copies and d not in read.blocks]
    _fetch_missing(session, missing, copies, {f.key: f for f in folders}, read)
    cursor = {
        "format": CURSOR_FORMAT,
        "since": since.isoformat(),
        "folders": {key: s.to_json() for key, s in states.items()},
    }

    def records() -> Iterator[Message]:
        words = vocabulary(settings.rules)
        gone = [d for d in read.affected if d not in copies]
        held_by_digest = {id_digest(mid): mid for mid in known} if gone or full else {}
        out: dict[str, Message | None] = {}
        for digest in read.affected:
            if digest in copies and digest in read.blocks:
                mid, header, internal = read.blocks[digest]
                message = _record(mid, copies[digest], labels_of, (header, internal), account, aliases, settings, words)
                if message is not None:
                    out[mid] = message
            elif digest not in copies and digest in held_by_digest:
                out.setdefault(held_by_digest[digest], None)
        for mid in sorted(out):
            message = out[mid]
            if message is None:
                ts, updated = known[mid]
                message = Message(source=SOURCE, account=account, id=mid, ts=ts, updated=updated, deleted=True)
            yield message
        if full:  # what the lake holds of the window and no folder holds any more
            start = datetime.combine(since, datetime.min.time(), tzinfo=UTC)
            for mid in sorted(mid for digest, mid in held_by_digest.items() if digest not in copies):
                ts, updated = known[mid]
                if mid not in out and ts >= start:
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
    labels = tuple(dict.fromkeys(label for key, _, _ in held_in for label in labels_of[key]))
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


def message_id_of(header: bytes, uid: int, folder_key: str) -> str:
    """The record id of a message: "<Message-ID>" as the import's, else a digest of its headers."""
    items = _header_items(header) if header.strip() else []
    for name, value in items:
        if name.lower() == "message-id":
            found = first_id(value)
            if found:
                return message_key(found)
    return _header_hash(items) if items else f"imap-{folder_key.removeprefix('mailbox:')}-{uid}"


def _read_folder(
    session: Session, folder: ImapFolder, old: FolderState | None, since: date, mode: str, read: Read
) -> FolderState:
    name = folder.name
    status = session.folder_status(name, _status_items(mode))
    uidvalidity, uidnext = int(status[b"UIDVALIDITY"]), int(status[b"UIDNEXT"])
    messages, modseq = int(status[b"MESSAGES"]), status.get(b"HIGHESTMODSEQ")
    modseq = int(modseq) if modseq is not None else None
    if old is not None and old.uidvalidity != uidvalidity:
        read.affected.update(digest for digest, _ in old.copies.values())
        old = None  # the folder's UIDs mean other messages now: read it whole again
    # Unchanged values say nothing changed only with a HIGHESTMODSEQ (a NOMODSEQ folder has none).
    unchanged = old is not None and (old.uidnext, old.messages, old.modseq) == (uidnext, messages, modseq)
    if unchanged and modseq is not None:
        return old
    session.counts.changed += 1
    flagged: list[int] = []
    if old is None:
        session.select_folder(name, readonly=True)
        copies: dict[int, tuple[int, bool]] = {}
        new_uids = sorted(session.search(["SINCE", since]))
    elif mode == QRESYNC and old.modseq is not None:
        copies = dict(old.copies)
        vanished, changed = session.examine_changes(name, old.uidvalidity, old.modseq)
        ranges = uid_ranges(vanished)
        for uid in [uid for uid in copies if in_ranges(uid, ranges)]:
            read.affected.add(copies.pop(uid)[0])  # expunged (or moved) from this folder
        flagged = _flags_changed(copies, changed, read)
        if uidnext - old.uidnext <= CHUNK:  # every UID the new ones can have, in one FETCH: no search
            new_uids = list(range(old.uidnext, uidnext))
        else:
            new_uids = sorted(uid for uid in session.search(["UID", f"{old.uidnext}:*"]) if uid >= old.uidnext)
    else:
        session.select_folder(name, readonly=True)
        current = set(session.search("ALL"))
        copies = {uid: copy for uid, copy in old.copies.items() if uid in current}
        read.affected.update(digest for uid, (digest, _) in old.copies.items() if uid not in current)
        new_uids = sorted(uid for uid in current if uid >= old.uidnext and uid not in copies)
        known = sorted(copies)
        modifiers = [f"CHANGEDSINCE {old.modseq}"] if mode != PLAIN and old.modseq is not None else None
        for start in range(0, len(known), CHUNK):
            answer = session.fetch(known[start : start + CHUNK], ["FLAGS"], modifiers=modifiers)
            flagged += _flags_changed(copies, answer, read)
    # The headers of the new messages, and of those whose flags changed (their record is made
    # again) while the folder is selected anyway.
    wanted = sorted({*new_uids, *(uid for uid in flagged if copies[uid][0] not in read.blocks)})
    for start in range(0, len(wanted), CHUNK):
        answer = session.fetch(wanted[start : start + CHUNK], ["FLAGS", "INTERNALDATE", HEADER_ITEM])
        for uid, data in answer.items():
            digest = read.add(uid, data, folder)
            copies[uid] = (digest, _seen(data))
            read.affected.add(digest)
            session.counts.fetched += 1
    return FolderState(uidvalidity, uidnext, messages, modseq, copies)


def _flags_changed(copies: dict[int, tuple[int, bool]], answer: dict[int, dict], read: Read) -> list[int]:
    """The known UIDs of ``answer`` whose \\Seen flag changed (``copies`` updated)."""
    changed = []
    for uid, data in answer.items():
        if uid in copies and b"FLAGS" in data:
            digest, seen = copies[uid]
            if _seen(data) != seen:
                copies[uid] = (digest, not seen)
                read.affected.add(digest)
                changed.append(uid)
    return changed


def _fetch_missing(
    session: Session,
    missing: list[int],
    copies: dict[int, list[tuple[str, int, bool]]],
    folders: dict[str, ImapFolder],
    read: Read,
) -> None:
    """The headers of changed messages not read yet (a flag change, a copy gone elsewhere), from
    one folder holding each."""
    by_folder: dict[str, list[int]] = {}
    for digest in missing:
        key, uid, _ = copies[digest][0]
        by_folder.setdefault(key, []).append(uid)
    for key, uids in by_folder.items():
        session.select_folder(folders[key].name, readonly=True)
        for start in range(0, len(uids), CHUNK):
            answer = session.fetch(sorted(uids[start : start + CHUNK]), ["INTERNALDATE", HEADER_ITEM])
            for uid, data in answer.items():
                read.add(uid, data, folders[key])
