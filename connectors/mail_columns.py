"""Header blocks of many messages -> one Arrow table of their records, column by column.

Reading a message in Python costs tens of microseconds, which caps an import at some ten
thousand messages a second. Here the header blocks of a whole chunk of an mbox file are one
Arrow array, and every step is a ``pyarrow.compute`` kernel (RE2 regular expressions) run over
all of them at once:

1. Messages in the plain form every mailer writes are picked out: ASCII, no RFC 2047 encoded
   word, "Name: value" lines only, a Date in the RFC 5322 form, a Message-ID in angle brackets,
   address headers of bare or "Name <a@b>" entries, at most one X-Gmail-Labels or
   X-Mozilla-Status header. The others go back to the caller, who reads them one by one with
   ``connectors.mail_headers`` as before: this module never guesses.
2. The headers are unfolded and split into one row per header line (message, name, value);
   each wanted header's first value per message becomes a column.
3. Rules whose input takes few distinct values (labels, subjects, senders, Precedence,
   Content-Type, ...) are the very functions ``mail_headers`` applies to one message, run once
   per distinct value and spread to every row with ``take``. Values nearly every message has
   its own of (dates, message ids, address lists) are computed by kernels.

A record made here equals, field for field, the one the per-message reader makes of the same
message (tests/test_mail_import.py checks both readers against each other).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors import mail_headers as rules
from timeaudit.model import MESSAGE_SCHEMA

# Labels of a message from its X-Gmail-Labels and X-Mozilla-Status values (None when absent);
# None when the message is left out (a draft, spam, trash, deleted by the mail client).
LabelRule = Callable[[str | None, str | None], tuple[str, ...] | None]

# The lake's message columns but ingested_at, and where each record's message is in its chunk.
SCHEMA = pa.schema([*(f for f in MESSAGE_SCHEMA if f.name != "ingested_at"), pa.field("position", pa.int64())])
LABEL_HEADERS = ("x-gmail-labels", "x-mozilla-status")
READ = frozenset(rules.WANTED | set(LABEL_HEADERS))
# "\nName: value" lines and their continuation lines, printable ASCII and tabs only (so that
# Python's and Arrow's ideas of case, blanks and \s agree), as the reader hands blocks over.
HEADER_LINES = r"^(?:\n[\x21-\x39\x3b-\x7e]+:[\t\x20-\x7e]*(?:\n[ \t][\t\x20-\x7e]*)*)+$"
MESSAGE_ID = r"<(?P<id>[^<>\s]+)>"
# mail_headers' _RFC_DATE with the clock's and zone's ranges checked, as datetime() checks them.
DATE = (
    r"^(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), )?(?P<day>\d{1,2}) "
    r"(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) (?P<year>(?:19|2\d)\d\d) "
    r"(?P<clock>(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d) (?P<sign>[+-])(?P<hours>[01]\d|2[0-3])(?P<minutes>[0-5]\d)$"
)


def message_table(
    heads: Sequence[bytes], box: Any, label_rule: LabelRule, max_header_bytes: int
) -> tuple[pa.Table, list[int]]:
    """The records of the plain messages among ``heads`` (header blocks, each line preceded by
    "\\n"), in order, with their index in ``heads`` in a last column "position", and the
    indices of the other messages, which the caller reads one by one. Messages the label rule
    leaves out are in neither. ``box`` is the mailbox's ``connectors.mail._Mailbox``."""
    blocks = pa.array(heads, pa.binary())
    plain = _plain(blocks, max_header_bytes)
    where = pc.indices_nonzero(plain)
    blocks = blocks.filter(plain).cast(pa.string())
    n = len(blocks)

    first, counts, rows, folded_labels = _header_columns(blocks)
    label_key, labels_fine = _label_keys(first, counts)

    def labels_with(test: Callable[[tuple[str, ...]], Any], type: pa.DataType) -> pa.Array:
        return _each(label_key, lambda key: test(_labels_of(key, label_rule) or ()), type)

    left_out = _each(label_key, lambda key: _labels_of(key, label_rule) is None, pa.bool_())
    ts, date_fine = _dates(first["date"])
    message_id = _message_id(first["message-id"])
    in_reply_to, reply_fine = _in_reply_to(first["in-reply-to"])
    references = pc.fill_null(_extract(first["references"], MESSAGE_ID, "id"), "")

    froms, from_fine = _addresses(*_present(first["from"]), n)
    to, to_fine = _addresses(*_rows_of(rows, "to"), n)
    cc, cc_fine = _addresses(*_rows_of(rows, "cc"), n)
    sender = _first_of_each(froms)

    me = pa.array(sorted(rules.own_addresses(box.account, box.aliases)), pa.string())
    sent = pc.or_(labels_with(lambda labels: "SENT" in labels, pa.bool_()), pc.is_in(sender, value_set=me))
    self_in = pc.if_else(sent, "from", pc.if_else(_any_of(to, me), "to", pc.if_else(_any_of(cc, me), "cc", "bcc")))
    subject = _each(pc.fill_null(first["subject"], ""), rules.decode_words, pa.string())
    thread = _first_nonempty(references, in_reply_to, message_id)

    columns = {
        "account": pa.repeat(pa.scalar(box.account.strip().lower()), n),
        "id": pc.binary_join_element_wise(f"{box.slug}/", message_id, ""),
        "thread_id": thread,
        "ts": ts,
        "direction": pc.if_else(sent, "sent", "received"),
        "sender": sender,
        "to": to,
        "cc": cc,
        "self_in": self_in,
        "labels": labels_with(list, pa.list_(pa.string())),
        "unread": labels_with(lambda labels: "UNREAD" in labels, pa.bool_()),
        "bulk": _any(_bulk(first, sender), labels_with(rules.bulk_labels, pa.bool_())),
        "auto": _auto(first, subject),
        "message_id": message_id,
        "in_reply_to": in_reply_to,
        "subject_tags": _each(subject, lambda s: list(rules.subject_tags(s, box.words)), pa.list_(pa.string())),
        "subject": subject if box.settings.privacy.store_subjects else pa.nulls(n, pa.string()),
        "updated": ts,
        "deleted": pa.repeat(pa.scalar(False), n),
        "position": where,
    }
    table = pa.table(columns, schema=SCHEMA)
    fine = _all(
        pc.invert(folded_labels),
        labels_fine,
        date_fine,
        pc.is_valid(message_id),
        reply_fine,
        from_fine,
        to_fine,
        cc_fine,
    )
    others = pc.indices_nonzero(pc.invert(plain)).to_pylist()
    others += where.filter(pc.invert(fine)).to_pylist()
    return table.filter(pc.and_(fine, pc.invert(left_out))), sorted(others)


