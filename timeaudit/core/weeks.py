"""ISO weeks: every label ("2026-W47") and week start the product uses is made here."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd


def week_start(week: str) -> date:
    year, number = week.split("-W")
    return date.fromisocalendar(int(year), int(number), 1)


def week_label(day: date) -> str:
    iso = day.isocalendar()
    return f"{iso.year}-W{iso.week:02d}"


def weeks_ending(week: str, count: int) -> list[str]:
    last = week_start(week)
    return [week_label(last - timedelta(weeks=i)) for i in range(count - 1, -1, -1)]


def week_labels(days: pd.DatetimeIndex | pd.Series) -> list[str]:
    """The ISO week label of each of many days (a DatetimeIndex, or a Series of datetimes)."""
    iso = days.isocalendar() if isinstance(days, pd.DatetimeIndex) else days.dt.isocalendar()
    # Column-wise, not a format per day: a year of customer emails runs to 100,000s.
    return (iso["year"].astype(str) + "-W" + iso["week"].astype(str).str.zfill(2)).tolist()
