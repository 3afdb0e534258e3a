"""Chat figures (docs/metrics.md, "Chat"): chat hours per person-week with their customer
part, interruptions of focus time, and customer chat waiting for an answer.

Every figure is a SQL file in ``sql/`` over the lake's ``chat`` table and the analysis's
classified events and person-days; team figures pass the privacy gate like the weekly ones.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from timeaudit.analysis.audit import Scope
from timeaudit.analysis.metrics import MAX_WEEKS, Analysis, zone_days
from timeaudit.analysis.sql import read_sql
from timeaudit.core.model import Person
from timeaudit.privacy import gate, visible_groups

CHAT_COLUMNS = [
    "chat_hours",
    "customer_chat_hours",
    "internal_chat_hours",
    "chats_sent",
    "chats_read",
    "interruptions",
    "refocus_hours",
]


def prepare_chat(a: Analysis) -> None:
    """Classify the chat and find the interruptions (temp tables both engines can read)."""
    a.con.execute(read_sql("classify_chat.sql"))
    a.con.execute(read_sql("chat_interruptions.sql"))


def chat_weekly(a: Analysis) -> pd.DataFrame:
    """One row per person-week (every week of the analysis): chat hours, their customer and
    internal parts, messages sent and read, interruptions and the focus hours they cost."""
    prepare_chat(a)
    return typed_chat(a.con.execute(read_sql("chat_weekly.sql")).df())


def typed_chat(df: pd.DataFrame) -> pd.DataFrame:
    """``chat_weekly.sql``'s rows (computed, or read from the stored derived table) with the
    types ``chat_weekly`` gives."""
    df["week_start"] = pd.to_datetime(df["week_start"]).dt.date
    for column in ("chats_sent", "chats_read", "interruptions"):
        df[column] = df[column].astype(int)
    return df


def team_chat_weekly(person_weeks: pd.DataFrame, min_group_size: int) -> pd.DataFrame:
    """Sums per shown group and week through the privacy gate (as ``metrics.team_weekly``)."""
    teams = dict(zip(person_weeks["person"], person_weeks["team"].fillna(""), strict=True))
    groups = visible_groups(teams, min_group_size)
    shown = gate(person_weeks, groups) if groups.complete else person_weeks.iloc[0:0]
    return (
        shown.groupby(["week", "week_start", "team"], as_index=False)
        .agg(**{c: (c, "sum") for c in CHAT_COLUMNS}, people=("person", "nunique"))
        .sort_values(["week", "team"])
        .reset_index(drop=True)
    )


def register_org_days(a: Analysis, now: datetime) -> None:
    """``org_days``: the organisation's days and working hours (as ``person_days``) from the
    oldest customer chat message to ``now``, for chat_waiting.sql."""
    [(oldest,)] = a.con.execute(
        "SELECT min(ts) FROM classified_chat WHERE customer IS NOT NULL AND from_customer"
    ).fetchall()
    if isinstance(oldest, datetime) and oldest.tzinfo is None:  # Spark hands back UTC without its zone
        oldest = oldest.replace(tzinfo=UTC)
    first = max(oldest, now - timedelta(weeks=MAX_WEEKS)).date() if isinstance(oldest, datetime) else now.date()
    days, _ = zone_days([Person(email="", team="")], a.settings, first, now.date())
    a.con.register("org_days", days)


def customer_chat_waiting(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Customer chat no one on the roster has answered yet, oldest first, with its age in the
    organisation's working hours (``open_scope`` registered the scope)."""
    a.con.execute(read_sql("classify_chat.sql"))
    register_org_days(a, scope.now)
    return a.con.execute(read_sql("chat_waiting.sql")).df()
