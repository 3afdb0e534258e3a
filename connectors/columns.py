"""What the column-wise readers (``connectors.mail.columns``, ``connectors.ics.plain``) share:
Python's rules applied to a column once per distinct value, not once per row."""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc


class Distinct:
    """A column's distinct values, for computing on each once and spreading the results to every
    row (a null row gets null). Several rules over one column share the encoding."""

    def __init__(self, values: pa.Array | pa.ChunkedArray):
        encoded = pc.dictionary_encode(values)
        if isinstance(encoded, pa.ChunkedArray):
            encoded = encoded.combine_chunks()
        self.values, self.indices = encoded.dictionary.to_pylist(), encoded.indices

    def each(self, function: Callable, type: pa.DataType) -> pa.Array:
        return pa.array([function(v) for v in self.values], type).take(self.indices)


def each_distinct(values: pa.Array | pa.ChunkedArray, function: Callable, type: pa.DataType) -> pa.Array:
    """``function`` of every value, computed once per distinct value (null stays null)."""
    return Distinct(values).each(function, type)
