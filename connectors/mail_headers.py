"""Message headers and Gmail labels -> one ``Message`` record: the rules every mail connector shares.

The mail-file importer (``connectors.mail``) and the Gmail API connector both hand the headers they
read to ``message_from_headers``, so "sent", "bulk", "auto-reply" and "thread" mean the same thing
whatever the source. Only the headers in ``HEADERS`` are looked at; bodies never reach this module.

- direction: "sent" when the SENT label is present or the From address is the account or an alias.
- self_in: "from" for sent mail; otherwise "to", "cc" or (neither) "bcc" for the account/aliases.
- bulk: List-Id, List-Unsubscribe, Precedence bulk/list/junk, a no-reply sender, or one of Gmail's
  category labels (promotions, updates, social, forums).
- auto: Auto-Submitted (other than "no"), X-Autoreply/X-Autorespond, or a calendar reply (a
  ``text/calendar; method=REPLY`` message, or an "Accepted:"/"Declined:"/"Tentative:"/"Automatic
  reply:"/"Out of Office:" subject).
- Message ids are kept without their angle brackets, so ``in_reply_to`` joins ``message_id``
  across mailboxes. A thread is the root of References, else In-Reply-To, else the message itself.

Header values may carry RFC 2047 encoded words, raw 8-bit bytes (smuggled through as surrogate
escapes by the standard library's parser) or plain garbage: decoding never raises. A message
whose date cannot be known at all raises ``BadHeaders`` so the caller can skip and report it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime

from timeaudit.config import Settings
from timeaudit.model import Message
from timeaudit.tags import tags_of, vocabulary

HEADERS = (
    "From",
    "To",
    "Cc",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "List-Id",
    "List-Unsubscribe",
    "Precedence",
    "Auto-Submitted",
    "Subject",
    "X-Autoreply",
    "X-Autorespond",
    "Content-Type",
)

CATEGORY_LABELS = frozenset({"CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_SOCIAL", "CATEGORY_FORUMS"})
BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
AUTO_SUBJECTS = ("accepted:", "declined:", "tentative:", "automatic reply:", "out of office:")

# A no-reply word as a whole token of the local part: "noreply@", "calendar-noreply@", "no.reply"
# is not matched on purpose (too rare to be worth false positives on real names).
_NO_REPLY = re.compile(r"(?:^|[._+-])(?:no-?reply|do-?not-?reply|mailer-daemon)(?:$|[._+-])")
_NOTIFICATIONS = re.compile(r"^notifications?(?:$|[._+-])")
_MSG_ID = re.compile(r"<([^<>\s]+)>")
_FOLD = re.compile(r"\r?\n[ \t]*")


class BadHeaders(ValueError):
    """The message has nothing usable: no date could be found (and no fallback was given)."""


def message_from_headers(
    headers: Iterable[tuple[str, str]],
    *,
    source: str,
    account: str,
    id: str,
    labels: Iterable[str] = (),
    aliases: Iterable[str] = (),
    thread_id: str = "",
    internal_ts: datetime | None = None,
    updated: datetime | None = None,
    settings: Settings,
) -> Message:
    """One ``Message`` from a message's headers (any order, repeated names allowed) and labels."""
    wanted = {h.lower() for h in HEADERS}
    first: dict[str, str] = {}
    every: dict[str, list[str]] = {"to": [], "cc": []}
    for name, value in headers:
        key = name.strip().lower()
        if key not in wanted:
            continue
        value = _FOLD.sub(" ", clean_text(value)).strip()
        first.setdefault(key, value)
        if key in every:
            every[key].append(value)

    if "from" not in first and "date" not in first and internal_ts is None:
        raise BadHeaders("no From and no Date header")
    ts = _date(first.get("date", "")) or _utc(internal_ts)
    if ts is None:
        raise BadHeaders(f"unreadable Date header {first.get('date', '')[:60]!r}" if "date" in first else "no Date")

    me = {a.strip().lower() for a in (account, *aliases) if a and a.strip()}
    label_list = list(dict.fromkeys(labels))
    froms = addresses([first.get("from", "")])
    sender = froms[0] if froms else ""
    to = addresses(every["to"])
    cc = addresses(every["cc"])

    sent = "SENT" in label_list or sender in me
    if sent:
        self_in = "from"
    elif me & set(to):
        self_in = "to"
    elif me & set(cc):
        self_in = "cc"
    else:
        self_in = "bcc"

    subject = decode_words(first.get("subject", ""))
    message_id = _first_id(first.get("message-id", ""))
    in_reply_to = _first_id(first.get("in-reply-to", ""))
    references = _MSG_ID.findall(first.get("references", ""))
    thread = thread_id or (references[0] if references else "") or in_reply_to or message_id

    return Message(
        source=source,
        account=account.strip().lower(),
        id=id,
        ts=ts,
        updated=_utc(updated) or ts,
        thread_id=thread,
        direction="sent" if sent else "received",
        sender=sender,
        to=to,
        cc=cc,
        self_in=self_in,
        labels=label_list,
        unread="UNREAD" in label_list,
        bulk=_is_bulk(first, sender, label_list),
        auto=_is_auto(first, subject),
        message_id=message_id,
        in_reply_to=in_reply_to,
        subject_tags=tags_of(subject, vocabulary(settings.rules)),
        subject=subject if settings.privacy.store_subjects else None,
    )


