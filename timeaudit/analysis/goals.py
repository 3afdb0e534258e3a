"""The goals a team sets itself (``[goals]`` in timeaudit.toml) checked against one week.

Hour goals are per person: a group's hours are divided by its people. Reply goals are in
working hours (business-hours aware, as ``customer_replies.sql`` counts them): the 90th
percentile of the time to a first reply for customer emails received in the week, and the
longest a customer email still unanswered at the end of the week has waited.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from timeaudit.core.config import GoalValues
from timeaudit.core.weeks import week_labels


@dataclass(frozen=True)
class Goal:
    label: str
    at_most: bool  # a budget (at most) or a floor (at least)
    unit: str  # "share" | "hours"
    column: str = ""  # the weekly hours column a per-person goal divides by people


GOALS: dict[str, Goal] = {
    "customer_share": Goal("Customer share", False, "share"),
    "meeting_hours": Goal("Meeting budget", True, "hours", "internal_meeting_hours"),
    "admin_hours": Goal("Admin budget", True, "hours", "admin_hours"),
    "focus_hours": Goal("Focus floor", False, "hours", "focus_hours"),
    "reply_p90_hours": Goal("Customer reply time (90th percentile)", True, "hours"),
    "max_wait_hours": Goal("Longest customer wait", True, "hours"),
}
PER_PERSON = {key: goal for key, goal in GOALS.items() if goal.column}


@dataclass(frozen=True)
class GoalCheck:
    key: str
    target: float
    actual: float | None  # None: nothing to measure this week (no customer email, say)

    @property
    def goal(self) -> Goal:
        return GOALS[self.key]

    @property
    def on_track(self) -> bool | None:
        if self.actual is None:
            return None
        return self.actual <= self.target if self.goal.at_most else self.actual >= self.target

    @property
    def status(self) -> str:
        return {True: "on track", False: "off track", None: "no data"}[self.on_track]

    def _fmt(self, value: float) -> str:
        if self.goal.unit == "share":
            return f"{value:.0%}"
        suffix = " working h" if self.key in ("reply_p90_hours", "max_wait_hours") else " h/person"
        return f"{value:.1f}{suffix}"

    @property
    def target_text(self) -> str:
        return f"{'at most' if self.goal.at_most else 'at least'} {self._fmt(self.target)}"

    @property
    def actual_text(self) -> str:
        return "–" if self.actual is None else self._fmt(self.actual)

    def sentence(self) -> str:
        """'Meeting budget: 9.5 h/person against at most 8.0 h/person, off track'."""
        return f"{self.goal.label}: {self.actual_text} against {self.target_text}, {self.status}"


def per_person(week: pd.Series | dict, people: int) -> dict[str, float]:
    """The per-person hours behind the hour goals, for one group-week row."""
    n = max(int(people), 1)
    return {key: float(week[goal.column]) / n for key, goal in PER_PERSON.items()}


def reply_figures(replies: pd.DataFrame, week: str) -> dict[str, float | None]:
    """90th percentile of working hours to a first reply for customer emails received in
    ``week``, and the longest wait of those still unanswered (``audit.customer_replies``
    computed with ``now`` at the end of the week)."""
    if replies.empty:
        return {"reply_p90_hours": None, "max_wait_hours": None}
    weeks = pd.Series(week_labels(pd.to_datetime(replies["received_at"], utc=True)), index=replies.index)
    answered = replies[(weeks == week) & replies["replied_at"].notna()]
    waiting = replies[replies["replied_at"].isna() & ~replies["superseded"].astype(bool)]
    p90 = float(answered["working_hours"].quantile(0.9)) if len(answered) else None
    longest = float(waiting["working_hours"].max()) if len(waiting) else 0.0
    return {"reply_p90_hours": p90, "max_wait_hours": longest}


def check_goals(
    goals: GoalValues, week: pd.Series | dict, people: int, replies: dict[str, float | None] | None = None
) -> list[GoalCheck]:
    """Every set goal against one group-week (``week``: summed hours and ``customer_share``;
    ``replies``: ``reply_figures``, or None to leave the reply goals out)."""
    actual: dict[str, float | None] = {"customer_share": _number(week["customer_share"]), **per_person(week, people)}
    if replies is not None:
        actual.update(replies)
    checks = []
    for key in GOALS:
        target = getattr(goals, key)
        if target is not None and key in actual:
            checks.append(GoalCheck(key, float(target), actual[key]))
    return checks


def _number(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def goal_served(series: pd.Series | dict) -> str:
    """The goal a time waster's suggestion serves: admin series give back admin hours, every
    other internal meeting gives back meeting hours."""
    kind = series.get("admin_kind")
    return "admin_hours" if isinstance(kind, str) and kind else "meeting_hours"
