"""The weekly summary: what a person, a team or the organisation reports for one week.

Built from the weekly metrics, obeying the same privacy rule as the screen: group figures
only for groups of at least ``privacy.min_group_size`` people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pandas as pd

from timeaudit.analysis import audit
from timeaudit.analysis.goals import GoalCheck, check_goals, reply_figures
from timeaudit.analysis.metrics import (
    CATEGORY_COLUMNS,
    COUNT_COLUMNS,
    HOUR_COLUMNS,
    Analysis,
    customer_share,
    team_weekly,
    teams_of,
)
from timeaudit.core.config import Settings
from timeaudit.core.errors import UserError
from timeaudit.core.weeks import week_start, weeks_ending
from timeaudit.lake.store import Lake
from timeaudit.outputs.derived import on_stored_classification, stored_cover_mail, weekly_metrics
from timeaudit.privacy import Groups, visible_groups


def definitions(settings: Settings) -> dict[str, str]:
    """What each figure of a summary means, with the settings' own constants."""
    rules = settings.rules
    return {
        "Customer share": "(customer meetings + customer email) / (customer meetings + internal meetings + admin + "
        "all email), over the hours of the group in the week",
        "Change": "customer share this week minus its average over the four weeks before, in percentage points",
        "Capacity": "working hours in the week less out-of-office",
        "Customer meetings": "meetings with anyone at a customer's domain; every minute counted once",
        "Customer email": f"estimated time on email with a customer ({rules.email_cost_text()})",
        "Internal meetings": "meetings with colleagues only, not already counted as customer or admin time",
        "Admin": "internal events whose title carries an admin keyword (budgets, records, forms, policy, reports)",
        "Internal email": "estimated time on email without a customer: internal, cc-only and newsletters",
        "Focus": f"focus blocks plus free working time in unbroken gaps of {rules.focus_gap_text()} or more",
        "Fragmented": f"free working time in gaps shorter than {rules.focus_gap_text()}",
        "Double-booked": "time covered by two or more counted events at once",
        "After hours": "meetings outside working hours plus emails sent outside them",
        "Top wasters": "internal meetings and recurring series over the last four weeks ranked by person-hours, "
        "with a suggested action and the hours per week it would give back",
        "Suggestions": "every suggested change with the hours per week it gives back: the meeting series', "
        "one for cover-yourself mail, one per reply-all storm",
        "Cover-yourself mail": "internal email sent with the sender's own manager (roster `manager`) on Cc and not on "
        f"To; it costs the manager one read each ({rules.email_minutes_per_read * 60:g} s)",
        "Reply-all storms": f"internal threads with {rules.storm_min_replies} or more replies that each went to "
        f"{rules.storm_min_recipients} or more people, ranked by people-minutes; replying to the sender only would "
        "give back every other reader's time",
        "Neglected customers": f"customers with no meeting or email for {settings.audit.neglected_after_days} days "
        "or more",
        "Waiting": "the ten oldest customer emails with no answer yet, with who holds them",
    }


AUDIT_WEEKS = 4
WAITING_ROWS = 10  # the oldest; `timeaudit customers` lists them all
SUGGESTION_ROWS = 10  # meeting suggestions; every email-habit one is listed too


@dataclass
class Summary:
    scope: str  # "person" | "team" | "organisation"
    subject: str  # the person's email, the team's name, or the organisation's name
    week: str
    weekly: pd.DataFrame  # one row per week (oldest first): hours per category and customer_share
    rows: pd.DataFrame  # the week's metric rows: the person, the team, or one per team
    headline: dict[str, float] = field(default_factory=dict)
    hidden_teams: dict[str, int] = field(default_factory=dict)
    pool: str = ""  # the row the hidden teams are counted in, "" if none
    wasters: pd.DataFrame = field(default_factory=pd.DataFrame)  # top five series, with suggestions
    suggestions: pd.DataFrame = field(default_factory=pd.DataFrame)  # meetings and email habits, most hours back first
    storms: pd.DataFrame = field(default_factory=pd.DataFrame)  # reply-all storms
    neglected: pd.DataFrame = field(default_factory=pd.DataFrame)
    waiting: pd.DataFrame = field(default_factory=pd.DataFrame)
    admin: pd.DataFrame = field(default_factory=pd.DataFrame)  # hours by kind
    definitions: dict[str, str] = field(default_factory=dict)
    team: str | None = None  # whose goals apply: the team's, the person's team's, None for the organisation's
    people: int = 0  # people in the week's figures
    replies: pd.DataFrame = field(default_factory=pd.DataFrame)  # customer emails and their replies (gated)
    goals: list[GoalCheck] = field(default_factory=list)  # the week against the goals

    @property
    def title(self) -> str:
        return f"timeaudit weekly summary: {self.subject}, {self.week}"


