"""Text that stays text in what people open: spreadsheets run no formula, Markdown makes no
link, image, HTML or formatting of a name."""

from __future__ import annotations

import re

import pandas as pd

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


# Backslash-escaped in Markdown text: links and images ([ ] !), raw HTML and autolinks (< >),
# emphasis and code (* _ ~ `), table cells (|) and the escape itself.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~!])")


def markdown_text(value) -> str:
    """Any value as Markdown that renders as the same text: nothing in it becomes a link,
    an image, HTML or formatting, and it stays on one line."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).splitlines()))


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    return out
