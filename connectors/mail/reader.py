"""Mail files -> ``Message`` records: mbox (Google Takeout, Thunderbird, any mboxrd/mboxo), Maildir, .eml.

Only header blocks are ever read into memory; bodies are never parsed or kept. There are two
ways from header blocks to records, and they give the same records:

- One by one (``iter_mail_records``; what Maildir and .eml always use, and what an mbox import
  uses for the messages the other way leaves): each block's headers are read as the standard
  library's ``BytesHeaderParser`` (``policy=compat32``) gives them and turned into a dict of the
  ``Message`` fields by ``connectors.mail.headers``, the rules the Gmail API connector shares.
  compat32 hands header values back exactly as written (8-bit bytes as surrogate escapes) and
  never interprets them, so decoding happens in one place under rules that never raise. This
  costs tens of microseconds of Python per message.
- Column by column (``read_mail``, what an import reads): the header blocks of up to
  MESSAGES_PER_TABLE messages of an mbox at a time become one Arrow table, made by
  ``connectors.mail.columns`` with ``pyarrow.compute`` kernels over all of them at once, the
  rules with few distinct inputs (labels, subjects, senders) being ``mail_headers``' own run
  once per distinct value. It reads only messages in the plain form nearly every mailer writes
  and hands every other one back to be read one by one, in its place, so an odd header never
  changes a record; tests/test_mail_import.py holds the two ways to the same tables.

Finding the messages of an mbox (a message starts at a "From " line at the start of the file or
after a blank line; quoted ">From " body lines are not separators): the file is read in pieces
into a sliding window that drops what lies behind (``_Window``), so memory stays flat however
large the file (``mailbox.mbox`` would build a table of contents of the whole file first). One
by one, ``_mbox_block`` finds a message's "From " line and its header block (to the first blank
line) and then the next message. Column by column, ``_mbox_parts`` reads windows of about
WINDOW_BYTES of whole messages and finds all their messages and header blocks at once with
numpy (``_message_heads``: the line breaks, the blank lines among them, the "From " lines after
those), keeping only the blocks; a message larger than a window, and the file's last one, go
through ``_mbox_block``. Maildir: the files under cur/ and new/, in name order; new/ or
a missing "S" flag means unread (not in a Sent folder). A folder is read whole, each of its
folders a mailbox (``connectors.mail.folders``): Maildirs, mbox files, and folders of message
files (one message each, .eml or not), in path order.

Google Takeout's X-Gmail-Labels become Gmail label ids (SENT, UNREAD, CATEGORY_PROMOTIONS, ...);
Thunderbird's X-Mozilla-Status tells read from unread. Each message also carries its folder's
labels: its role (INBOX, SENT: mail in a Sent folder is sent mail), its name where subjects are
kept, and its identity (``mailbox:<digest>``), which tells an import which mailboxes hold it.
Threads follow the header rule (the root Message-ID), which joins a conversation across
mailboxes; an import then joins them over the whole Message-ID graph (``connectors.mail.threads``).
Takeout's X-GM-THRID is only known within one mailbox, so it is the thread only of a message
with no ids to thread by. Messages Gmail's API would not list by default (drafts, spam, trash;
their folders too) and ones the mail client has already deleted are left out. The mbox "From "
line's date (Maildir: the delivery time in the file name) stands in for a missing or broken
Date header.

Ids are "<Message-ID>" (``message_key``), the same whichever mailboxes hold the message, or a
hash of the message's stable headers when it has no Message-ID, and ``updated`` is the
message's own time: importing the same file twice yields identical records. A message that
cannot be read is reported through ``on_skip`` and the others still come out; input that is
not mail at all raises ``ImportFileError`` naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.mail import columns as mail_columns
from connectors.mail.folders import Folder, file_folder, sniff, tree_folders
from connectors.mail.headers import BadHeaders, clean_text, decode_words, message_fields
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.model import Message
from timeaudit.core.tags import vocabulary

SOURCE = "mail"
EXPECTED = "an mbox file, a Maildir folder (with cur/ and new/), an .eml file or a folder of message files"
MAILBOX_LABEL = "mailbox:"  # + a digest of a mailbox's identity: which mailboxes hold a message
MAX_HEADER_BYTES = 1 << 20  # a header block larger than this is not a real message's
MAX_LINE = 1 << 16  # lines are read in pieces of at most this, so a file without newlines stays cheap
SNIFF_BYTES = 1 << 16

# Takeout label names -> Gmail API label ids; None drops the name ("Opened" is the absence of UNREAD).
TAKEOUT_LABELS: dict[str, str | None] = {
    "inbox": "INBOX",
    "sent": "SENT",
    "unread": "UNREAD",
    "opened": None,
    "archived": None,
    "important": "IMPORTANT",
    "starred": "STARRED",
    "chat": "CHAT",
    "draft": "DRAFT",
    "drafts": "DRAFT",
    "spam": "SPAM",
    "trash": "TRASH",
}
LEFT_OUT_LABELS = frozenset({"DRAFT", "SPAM", "TRASH"})
MOZILLA_READ = 0x0001
MOZILLA_EXPUNGED = 0x0008
VOLATILE_HEADERS = frozenset({"x-gmail-labels", "x-mozilla-status", "x-mozilla-status2", "x-mozilla-keys", "status"})

_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
_FROM_LINE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +([A-Z][a-z]{2}) +(\d{1,2}) +(\d{1,2}:\d{2}:\d{2})(?: +([+-]\d{4}))? +(\d{4})"
)
_MONTHS = {m.encode(): i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}

OnSkip = Callable[[str, str], None]


class ImportFileError(UserError):
    """The path is not mail this importer can read; the message names it and what was expected."""


def detect_format(path: Path) -> str:
    """Which reader fits ``path`` ("mbox", "maildir" or "eml": a message file or a folder of
    mail other than a Maildir), judged by content, not by name."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        if tree_folders(path):
            return "eml"
        raise ImportFileError(f"{path}: no mail found in this folder; expected {EXPECTED}")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file or folder; expected {EXPECTED}")
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise ImportFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise ImportFileError(f"{path}: the file is empty; expected {EXPECTED}")
    if kind := sniff(head):
        return kind
    raise ImportFileError(
        f"{path}: not a mail file (no mbox 'From ' line and no message headers at the start); expected {EXPECTED}"
    )


