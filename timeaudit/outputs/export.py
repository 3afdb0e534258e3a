"""Weekly summaries people keep and send: CSV, Excel, Markdown, HTML and PDF.

Every format holds the same content (see ``timeaudit.outputs.summary``), and text stays text: cells
that a spreadsheet would run as a formula are neutralised in CSV and Excel, Excel writes no
string as a link, Markdown escapes link, emphasis and HTML syntax, HTML escapes every name.
"""

from __future__ import annotations

import html
import io
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pandas as pd

from timeaudit.analysis.metrics import CATEGORY_COLUMNS, COUNT_COLUMNS, HOUR_COLUMNS
from timeaudit.core.errors import UserError
from timeaudit.core.safe_text import markdown_text, safe_frame
from timeaudit.outputs.figures import weekly_split_figure
from timeaudit.outputs.summary import Summary

FORMATS = ("csv", "xlsx", "md", "html", "pdf")
REPORT_COLUMNS = ["week", "person", "team", *HOUR_COLUMNS, *COUNT_COLUMNS, "customer_share"]


def metric_rows(summary: Summary) -> pd.DataFrame:
    """The week's rows with the documented metric columns (team rows have no person)."""
    rows = summary.rows.copy()
    for col in ("person", "team"):
        if col not in rows:
            rows[col] = ""
    return rows[REPORT_COLUMNS]


def weekly_split(summary: Summary) -> pd.DataFrame:
    out = summary.weekly[["week", *CATEGORY_COLUMNS.values(), "customer_share"]].copy()
    out.columns = ["Week", *CATEGORY_COLUMNS.keys(), "Customer share"]
    return out


def headline_table(summary: Summary) -> pd.DataFrame:
    rows = []
    for name, value in summary.headline.items():
        unit = "share" if name in ("Customer share", "Previous 4 weeks") else "points" if name == "Change" else "hours"
        rows.append((name, value, unit))
    return pd.DataFrame(rows, columns=["Figure", "Value", "Unit"])


def audit_tables(summary: Summary) -> dict[str, pd.DataFrame]:
    """The audit's short lists, named as they are headed in every format."""
    return {
        "Top wasters": summary.wasters,
        "Suggestions": summary.suggestions,
        "Reply-all storms": summary.storms,
        "Neglected customers": summary.neglected,
        "Waiting for an answer": summary.waiting,
        "Admin by kind": summary.admin,
    }


def definitions_table(summary: Summary) -> pd.DataFrame:
    return pd.DataFrame(list(summary.definitions.items()), columns=["Figure", "Definition"])


