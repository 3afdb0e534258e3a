"""The header lines of many mail header blocks as columns, for ``connectors.mail.columns``:
which blocks are plain (printable ASCII, LF or CRLF line ends), and each wanted header's first
value per message (every To and Cc value too), unfolded and trimmed as ``connectors.mail.headers``
does it, all with Arrow kernels and numpy over every block at once."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from connectors.columns import Distinct
from connectors.mail import headers as rules

LABEL_HEADERS = ("x-gmail-labels", "x-mozilla-status")
GMAIL_THREAD = "x-gm-thrid"
READ = sorted(rules.WANTED | {*LABEL_HEADERS, GMAIL_THREAD})
READ_CODE = {name: i for i, name in enumerate(READ)}
NOT_PRINTABLE = r"[^\t\n\x20-\x7e]"
PRINTABLE = bytes([9, 10, *range(0x20, 0x7F)])
HEADER_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # as the per-message reader reads names


# -- which messages are plain -------------------------------------------------------------------
def with_lf_line_ends(blocks: pa.Array) -> pa.Array:
    """``blocks`` with CRLF line ends made LF ones, as the per-message reader reads both; a "\\r"
    anywhere else stays, and the block is then not printable."""
    text = blocks.buffers()[2]
    if text is None or b"\r" not in text.to_pybytes():
        return blocks
    return pc.replace_substring_regex(blocks, "\r(\n|$)", "\\1")


def printable(blocks: pa.Array) -> pa.Array:
    """Whether each block is printable ASCII, tabs and line breaks only (so that Python's and
    Arrow's ideas of case, blanks and \\s agree): all at once in the common case."""
    text = blocks.buffers()[2]
    if text is None or not text.to_pybytes().translate(None, PRINTABLE):
        return pa.repeat(pa.scalar(True), len(blocks))
    return pc.invert(pc.match_substring_regex(blocks, NOT_PRINTABLE))


# -- headers as columns -------------------------------------------------------------------------
@dataclass
class Headers:
    """The headers of many blocks, by name (lower case); values unfolded and trimmed as
    ``mail_headers`` does it."""

    first: dict[str, pa.Array]  # the first value of each header in READ, null when absent
    counts: dict[str, pa.Array]  # how many times each of LABEL_HEADERS occurs
    every: dict[str, tuple[np.ndarray, pa.Array]]  # (message, value) of every To and every Cc header
    folded_labels: pa.Array  # a label header is folded (its line breaks would count)
    well_formed: pa.Array  # the block is "Name: value" lines and their continuation lines only


class _Rows(NamedTuple):
    message: np.ndarray
    code: np.ndarray  # the header's name as its index in READ
    value: pa.Array
    folded_labels: pa.Array
    well_formed: pa.Array


def header_columns(blocks: pa.Array) -> Headers:
    n = len(blocks)
    message, code, value, folded_labels, well_formed = _header_rows(blocks)
    # Rows by name, each name's in message order: the first row of each (name, message) run is its first value.
    order = np.argsort(code, kind="stable")
    by_code, by_message = code[order], message[order]
    run = np.ones(len(order), bool)
    run[1:] = (by_code[1:] != by_code[:-1]) | (by_message[1:] != by_message[:-1])
    runs = np.flatnonzero(run)
    run_lengths = pa.array(np.diff(np.append(runs, len(order))))
    first, counts = {}, {}
    for i, name in enumerate(READ):
        these = np.flatnonzero(by_code[runs] == i)
        if not len(these):
            first[name] = pa.nulls(n, pa.string())
            if name in LABEL_HEADERS:
                counts[name] = pa.repeat(pa.scalar(0), n)
            continue
        first[name] = value.take(placed(n, by_message[runs[these]], order[runs[these]]))
        if name in LABEL_HEADERS:
            counts[name] = pc.fill_null(run_lengths.take(placed(n, by_message[runs[these]], these)), 0)
    every = {name: (message[code == READ.index(name)], value.filter(code == READ.index(name))) for name in ("to", "cc")}
    return Headers(first, counts, every, folded_labels, well_formed)


def _header_rows(blocks: pa.Array) -> _Rows:
    """Every header in ``READ``, in order, the value unfolded (a line break and the blanks after
    it become one space) and trimmed; and for each block, whether it has a folded label header
    and whether it is well formed (what a block that is not holds is read, but not to be used)."""
    lines = pc.split_pattern(blocks, "\n")  # (the "" before each block's first "\n" is a nameless header)
    line, message = pc.list_flatten(lines), pc.list_parent_indices(lines).to_numpy()
    continued = np.asarray(pc.or_(pc.starts_with(line, " "), pc.starts_with(line, "\t")))
    starts = np.flatnonzero(~continued)
    owner = np.cumsum(~continued) - 1  # each line's header, as an index in starts
    name_value = pc.split_pattern(line.take(starts), ":", max_splits=1)
    first_part = np.asarray(name_value.offsets)[:-1]
    names = Distinct(name_value.values.take(first_part))
    named = (np.diff(name_value.offsets) == 2) & np.asarray(names.each(_is_name, pa.bool_()))
    code = np.asarray(names.each(lambda name: READ_CODE.get(name.lower(), -1), pa.int64()))
    kept = np.flatnonzero((code >= 0) & named)
    value = name_value.values.take(first_part[kept] + 1)
    folds = np.flatnonzero(continued)
    folds = folds[np.isin(owner[folds], kept)]  # continuation lines of the headers kept
    if len(folds):
        value = _unfolded(value, np.searchsorted(kept, owner[folds]), pc.utf8_ltrim(line.take(folds), " \t"))
    label_folds = np.isin(code[owner[folds]], [READ.index(name) for name in LABEL_HEADERS])
    folded_labels = anywhere(len(blocks), message[folds], pa.array(label_folds))
    well_formed = _well_formed(lines, continued, starts, named)
    return _Rows(message[starts[kept]], code[kept], pc.utf8_trim(value, " \t"), folded_labels, well_formed)


def _well_formed(lines: pa.ListArray, continued: np.ndarray, starts: np.ndarray, named: np.ndarray) -> pa.Array:
    """Whether each block (lines after a "") has a first line, that line and every one not
    continuing another being "Name: value"."""
    first_lines = np.asarray(lines.offsets)[:-1]
    has_lines = np.diff(lines.offsets) > 1
    starting = np.zeros(len(continued), bool)
    starting[first_lines[has_lines] + 1] = True  # each block's first line after its ""
    bad = np.zeros(len(continued), bool)
    bad[starts] = ~named
    bad[first_lines] = False
    bad |= starting & continued
    message = pc.list_parent_indices(lines).to_numpy()
    return pc.and_(pa.array(has_lines), pc.invert(anywhere(len(lines), message, pa.array(bad))))


def _is_name(name: str) -> bool:
    return HEADER_NAME.fullmatch(name) is not None


def _unfolded(values: pa.Array, header: np.ndarray, continuations: pa.Array) -> pa.Array:
    """``values`` with the ``continuations`` (each the continuation of the value at ``header``,
    in order) joined on with a space each."""
    group = np.concatenate([np.arange(len(values)), header])
    order = np.argsort(group, kind="stable")  # each value, then its continuations
    pieces = pa.concat_arrays([values, continuations]).take(order)
    offsets = pa.array(np.searchsorted(group[order], np.arange(len(values) + 1)), pa.int32())
    return pc.binary_join(pa.ListArray.from_arrays(offsets, pieces), " ")


def present(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(message, value) of the messages that have a value."""
    at = pc.indices_nonzero(pc.is_valid(column))
    return at, column.take(at)


# -- helpers ------------------------------------------------------------------------------------
def placed(n: int, at: np.ndarray, rows: np.ndarray) -> pa.Array:
    """Indices to ``take`` for a column of ``n`` rows holding the value of row ``rows[i]`` at row
    ``at[i]``, null elsewhere."""
    index = np.full(n, -1, np.int64)
    index[at] = rows
    return pa.array(index, mask=index < 0)


def anywhere(n: int, at: pa.Array, flags: pa.Array) -> pa.Array:
    """For each of ``n`` rows, whether any of ``flags`` whose ``at`` is that row is true."""
    hit = np.zeros(n, bool)
    hit[np.asarray(at)[np.asarray(pc.fill_null(flags, False))]] = True
    return pa.array(hit)


def all_of(*flags: pa.Array) -> pa.Array:
    result = flags[0]
    for f in flags[1:]:
        result = pc.and_kleene(result, f)
    return pc.fill_null(result, False)


def any_of_flags(*flags: pa.Array) -> pa.Array:
    result = flags[0]
    for f in flags[1:]:
        result = pc.or_kleene(result, f)
    return pc.fill_null(result, False)
