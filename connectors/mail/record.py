"""One mail header block -> one record (the ``Message`` fields by name), read one by one: the
block's header lines as ``BytesHeaderParser`` (compat32) gives them, so values stay exactly as
written and are decoded in one place (``connectors.mail.headers``), plus the folder's labels and
the labels a mail client writes into headers (Takeout's X-Gmail-Labels, X-Mozilla-Status)."""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from connectors.mail import columns as mail_columns
from connectors.mail.headers import BadHeaders, clean_text, decode_words, message_fields
from timeaudit.core.config import Settings

SOURCE = "mail"
_HEADER_LINE = re.compile(rb"^[\x21-\x39\x3b-\x7e]+:")
FallbackTime = Callable[[], datetime | None]  # the time for a message without a readable Date header
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


@dataclass(frozen=True)
class Mailbox:
    """What every message of one import shares."""

    account: str
    settings: Settings
    aliases: tuple[str, ...]
    words: tuple[str, ...]  # the tag vocabulary
    labels: tuple[str, ...]  # the folder's: its role, its name where kept, its identity (``Folder.key``)
    label_rule: mail_columns.LabelRule


def message_record(block: bytes, box: Mailbox, fallback_time: FallbackTime, flags: set[str]) -> dict | None:
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
# from the newline before the line, and faster (a literal start is searched for fast).
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


def header_labels(
    gmail: str | None, mozilla: str | None, folder_labels: tuple[str, ...] = ()
) -> tuple[str, ...] | None:
    """The labels of a message with at most one X-Gmail-Labels and X-Mozilla-Status header (None
    when absent) in a folder with ``folder_labels``, as ``message_record`` finds them; None when the
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
