"""Small pieces every page uses: pickers, figures, downloads."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache, partial
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import data
from timeaudit.core.safe_text import safe_frame


def pct(value: float) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.0%}"


def hours(value: float) -> str:
    return f"{value:.1f} h"


def goal_status(checks: list, key: str) -> None:
    """The week against the goals (``timeaudit.analysis.goals.GoalCheck``): on track or off track."""
    if not checks:
        st.caption("No goals are set: add them under [goals] in timeaudit.toml.")
        return
    off = [c for c in checks if c.on_track is False]
    verdict = f"{len(off)} of {len(checks)} goals off track" if off else f"All {len(checks)} goals on track"
    (st.warning if off else st.success)(verdict + ".")
    st.dataframe(
        pd.DataFrame(
            {
                "Goal": [c.goal.label for c in checks],
                "This week": [c.actual_text for c in checks],
                "Target": [c.target_text for c in checks],
                "Status": [c.status for c in checks],
            }
        ),
        hide_index=True,
        width="stretch",
        key=key,
    )


def week_picker(weeks: list[str], default: str | None, key: str) -> str:
    options = sorted(weeks, reverse=True)
    index = options.index(default) if default in options else 0
    return st.selectbox("Week", options, index=index, key=key)


STATIC = Path(__file__).parent / "static"  # served at app/static/ when static serving is on
PLOTLY_JS = "plotly-basic.min.js"  # plotly.js's basic bundle (scatter, bar, pie; MIT), from npm
# plotly.js-basic-dist-min, the same version as the plotly.js the Python plotly package bundles
_CHART_JS = """
function loadPlotly(src) {
  if (!window.__timeauditPlotly) {
    window.__timeauditPlotly = new Promise((resolve, reject) => {
      const script = document.createElement("script");
      script.src = src;
      script.onload = () => resolve(window.Plotly);
      script.onerror = () => {
        window.__timeauditPlotly = null;
        reject(new Error("could not load " + src));
      };
      document.head.appendChild(script);
    });
  }
  return window.__timeauditPlotly;
}

export default function ({ data, parentElement }) {
  let chart = parentElement.querySelector("div.timeaudit-chart");
  if (!chart) {
    chart = document.createElement("div");
    chart.className = "timeaudit-chart";
    parentElement.appendChild(chart);
  }
  const figure = JSON.parse(data.figure);
  figure.layout.font = { family: getComputedStyle(document.body).fontFamily, ...figure.layout.font };
  loadPlotly(data.src).then((Plotly) =>
    Plotly.react(chart, figure.data, figure.layout, { responsive: true, displaylogo: false })
  );
}
"""


@cache
def _chart_component():
    return st.components.v2.component("timeaudit_chart", js=_CHART_JS, isolate_styles=False)


def chart(figure: go.Figure, key: str) -> None:
    """Draw a Plotly figure, full width, as interactive as ``st.plotly_chart``.

    Streamlit's own Plotly element loads the whole of plotly.js in every new tab before the
    first chart shows. Where the dashboard's static files are served (``timeaudit dashboard``
    turns that on), the figure is drawn with plotly.js's basic bundle instead, a quarter of
    its size, which has every trace type the dashboard uses; otherwise (``streamlit run``,
    tests) with ``st.plotly_chart``. Sizes and timings: docs/performance.md.
    """
    if not (st.get_option("server.enableStaticServing") and (STATIC / PLOTLY_JS).is_file()):
        st.plotly_chart(figure, width="stretch", key=key)
        return
    base = st.get_option("server.baseUrlPath").strip("/")
    src = f"/{base}/app/static/{PLOTLY_JS}" if base else f"/app/static/{PLOTLY_JS}"
    _chart_component()(data={"figure": figure.to_json(), "src": src}, key=key, width="stretch")


def refresh_notice(waited: Callable[[], float | None] = data.refreshing) -> None:
    """While the figures shown are of the data before its latest change and newer ones are
    being computed (``waited()``, e.g. ``data.refreshing``, is not None), says so, and reruns
    the page when they are ready."""
    if waited() is not None:
        _refresh_watch(waited)


@st.fragment(run_every=2)
def _refresh_watch(waited_for: Callable[[], float | None]) -> None:
    waited = waited_for()
    if waited is None:
        st.rerun(scope="app")
    st.info(
        f"New data arrived: the figures below are of the data before it. Newer ones are being computed "
        f"({waited:.0f} s so far); this page updates itself when they are ready.",
        icon=":material/sync:",
    )


def _csv(frame: pd.DataFrame) -> bytes:
    return safe_frame(frame.round({c: 2 for c in frame.select_dtypes("number").columns})).to_csv(index=False).encode()


def csv_download(frame: pd.DataFrame, name: str, key: str) -> None:
    """A button that downloads ``frame`` as CSV, written when clicked, not on every page run."""
    st.download_button(
        "Download CSV", partial(_csv, frame), file_name=name, mime="text/csv", key=key, on_click="ignore"
    )


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
    from timeaudit.core.errors import UserError
    from timeaudit.outputs.export import render

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


def audit_page(title: str, key: str) -> tuple | None:
    """An audit page's title and pickers: (weekly table, settings, weeks, team, tables), None
    when the lake holds nothing to show yet (the page then says so)."""
    st.title(title)
    weekly = data.load_or_explain()
    if weekly is None:
        return None
    return weekly, data.settings(), *audit_period(key)


def audit_period(key: str) -> tuple[list[str], str | None, dict[str, pd.DataFrame]]:
    """Pickers for the audit pages (the last week, how many weeks, and a team or everyone; only
    teams the privacy gate shows on their own are offered), and the audit's tables
    for what they pick."""
    from timeaudit.analysis.metrics import last_complete_week

    all_weeks = data.all_weeks()
    teams = ["Everyone", *data.shown_teams()]
    c1, c2, c3 = st.columns(3)
    with c1:
        week = week_picker(all_weeks, last_complete_week(all_weeks), f"{key}-week")
    with c2:
        counts = [1, 2, 4, 8, 12]
        count = st.selectbox("Weeks", counts, index=counts.index(data.DEFAULT_AUDIT_WEEKS), key=f"{key}-weeks")
    with c3:
        picked = st.selectbox("Team", teams, key=f"{key}-team")
    weeks = data.audit_weeks(week, count)
    team = None if picked == "Everyone" else picked
    tables = data.audit_tables(weeks, team)
    refresh_notice(partial(data.audit_refreshing, weeks, team))
    return weeks, team, tables