def sum_weeks(frame: pd.DataFrame, weeks: list[str]) -> pd.DataFrame:
    """One row per week of ``weeks``: the per-person rows' hours summed, their people counted."""
    columns = HOUR_COLUMNS + COUNT_COLUMNS + ["non_customer_email_hours"]
    summed = frame.groupby("week", as_index=False).agg(**{c: (c, "sum") for c in columns}, people=("person", "nunique"))
    summed = pd.DataFrame({"week": weeks}).merge(summed, on="week", how="left").fillna(0.0)
    summed["customer_share"] = customer_share(summed)
    return summed


def headline_figures(weekly: pd.DataFrame) -> dict[str, float]:
    this = weekly.iloc[-1]
    before = weekly.iloc[-5:-1]
    previous = customer_share(before.sum(numeric_only=True).to_frame().T).iloc[0] if len(before) else float("nan")
    out = {"Customer share": float(this["customer_share"]), "Previous 4 weeks": float(previous)}
    out["Change"] = out["Customer share"] - out["Previous 4 weeks"]
    out["Capacity"] = float(this["capacity_hours"])
    for label, column in CATEGORY_COLUMNS.items():
        out[label] = float(this[column])
    out["Double-booked"] = float(this["double_booked_hours"])
    out["After hours"] = float(this["after_hours_hours"])
    return out


def build_summary(
    lake: Lake,
    settings: Settings,
    week: str,
    *,
    weeks: int = 12,
    person: str | None = None,
    team: str | None = None,
    metrics: pd.DataFrame | None = None,
    analysis: Analysis | None = None,
) -> Summary:
    """The summary of ``week`` and the ``weeks - 1`` weeks before it for one scope. The weekly
    table is ``metrics``, else the stored one while current, else computed on the shared
    analysis of everyone, which then serves the audit too; given stored figures, a person's or
    a team's audit classifies only their records (``shared_analysis(..., people)``), or reads
    them as `timeaudit metrics` stored them classified while those are current."""
    data = metrics if metrics is not None else weekly_metrics(lake, settings, analysis)
    known_weeks = set(data["week"])
    if week not in known_weeks:
        known = sorted(known_weeks)
        span = f"{known[0]} to {known[-1]}" if known else "none: the lake is empty; run `timeaudit demo` or a sync"
        raise UserError(f"--week {week}: no data for that week; weeks with data: {span}")
    first_week = min(data["week"])
    span = [w for w in weeks_ending(week, weeks) if w >= first_week]
    min_group = settings.privacy.min_group_size
    hidden: dict[str, int] = {}
    pool = ""
    if person:
        scope, subject = "person", person.lower()
        chosen = data[data["person"] == subject]
        if chosen.empty:
            raise UserError(f"--person {person}: not in the roster or the data; check the address")
        rows = chosen[chosen["week"] == week]
    elif team:
        scope, subject = "team", team
        chosen = data[data["team"] == team]
        if chosen.empty:
            raise UserError(f"--team {team}: no such team; teams: {', '.join(sorted(set(data['team'])))}")
        refuse_hidden_team(team, chosen["person"].nunique(), visible_groups(teams_of(data), min_group))
        rows = team_weekly(chosen[chosen["week"] == week], min_group)
    else:
        scope, subject = "organisation", settings.organisation.name
        teams = team_weekly(data, min_group)
        hidden, pool = teams.attrs["hidden_teams"], teams.attrs["pool"]
        if data["person"].nunique() < min_group:
            raise UserError(
                f"the organisation has {data['person'].nunique()} people, fewer than privacy.min_group_size "
                f"({min_group}); use --person for your own summary"
            )
        chosen = data
        rows = teams[teams["week"] == week]
    weekly_table = sum_weeks(chosen[chosen["week"].isin(span)], span)
    headline = headline_figures(weekly_table)
    summary = Summary(scope, subject, week, weekly_table, rows.reset_index(drop=True), headline, hidden, pool)
    summary.definitions = definitions(settings)
    this_week = chosen[chosen["week"] == week]
    summary.people = int(this_week["person"].nunique())
    summary.team = team or (str(this_week["team"].iloc[0]) if person and len(this_week) else None)
    people = sorted(set(chosen["person"]))
    audit_weeks = [w for w in span if w in known_weeks]
    every_cover = stored_cover_mail(lake, settings)
    if analysis is not None:
        add_audit(summary, analysis, people, audit_weeks, every_cover)
    else:
        whose = None if scope == "organisation" else people
        on_stored_classification(
            lake, settings, whose, lambda a: add_audit(summary, a, people, audit_weeks, every_cover)
        )
    summary.goals = check_goals(
        settings.goals_for(summary.team),
        weekly_table.iloc[-1],
        summary.people,
        reply_figures(summary.replies, week),
    )
    return summary