def mail_folders(path: Path, base: Path | None = None) -> list[Folder]:
    """The mailboxes at ``path``: the file's, or every one in the folder and its subfolders.
    ``base``: what their places are told from (``Folder.place``), when not the file system's root."""
    path = Path(path)
    if not path.is_dir():
        return [file_folder(path, detect_format(path), base)]
    if folders := tree_folders(path, base):
        return folders
    raise ImportFileError(f"{path}: no mail found in this folder; expected {EXPECTED}")


def mailbox_of(path: Path) -> str:
    """The slug that older versions put before the Message-ID in a message's id ("inbox/<id>"):
    an import finds by it the records it replaces. The file's stem for an mbox, the folder's
    name for a Maildir or a folder of .eml files, the folder's name for a single .eml."""
    path = Path(path).resolve()
    if path.is_file():
        name = path.parent.name if path.suffix.lower() == ".eml" else path.stem
    else:
        name = path.name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "mail"


def iter_mail_messages(*args, **kwargs) -> Iterator[Message]:
    """``iter_mail_records`` as ``Message`` objects."""
    for record in iter_mail_records(*args, **kwargs):
        record.pop("gmail_thread")
        yield Message(**record)


def iter_mail_records(
    path: Path,
    account: str,
    settings: Settings,
    aliases: Iterable[str],
    on_skip: OnSkip,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[dict]:
    """Every readable message of the mail file or folder at ``path``, as seen by ``account``
    (``Message`` fields by name), read one by one.

    ``on_progress`` gets the running total of bytes read (mbox) or of messages read (Maildir, .eml).
    Raises ``ImportFileError`` when ``path`` is not mail, or when not one of its messages was readable.
    """
    path = Path(path)
    reading = _Reading(path, account, settings, aliases, on_skip)
    for folder, progress in _with_progress(path, mail_folders(path), on_progress, reading):
        reading.open(folder)
        yield from reading.records(_BLOCKS[folder.format](folder, progress))
    reading.finish()


def read_mail(
    path: Path,
    account: str,
    settings: Settings,
    aliases: Iterable[str],
    on_skip: OnSkip,
    on_progress: Callable[[int], None] | None = None,
    folders: list[Folder] | None = None,
) -> Iterator[dict | pa.Table]:
    """``iter_mail_records``' records in the same order, what an import reads: those of an mbox
    file as Arrow tables of many messages each (the lake's message columns but ``ingested_at``),
    read column by column, with dicts between them for the messages read alone (see
    ``_mbox_parts``); those of a Maildir or a folder of message files as dicts.
    ``folders`` are ``mail_folders(path)`` when the caller has them already."""
    path = Path(path)
    reading = _Reading(path, account, settings, aliases, on_skip)
    for folder, progress in _with_progress(path, folders or mail_folders(path), on_progress, reading):
        reading.open(folder)
        if folder.format != "mbox":
            yield from reading.records(_BLOCKS[folder.format](folder, progress))
            continue
        for part in _mbox_parts(folder.path, progress):
            if isinstance(part, _Heads):
                yield reading.table(part)
            else:
                yield from reading.records([part])
    reading.finish()


def _with_progress(
    path: Path, folders: list[Folder], on_progress: Callable[[int], None] | None, reading: _Reading
) -> Iterator[tuple[Folder, Callable[[int], None] | None]]:
    """Each folder with what to tell ``on_progress``: a file's own running total (bytes of an
    mbox, messages of a message file); for a folder, the messages read so far in all of it."""
    if on_progress is None or not path.is_dir():
        yield from ((folder, on_progress) for folder in folders)
        return
    for folder in folders:
        if folder.format == "mbox":
            yield folder, None
            on_progress(reading.read + reading.skipped)
        else:
            yield folder, functools.partial(_counted_on, on_progress, reading.read + reading.skipped)


def _counted_on(on_progress: Callable[[int], None], before: int, done: int) -> None:
    on_progress(before + done)


class _Reading:
    """The reading of one file: header blocks -> records; unreadable messages are reported and counted."""

    def __init__(self, path: Path, account: str, settings: Settings, aliases: Iterable[str], on_skip: OnSkip):
        self.path, self.on_skip = path, on_skip
        self.account, self.settings, self.aliases = account, settings, tuple(aliases)
        self.words = vocabulary(settings.rules)
        self.read = self.skipped = 0
        self.folders = 0
        self.box = self._mailbox(None)

    def open(self, folder: Folder) -> None:
        """Read the next messages as ``folder``'s."""
        self.box = self._mailbox(folder)
        self.folders += 1

    def _mailbox(self, folder: Folder | None) -> _Mailbox:
        labels: tuple[str, ...] = ()
        if folder is not None:
            kept_name = (folder.name,) if self.settings.privacy.store_subjects and folder.name else ()
            labels = (*filter(None, [folder.role]), *kept_name, folder.key)
        label_rule = functools.partial(_header_labels, folder_labels=labels)
        return _Mailbox(self.account, self.settings, self.aliases, self.words, labels, label_rule)

    def records(self, blocks: Iterable[Block]) -> Iterator[dict]:
        for block in blocks:
            record = self.record(block)
            if record is not None:
                yield record

    def record(self, block: Block) -> dict | None:
        """The record of one message; None when it is left out or unreadable (then reported)."""
        where, header, fallback_time, flags, problem = block
        if problem:
            return self._skip(where, problem)
        try:
            message = _message(header, self.box, fallback_time, flags)
        except BadHeaders as e:
            return self._skip(where, str(e))
        except Exception as e:  # a parser or decoder surprise on hostile bytes must not end the import
            return self._skip(where, f"unreadable headers ({type(e).__name__}: {e})")
        if message is not None:
            self.read += 1
        return message

    def table(self, heads: _Heads) -> pa.Table:
        """The records of many messages, in file order: the plain ones read column by column
        (``mail_columns``), the others one by one."""
        # A "From " line longer than _Window.line reads: such messages are read one by one.
        too_long = pc.greater_equal(pc.binary_length(heads.from_lines), MAX_LINE)
        blocks = pc.if_else(too_long, pa.scalar(b"", pa.binary()), heads.blocks)
        table, others = mail_columns.message_table(blocks, self.box, self.box.label_rule, MAX_HEADER_BYTES)
        self.read += table.num_rows  # (mail_columns reads no empty block)
        records = []
        for i in others:
            record = self.record(heads.block(i))
            if record is not None:
                records.append(dict(record, position=i))
        if records:
            table = pa.concat_tables([table, pa.Table.from_pylist(records, schema=mail_columns.SCHEMA)])
            table = table.sort_by("position")
        return table.drop_columns(["position"])

    def finish(self) -> None:
        if self.skipped and not self.read:
            raise ImportFileError(
                f"{self.path}: none of its {self.skipped} message(s) had readable headers; expected {EXPECTED}"
            )

    def _skip(self, where: str, why: str) -> None:
        self.skipped += 1
        self.on_skip(where, why)


# -- turning one header block into a record --------------------------------------------------------
@dataclass(frozen=True)
class _Mailbox:
    """What every message of one import shares."""

    account: str
    settings: Settings
    aliases: tuple[str, ...]
    words: tuple[str, ...]  # the tag vocabulary
    labels: tuple[str, ...]  # the folder's: its role, its name where kept, its identity (``Folder.key``)
    label_rule: mail_columns.LabelRule


def _message(block: bytes, box: _Mailbox, fallback_time: FallbackTime, flags: set[str]) -> dict | None:
    if not block or block.isspace():
        raise BadHeaders("no headers")
    if not _HEADER_LINE.match(block.lstrip(b"\r\n")):
        raise BadHeaders("no header lines where the message should start")
    headers = _header_items(block)

    labels = list(flags)
    gmail_thread = ""
    for name, value in headers:
        key = name.lower()
        if key == "x-gmail-labels":
            labels.extend(_takeout_labels(clean_text(value)))
        elif key == "x-gm-thrid" and not gmail_thread:
            gmail_thread = " ".join(clean_text(value).split())
        elif key == "x-mozilla-status":
            status = _mozilla_labels(clean_text(value))
            if status is None:
                return None
            labels.extend(status)
    labels.extend(box.labels)
    if LEFT_OUT_LABELS.intersection(labels):
        return None

    def record(internal_ts: datetime | None) -> dict:
        return message_fields(
            headers,
            source=SOURCE,
            account=box.account,
            id="",
            labels=labels,
            aliases=box.aliases,
            internal_ts=internal_ts,
            settings=box.settings,
            words=box.words,
        )

    try:
        message = record(None)
    except BadHeaders:  # no readable Date: only now is the time of the "From " line or file name worked out
        message = record(fallback_time())
    # The header rule's thread (root Message-ID) joins one conversation across mailboxes, as the
    # Gmail connector's does; Gmail's own thread id is only known inside this mailbox, so it is
    # the thread only of a message with no Message-ID, References or In-Reply-To at all.
    message["thread_id"] = message["thread_id"] or gmail_thread
    message["gmail_thread"] = gmail_thread  # (not a Message field: an import joins threads by it)
    message["id"] = message_key(message["message_id"]) if message["message_id"] else _header_hash(headers)
    return message


# A header line and its continuation lines, as compat32 keeps them: the value without the blanks
# after the colon and without the final line break. _FIELD_LF is the same for "\n" line ends only,
# from the newline before the line, and several times faster (a literal start is searched for fast).
_FIELD = re.compile(r"([\x21-\x39\x3b-\x7e]+):[ \t]*([^\r\n]*(?:\r?\n[ \t][^\r\n]*)*)(?:\r?\n|\Z)")
_FIELD_LF = re.compile(r"\n([\x21-\x39\x3b-\x7e]+):[ \t]*(.*(?:\n[ \t].*)*)")


def _header_items(block: bytes) -> list[tuple[str, str]]:
    """(name, value) of every header, exactly as ``BytesHeaderParser(policy=compat32)`` gives them
    (8-bit bytes as surrogate escapes). Blocks of plain "Name: value" lines are read with regular
    expressions; anything else goes to the standard library."""
    text = block.decode("ascii", "surrogateescape")
    if "\r" not in text:
        fields = _FIELD_LF.findall("\n" + text)
        lines = text.count("\n") + (not text.endswith("\n"))
        if len(fields) == lines - text.count("\n ") - text.count("\n\t"):  # every line read
            return fields
    items = []
    position, size = 0, len(text)
    while position < size:
        field = _FIELD.match(text, position)
        if field is None:
            return list(BytesHeaderParser(policy=compat32).parsebytes(block).raw_items())
        items.append((field[1], field[2]))
        position = field.end()
    return items


@functools.lru_cache(maxsize=4096)  # a mailbox has few distinct label lists
def _takeout_labels(value: str) -> tuple[str, ...]:
    out = []
    for raw in _split_labels(decode_words(value)):
        name = raw.strip().strip('"').strip()
        if not name:
            continue
        key = name.lower()
        if key in TAKEOUT_LABELS:
            label = TAKEOUT_LABELS[key]
        elif key.startswith("category "):
            label = "CATEGORY_" + re.sub(r"\W+", "_", name[9:].strip()).upper()
        else:
            label = name  # a user label keeps its name
        if label and label not in out:
            out.append(label)
    return tuple(out)


def _mozilla_labels(value: str) -> tuple[str, ...] | None:
    """What Thunderbird's X-Mozilla-Status says: UNREAD or nothing; None for a deleted message."""
    status = _hex(value)
    if status is None:
        return ()
    if status & MOZILLA_EXPUNGED:
        return None
    return () if status & MOZILLA_READ else ("UNREAD",)


def _header_labels(
    gmail: str | None, mozilla: str | None, folder_labels: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """The labels of a message with at most one X-Gmail-Labels and X-Mozilla-Status header (None
    when absent) in a folder with ``folder_labels``, as ``_message`` finds them; None when the
    message is left out."""
    labels = _takeout_labels(clean_text(gmail)) if gmail is not None else ()
    if mozilla is not None:
        status = _mozilla_labels(clean_text(mozilla))
        if status is None:
            return None
        labels += status
    labels += folder_labels
    return None if LEFT_OUT_LABELS.intersection(labels) else labels


def message_key(message_id: str) -> str:
    """The id of a message with a Message-ID: the same whichever mailboxes of an account hold it."""
    return f"<{message_id}>"


def _split_labels(value: str) -> list[str]:
    """Split on commas outside double quotes (a user label may contain a comma)."""
    parts, current, quoted = [], [], False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def _hex(value: str) -> int | None:
    try:
        return int(value.strip(), 16)
    except ValueError:
        return None


def _header_hash(headers: list[tuple[str, str]]) -> str:
    """A stable id for a message without a Message-ID: its headers, less the ones a client rewrites
    when the message is read or relabelled."""
    digest = hashlib.sha256()
    for name, value in headers:
        if name.lower() not in VOLATILE_HEADERS:
            value = clean_text(value)
            digest.update(f"{name.lower()}:{' '.join(value.split())}\n".encode("utf-8", "surrogatepass"))
    return "sha256-" + digest.hexdigest()[:32]


# -- reading header blocks: (where, block, fallback time, flag labels, problem or "") ----------------
FallbackTime = Callable[[], datetime | None]  # the time for a message without a readable Date header
Block = tuple[str, bytes, FallbackTime, set[str], str]
TRUNCATED = "truncated: the file ends inside the message's headers"
TOO_LARGE = f"header block larger than {MAX_HEADER_BYTES // 1024} KB"


def _mbox_blocks(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    number = 0
    with path.open("rb") as f:
        window = _Window(f)
        start = window.search(_SEPARATOR, window.start)
        while start is not None:
            number += 1
            block, start = _mbox_block(window, start, f"{path} message {number}")
            yield block
            if on_progress and start is not None:
                on_progress(start)
        if on_progress:
            on_progress(window.end)


def _mbox_block(window: _Window, start: int, name: str) -> tuple[Block, int | None]:
    """The message starting at ``start``, and where the next one starts (None: the file ends)."""
    where = f"{name} (line {window.line_of(start)})"
    from_line = window.line(start)
    header_start = start + len(from_line)
    header_end = window.search(_HEADER_END, header_start - 1, keep=header_start)
    if header_end is None:
        # A header block only ends at a blank line: still inside one at the end of the file is truncation.
        return (where, b"", _no_time, set(), TRUNCATED), None
    if header_end - header_start > MAX_HEADER_BYTES:
        header, problem = b"", TOO_LARGE
    else:
        header, problem = window.bytes(header_start, header_end), ""
    block = (where, header, functools.partial(_from_line_date, from_line), set(), problem)
    return block, window.search(_SEPARATOR, header_end - 1)


def _mbox_parts(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[_Heads | Block]:
    """An mbox file's messages: the header blocks of many at a time, found in windows of about
    WINDOW_BYTES of whole messages; a message larger than the window, and the file's last one,
    come alone, as ``_mbox_blocks`` gives them. Memory stays flat: the bodies go with the window."""
    number = 0
    heads = _Heads(path)
    with path.open("rb") as f:
        window = _Window(f)
        start = window.search(_SEPARATOR, window.start)
        while start is not None:
            window.fill(start, WINDOW_BYTES)
            end = window.last_message_start(start)
            if end is None:
                if heads.count:
                    yield heads
                    heads = _Heads(path)
                number += 1
                block, start = _mbox_block(window, start, f"{path} message {number}")
                yield block
            else:
                number += heads.add(window, start, end, number + 1)
                start = end
                if heads.full:
                    yield heads
                    heads = _Heads(path)
            if on_progress and start is not None:
                on_progress(start)
        if heads.count:
            yield heads
        if on_progress:
            on_progress(window.end)


class _Heads:
    """The header blocks of many messages of an mbox file, with what ``_mbox_block`` needs to
    give any of them as it would. Filled window by window (``add``), then read whole."""

    def __init__(self, path: Path):
        self.path = path
        self.count = self.size = 0  # messages, and bytes of their header blocks
        self._numbers: list[np.ndarray] = []  # of each message in the file
        self._lines: list[np.ndarray] = []  # where each starts
        self._from_lines: list[pa.Array] = []  # without the line break
        self._blocks: list[pa.Array] = []  # header lines, each after a "\n" (the form mail_columns reads)

    @property
    def full(self) -> bool:
        return self.count >= MESSAGES_PER_TABLE or self.size >= HEADER_BYTES_PER_TABLE

    def add(self, window: _Window, start: int, end: int, number: int) -> int:
        """Add the messages from ``start`` to ``end`` in ``window`` (whole messages, the first
        one's number given); returns how many there were."""
        buf, low, high = window.buf, max(start - _BLANK_LINE - window.base, 0), end - window.base
        starts, from_ends, header_ends, newlines = _message_heads(buf, low, high)
        offsets = np.empty(3 * len(starts) + 1, np.int32)
        offsets[0:-1:3], offsets[1:-1:3], offsets[2:-1:3], offsets[-1] = starts, from_ends, header_ends, high
        # One array of each message's "From " line, header lines and the rest, over the window's bytes.
        pieces = pa.Array.from_buffers(pa.binary(), len(offsets) - 1, [None, pa.py_buffer(offsets), pa.py_buffer(buf)])
        self._from_lines.append(pieces.take(np.arange(0, len(offsets) - 1, 3)))
        self._blocks.append(pieces.take(np.arange(1, len(offsets) - 1, 3)))
        self._numbers.append(np.arange(number, number + len(starts)))
        self._lines.append(window.line_of(start) + newlines)
        self.count += len(starts)
        self.size += int((header_ends - from_ends).sum())
        return len(starts)

    @functools.cached_property
    def blocks(self) -> pa.Array:
        return pa.concat_arrays(self._blocks)

    @functools.cached_property
    def from_lines(self) -> pa.Array:
        return pa.concat_arrays(self._from_lines)

    @functools.cached_property
    def _places(self) -> tuple[np.ndarray, np.ndarray]:
        return np.concatenate(self._numbers), np.concatenate(self._lines)

    def block(self, i: int) -> Block:
        """The ``i``th message as ``_mbox_block`` gives it."""
        numbers, lines = self._places
        where = f"{self.path} message {numbers[i]} (line {lines[i]})"
        block, from_line = self.blocks[i].as_py(), self.from_lines[i].as_py()
        whole = from_line + b"\n" + (block[1:] + b"\n" if block else b"")
        cut = min(len(from_line) + 1, MAX_LINE)  # _Window.line reads at most MAX_LINE bytes
        from_line, header = whole[:cut], whole[cut:]
        if len(header) > MAX_HEADER_BYTES:
            return where, b"", _no_time, set(), TOO_LARGE
        return where, header, functools.partial(_from_line_date, from_line), set(), ""


def _message_heads(buf: bytes, low: int, high: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The messages of ``buf[low:high]`` (whole messages, after the blank line before the first
    one), with numpy over all the bytes at once: where each starts, where its "From " line
    ends, where its header block ends (the line break before the first blank line, as in
    ``_mbox_block``), and how many line breaks lie between the first one's start and its own."""
    text = np.frombuffer(buf, np.uint8)[low : min(len(buf), high + 8)]
    breaks = np.flatnonzero(text == ord("\n"))

    def at(positions: np.ndarray) -> np.ndarray:
        # Past the end reads the last byte again: a line break there may look like one before a
        # blank line, but it lies past every message asked for.
        return text[np.minimum(positions, len(text) - 1)]

    blank = breaks + 1 + (at(breaks + 1) == ord("\r"))  # where the next line's "\n" is if it is blank
    before_blank = at(blank) == ord("\n")
    header_ends = breaks[before_blank]
    starts = blank[before_blank] + 1
    starts = starts[
        np.logical_and.reduce([at(starts + i) == c for i, c in enumerate(b"From ")]) & (starts < high - low)
    ]
    from_ends = breaks[np.searchsorted(breaks, starts)]
    header_ends = header_ends[np.searchsorted(header_ends, from_ends)]
    newlines = np.searchsorted(breaks, starts)
    return starts + low, from_ends + low, header_ends + low, newlines - newlines[:1]


# A message starts at a "From " line after a blank line (or at the start of the file), and its
# header block ends at the first blank line. A match ends where that line starts.
_SEPARATOR = re.compile(rb"\n\r?\n(?=From )")
_HEADER_END = re.compile(rb"\n(?=\r?\n)")
_LONGEST_MATCH = 8  # "\n\r\nFrom ": a match this long can straddle two reads
_BLANK_LINE = 3  # "\n\r\n": the end of a line and a blank one before a message
CHUNK = 1 << 20
WINDOW_BYTES = 4 << 20  # whole messages read at a time, bodies and all
MESSAGES_PER_TABLE = 8192  # header blocks read column by column at a time...
HEADER_BYTES_PER_TABLE = 16 << 20  # ...and at most this much of them


class _Window:
    """A sliding window over a binary file for the mbox scan: regular-expression searches that
    read on as needed, and drop what lies behind, so memory stays flat however large the file.

    Positions are offsets in the file. The window opens with a virtual blank line before the
    file (offsets -2 and -1): the start of the file counts as "after a blank line".
    """

    start = -2

    def __init__(self, f: BinaryIO):
        self.f, self.buf, self.base, self.eof = f, b"\n\n", self.start, False
        self.lines = self.counted = 0  # newlines in the file before offset ``counted``

    @property
    def end(self) -> int:
        return self.base + len(self.buf)

    def search(self, pattern: re.Pattern, start: int, keep: int | None = None) -> int | None:
        """Where the first match at or after ``start`` ends, or None at the end of the file.

        Data from ``keep`` on stays readable with ``bytes`` unless it grows past a header block's
        largest size (the block is then too large to be read anyway)."""
        while True:
            found = pattern.search(self.buf, start - self.base)
            if found:
                return self.base + found.end()
            if self.eof:
                return None
            start = max(start, self.end - _LONGEST_MATCH + 1)
            if keep is None or self.end - keep > MAX_HEADER_BYTES + _LONGEST_MATCH:
                keep = start
            self._read(min(start, keep))

    def fill(self, start: int, size: int) -> None:
        """Read on until the window holds ``size`` bytes from ``start`` (or the rest of the file);
        what lies before the blank line before ``start`` may be dropped."""
        if not self.eof and self.end - start < size:
            self._read(start - _BLANK_LINE, size - (self.end - start))

    def last_message_start(self, start: int) -> int | None:
        """Where the last message that starts after ``start`` in the window starts ("From " after a
        blank line), or None."""
        low, at = start - self.base, len(self.buf)
        while (at := self.buf.rfind(b"\nFrom ", low, at)) > low:
            if self.buf[at - 1 : at] == b"\n" or self.buf[at - 2 : at] == b"\n\r":
                return self.base + at + 1
        return None

    def line(self, start: int) -> bytes:
        """The line at ``start`` with its newline, or its first MAX_LINE bytes (as ``readline`` reads)."""
        while (newline := self.buf.find(b"\n", start - self.base)) < 0 and not self.eof and self.end - start < MAX_LINE:
            self._read(start)
        end = self.end if newline < 0 else self.base + newline + 1
        return self.bytes(start, min(end, start + MAX_LINE))

    def bytes(self, start: int, end: int) -> bytes:
        return self.buf[start - self.base : end - self.base]

    def line_of(self, offset: int) -> int:
        """The line number at ``offset`` (offsets are asked for in increasing order)."""
        self._count(offset)
        return self.lines + 1

    def _count(self, upto: int) -> None:
        if upto > self.counted:
            self.lines += self.buf.count(b"\n", self.counted - self.base, upto - self.base)
            self.counted = upto

    def _read(self, keep: int, size: int = CHUNK) -> None:
        drop = max(0, keep - self.base)
        self._count(self.base + drop)
        data = self.f.read(max(size, CHUNK))
        self.eof = not data
        self.buf = self.buf[drop:] + data
        self.base += drop


def _pieces(f: BinaryIO) -> Iterator[bytes]:
    while piece := f.readline(MAX_LINE):
        yield piece


def _from_line_date(line: bytes) -> datetime | None:
    """The date of an mbox "From " line ("From - Mon Mar  2 09:00:00 2026", Takeout adds "+0000")."""
    m = _FROM_LINE_DATE.search(line)
    if not m:
        return None
    month, day, clock, zone, year = m.groups()
    try:
        hh, mm, ss = (int(x) for x in clock.split(b":"))
        ts = datetime(int(year), _MONTHS[month], int(day), hh, mm, ss, tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    if zone:  # local time with its offset
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        ts = ts - offset if zone[:1] == b"+" else ts + offset
    return ts


def _maildir_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    path, number = folder.path, 0
    for sub in ("new", "cur"):
        files = path / sub
        if not files.is_dir():
            continue
        for name in sorted(os.listdir(files)):
            file = files / name
            if name.startswith(".") or not file.is_file():
                continue
            info = name.rpartition(":2,")[2] if ":2," in name else ""
            if "T" in info or "D" in info:  # trashed, or a draft
                continue
            number += 1
            unseen = (sub == "new" or "S" not in info) and folder.role != "SENT"  # one's own mail is read
            flags = {"UNREAD"} if unseen else set()
            block, problem = _file_header(file)
            yield f"{file} message {number} (line 1)", block, functools.partial(_delivery_time, name), flags, problem
            if on_progress:
                on_progress(number)


def _no_time() -> None:
    return None


def _delivery_time(name: str) -> datetime | None:
    """Maildir file names start with the delivery time in Unix seconds."""
    m = re.match(r"(\d{9,10})\.", name)
    return datetime.fromtimestamp(int(m.group(1)), UTC) if m else None


def _file_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    """The messages of a folder of message files, or of one message file."""
    files = folder.files if folder.format == "files" else (folder.path,)
    for number, file in enumerate(files, start=1):
        block, problem = _file_header(file)
        yield f"{file} message {number} (line 1)", block, _no_time, set(), problem
        if on_progress:
            on_progress(number)


def _file_header(file: Path) -> tuple[bytes, str]:
    """The header block of one message file (its lines up to the first blank line), and a problem or ""."""
    lines: list[bytes] = []
    size = 0
    try:
        with file.open("rb") as f:
            for piece in _pieces(f):
                if piece in (b"\n", b"\r\n"):
                    break
                size += len(piece)
                if size > MAX_HEADER_BYTES:
                    return b"", TOO_LARGE
                lines.append(piece)
            else:
                # A file of headers only is fine, but one that stops in the middle of a line was cut short.
                if lines and not lines[-1].endswith(b"\n"):
                    return b"".join(lines), TRUNCATED
    except OSError as e:
        return b"", f"cannot be read ({e.strerror or e})"
    return b"".join(lines), ""


def _mbox_folder_blocks(folder: Folder, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    return _mbox_blocks(folder.path, on_progress)


_BLOCKS = {"mbox": _mbox_folder_blocks, "maildir": _maildir_blocks, "files": _file_blocks, "eml": _file_blocks}
