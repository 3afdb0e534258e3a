"""Header blocks of many messages -> one Arrow table of their records, column by column.

Reading messages one at a time in Python caps how fast an import can go. Here the header
blocks of thousands of messages of an mbox file (``connectors.mail.blocks.Heads``) are one Arrow
array, and every step is a ``pyarrow.compute`` kernel or a numpy operation over all of them at
once (the header lines as columns: ``connectors.mail.header_columns``):

1. Messages in the plain form nearly every mailer writes are picked out: "Name: value" lines
   of printable ASCII only (LF or CRLF line ends), a readable Date, a Message-ID, at most one
   X-Gmail-Labels or X-Mozilla-Status header (not folded). The others (8-bit headers, a
   broken or missing Date or Message-ID, ...) go back to the caller, who reads them one by one
   with ``connectors.mail.headers`` in their place: this module never guesses.
2. The blocks are split into header lines, one row each (message, name, value), continuation
   lines joined to their header as ``mail_headers`` unfolds them; each wanted header's first
   value per message becomes a column, and every To and Cc value is kept.
3. Rules whose inputs take few distinct values (labels, subjects and their encoded words,
   senders, address entries, Precedence, Content-Type, days of the Date) are the very
   functions ``mail_headers`` applies to one message, run once per distinct value
   (``connectors.columns.Distinct``) and spread to every row with ``take``. What nearly every message has its
   own of (times of day, message ids, address lists and their order) is computed by kernels
   for the common forms ("Tue, 3 Mar 2026 09:15:00 +0100", "<id>", "a@b" and "Name <a@b>");
   a value in any other form (quoted or encoded names, a Date with a comment) is read by the
   ``mail_headers`` function itself, once per distinct value.

A record made here equals, field for field, the one the per-message reader makes of the same
message: tests/test_mail_import.py holds the two readers to the same tables.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.columns import Distinct, each_distinct
from connectors.mail import headers as rules
from connectors.mail.header_columns import (
    GMAIL_THREAD,
    all_of,
    any_of_flags,
    anywhere,
    header_columns,
    placed,
    present,
    printable,
    with_lf_line_ends,
)
from timeaudit.core.model import MESSAGE_SCHEMA, UTC_TS

# Labels of a message from its X-Gmail-Labels and X-Mozilla-Status values (None when absent);
# None when the message is left out (a draft, spam, trash, deleted by the mail client).
LabelRule = Callable[[str | None, str | None], tuple[str, ...] | None]

# The lake's message columns but ingested_at, Gmail's thread id (X-GM-THRID, "" for none: an
# import joins threads by it, the lake does not keep it), and where each record's message is in its chunk.
SCHEMA = pa.schema(
    [
        *(f for f in MESSAGE_SCHEMA if f.name != "ingested_at"),
        pa.field("gmail_thread", pa.string()),
        pa.field("position", pa.int64()),
    ]
)
WHOLE_ID = r"^<[^<>\s]+>$"
# mail_headers' _RFC_DATE with the clock's and zone's ranges checked, as datetime() checks them.
DATE = (
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(?P<day>\d{1,2}) "
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<year>(?:19|2\d)\d\d) "
    r"(?P<clock>(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d) (?P<sign>[+-])(?P<hours>[01]\d|2[0-3])(?P<minutes>[0-5]\d)$"
)


def message_table(
    blocks: pa.Array, box: Any, label_rule: LabelRule, max_header_bytes: int
) -> tuple[pa.Table, list[int]]:
    """The records of the plain messages among ``blocks`` (header blocks, each line preceded by
    "\\n"), in order, with their index in ``blocks`` in a last column "position", and the
    indices of the other messages, which the caller reads one by one. Messages the label rule
    leaves out are in neither. ``box`` is the mailbox's ``connectors.mail.record.Mailbox``."""
    small = pc.less_equal(pc.binary_length(blocks), max_header_bytes)
    blocks = with_lf_line_ends(blocks)
    plain = all_of(small, printable(blocks))
    where = pc.indices_nonzero(plain)
    blocks = (blocks if len(where) == len(blocks) else blocks.filter(plain)).cast(pa.string())
    n = len(blocks)

    headers = header_columns(blocks)
    first = headers.first
    label_key, labels_fine = _label_keys(first, headers.counts)

    label_keys = Distinct(label_key)

    def labels_with(test: Callable[[tuple[str, ...]], Any], type: pa.DataType) -> pa.Array:
        return label_keys.each(lambda key: test(_labels_of(key, label_rule) or ()), type)

    left_out = label_keys.each(lambda key: _labels_of(key, label_rule) is None, pa.bool_())
    ts, date_fine = _dates(first["date"])
    message_id = _ids(first["message-id"], rules.first_id)  # "": the message needs a hash id
    in_reply_to = _ids(first["in-reply-to"], rules.first_id)
    references = _ids(first["references"], rules.root_id)

    froms = _addresses(*present(first["from"]), n)
    to = _addresses(*headers.every["to"], n)
    cc = _addresses(*headers.every["cc"], n)
    sender = _first_ofeach_distinct(froms)

    me = pa.array(sorted(rules.own_addresses(box.account, box.aliases)), pa.string())
    sent = pc.or_(labels_with(lambda labels: "SENT" in labels, pa.bool_()), pc.is_in(sender, value_set=me))
    self_in = pc.if_else(sent, "from", pc.if_else(_any_of(to, me), "to", pc.if_else(_any_of(cc, me), "cc", "bcc")))
    subjects = Distinct(pc.fill_null(first["subject"], ""))
    subject = subjects.each(rules.decode_words, pa.string())
    thread = _first_nonempty(references, in_reply_to, message_id)

    columns = {
        "account": pa.repeat(pa.scalar(box.account.strip().lower()), n),
        "id": pc.binary_join_element_wise("<", message_id, ">", ""),  # as connectors.mail.record.message_key
        "thread_id": thread,
        "ts": ts,
        "direction": pc.if_else(sent, "sent", "received"),
        "sender": sender,
        "to": to,
        "cc": cc,
        "self_in": self_in,
        "labels": labels_with(list, pa.list_(pa.string())),
        "unread": labels_with(lambda labels: "UNREAD" in labels, pa.bool_()),
        "bulk": any_of_flags(_bulk(first, sender), labels_with(rules.bulk_labels, pa.bool_())),
        "auto": any_of_flags(
            _auto(first), subjects.each(lambda s: rules.auto_subject(rules.decode_words(s)), pa.bool_())
        ),
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "subject_tags": subjects.each(
            lambda s: list(rules.subject_tags(rules.decode_words(s), box.words)), pa.list_(pa.string())
        ),
        "subject": subject if box.settings.privacy.store_subjects else pa.nulls(n, pa.string()),
        "updated": ts,
        "deleted": pa.repeat(pa.scalar(False), n),
        "gmail_thread": pc.fill_null(first[GMAIL_THREAD], ""),
        "position": where,
    }
    table = pa.table(columns, schema=SCHEMA)
    fine = all_of(
        headers.well_formed,
        pc.invert(headers.folded_labels),
        labels_fine,
        date_fine,
        pc.not_equal(message_id, ""),
    )
    others = pc.indices_nonzero(pc.invert(plain)).to_pylist()
    others += where.filter(pc.invert(fine)).to_pylist()
    kept = pc.and_(fine, pc.invert(left_out))
    return (table if pc.all(kept).as_py() else table.filter(kept)), sorted(others)