# -- which messages are plain -------------------------------------------------------------------
def _plain(blocks: pa.Array, max_header_bytes: int) -> pa.Array:
    return _all(
        pc.less_equal(pc.binary_length(blocks), max_header_bytes),
        pc.match_substring_regex(blocks, HEADER_LINES),
    )


# -- headers as columns -------------------------------------------------------------------------
def _header_columns(blocks: pa.Array) -> tuple[dict[str, pa.Array], dict[str, pa.Array], pa.Table, pa.Array]:
    """The first value of each header in ``READ`` by name (null when absent); how many times each
    of ``LABEL_HEADERS`` occurs; every such header as a row (message, name, value); and whether
    a label header is folded (its line breaks would count). Values are unfolded and trimmed as
    ``mail_headers`` does it."""
    n = len(blocks)
    rows, folded_names = _header_rows(blocks)
    codes = pc.dictionary_encode(rows["name"]).combine_chunks()
    code, message = codes.indices.to_numpy(), rows["message"].to_numpy()
    # Rows by name, each name's in message order; the first row of each (name, message) run.
    order = np.argsort(code, kind="stable")
    code, message = code[order], message[order]
    first_row = np.ones(len(order), bool)
    first_row[1:] = (code[1:] != code[:-1]) | (message[1:] != message[:-1])
    runs = np.flatnonzero(first_row)
    run_lengths = np.diff(np.append(runs, len(order)))
    first = dict.fromkeys(READ, pa.nulls(n, pa.string()))
    counts = dict.fromkeys(LABEL_HEADERS, pa.repeat(pa.scalar(0), n))
    values = rows["value"].combine_chunks()
    for i, name in enumerate(codes.dictionary.to_pylist()):
        these = runs[code[runs] == i]
        first[name] = _scatter(n, message[these], values.take(order[these]))
        if name in LABEL_HEADERS:
            counts[name] = pc.fill_null(_scatter(n, message[these], pa.array(run_lengths[code[runs] == i])), 0)
    folded_labels = _anywhere(n, folded_names["message"], pc.is_in(folded_names["name"], pa.array(LABEL_HEADERS)))
    return first, counts, rows, folded_labels