def refuse_hidden_team(team: str, size: int, groups: Groups) -> None:
    """A team the privacy gate does not show on its own gets no figures of its own."""
    if team in groups.teams:
        return
    if size < groups.min_group_size:
        reason = f"has {size} people, fewer than privacy.min_group_size ({groups.min_group_size})"
    else:
        reason = f"is counted only in {groups.pool}, with a team smaller than privacy.min_group_size"
    raise UserError(f"--team {team}: {reason}; team figures are withheld to protect individuals")


def add_audit(
    summary: Summary, analysis: Analysis, people: list[str], weeks: list[str], every_cover: pd.DataFrame | None = None
) -> None:
    """The audit's short lists for the summary's people, over its last four weeks
    (``every_cover``: ``audit.cover_mail`` of everyone, when stored)."""
    end = datetime.combine(week_start(summary.week) + timedelta(days=7), datetime.min.time(), UTC)
    with audit.scoped(analysis, weeks[-AUDIT_WEEKS:], people, now=end) as scope:
        _add_audit(summary, analysis, scope, people, every_cover)


def _add_audit(
    summary: Summary, analysis: Analysis, scope: audit.Scope, people: list[str], every_cover: pd.DataFrame | None
) -> None:
    every_series = audit.meeting_series(analysis, scope)
    series = every_series.head(5)
    storms = audit.reply_storms(analysis, scope)
    cover = audit.cover_mail_in(analysis, scope, every_cover)
    suggested = audit.suggestions(analysis, scope, every_series, cover, storms, meetings=SUGGESTION_ROWS)
    summary.suggestions = pd.DataFrame(
        {
            "Suggestion": suggested["action"],
            "For": suggested["what"],
            "Because": suggested["why"],
            "Hours back per week": suggested["hours_back_per_week"],
        }
    )
    summary.storms = pd.DataFrame(
        {
            "Thread (tags)": storms["subject_tags"],
            "Large replies": storms["large_replies"],
            "Largest list": storms["largest_list"],
            "People-minutes": storms["people_minutes"],
            "Hours back per week": storms["hours_back_per_week"],
        }
    )
    summary.wasters = pd.DataFrame(
        {
            "Meeting": series.get("title", []),
            "Person-hours": series.get("person_hours", []),
            "Flags": series.get("flags", []),
            "Suggestion": series.get("action", []),
            "Serves goal": series.get("goal", []),
            "Hours back per week": series.get("hours_back_per_week", []),
        }
    )
    contacts = audit.customer_contacts(analysis, scope)
    neglected = audit.neglected_customers(analysis, contacts)
    if summary.scope != "organisation":
        neglected = neglected[neglected["owner"].isin(people)]
    summary.neglected = pd.DataFrame(
        {
            "Customer": neglected["customer"],
            "Tier": neglected["tier"],
            "Owner": neglected["owner"],
            "Days silent": neglected["days_silent"],
        }
    )
    summary.replies = audit.customer_replies(analysis, scope)
    waiting = audit.waiting_threads(summary.replies).head(WAITING_ROWS)
    summary.waiting = pd.DataFrame(
        {
            "Received": waiting["received_at"].astype(str).str[:16],
            "Customer": waiting["customer"],
            "Held by": waiting["held_by"],
            "Working hours waiting": waiting["working_hours"],
        }
    )
    admin = audit.admin_by_kind(analysis, scope)
    admin = admin[admin["week"] == summary.week].groupby("kind", as_index=False)["hours"].sum()
    summary.admin = admin.sort_values("hours", ascending=False).rename(columns={"kind": "Kind", "hours": "Hours"})
