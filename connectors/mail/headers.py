"""Message headers and Gmail labels -> one ``Message`` record: the rules every mail connector shares.

The mail-file importer (``connectors.mail.reader``) and the Gmail API connector both hand the headers they
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

Each rule that reads one value (``simple_address``, ``parse_date``, ``automated_sender``,
``auto_submitted``, ...) is a function of its own: ``connectors.mail.columns`` applies the same
functions to each distinct value of a whole column of messages, so both readers share them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.header import decode_header
from email.utils import getaddresses, parsedate_to_datetime

from timeaudit.core.config import Settings
from timeaudit.core.model import Message
from timeaudit.core.tags import tags_of, vocabulary

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

WANTED = frozenset(h.lower() for h in HEADERS)
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


def message_from_headers(headers: Iterable[tuple[str, str]], **kwargs) -> Message:
    """``message_fields`` as a ``Message``."""
    return Message(**message_fields(headers, **kwargs))


def message_fields(
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
    words: tuple[str, ...] | None = None,
) -> dict:
    """The ``Message`` fields by name of one message's headers (any order, repeated names
    allowed) and labels; an importer builds its columns from these without a ``Message`` each.

    ``words`` is the tag vocabulary of ``settings`` (``timeaudit.core.tags.vocabulary``), for callers
    that make many messages with the same settings."""
    first, to_lines, cc_lines = _wanted_values(headers)
    if "from" not in first and "date" not in first and internal_ts is None:
        raise BadHeaders("no From and no Date header")
    ts = parse_date(first.get("date", "")) or _utc(internal_ts)
    if ts is None:
        raise BadHeaders(f"unreadable Date header {first.get('date', '')[:60]!r}" if "date" in first else "no Date")

    me = own_addresses(account, tuple(aliases))
    label_list = list(dict.fromkeys(labels))
    froms = _addresses((first["from"],)) if first.get("from") else ()
    sender = froms[0] if froms else ""
    to = addresses(to_lines)
    cc = addresses(cc_lines)

    sent = "SENT" in label_list or sender in me
    if sent:
        self_in = "from"
    elif not me.isdisjoint(to):
        self_in = "to"
    elif not me.isdisjoint(cc):
        self_in = "cc"
    else:
        self_in = "bcc"

    subject = decode_words(first.get("subject", ""))
    message_id = first_id(first.get("message-id", ""))
    in_reply_to = first_id(first.get("in-reply-to", ""))
    thread = thread_id or root_id(first.get("references", "")) or in_reply_to or message_id

    return {
        "source": source,
        "account": account.strip().lower(),
        "id": id,
        "ts": ts,
        "updated": _utc(updated) or ts,
        "thread_id": thread,
        "direction": "sent" if sent else "received",
        "sender": sender,
        "to": to,
        "cc": cc,
        "self_in": self_in,
        "labels": label_list,
        "unread": "UNREAD" in label_list,
        "bulk": _is_bulk(first, sender, label_list),
        "auto": _is_auto(first, subject),
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "subject_tags": list(subject_tags(subject, words if words is not None else vocabulary(settings.rules))),
        "subject": subject if settings.privacy.store_subjects else None,
        "deleted": False,
    }


def _wanted_values(headers: Iterable[tuple[str, str]]) -> tuple[dict[str, str], list[str], list[str]]:
    """The first value of each header in ``HEADERS`` by lower-case name, and every To and Cc value:
    clean text on one line."""
    first: dict[str, str] = {}
    to: list[str] = []
    cc: list[str] = []
    for name, value in headers:
        key = header_key(name)
        if key not in WANTED:
            continue
        if not (isinstance(value, str) and value.isascii()):
            value = clean_text(value)
        value = (_FOLD.sub(" ", value) if "\n" in value else value).strip()
        if key not in first:
            first[key] = value
        if key == "to":
            to.append(value)
        elif key == "cc":
            cc.append(value)
    return first, to, cc


@functools.lru_cache(maxsize=1024)  # a mailbox uses few header names, in few spellings
def header_key(name: str) -> str:
    """A header's name as headers are compared: lower case, without surrounding blanks."""
    return name.strip().lower()


