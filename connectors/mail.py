"""Mail files -> ``Message`` records: mbox (Google Takeout, Thunderbird, any mboxrd/mboxo), Maildir, .eml.

Only header blocks are ever read into memory. Each one is parsed with the standard library's
``BytesHeaderParser`` and turned into a record by ``connectors.mail_headers`` (the rules the Gmail
API connector shares), so bodies are never parsed, kept or even buffered:

- mbox is streamed line by line. A message starts at a "From " line at the start of the file or
  after a blank line; quoted ">From " body lines are not separators. Memory stays flat however
  large the file (``mailbox.mbox`` would build a table of contents of the whole file first).
- Maildir: the files under cur/ and new/, in name order; new/ or a missing "S" flag means unread.
- .eml: one file, or every .eml file under a folder, in path order.

The parser runs with ``policy=compat32``: it hands header values back exactly as written (8-bit
bytes as surrogate escapes) and never interprets them, so decoding happens in one place
(``mail_headers``) under rules that never raise. The default policy parses address and date
headers eagerly on access and reformats them, and has raised on malformed headers before.

Google Takeout's X-Gmail-Labels become Gmail label ids (SENT, UNREAD, CATEGORY_PROMOTIONS, ...);
Thunderbird's X-Mozilla-Status tells read from unread. Threads follow the header rule (the root
Message-ID), which joins a conversation across mailboxes; Takeout's X-GM-THRID is only known
within one mailbox, so it is the thread only of a message with no ids to thread by. Messages
Gmail's API would not list by default (drafts, spam, trash) and ones the mail client has already
deleted are left out. The mbox "From " line's date (Maildir: the delivery time in the file name)
stands in for a missing or broken Date header.

Ids are "<mailbox slug>/<Message-ID>", or a hash of the message's stable headers when it has no
Message-ID, and ``updated`` is the message's own time: importing the same file twice yields
identical records. A message that cannot be read is reported through ``on_skip`` and the others
still come out; input that is not mail at all raises ``ImportFileError`` naming the file.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import BinaryIO

from connectors.mail_headers import BadHeaders, clean_text, decode_words, message_from_headers
from timeaudit.config import Settings
from timeaudit.errors import UserError
from timeaudit.model import Message

SOURCE = "mail"
EXPECTED = "an mbox file, a Maildir folder (with cur/ and new/), an .eml file or a folder of .eml files"
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
_KNOWN_HEADER = re.compile(rb"^(from|date|message-id|subject|received|return-path|to|mime-version):", re.I | re.M)
_FROM_LINE_DATE = re.compile(
    rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) +([A-Z][a-z]{2}) +(\d{1,2}) +(\d{1,2}:\d{2}:\d{2})(?: +([+-]\d{4}))? +(\d{4})"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}

OnSkip = Callable[[str, str], None]


class ImportFileError(UserError):
    """The path is not mail this importer can read; the message names it and what was expected."""


def detect_format(path: Path) -> str:
    """Which reader fits ``path`` ("mbox", "maildir" or "eml"), judged by content, not by name."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() or (path / "new").is_dir():
            return "maildir"
        if any(p.is_file() for p in _eml_files(path)):
            return "eml"
        raise ImportFileError(f"{path}: no mail found in this folder; expected {EXPECTED}")
    if not path.is_file():
        raise ImportFileError(f"{path}: no such file or folder; expected {EXPECTED}")
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError as e:
        raise ImportFileError(f"{path}: cannot be read ({e.strerror or e})") from None
    head = head.removeprefix(b"\xef\xbb\xbf")
    if not head.strip():
        raise ImportFileError(f"{path}: the file is empty; expected {EXPECTED}")
    if head.startswith(b"From "):
        return "mbox"
    block = re.split(rb"\r?\n\r?\n", head, maxsplit=1)[0]
    if _HEADER_LINE.match(block) and _KNOWN_HEADER.search(block):
        return "eml"
    raise ImportFileError(
        f"{path}: not a mail file (no mbox 'From ' line and no message headers at the start); expected {EXPECTED}"
    )


