"""Summaries for people to keep and send. CSV for now; every format escapes formulas."""

from __future__ import annotations

import io

import pandas as pd

from timeaudit.config import Settings
from timeaudit.errors import UserError
from timeaudit.metrics import COUNT_COLUMNS, HOUR_COLUMNS, team_weekly, weekly_metrics
from timeaudit.store import Lake

REPORT_COLUMNS = ["week", "person", "team", *HOUR_COLUMNS, *COUNT_COLUMNS, "customer_share"]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """A text cell a spreadsheet would run as a formula gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(neutralise)
    return out


def to_csv(frame: pd.DataFrame) -> str:
    """CSV text: hours rounded to 2 decimals, customer share to 3, formulas neutralised."""
    out = safe_frame(frame)
    for col in out.columns:
        if col.endswith("_hours"):
            out[col] = out[col].round(2)
    if "customer_share" in out:
        out["customer_share"] = out["customer_share"].round(3)
    buf = io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def weekly_report(
    lake: Lake, settings: Settings, week: str, *, person: str | None = None, team: str | None = None
) -> pd.DataFrame:
    """The metric rows of one week: a person's row, a team's people, or one row per team."""
    weekly = weekly_metrics(lake, settings)
    if week not in set(weekly["week"]):
        known = sorted(set(weekly["week"]))
        span = f"{known[0]} to {known[-1]}" if known else "none: the lake is empty"
        raise UserError(f"--week {week}: no data for that week; weeks with data: {span}")
    rows = weekly[weekly["week"] == week]
    if person:
        rows = rows[rows["person"] == person.lower()]
        if rows.empty:
            raise UserError(f"--person {person}: not in the roster or the data; check the address")
    elif team:
        rows = rows[rows["team"] == team]
        if rows.empty:
            raise UserError(f"--team {team}: no such team; teams: {', '.join(sorted(set(weekly['team'])))}")
    else:
        rows = team_weekly(rows, settings.privacy.min_group_size).assign(person="")
    return rows[REPORT_COLUMNS].reset_index(drop=True)