# -- the rules ----------------------------------------------------------------------------------
def _label_keys(first: dict, counts: dict) -> tuple[pa.Array, pa.Array]:
    """(what each message's labels depend on, as one string; whether this module may read them)."""
    gmail, mozilla = first["x-gmail-labels"], first["x-mozilla-status"]
    fine = all_of(
        pc.less_equal(counts["x-gmail-labels"], 1),
        pc.less_equal(counts["x-mozilla-status"], 1),
        pc.invert(pc.and_(pc.is_valid(gmail), pc.is_valid(mozilla))),  # both: their order would matter
    )
    key = pc.coalesce(pc.binary_join_element_wise("G", gmail, ""), pc.binary_join_element_wise("M", mozilla, ""), "")
    return key, fine


@functools.lru_cache(maxsize=4096)
def _labels_of(key: str, label_rule: LabelRule) -> tuple[str, ...] | None:
    """The labels of a message by its label key (see ``_label_keys``), once each; None: left out."""
    found = label_rule(key[1:] if key[:1] == "G" else None, key[1:] if key[:1] == "M" else None)
    return None if found is None else tuple(dict.fromkeys(found))


def _dates(dates: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(the Date as a UTC time, whether it has one) as ``mail_headers.parse_date`` reads it: in
    the plain form, the day once per distinct day by ``parse_date``, the clock and zone by
    slicing; in any other, the whole value by ``parse_date``."""
    original = dates
    plain = pc.fill_null(pc.match_substring_regex(dates, DATE), False)
    dates = pc.if_else(plain, dates, "1 Jan 2000 00:00:00 +0000")  # (what the others hold does not matter)
    day, clock, zone = (
        pc.utf8_slice_codeunits(dates, start, stop) for start, stop in ((0, -15), (-14, -6), (-5, None))
    )
    midnight = each_distinct(day, lambda day: rules.parse_date(f"{day} 00:00:00 +0000"), UTC_TS)  # None: no such day
    hours, minutes, seconds = (pc.cast(pc.utf8_slice_codeunits(clock, i, i + 2), pa.int64()) for i in (0, 3, 6))
    east = each_distinct(
        zone, lambda zone: (-1 if zone[0] == "+" else 1) * (int(zone[1:3]) * 60 + int(zone[3:5])), pa.int64()
    )
    since_midnight = pc.add(pc.add(pc.multiply(hours, 3600), pc.multiply(minutes, 60)), seconds)
    utc = pc.multiply(pc.add(since_midnight, pc.multiply(east, 60)), 1_000_000).cast(pa.duration("us"))
    ts = pc.if_else(plain, pc.add(midnight, utc), pa.scalar(None, UTC_TS))
    others = np.flatnonzero(~np.asarray(plain) & np.asarray(pc.is_valid(original)))
    if len(others):  # other forms: the standard library's parser, once per distinct value
        parsed = each_distinct(original.take(others), rules.parse_date, UTC_TS)
        ts = pc.coalesce(ts, parsed.take(placed(len(ts), others, np.arange(len(others)))))
    return ts, pc.is_valid(ts)


def _ids(values: pa.Array, rule: Callable[[str], str]) -> pa.Array:
    """``rule`` (``mail_headers.first_id`` or ``root_id``) of each Message-ID, In-Reply-To or
    References value, "" for an absent one: a value that is one <id> and nothing else is
    sliced, any other read by ``rule`` once per distinct value."""
    whole = pc.fill_null(pc.match_substring_regex(values, WHOLE_ID), False)
    ids = pc.if_else(whole, pc.utf8_slice_codeunits(values, 1, -1), pc.fill_null(values, ""))
    read = np.flatnonzero(~np.asarray(whole))
    if not len(read):
        return ids
    found = each_distinct(ids.take(read), rule, pa.string()).take(placed(len(ids), read, np.arange(len(read))))
    return pc.coalesce(found, ids)


def _first_nonempty(*columns: pa.Array) -> pa.Array:
    return pc.coalesce(*(pc.if_else(pc.equal(c, ""), pa.scalar(None, pa.string()), c) for c in columns))


def _bulk(first: dict, sender: pa.Array) -> pa.Array:
    """Bulk by the headers and the sender (the labels are the caller's)."""
    listed = any_of_flags(*(pc.not_equal(pc.fill_null(first[h], ""), "") for h in ("list-id", "list-unsubscribe")))
    return any_of_flags(
        listed,
        each_distinct(pc.fill_null(first["precedence"], ""), rules.bulk_precedence, pa.bool_()),
        each_distinct(sender, rules.automated_sender, pa.bool_()),
    )


def _auto(first: dict) -> pa.Array:
    """Auto by the headers (the subject is the caller's)."""
    flags = [
        pc.fill_null(each_distinct(first[h], rules.auto_reply, pa.bool_()), False) for h in rules.AUTO_REPLY_HEADERS
    ]
    return any_of_flags(
        each_distinct(pc.fill_null(first["auto-submitted"], ""), rules.auto_submitted, pa.bool_()),
        *flags,
        each_distinct(pc.fill_null(first["content-type"], ""), rules.calendar_reply, pa.bool_()),
    )


def _addresses(message: np.ndarray, values: pa.Array, n: int) -> pa.Array:
    """Each message's addresses from its ``values`` of one address header, as
    ``mail_headers.addresses`` gives them (lower case, in order, once each): the common entries
    that ``mail_headers.simple_address`` reads column by column, the messages with any other
    entry by ``mail_headers.addresses`` itself, once per distinct list of values."""
    message = np.asarray(message)
    entries = pc.split_pattern(values, ",")
    entry_message = message[np.asarray(pc.list_parent_indices(entries))]
    found = each_distinct(pc.list_flatten(entries), rules.simple_address, pa.string())  # "": blank, null: not simple
    odd = np.asarray(anywhere(n, entry_message, pc.is_null(found)))
    # A message whose values have no entry at all goes to the standard library's parser, which may find one.
    counted = np.asarray(anywhere(n, entry_message, pc.not_equal(found, "")))
    odd |= np.asarray(anywhere(n, message, pc.not_equal(values, ""))) & ~counted

    # Each address once per message, where it first occurs.
    kept = np.flatnonzero(np.asarray(pc.fill_null(pc.not_equal(found, ""), False)))
    address = pc.ascii_lower(found.take(kept))
    codes = pc.dictionary_encode(address)
    key = entry_message[kept] * max(len(codes.dictionary), 1) + codes.indices.to_numpy()
    once = np.sort(np.unique(key, return_index=True)[1])
    offsets = pa.array(np.searchsorted(entry_message[kept][once], np.arange(n + 1)), pa.int32())
    simple = pa.ListArray.from_arrays(offsets, address.take(once))
    if not odd.any():
        return simple
    return pc.if_else(pa.array(odd), _addresses_read_whole(message, values, odd, n), simple)


def _addresses_read_whole(message: np.ndarray, values: pa.Array, odd: np.ndarray, n: int) -> pa.Array:
    """The addresses of the ``odd`` messages by ``mail_headers.addresses`` (null for the others)."""
    rows = np.flatnonzero(odd[message])
    texts = values.take(rows).to_pylist()
    groups = itertools.groupby(zip(message[rows].tolist(), texts, strict=True), key=lambda row: row[0])
    found = [rules.addresses([text for _, text in group]) for _, group in groups]
    readers = np.flatnonzero(odd)
    return pa.array(found, pa.list_(pa.string())).take(placed(n, readers, np.arange(len(readers))))


def _first_ofeach_distinct(lists: pa.ListArray) -> pa.Array:
    """The first item of each list, "" for an empty one."""
    starts = np.asarray(lists.offsets)
    empty = starts[1:] == starts[:-1]
    return pc.fill_null(lists.values.take(pa.array(starts[:-1], mask=empty)), "")


def _any_of(lists: pa.Array, value_set: pa.Array) -> pa.Array:
    """Whether each list holds one of ``value_set``."""
    return anywhere(len(lists), pc.list_parent_indices(lists), pc.is_in(pc.list_flatten(lists), value_set=value_set))