def mailbox_of(path: Path) -> str:
    """A stable slug naming the mailbox, used as the prefix of message ids: the file's stem for an
    mbox, the folder's name for a Maildir or a folder of .eml files. A single .eml takes its folder's
    name, so importing one file of a folder gives the same ids as importing the folder."""
    path = Path(path).resolve()
    if path.is_file():
        name = path.parent.name if path.suffix.lower() == ".eml" else path.stem
    else:
        name = path.name
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "mail"


def iter_mail_messages(
    path: Path,
    account: str,
    settings: Settings,
    aliases: Iterable[str],
    on_skip: OnSkip,
    on_progress: Callable[[int], None] | None = None,
) -> Iterator[Message]:
    """Every readable message of the mail file or folder at ``path``, as seen by ``account``.

    ``on_progress`` gets the running total of bytes read (mbox) or of messages read (Maildir, .eml).
    Raises ``ImportFileError`` when ``path`` is not mail, or when not one of its messages was readable.
    """
    path = Path(path)
    fmt = detect_format(path)
    blocks = {"mbox": _mbox_blocks, "maildir": _maildir_blocks, "eml": _eml_blocks}[fmt](path, on_progress)
    slug = mailbox_of(path)
    aliases = tuple(aliases)
    read = skipped = 0
    for where, block, fallback_ts, flags, problem in blocks:
        if problem:
            skipped += 1
            on_skip(where, problem)
            continue
        try:
            message = _message(block, slug, account, settings, aliases, fallback_ts, flags)
        except BadHeaders as e:
            skipped += 1
            on_skip(where, str(e))
            continue
        except Exception as e:  # a parser or decoder surprise on hostile bytes must not end the import
            skipped += 1
            on_skip(where, f"unreadable headers ({type(e).__name__}: {e})")
            continue
        if message is not None:
            read += 1
            yield message
    if skipped and not read:
        raise ImportFileError(f"{path}: none of its {skipped} message(s) had readable headers; expected {EXPECTED}")


# -- turning one header block into a record --------------------------------------------------------
def _message(
    block: bytes,
    slug: str,
    account: str,
    settings: Settings,
    aliases: tuple[str, ...],
    fallback_ts: datetime | None,
    flags: set[str],
) -> Message | None:
    if not block.strip():
        raise BadHeaders("no headers")
    if not _HEADER_LINE.match(block.lstrip(b"\r\n")):
        raise BadHeaders("no header lines where the message should start")
    parsed = BytesHeaderParser(policy=compat32).parsebytes(block)
    headers = [(name, clean_text(value)) for name, value in parsed.raw_items()]

    labels = list(flags)
    gmail_thread = ""
    for name, value in headers:
        key = name.lower()
        if key == "x-gmail-labels":
            labels.extend(_takeout_labels(value))
        elif key == "x-gm-thrid":
            gmail_thread = value.strip()
        elif key == "x-mozilla-status":
            status = _hex(value)
            if status is not None:
                if status & MOZILLA_EXPUNGED:
                    return None
                if not status & MOZILLA_READ:
                    labels.append("UNREAD")
    if LEFT_OUT_LABELS.intersection(labels):
        return None

    message = message_from_headers(
        headers,
        source=SOURCE,
        account=account,
        id="",
        labels=labels,
        aliases=aliases,
        internal_ts=fallback_ts,
        settings=settings,
    )
    # The header rule's thread (root Message-ID) joins one conversation across mailboxes, as the
    # Gmail connector's does; Gmail's own thread id is only known inside this mailbox, so it is
    # the thread only of a message with no Message-ID, References or In-Reply-To at all.
    message.thread_id = message.thread_id or gmail_thread
    message.id = f"{slug}/{message.message_id or _header_hash(headers)}"
    return message


