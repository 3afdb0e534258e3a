"""The baseline: weekly meeting hours the way a user would write them in pandas.

Per person-week, every counted event is painted onto a minute grid, highest category
winning (customer > admin > internal > focus), and the minutes are summed. Same inputs as
timeaudit's SQL (the classified events), same week rules (the person's local ISO week).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PRIORITY = {"focus": 1, "internal": 2, "admin": 3, "customer": 4}
COLUMNS = {4: "customer_meeting_hours", 3: "admin_hours", 2: "internal_meeting_hours"}


def weekly_meeting_hours(events: pd.DataFrame, timezones: dict[str, str]) -> pd.DataFrame:
    """events: person, start, end (UTC), category. Returns person, week and hours per category."""
    events = events[events["category"].isin(list(PRIORITY))].copy()
    events["priority"] = events["category"].map(PRIORITY)
    events["local_start"] = [s.tz_convert(timezones[p]) for p, s in zip(events["person"], events["start"], strict=True)]
    rows = []
    for person, mine in events.groupby("person"):
        tz = timezones[person]
        mine = mine.assign(local_end=mine["end"].dt.tz_convert(tz))
        monday = mine["local_start"].map(lambda t: (t - pd.Timedelta(days=t.weekday())).normalize())
        for week_start, week in mine.groupby(monday):
            grid = np.zeros(7 * 1440 + 1440, dtype=np.int8)  # a day's spill-over at the end
            counts = np.zeros_like(grid)
            for e in week.itertuples():
                a = int((e.local_start - week_start).total_seconds() // 60)
                b = int((e.local_end - week_start).total_seconds() // 60)
                grid[a:b] = np.maximum(grid[a:b], e.priority)
                counts[a:b] += 1
            iso = week_start.isocalendar()
            row = {"person": person, "week": f"{iso.year}-W{iso.week:02d}"}
            for priority, column in COLUMNS.items():
                row[column] = float((grid[: 7 * 1440] == priority).sum()) / 60
            row["double_booked_hours"] = float((counts[: 7 * 1440] >= 2).sum()) / 60
            rows.append(row)
    return pd.DataFrame(rows)