def _header_rows(blocks: pa.Array) -> tuple[pa.Table, pa.Table]:
    """(message, name in lower case, value) of every header in ``READ``, in order, the value
    unfolded (a line break and the blanks after it become one space) and trimmed; and (message,
    name) of every folded header."""
    lines = pc.split_pattern(blocks, "\n")
    line, message = pc.list_flatten(lines), pc.list_parent_indices(lines)
    kept = pc.indices_nonzero(pc.greater(pc.binary_length(line), 0))  # not the "" before each block's first "\n"
    line, message = line.take(kept), message.take(kept).to_numpy()
    continued = np.asarray(pc.is_in(pc.utf8_slice_codeunits(line, 0, 1), value_set=pa.array([" ", "\t"])))
    starts = np.flatnonzero(~continued)
    name_value = pc.split_pattern(line.take(starts), ":", max_splits=1)
    name = pc.ascii_lower(pc.list_element(name_value, 0))
    value = pc.utf8_ltrim(pc.list_element(name_value, 1), " \t")
    owner = np.cumsum(~continued) - 1  # each line's header
    if continued.any():
        # Each header's pieces, its value then its continuation lines without their blanks, joined by spaces.
        place = np.empty(len(line), np.int64)
        place[starts] = np.arange(len(starts))
        place[continued] = len(starts) + np.arange(int(continued.sum()))
        pieces = pa.concat_arrays([value, pc.utf8_ltrim(line.filter(pa.array(continued)), " \t")]).take(place)
        offsets = pa.array(np.searchsorted(owner, np.arange(len(starts) + 1)), pa.int32())
        value = pc.binary_join(pa.ListArray.from_arrays(offsets, pieces), " ")
    folded = np.unique(owner[continued])
    header_message = message[starts]
    rows = pa.table({"message": header_message, "name": name, "value": pc.utf8_trim(value, " \t")})
    folded_names = pa.table({"message": header_message[folded], "name": name.take(folded)})
    return rows.filter(pc.is_in(name, value_set=pa.array(sorted(READ)))), folded_names


def _rows_of(rows: pa.Table, name: str) -> tuple[pa.Array, pa.Array]:
    """(message, value) of every ``name`` header, in order."""
    these = rows.filter(pc.equal(rows["name"], name))
    return these["message"].combine_chunks(), these["value"].combine_chunks()