def _fmt(value: float, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit == "share":
        return f"{value:.0%}"
    if unit == "points":
        return f"{value * 100:+.1f} pts"
    return f"{value:.1f} h"


# -- CSV ------------------------------------------------------------------------------------
def to_csv(summary: Summary) -> bytes:
    """CSV of the week's metric rows: hours rounded to 2 decimals, shares to 3."""
    out = safe_frame(metric_rows(summary))
    for col in out.columns:
        if col.endswith("_hours"):
            out[col] = out[col].round(2)
    out["customer_share"] = out["customer_share"].round(3)
    return out.to_csv(index=False, lineterminator="\n").encode("utf-8")


# -- Excel ----------------------------------------------------------------------------------
def to_xlsx(summary: Summary) -> bytes:
    """One sheet per table, typed cells, frozen headers, fitted widths, a native chart."""
    buf = io.BytesIO()
    sheets = {
        "Summary": headline_table(summary),
        "Weekly split": weekly_split(summary),
        "Figures": metric_rows(summary),
        **audit_tables(summary),
        "Definitions": definitions_table(summary),
    }
    # Text stays text: no string is turned into a live link (https://, ftp://, mailto:, ...).
    options = {"strings_to_urls": False, "strings_to_formulas": False}
    with pd.ExcelWriter(buf, engine="xlsxwriter", engine_kwargs={"options": options}) as writer:
        book = writer.book
        hours = book.add_format({"num_format": "0.0"})
        share = book.add_format({"num_format": "0%"})
        for name, frame in sheets.items():
            safe_frame(frame).to_excel(writer, sheet_name=name, index=False)
            sheet = writer.sheets[name]
            sheet.freeze_panes(1, 0)
            for i, col in enumerate(frame.columns):
                width = max([len(str(col))] + [len(str(v)) for v in frame[col].head(500)]) + 2
                fmt = share if "share" in str(col).lower() else hours if frame[col].dtype.kind == "f" else None
                sheet.set_column(i, i, min(width, 60), fmt)
        _add_weekly_chart(book, writer.sheets["Weekly split"], len(summary.weekly))
    return buf.getvalue()


def _add_weekly_chart(book, sheet, n_weeks: int) -> None:
    from timeaudit.analysis.metrics import CATEGORY_COLOURS

    chart = book.add_chart({"type": "column", "subtype": "stacked"})
    for i, label in enumerate(CATEGORY_COLUMNS, start=1):
        chart.add_series(
            {
                "name": ["Weekly split", 0, i],
                "categories": ["Weekly split", 1, 0, n_weeks, 0],
                "values": ["Weekly split", 1, i, n_weeks, i],
                "fill": {"color": CATEGORY_COLOURS[label]},
            }
        )
    chart.set_title({"name": "Hours by category, per week"})
    chart.set_y_axis({"name": "hours"})
    chart.set_size({"width": 900, "height": 420})
    sheet.insert_chart(n_weeks + 3, 0, chart)


# -- Markdown -------------------------------------------------------------------------------
def _md_table(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.1f}"
        return markdown_text(v)

    lines = ["| " + " | ".join(markdown_text(c) for c in frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def to_markdown(summary: Summary) -> bytes:
    head = headline_table(summary)
    parts = [
        f"# {markdown_text(summary.title)}",
        "",
        "## Headline",
        "",
        _md_table(
            pd.DataFrame(
                {
                    "Figure": head["Figure"],
                    "Value": [_fmt(v, u) for v, u in zip(head["Value"], head["Unit"], strict=True)],
                }
            )
        ),
        "",
        "## Hours by category, per week",
        "",
        _md_table(_share_as_percent(weekly_split(summary))),
        "",
    ]
    parts += [markdown_text(line) if line else line for line in _hidden_note(summary)]
    for name, table in audit_tables(summary).items():
        parts += [f"## {name}", "", _md_table(table) if len(table) else "None.", ""]
    definitions = [f"- **{markdown_text(k)}**: {markdown_text(v)}" for k, v in summary.definitions.items()]
    parts += ["## Definitions", "", *definitions]
    return ("\n".join(parts) + "\n").encode("utf-8")


def _share_as_percent(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    out["Customer share"] = [("–" if math.isnan(v) else f"{v:.0%}") for v in out["Customer share"]]
    return out


def _hidden_note(summary: Summary) -> list[str]:
    if not summary.hidden_teams:
        return []
    names = ", ".join(f"{t} ({n})" for t, n in sorted(summary.hidden_teams.items()))
    counted = f"; they are counted together in {summary.pool}" if summary.pool else ""
    return [
        f"Not shown on their own, so that no number, alone or subtracted from another, covers fewer people "
        f"than the minimum group size: {names}{counted}.",
        "",
    ]


# -- HTML -----------------------------------------------------------------------------------
_CSS = """
body { font-family: "DejaVu Sans", Arial, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.5em; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; }
.figure { border: 1px solid #ddd; border-radius: 6px; padding: 0.5em 1em; min-width: 9em; }
.figure .value { font-size: 1.4em; font-weight: bold; }
@media print { body { margin: 0; } h2 { break-after: avoid; } table, .chart { break-inside: avoid; } }
"""


def _html_table(frame: pd.DataFrame) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:.1f}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in frame.itertuples(index=False)
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(summary: Summary) -> bytes:
    """One self-contained, printable file: Plotly is inlined, nothing is fetched."""
    head = headline_table(summary)
    cards = "".join(
        f'<div class="figure"><div class="label">{html.escape(f)}</div>'
        f'<div class="value">{html.escape(_fmt(v, u))}</div></div>'
        for f, v, u in head.itertuples(index=False)
    )
    chart = weekly_split_figure(summary.weekly).to_html(
        full_html=False, include_plotlyjs=True, config={"displaylogo": False, "displayModeBar": False}
    )
    hidden = "".join(f"<p>{html.escape(line)}</p>" for line in _hidden_note(summary) if line)
    audit = "".join(
        f"<h2>{html.escape(name)}</h2>" + (_html_table(table) if len(table) else "<p>None.</p>")
        for name, table in audit_tables(summary).items()
    )
    definitions = "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in summary.definitions.items())
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(summary.title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(summary.title)}</h1>
<h2>Headline</h2><div class="figures">{cards}</div>
<h2>Hours by category, per week</h2><div class="chart">{chart}</div>
{_html_table(_share_as_percent(weekly_split(summary)))}
{hidden}
{audit}
<h2>Definitions</h2><dl>{definitions}</dl>
</body></html>"""
    return page.encode("utf-8")


# -- PDF ------------------------------------------------------------------------------------
# Headless Chromium on a closed network: no background calls home, which fail and stall it.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


def chromium(needed_for: str, otherwise: str = "") -> str:
    """The Chromium that prints PDFs and draws chart images, or a UserError saying what needs it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if not browser:
        raise UserError(f"{needed_for} needs Chromium; install it (Debian: apt-get install chromium){otherwise}")
    return browser


def figure_png(figure, width: int = 640, height: int | None = None) -> bytes:
    """A Plotly figure as a PNG image, drawn by headless Chromium (as the PDF is): for mail,
    which runs no scripts. The figure is drawn static, at ``width`` by its own height."""
    height = height or int(figure.layout.height or 360)
    page = figure.to_html(
        full_html=True,
        include_plotlyjs=True,
        default_width=f"{width}px",
        default_height=f"{height}px",
        config={"staticPlot": True, "displayModeBar": False},
    ).replace("<head>", "<head><style>body { margin: 0; }</style>", 1)
    browser = chromium("a chart image")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "figure.html", Path(tmp) / "figure.png"
        source.write_text(page, encoding="utf-8")
        command = [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp}/profile",
            "--hide-scrollbars",
            f"--window-size={width},{height}",
            "--virtual-time-budget=10000",
            f"--screenshot={target}",
            source.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=120)
        if done.returncode != 0 or not target.exists():
            raise UserError(f"Chromium could not draw a chart image (exit {done.returncode})")
        return target.read_bytes()


def to_pdf(summary: Summary) -> bytes:
    """The HTML printed by headless Chromium: vector charts, embedded fonts, A4 pages."""
    browser = chromium("--format pdf", " or use html")
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "summary.html", Path(tmp) / "summary.pdf"
        source.write_bytes(to_html(summary))
        command = [
            browser,
            "--headless",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp}/profile",
            "--no-pdf-header-footer",
            "--virtual-time-budget=10000",
            f"--print-to-pdf={target}",
            source.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, timeout=120)
        if done.returncode != 0 or not target.exists():
            raise UserError(f"Chromium could not print the PDF (exit {done.returncode}); try --format html")
        return target.read_bytes()


WRITERS = {"csv": to_csv, "xlsx": to_xlsx, "md": to_markdown, "html": to_html, "pdf": to_pdf}


def render(summary: Summary, fmt: str) -> bytes:
    if fmt not in WRITERS:
        raise UserError(f"--format {fmt}: unknown; use one of {', '.join(FORMATS)}")
    return WRITERS[fmt](summary)


def write_atomically(path: Path, data: bytes) -> None:
    """The file appears whole or not at all, readable by its user only (0600): reports and
    personal exports hold people's hours."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.unlink(missing_ok=True)
        with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