def _takeout_labels(value: str) -> list[str]:
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
    return out


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
            digest.update(f"{name.lower()}:{' '.join(value.split())}\n".encode("utf-8", "surrogatepass"))
    return "sha256-" + digest.hexdigest()[:32]


# -- reading header blocks: (where, block, fallback time, flag labels, problem or "") ----------------
Block = tuple[str, bytes, datetime | None, set[str], str]
TRUNCATED = "truncated: the file ends inside the message's headers"
TOO_LARGE = f"header block larger than {MAX_HEADER_BYTES // 1024} KB"


def _mbox_blocks(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    number = line_no = start_line = read = header_size = 0
    header: list[bytes] = []
    in_header = False
    from_line = b""
    after_blank = True  # the start of the file counts as "after a blank line"
    at_line_start = True

    def finish() -> Block:
        # A header block only ends at a blank line: still inside one at the end of the file is truncation.
        problem = TRUNCATED if in_header else TOO_LARGE if header_size > MAX_HEADER_BYTES else ""
        where = f"{path} message {number} (line {start_line})"
        return where, b"".join(header), _from_line_date(from_line), set(), problem

    with path.open("rb") as f:
        for piece in _pieces(f):
            read += len(piece)
            starts_line, at_line_start = at_line_start, piece.endswith(b"\n")
            line_no += starts_line
            if starts_line and after_blank and piece.startswith(b"From "):
                if number:
                    yield finish()
                    if on_progress:
                        on_progress(read - len(piece))
                number += 1
                start_line, from_line, header, header_size, in_header = line_no, piece, [], 0, True
                after_blank = False
                continue
            blank = starts_line and piece in (b"\n", b"\r\n")
            if in_header:
                if blank:
                    in_header = False  # the body that follows is only scanned for separators
                else:
                    header_size += len(piece)
                    if header_size <= MAX_HEADER_BYTES:
                        header.append(piece)
            after_blank = blank
        if number:
            yield finish()
    if on_progress:
        on_progress(read)


def _pieces(f: BinaryIO) -> Iterator[bytes]:
    while piece := f.readline(MAX_LINE):
        yield piece


def _from_line_date(line: bytes) -> datetime | None:
    """The date of an mbox "From " line ("From - Mon Mar  2 09:00:00 2026", Takeout adds "+0000")."""
    m = _FROM_LINE_DATE.search(line)
    if not m:
        return None
    month, day, clock, zone, year = (g.decode() if g else "" for g in m.groups())
    try:
        hh, mm, ss = (int(x) for x in clock.split(":"))
        ts = datetime(int(year), _MONTHS[month], int(day), hh, mm, ss, tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    if zone:  # local time with its offset
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5]))
        ts = ts - offset if zone[0] == "+" else ts + offset
    return ts


def _maildir_blocks(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    number = 0
    for sub in ("new", "cur"):
        folder = path / sub
        if not folder.is_dir():
            continue
        for name in sorted(os.listdir(folder)):
            file = folder / name
            if name.startswith(".") or not file.is_file():
                continue
            info = name.rpartition(":2,")[2] if ":2," in name else ""
            if "T" in info or "D" in info:  # trashed, or a draft
                continue
            number += 1
            flags = {"UNREAD"} if sub == "new" or "S" not in info else set()
            block, problem = _file_header(file)
            yield f"{file} message {number} (line 1)", block, _delivery_time(name), flags, problem
            if on_progress:
                on_progress(number)


def _delivery_time(name: str) -> datetime | None:
    """Maildir file names start with the delivery time in Unix seconds."""
    m = re.match(r"(\d{9,10})\.", name)
    return datetime.fromtimestamp(int(m.group(1)), UTC) if m else None


def _eml_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() == ".eml" and p.is_file())


def _eml_blocks(path: Path, on_progress: Callable[[int], None] | None) -> Iterator[Block]:
    files = _eml_files(path) if path.is_dir() else [path]
    for number, file in enumerate(files, start=1):
        block, problem = _file_header(file)
        yield f"{file} message {number} (line 1)", block, None, set(), problem
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
