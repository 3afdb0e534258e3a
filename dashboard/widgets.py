"""Small pieces every page uses: pickers, figures, downloads."""

from __future__ import annotations

import math

import pandas as pd
import streamlit as st

from timeaudit.export import safe_frame


def pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def hours(value: float) -> str:
    return f"{value:.1f} h"


def week_picker(weeks: list[str], default: str | None, key: str) -> str:
    options = sorted(weeks, reverse=True)
    index = options.index(default) if default in options else 0
    return st.selectbox("Week", options, index=index, key=key)


def csv_download(frame: pd.DataFrame, name: str, key: str) -> None:
    data = safe_frame(frame.round(2)).to_csv(index=False).encode("utf-8")
    st.download_button("Download CSV", data, file_name=name, mime="text/csv", key=key)
