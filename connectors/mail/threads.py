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
    ``groups``: (``own_node`` of a message, Gmail's thread id) of messages whose mailbox threaded
    them too (a message without ids takes Gmail's thread id as its header thread, so they meet)."""
    n = len(ids)
    if n == 0:
        return pa.array([], pa.string())
    own = own_node(ids, message_ids)
    threads, in_reply_to = _plain(threads), _plain(in_reply_to)
    # Only ids other than the message's own are edges: a thread's first message names itself.
    has_thread = np.asarray(pc.and_(pc.not_equal(threads, ""), pc.not_equal(threads, own)))
    has_reply = np.asarray(pc.and_(pc.not_equal(in_reply_to, ""), pc.not_equal(in_reply_to, own)))
    members, group_names = groups if groups is not None else (pa.array([], pa.string()),) * 2
    every = [own, threads.filter(has_thread), in_reply_to.filter(has_reply), _plain(members), _plain(group_names)]
    encoded = pc.dictionary_encode(pa.chunked_array(every))
    codes = np.concatenate([np.asarray(chunk.indices) for chunk in encoded.chunks])
    sizes = np.cumsum([n, int(has_thread.sum()), int(has_reply.sum()), len(members)])
    node, thread_node, reply_node, member_node, group_node = np.split(codes, sizes)
    start = np.concatenate([node[has_thread], node[has_reply], member_node])
    end = np.concatenate([thread_node, reply_node, group_node])
    size = len(encoded.chunks[0].dictionary) if encoded.num_chunks else 0
    part = components(size, start, end)[node]

    # Each part's name: the header thread of its earliest message (one with a thread first).
    has_any = np.asarray(pc.not_equal(threads, ""))
    table = pa.table({"part": part, "none": ~has_any, "ts": ts, "id": ids})
    order = np.asarray(pc.sort_indices(table, [(c, "ascending") for c in table.column_names]))
    first = np.ones(n, bool)
    first[1:] = part[order][1:] != part[order][:-1]
    named = np.full(int(part.max()) + 1, -1, np.int64)
    named[part[order][first]] = order[first]
    return pc.take(threads, pa.array(named[part]))


def own_node(ids: pa.Array, message_ids: pa.Array) -> pa.Array:
    """A message's own node in the graph: its Message-ID, or its record id when it has none."""
    return pc.if_else(pc.equal(_plain(message_ids), ""), _plain(ids), _plain(message_ids))


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
