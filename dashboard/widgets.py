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
    data = safe_frame(frame.round({c: 2 for c in frame.select_dtypes("number").columns})).to_csv(index=False).encode()
    st.download_button("Download CSV", data, file_name=name, mime="text/csv", key=key)


def summary_downloads(make_summary, key: str) -> None:
    """Download buttons for the weekly summary of what the page shows, in every format."""
    from timeaudit.errors import UserError
    from timeaudit.export import render

    try:
        summary = make_summary()
    except UserError as e:  # e.g. a group under the minimum size: no summary to hand out
        st.caption(f"No summary download here: {e}")
        return
    stem = f"timeaudit-{summary.subject}-{summary.week}".replace(" ", "-").replace("@", "-at-")
    mimes = {
        "csv": "text/csv",
        "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "md": "text/markdown",
        "html": "text/html",
    }
    cols = st.columns(len(mimes) + 1)
    for col, (fmt, mime) in zip(cols, mimes.items(), strict=False):
        col.download_button(
            f"Summary .{fmt}", render(summary, fmt), file_name=f"{stem}.{fmt}", mime=mime, key=f"{key}-{fmt}"
        )
    with cols[-1]:
        if st.button("Make PDF", key=f"{key}-make-pdf", help="Prints the summary with Chromium"):
            st.session_state[f"{key}-pdf"] = render(summary, "pdf")
        if st.session_state.get(f"{key}-pdf"):
            st.download_button(
                "Summary .pdf",
                st.session_state[f"{key}-pdf"],
                file_name=f"{stem}.pdf",
                mime="application/pdf",
                key=f"{key}-pdf-download",
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