def clean_text(value: object) -> str:
    """A header value as clean text: raw 8-bit bytes that the standard library smuggled in as
    surrogate escapes are decoded as UTF-8, or Windows-1252 when they are not valid UTF-8."""
    text = value if isinstance(value, str) else str(value)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252", "replace")


def decode_words(value: str) -> str:
    """RFC 2047 encoded words -> text. Unknown charsets and broken encodings degrade, never raise."""
    if "=?" not in value:
        return value
    try:
        parts = decode_header(value)
    except Exception:  # broken base64/quoted-printable: keep the raw text
        return value
    out: list[str] = []
    for part, charset in parts:
        if isinstance(part, str):
            out.append(part)
        elif charset is None:  # the unencoded text between encoded words, as decode_header returns it
            out.append(part.decode("raw-unicode-escape", "replace"))
        else:
            try:
                out.append(part.decode(charset, "replace"))
            except LookupError:  # a charset Python does not know
                out.append(part.decode("utf-8", "replace"))
    return re.sub(r"\s+", " ", "".join(out)).strip()


def addresses(values: Iterable[str]) -> list[str]:
    """Lower-case addresses from address headers, in order, without repeats or empty entries."""
    return list(_addresses(tuple(v for v in values if v)))


@functools.lru_cache(maxsize=65536)  # a team's To/Cc lines repeat constantly; parsing them is costly
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    for _name, addr in _simple_addresses(values) or getaddresses(list(values)):
        addr = addr.strip().lower()
        if "@" not in addr and "=?" in addr:
            # Some mailers encode the whole "Name <addr>" as one encoded word: decode and re-read.
            decoded = getaddresses([decode_words(addr)])
            addr = decoded[0][1].strip().lower() if decoded else ""
        if addr and addr not in found:
            found.append(addr)
    return tuple(found)


_SIMPLE_ENTRY = re.compile(r"^\s*(?:[^<>@]*<([^<>\s@]+@[^<>\s@]+)>|([^<>\s@]+@[^<>\s@]+))\s*$")


def _simple_addresses(values: tuple[str, ...]) -> list[tuple[str, str]] | None:
    """The common "Name <a@b>, c@d" lines read without the standard library's full RFC 5322
    parser (a third of an import's time); None for anything quoted, commented or encoded."""
    pairs = []
    for value in values:
        if any(c in value for c in '"()\\;:') or "=?" in value:
            return None
        for entry in value.split(","):
            if not entry.strip():
                continue
            match = _SIMPLE_ENTRY.match(entry)
            if not match:
                return None
            pairs.append(("", match[1] or match[2]))
    return pairs


def _date(value: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return _utc(parsed)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:  # "-0000" (time zone unknown) and naive fallbacks are taken as UTC
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def _first_id(value: str) -> str:
    m = _MSG_ID.search(value)
    if m:
        return m.group(1)
    return value.strip().strip("<>").split()[0] if value.strip().strip("<>") else ""


def _is_bulk(first: dict[str, str], sender: str, labels: list[str]) -> bool:
    if first.get("list-id") or first.get("list-unsubscribe"):
        return True
    if first.get("precedence", "").strip().lower() in BULK_PRECEDENCE:
        return True
    if CATEGORY_LABELS.intersection(labels):
        return True
    local = sender.partition("@")[0]
    return bool(local and (_NO_REPLY.search(local) or _NOTIFICATIONS.match(local)))


def _is_auto(first: dict[str, str], subject: str) -> bool:
    submitted = first.get("auto-submitted", "").partition(";")[0].strip().lower()
    if submitted and submitted != "no":
        return True
    for name in ("x-autoreply", "x-autorespond"):
        if name in first and first[name].strip().lower() not in ("no", "false", "0"):
            return True
    content_type = first.get("content-type", "").lower()
    if content_type.startswith("text/calendar") and re.search(r"method\s*=\s*\"?reply\b", content_type):
        return True
    return subject.lower().startswith(AUTO_SUBJECTS)
