"""The distinct party lists of a batch held in memory, for ``Lake.write_arrow``.

They are the lists ``sql/party_lists_<table>.sql`` makes from a batch file (compaction, the demo
generator and readers of files written before lists were kept use that), made here with Arrow's
kernels instead: for a small batch DuckDB spent most of its time taking the long attendee lists
through its hash table, 15 to 20 ms for an import of a thousand meetings, three times the rest of
the work. tests/test_store.py holds the two to the same lists.

A party list is everyone on a meeting (organizer and attendees) or a message (sender, to and
cc): lower-case addresses, each once, without empty ones, under the record's ``party_key``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PEOPLE = {"events": ("organizer", ("attendees",)), "messages": ("sender", ("to", "cc"))}


def party_lists_of(table: str, data: pa.Table) -> pa.Table:
    """(party_key, addresses) of each distinct party list of ``data`` (with ``party_key``), once."""
    head, list_columns = PEOPLE[table]
    firsts = _first_of_each_key(data.select(["party_key", head, *list_columns]))
    lists = [firsts[name].chunk(0) for name in list_columns]
    addresses = [firsts[head].chunk(0)] + [_addresses(column) for column in lists]
    owners = [pa.array(np.arange(firsts.num_rows, dtype=np.int32))]
    owners += [pc.list_parent_indices(column).cast(pa.int32()) for column in lists]
    pairs = pa.table({"owner": pa.chunked_array(owners), "address": pc.utf8_lower(pa.chunked_array(addresses))})
    pairs = pairs.filter(pc.not_equal(pairs["address"], "")).group_by(["owner", "address"], use_threads=False)
    pairs = pairs.aggregate([]).sort_by("owner")
    counts = np.bincount(pairs["owner"].to_numpy(), minlength=firsts.num_rows)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    each = pa.ListArray.from_arrays(offsets, pairs["address"].combine_chunks())
    return pa.table({"party_key": firsts["party_key"], "addresses": each})


def _first_of_each_key(data: pa.Table) -> pa.Table:
    rows = pa.table({"key": data["party_key"], "row": pa.array(np.arange(data.num_rows, dtype=np.int64))})
    first = rows.group_by("key", use_threads=False).aggregate([("row", "min")])["row_min"]
    return data.take(first).combine_chunks()


def _addresses(column: pa.ListArray) -> pa.Array:
    """The addresses in a list column, flattened: attendee structs give their email."""
    flat = pc.list_flatten(column)
    return pc.struct_field(flat, "email") if pa.types.is_struct(flat.type) else flat
