"""Threads from the whole Message-ID graph, in the spirit of the JWZ algorithm, over columns.

A message's headers name its thread only as far as its mailer kept them: many cut References
down to the last few ids, so the root of References is not the thread's root. Here every id a
message names (its own Message-ID, the root of its References, its In-Reply-To) is a node,
each message joins its own node to the others, and the connected parts of that graph are the
threads (union-find, as hooking and pointer jumping over numpy arrays: no Python per message).
Gmail's own thread id (X-GM-THRID of a Takeout export) is one more node its messages join.
A thread is named by the header thread of its earliest message, so a thread whose messages
all kept their References keeps the name the headers give it, and so does a thread read again
with more of its messages.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def joined_threads(
    ids: pa.Array,
    message_ids: pa.Array,
    threads: pa.Array,
    in_reply_to: pa.Array,
    ts: pa.Array,
    groups: tuple[pa.Array, pa.Array] | None = None,
) -> pa.Array:
    """Each message's thread, given each one's record id, Message-ID, header thread (root of
    References, else In-Reply-To, else its own Message-ID; "" for none), In-Reply-To and time.
    ``groups``: (record id, Gmail's thread id) of messages whose mailbox threaded them too (a
    message without ids takes Gmail's thread id as its header thread, so they meet)."""
    n = len(ids)
    if n == 0:
        return pa.array([], pa.string())
    own = pc.if_else(pc.equal(message_ids, ""), ids, message_ids)  # without a Message-ID: the record's id
    group_ids, group_names = groups if groups is not None else (pa.array([], pa.string()),) * 2
    in_groups = pc.index_in(group_ids, value_set=_plain(ids))
    every = [_plain(own), _plain(threads), _plain(in_reply_to), _plain(group_names)]
    names = pc.dictionary_encode(pa.chunked_array(every).combine_chunks())
    codes = np.asarray(names.indices)
    node, thread_node, reply_node, group_node = codes[:n], codes[n : 2 * n], codes[2 * n : 3 * n], codes[3 * n :]
    has_thread = np.asarray(pc.not_equal(threads, ""))
    has_reply = np.asarray(pc.not_equal(in_reply_to, ""))
    grouped = np.asarray(pc.is_valid(in_groups))
    grouped_rows = np.asarray(pc.drop_null(in_groups), np.int64)
    start = np.concatenate([node[has_thread], node[has_reply], node[grouped_rows]])
    end = np.concatenate([thread_node[has_thread], reply_node[has_reply], group_node[grouped]])
    part = components(len(names.dictionary), start, end)[node]

    # Each part's name: the header thread of its earliest message (one with a thread first).
    table = pa.table({"part": part, "none": ~has_thread, "ts": ts, "id": ids})
    order = np.asarray(pc.sort_indices(table, [(c, "ascending") for c in table.column_names]))
    first = np.ones(n, bool)
    first[1:] = part[order][1:] != part[order][:-1]
    named = np.full(int(part.max()) + 1, -1, np.int64)
    named[part[order][first]] = order[first]
    return pc.take(_plain(threads), pa.array(named[part]))


def components(size: int, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """For each of ``size`` nodes, the smallest node connected to it by the edges (start, end)."""
    parent = np.arange(size)
    while True:
        a, b = parent[start], parent[end]
        differ = a != b
        if not differ.any():
            return parent
        np.minimum.at(parent, np.maximum(a, b)[differ], np.minimum(a, b)[differ])
        while not np.array_equal(jumped := parent[parent], parent):
            parent = jumped


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    return pc.fill_null(values, "").cast(pa.string())