def _present(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(message, value) of the messages that have a value."""
    at = pc.indices_nonzero(pc.is_valid(column))
    return at, column.take(at)


# -- the rules ----------------------------------------------------------------------------------
def _label_keys(first: dict, counts: dict) -> tuple[pa.Array, pa.Array]:
    """(what each message's labels depend on, as one string; whether this module may read them)."""
    gmail, mozilla = first["x-gmail-labels"], first["x-mozilla-status"]
    fine = _all(
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
    """(the Date as a UTC time, whether it is in the plain form and a real date)."""
    parts = pc.extract_regex(dates, DATE)
    field = functools.partial(pc.struct_field, parts)
    local = pc.strptime(
        pc.binary_join_element_wise(field("year"), field("month"), field("day"), field("clock"), "-"),
        format="%Y-%b-%d-%H:%M:%S",
        unit="us",
        error_is_null=True,
    )
    minutes = pc.add(pc.multiply(pc.cast(field("hours"), pa.int64()), 60), pc.cast(field("minutes"), pa.int64()))
    east = pc.if_else(pc.equal(field("sign"), "+"), minutes, pc.negate(minutes))
    offset = pc.cast(pc.multiply(east, 60_000_000), pa.duration("us"))
    ts = pc.subtract(local, offset).cast(pa.timestamp("us", tz="UTC"))
    # strptime moves 31 February to 3 March; datetime() refuses it, and so does mail_headers.
    real = pc.equal(pc.day(local), pc.cast(field("day"), pa.int64()))
    return ts, pc.fill_null(real, False)


def _message_id(values: pa.Array) -> pa.Array:
    """The first <id> of Message-ID, null when there is none (the message then needs a hash id)."""
    return _extract(values, MESSAGE_ID, "id")


def _in_reply_to(values: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(the first <id> of In-Reply-To or "", whether it was absent, empty or in angle brackets)."""
    found = _extract(values, MESSAGE_ID, "id")
    fine = _any(pc.is_null(values), pc.equal(values, ""), pc.is_valid(found))
    return pc.fill_null(found, ""), pc.fill_null(fine, False)


def _first_nonempty(*columns: pa.Array) -> pa.Array:
    return pc.coalesce(*(pc.if_else(pc.equal(c, ""), pa.scalar(None, pa.string()), c) for c in columns))


def _bulk(first: dict, sender: pa.Array) -> pa.Array:
    """Bulk by the headers and the sender (the labels are the caller's)."""
    listed = _any(*(pc.not_equal(pc.fill_null(first[h], ""), "") for h in ("list-id", "list-unsubscribe")))
    return _any(
        listed,
        _each(pc.fill_null(first["precedence"], ""), rules.bulk_precedence, pa.bool_()),
        _each(sender, rules.automated_sender, pa.bool_()),
    )


def _auto(first: dict, subject: pa.Array) -> pa.Array:
    flags = [pc.fill_null(_each(first[h], rules.auto_reply, pa.bool_()), False) for h in rules.AUTO_REPLY_HEADERS]
    return _any(
        _each(pc.fill_null(first["auto-submitted"], ""), rules.auto_submitted, pa.bool_()),
        *flags,
        _each(pc.fill_null(first["content-type"], ""), rules.calendar_reply, pa.bool_()),
        _each(subject, rules.auto_subject, pa.bool_()),
    )


def _addresses(message: pa.Array, values: pa.Array, n: int) -> tuple[pa.Array, pa.Array]:
    """Each message's addresses from its ``values`` of one address header, as ``mail_headers.addresses``
    gives them (lower case, in order, once each); and whether every value was in the simple form
    that ``mail_headers.simple_address`` reads."""
    entries = pc.split_pattern(values, ",")
    entry_message = np.asarray(message)[np.asarray(pc.list_parent_indices(entries))]
    found = _each(pc.list_flatten(entries), rules.simple_address, pa.string())  # "": blank, null: not simple
    odd = _anywhere(n, entry_message, pc.is_null(found))
    # A message whose values have no entry at all goes to the standard library's parser, which may find one.
    counted = _anywhere(n, entry_message, pc.not_equal(found, ""))
    given = _anywhere(n, message, pc.not_equal(values, ""))
    odd = _any(odd, pc.and_(given, pc.invert(counted)))

    # Each address once per message, where it first occurs.
    kept = np.flatnonzero(np.asarray(pc.fill_null(pc.not_equal(found, ""), False)))
    address = pc.ascii_lower(found.take(kept))
    codes = pc.dictionary_encode(address)
    key = entry_message[kept] * max(len(codes.dictionary), 1) + codes.indices.to_numpy()
    once = np.sort(np.unique(key, return_index=True)[1])
    offsets = pa.array(np.searchsorted(entry_message[kept][once], np.arange(n + 1)), pa.int32())
    return pa.ListArray.from_arrays(offsets, address.take(once)), pc.invert(odd)


def _first_of_each(lists: pa.ListArray) -> pa.Array:
    """The first item of each list, "" for an empty one."""
    starts = np.asarray(lists.offsets)
    empty = starts[1:] == starts[:-1]
    return pc.fill_null(lists.values.take(pa.array(starts[:-1], mask=empty)), "")


def _any_of(lists: pa.Array, value_set: pa.Array) -> pa.Array:
    """Whether each list holds one of ``value_set``."""
    return _anywhere(len(lists), pc.list_parent_indices(lists), pc.is_in(pc.list_flatten(lists), value_set=value_set))


# -- helpers ------------------------------------------------------------------------------------
def _each(values: pa.Array, function: Callable, type: pa.DataType) -> pa.Array:
    """``function`` of every non-null value, computed once per distinct value (null stays null)."""
    encoded = pc.dictionary_encode(values)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    return pa.array([function(v) for v in encoded.dictionary.to_pylist()], type).take(encoded.indices)


def _extract(values: pa.Array, pattern: str, group: str) -> pa.Array:
    return pc.struct_field(pc.extract_regex(values, pattern), group)


def _scatter(n: int, at: pa.Array, values: pa.Array) -> pa.Array:
    """A column of ``n`` rows holding ``values`` at rows ``at`` and null elsewhere."""
    index = np.full(n, -1, np.int64)
    index[np.asarray(at)] = np.arange(len(values))
    return _array(values).take(pa.array(index, mask=index < 0))


def _array(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _anywhere(n: int, at: pa.Array, flags: pa.Array) -> pa.Array:
    """For each of ``n`` rows, whether any of ``flags`` whose ``at`` is that row is true."""
    hit = np.zeros(n, bool)
    hit[np.asarray(at)[np.asarray(pc.fill_null(flags, False))]] = True
    return pa.array(hit)


def _all(*flags: pa.Array) -> pa.Array:
    result = flags[0]
    for f in flags[1:]:
        result = pc.and_kleene(result, f)
    return pc.fill_null(result, False)


def _any(*flags: pa.Array) -> pa.Array:
    result = flags[0]
    for f in flags[1:]:
        result = pc.or_kleene(result, f)
    return pc.fill_null(result, False)