@functools.lru_cache(maxsize=65536)  # subjects repeat (threads, notifications) and tagging one is slow
def subject_tags(subject: str, words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(tags_of(subject, words))


@functools.lru_cache(maxsize=256)
def own_addresses(account: str, aliases: tuple[str, ...]) -> frozenset[str]:
    """The account's and its aliases' addresses, as the address lists hold them."""
    return frozenset(a.strip().lower() for a in (account, *aliases) if a and a.strip())


def clean_text(value: object) -> str:
    """A header value as clean text: raw 8-bit bytes that the standard library smuggled in as
    surrogate escapes are decoded as UTF-8, or Windows-1252 when they are not valid UTF-8."""
    text = value if isinstance(value, str) else str(value)
    if text.isascii():
        return text
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
    return list(_addresses(tuple(filter(None, values))))


@functools.lru_cache(maxsize=65536)  # a team's To/Cc lines repeat constantly; parsing them is costly
def _addresses(values: tuple[str, ...]) -> tuple[str, ...]:
    found: list[str] = []
    simple = _simple_addresses(values)
    for _name, addr in [("", a) for a in simple] if simple else getaddresses(list(values)):
        addr = addr.strip().lower()
        if "@" not in addr and "=?" in addr:
            # Some mailers encode the whole "Name <addr>" as one encoded word: decode and re-read.
            decoded = getaddresses([decode_words(addr)])
            addr = decoded[0][1].strip().lower() if decoded else ""
        if addr and addr not in found:
            found.append(addr)
    return tuple(found)


_QUOTING = re.compile(r'["()\\;:]')  # one class: searched much faster than an alternation
# The name before "<" takes the blanks before it, and only the bare address may follow blanks:
# a pattern that let both take them would try every split of a long run of blanks.
_SIMPLE_ENTRY = re.compile(r"(?:[^<>@]*<([^<>\s@]+@[^<>\s@]+)>|\s*([^<>\s@]+@[^<>\s@]+))\s*$")


def _simple_addresses(values: tuple[str, ...]) -> list[str] | None:
    """The common "Name <a@b>, c@d" lines read without the standard library's full RFC 5322
    parser (a third of an import's time); None for anything quoted, commented or encoded."""
    found = []
    for value in values:
        for entry in value.split(","):
            address = simple_address(entry)
            if address is None:
                return None
            if address:
                found.append(address)
    return found


@functools.lru_cache(maxsize=65536)  # a mailbox's correspondents recur
def simple_address(entry: str) -> str | None:
    """The address of one comma-separated entry of an address header in the common form ("Name
    <a@b>" or "a@b"); "" for a blank entry, None for any other form."""
    if not entry.strip():
        return ""
    if _QUOTING.search(entry) or "=?" in entry:
        return None
    match = _SIMPLE_ENTRY.match(entry)
    return (match[1] or match[2]) if match else None


# The form nearly every mailer writes ("Tue, 3 Mar 2026 09:15:00 +0100"), read without the standard
# library's general parser; anything else (comments, obsolete zones, two-digit years) goes to it.
_RFC_DATE = re.compile(
    r"(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(\d{1,2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"((?:19|2\d)\d\d) (\d\d):(\d\d):(\d\d) ([+-])([01]\d|2[0-3])([0-5]\d)"
)
_MONTHS = {m: i for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), start=1)}


def parse_date(value: str) -> datetime | None:
    """A Date header's time in UTC, None when it has none."""
    if not value:
        return None
    m = _RFC_DATE.fullmatch(value)
    if m:
        day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = m.groups()
        try:
            local = datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute), int(second), tzinfo=UTC)
        except ValueError:  # 31 Feb, 25:00 or a leap second, which the standard library refuses too
            return None
        offset = timedelta(hours=int(zone_hours), minutes=int(zone_minutes))
        return local - offset if sign == "+" else local + offset
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


def root_id(references: str) -> str:
    """The first id of References: the root of the thread."""
    m = _MSG_ID.search(references)
    return m.group(1) if m else ""


def first_id(value: str) -> str:
    """The id of a Message-ID or In-Reply-To header, without its angle brackets."""
    m = _MSG_ID.search(value)
    if m:
        return m.group(1)
    return value.strip().strip("<>").split()[0] if value.strip().strip("<>") else ""


# The bulk and auto rules, one input each, so that ``mail_columns`` can apply them to each
# distinct value of a column: a message is bulk or auto when any of them says so.
def _is_bulk(first: dict[str, str], sender: str, labels: list[str]) -> bool:
    return (
        bool(first.get("list-id") or first.get("list-unsubscribe"))
        or bulk_precedence(first.get("precedence", ""))
        or bulk_labels(labels)
        or automated_sender(sender)
    )


def bulk_precedence(value: str) -> bool:
    return value.strip().lower() in BULK_PRECEDENCE


def bulk_labels(labels: Iterable[str]) -> bool:
    return not CATEGORY_LABELS.isdisjoint(labels)


@functools.lru_cache(maxsize=65536)  # senders repeat
def automated_sender(sender: str) -> bool:
    local = sender.partition("@")[0]
    return bool(local and (_NO_REPLY.search(local) or _NOTIFICATIONS.match(local)))


AUTO_REPLY_HEADERS = ("x-autoreply", "x-autorespond")


def _is_auto(first: dict[str, str], subject: str) -> bool:
    return (
        auto_submitted(first.get("auto-submitted", ""))
        or any(auto_reply(first[name]) for name in AUTO_REPLY_HEADERS if name in first)
        or calendar_reply(first.get("content-type", ""))
        or auto_subject(subject)
    )


def auto_submitted(value: str) -> bool:
    submitted = value.partition(";")[0].strip().lower()
    return bool(submitted) and submitted != "no"


def auto_reply(value: str) -> bool:
    """X-Autoreply or X-Autorespond, present with this value."""
    return value.strip().lower() not in ("no", "false", "0")


def calendar_reply(content_type: str) -> bool:
    content_type = content_type.lower()
    return content_type.startswith("text/calendar") and bool(re.search(r"method\s*=\s*\"?reply\b", content_type))


def auto_subject(subject: str) -> bool:
    return subject.lower().startswith(AUTO_SUBJECTS)
