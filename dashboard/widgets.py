"""Small pieces every page uses: pickers, figures, downloads."""

from __future__ import annotations

import math
from functools import partial

import pandas as pd
import streamlit as st

from dashboard import data
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
    csv = safe_frame(frame.round({c: 2 for c in frame.select_dtypes("number").columns})).to_csv(index=False).encode()
    st.download_button("Download CSV", csv, file_name=name, mime="text/csv", key=key)


SUMMARY_FORMATS = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "md": "text/markdown",
    "html": "text/html",
    "pdf": "application/pdf",
}


def summary_downloads(key: str, week: str, person: str | None = None, team: str | None = None) -> None:
    """Download buttons for the weekly summary of what the page shows (``data.summary`` of the
    same week, person or team), in every format.

    Nothing is made until the user asks: the summary is built when they press the button, and
    each file is written only when its own button is clicked. Opening the page costs neither."""
    from timeaudit.errors import UserError
    from timeaudit.export import render

    scope = (week, person, team)
    asked = f"{key}-asked"
    if st.session_state.get(asked) != scope:
        if not st.button(
            "Prepare the weekly summary for download",
            key=f"{key}-prepare",
            help="As a spreadsheet (CSV or Excel), Markdown, a web page (HTML) or a PDF",
        ):
            return
        st.session_state[asked] = scope
    try:
        summary = data.summary(week, person=person, team=team)
    except UserError as e:  # e.g. a group under the minimum size: no summary to hand out
        st.caption(f"No summary download here: {e}")
        return
    stem = f"timeaudit-{summary.subject}-{summary.week}".replace(" ", "-").replace("@", "-at-")
    for col, (fmt, mime) in zip(st.columns(len(SUMMARY_FORMATS)), SUMMARY_FORMATS.items(), strict=True):
        col.download_button(
            f"Summary .{fmt}",
            partial(render, summary, fmt),  # written when clicked, on the server's own thread
            file_name=f"{stem}.{fmt}",
            mime=mime,
            key=f"{key}-{fmt}",
            on_click="ignore",
            help="Printed with Chromium: takes a few seconds" if fmt == "pdf" else None,
        )


def period_and_team(
    all_weeks: list[str], sizes: dict[str, int], min_group: int, key: str
) -> tuple[list[str], str | None]:
    """Pickers for the audit pages: the last week, how many weeks, and a team (or everyone);
    only teams of at least ``min_group`` people are offered."""
    from timeaudit.metrics import last_complete_week
    from timeaudit.summary import weeks_ending

    teams = ["Everyone"] + sorted(t for t, n in sizes.items() if n >= min_group)
    c1, c2, c3 = st.columns(3)
    with c1:
        week = week_picker(all_weeks, last_complete_week(all_weeks), f"{key}-week")
    with c2:
        count = st.selectbox("Weeks", [1, 2, 4, 8, 12], index=2, key=f"{key}-weeks")
    with c3:
        team = st.selectbox("Team", teams, key=f"{key}-team")
    weeks = [w for w in weeks_ending(week, count) if w >= all_weeks[0]]
    return weeks, None if team == "Everyone" else team
