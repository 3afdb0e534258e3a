"""The audit: the time wasters to cut and the customers who need attention.

Every table here comes from a SQL file in ``sql/`` over the classified records; this module
chooses the period and the people, adds the suggested actions, and keeps the arithmetic of
the what-if. Pages and the CLI show these tables as they are.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pandas as pd

from timeaudit.analysis.goals import GOALS, goal_served
from timeaudit.analysis.metrics import Analysis, customer_share, ensure_daily
from timeaudit.analysis.sql import read_sql
from timeaudit.core.config import Settings
from timeaudit.core.weeks import week_start
from timeaudit.privacy import Groups, gate, visible_groups

WRITTEN_UPDATE_MINUTES = 10  # what reading a written update costs each person, per occurrence
SHORT_MEETING_MINUTES = 30


@dataclass(frozen=True)
class Scope:
    """The weeks and the people an audit covers."""

    weeks: list[str]
    people: list[str]  # emails
    now: datetime
    groups: Groups  # the group each person's figures are counted in (timeaudit.privacy)

    @property
    def t0(self) -> datetime:
        return datetime.combine(week_start(self.weeks[0]), datetime.min.time(), UTC) - timedelta(days=1)

    @property
    def t1(self) -> datetime:
        return datetime.combine(week_start(self.weeks[-1]), datetime.min.time(), UTC) + timedelta(days=8)


def open_scope(a: Analysis, weeks: list[str], people: list[str] | None = None, now: datetime | None = None) -> Scope:
    """Register the scope's tables on the analysis connection. ``audit_people.team`` is the
    group the privacy gate counts each person in, so every per-team table is made of shown
    groups only."""
    teams = {p.email: p.team for p in a.people}
    groups = visible_groups(teams, a.settings.privacy.min_group_size)
    chosen = people if people is not None else list(teams)
    scope = Scope(sorted(weeks), chosen, now or datetime.now(UTC), groups)
    a.con.register("audit_weeks", pd.DataFrame({"week": scope.weeks}, dtype="string"))
    a.con.register(
        "audit_people",
        pd.DataFrame({"person": chosen, "team": [groups.of.get(p, "") for p in chosen]}, dtype="string"),
    )
    a.con.register("audit_range", pd.DataFrame({"t0": [scope.t0], "t1": [scope.t1], "now": [scope.now]}))
    a.con.execute(read_sql("meetings.sql"))
    return scope


@contextmanager
def scoped(a: Analysis, weeks: list[str], people: list[str] | None = None, now: datetime | None = None):
    """``open_scope`` for an analysis other callers share (``timeaudit.analysis.session``): the
    scope's tables stay registered, and the connection this caller's, until the block ends."""
    with a.lock:
        yield open_scope(a, weeks, people, now)


# -- time wasters -----------------------------------------------------------------------------
def _text(value) -> str:
    """A text cell from SQL, or "" for NULL (which pandas hands back as None or NaN)."""
    return value if isinstance(value, str) else ""


def suggest(series: pd.Series | dict, large_meeting: int) -> tuple[str, float, str]:
    """(action, share of the series' time it gives back, why) for one series."""
    minutes = float(series["minutes"])
    if series["tentative_share"] >= 0.5:
        return "cancel", 1.0, "most invitees never accepted it"
    if _text(series["committee_keyword"]) or (series["agenda_share"] < 0.5 and series["attendees"] >= large_meeting):
        back = max(0.0, 1 - WRITTEN_UPDATE_MINUTES / minutes) if minutes else 0.0
        return "replace with a written update", back, "a committee or a large meeting without an agenda"
    if minutes > SHORT_MEETING_MINUTES + 15:
        return "shorten to 30 minutes", (minutes - SHORT_MEETING_MINUTES) / minutes, f"runs {minutes:.0f} minutes"
    if series["recurring"] and (series["cadence_days"] or 99) <= 8:
        return "make it fortnightly", 0.5, "meets every week"
    return "keep", 0.0, "short and focused"


def _flags(row: pd.Series | dict, large: int, long_minutes: int) -> str:
    flags = []
    if row["agenda_share"] < 0.5:
        flags.append("no agenda")
    if row["attendees"] >= large:
        flags.append(f"large ({row['attendees']} people)")
    if row["minutes"] > long_minutes:
        flags.append(f"long ({row['minutes']:.0f} min)")
    if row["recurring"]:
        flags.append("recurring")
    if _text(row["committee_keyword"]):
        flags.append(f"committee ('{row['committee_keyword']}')")
    if row["double_booked_share"] >= 0.25:
        flags.append(f"{row['double_booked_share']:.0%} of attendees double-booked")
    if row["tentative_share"] >= 0.5:
        flags.append(f"{row['tentative_share']:.0%} tentative or unanswered")
    if row["internal_only"]:
        flags.append("internal only")
    return "; ".join(flags)


def meeting_series(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Internal meetings and series ranked by person-hours, with flags, a suggestion and the
    goal it serves (``goals.goal_served``: the meeting or the admin budget)."""
    df = a.con.execute(read_sql("audit_series.sql")).df()
    rules = a.settings.rules
    n_weeks = max(len(scope.weeks), 1)
    if df.empty:
        return df.assign(label="", flags="", action="", gives_back_share=0.0, why="", hours_back_per_week=0.0, goal="")
    seen: dict[str, int] = {}
    labels = []
    for title in df["title"]:  # series with the same title tags get a number, so charts keep them apart
        seen[title] = seen.get(title, 0) + 1
        labels.append(title if seen[title] == 1 else f"{title} ({seen[title]})")
    df["label"] = labels
    rows = df.to_dict("records")  # a dict per series: thousands of them at 1,000 people, iterrows is slow
    df["flags"] = [_flags(r, rules.large_meeting, rules.long_meeting_minutes) for r in rows]
    suggestions = [suggest(r, rules.large_meeting) for r in rows]
    df["action"] = [s[0] for s in suggestions]
    df["gives_back_share"] = [s[1] for s in suggestions]
    df["why"] = [s[2] for s in suggestions]
    df["person_hours_per_week"] = df["person_hours"] / n_weeks
    df["hours_back_per_week"] = df["person_hours_per_week"] * df["gives_back_share"]
    df["goal"] = [GOALS[goal_served(r)].label if s[0] != "keep" else "" for r, s in zip(rows, suggestions, strict=True)]
    return df


def what_if(weekly: pd.DataFrame, series: pd.DataFrame, chosen: list[str], weeks: list[str]) -> dict[str, float]:
    """Customer share over ``weeks`` now, and with the chosen series' suggestions applied
    (the hours they give back leave internal meetings; customer hours stay as they are)."""
    period = weekly[weekly["week"].isin(weeks)]
    totals = period.sum(numeric_only=True).to_frame().T
    before = float(customer_share(totals).iloc[0]) if len(totals) else float("nan")
    saved = float(series.loc[series["series_key"].isin(chosen), "hours_back_per_week"].sum()) * len(weeks)
    after_totals = totals.copy()
    after_totals["internal_meeting_hours"] = (after_totals["internal_meeting_hours"] - saved).clip(lower=0)
    after = float(customer_share(after_totals).iloc[0]) if len(totals) else float("nan")
    return {"before": before, "after": after, "hours_back": saved, "hours_back_per_week": saved / max(len(weeks), 1)}


def admin_by_kind(a: Analysis, scope: Scope) -> pd.DataFrame:
    return a.con.execute(read_sql("audit_admin.sql")).df()


def costly_threads(a: Analysis, scope: Scope, limit: int = 10) -> pd.DataFrame:
    return a.con.execute(read_sql("audit_threads.sql") + f" LIMIT {int(limit)}").df()


def email_load(weekly: pd.DataFrame, weeks: list[str]) -> pd.DataFrame:
    """cc-only, internal, bulk and after-hours email hours per person over ``weeks``."""
    period = weekly[weekly["week"].isin(weeks)]
    columns = [
        "cc_only_email_hours",
        "internal_email_hours",
        "bulk_email_hours",
        "after_hours_email_hours",
        "email_hours",
        "emails_received",
        "emails_sent",
    ]
    out = period.groupby(["person", "name", "team"], as_index=False)[columns].sum()
    return out.sort_values("email_hours", ascending=False).reset_index(drop=True)


def fragmentation(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Focus hours against fragmented hours per person and day."""
    ensure_daily(a)
    return a.con.execute(
        """SELECT d.day, d.week, d.person, d.focus_hours, d.fragmented_hours, d.capacity_hours
           FROM daily_metrics AS d
           JOIN audit_weeks AS w ON w.week = d.week
           JOIN audit_people AS p ON p.person = d.person
           ORDER BY d.day, d.person"""
    ).df()


# -- email habits ---------------------------------------------------------------------------
COVER_ACTION = "put your manager on To when they must act; otherwise leave them off"
STORM_ACTION = "reply to the sender only, or settle it in a short call"


def cover_mail(a: Analysis) -> pd.DataFrame:
    """Cover-yourself mail per person-week, every week of the analysis: internal mail a person
    sent with their own manager on Cc and not on To, and the manager's reading hours
    (``sql/habits_cover_mail.sql``; docs/metrics.md). Per-person rows: show them through the
    viewer's access, sum them per team only through the gate (``cover_mail_by_team``)."""
    df = a.con.execute(read_sql("habits_cover_mail.sql")).df()
    teams = {p.email: p.team for p in a.people}
    return df.assign(team=df["person"].map(teams).astype("string"))


def cover_mail_by_team(cover: pd.DataFrame, groups: Groups) -> pd.DataFrame:
    """Cover-yourself mail and manager hours per shown group and week (``timeaudit.privacy``)."""
    shown = gate(cover, groups) if groups.complete else cover.iloc[0:0]
    return (
        shown.groupby(["week", "team"], as_index=False)[["cover_mails", "manager_hours"]]
        .sum()
        .sort_values(["week", "team"])
        .reset_index(drop=True)
    )


def cover_mail_in(a: Analysis, scope: Scope, cover: pd.DataFrame | None = None) -> pd.DataFrame:
    """The scope's people and weeks of ``cover_mail``, with ``team`` the group each person is
    counted in."""
    cover = cover_mail(a) if cover is None else cover
    chosen = cover[cover["week"].isin(scope.weeks) & cover["person"].isin(scope.people)]
    return gate(chosen, scope.groups).reset_index(drop=True)


def reply_storms(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Internal threads whose replies keep going to large lists (``rules.storm_min_replies``
    replies to ``rules.storm_min_recipients`` people or more), ranked by people-minutes, with
    the hours per week replying to the sender only would give back."""
    df = a.con.execute(read_sql("habits_reply_storms.sql")).df()
    df["hours_back_per_week"] = df["gives_back_minutes"] / 60 / max(len(scope.weeks), 1)
    return df


def suggestions(
    a: Analysis,
    scope: Scope,
    series: pd.DataFrame,
    cover: pd.DataFrame,
    storms: pd.DataFrame,
    meetings: int | None = None,
) -> pd.DataFrame:
    """Every suggestion of the audit, most hours back first: the meeting series' (but "keep";
    only the ``meetings`` that give back most, when given), one for the scope's cover-yourself
    mail, and one per reply-all storm."""
    n_weeks = max(len(scope.weeks), 1)
    changed = series[series["action"] != "keep"].sort_values("hours_back_per_week", ascending=False, kind="stable")
    rows = [("meeting", r.label, r.action, r.why, r.hours_back_per_week) for r in changed.head(meetings).itertuples()]
    if len(cover) and cover["cover_mails"].sum():
        mails, hours = int(cover["cover_mails"].sum()), float(cover["manager_hours"].sum())
        rows.append(
            (
                "cover-yourself mail",
                f"{mails} emails copying the sender's manager",
                COVER_ACTION,
                f"copied, not asked to act: {hours:.1f} h of managers' reading "
                f"({a.settings.rules.email_minutes_per_read * 60:g} s each)",
                hours / n_weeks,
            )
        )
    for r in storms.itertuples():
        rows.append(
            (
                "reply-all storm",
                r.subject_tags or "(no tags)",
                STORM_ACTION,
                f"{r.large_replies} replies to up to {r.largest_list} people",
                r.hours_back_per_week,
            )
        )
    out = pd.DataFrame(rows, columns=["kind", "what", "action", "why", "hours_back_per_week"])
    return out.sort_values("hours_back_per_week", ascending=False, kind="stable").reset_index(drop=True)


# -- customers --------------------------------------------------------------------------------
def customer_contacts(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Every configured customer: last contact, days of silence, hours in the period, and
    whether it is neglected (silent for ``audit.neglected_after_days`` or more)."""
    df = a.con.execute(read_sql("customer_contacts.sql")).df()
    limit = a.settings.audit.neglected_after_days
    last = pd.to_datetime(df["last_contact"], utc=True)
    df["days_silent"] = (pd.Timestamp(scope.now) - last).dt.days
    df["neglected"] = df["days_silent"].isna() | (df["days_silent"] >= limit)
    df["hours"] = df["meeting_hours"] + df["email_hours"]
    return df


def neglected_customers(a: Analysis, contacts: pd.DataFrame) -> pd.DataFrame:
    """Neglected customers by tier (as ordered in the settings), then longest silence."""
    order = {t.lower(): i for i, t in enumerate(a.settings.audit.tier_order)}
    out = contacts[contacts["neglected"]].copy()
    out["tier_rank"] = [order.get(str(t).lower(), len(order)) for t in out["tier"]]
    out["silence_rank"] = out["days_silent"].fillna(10**6)
    out = out.sort_values(["tier_rank", "silence_rank"], ascending=[True, False])
    return out.drop(columns=["tier_rank", "silence_rank"]).reset_index(drop=True)


def customer_replies(a: Analysis, scope: Scope) -> pd.DataFrame:
    """Every customer email a roster member received on To, with its first reply and the
    working hours it waited (until the reply, or until now)."""
    a.con.execute(read_sql("customer_replies.sql"))
    df = a.con.execute("SELECT * FROM customer_replies ORDER BY received_at, person, id").df()
    return gate(df, scope.groups)


def shared_mailbox_replies(a: Analysis, scope: Scope, team: str | None = None) -> pd.DataFrame:
    """Every customer email a shared mailbox (``[[shared_mailboxes]]``, of ``team`` only when
    given) received in the scope's period, with its first reply and the clock hours it waited.
    A mailbox is a team's, not a person's: its figures need no privacy gate."""
    a.con.execute(read_sql("shared_mailbox_replies.sql"))
    replies = a.con.execute("SELECT * FROM shared_mailbox_replies").df()
    return replies if team is None else replies[replies["team"] == team].reset_index(drop=True)


def shared_mailbox_summary(replies: pd.DataFrame) -> pd.DataFrame:
    """Per shared mailbox: customer emails received, those still waiting (not superseded by a
    newer one in the thread), the oldest wait, and the median and 90th percentile to a reply."""
    columns = ["mailbox", "team", "received", "waiting", "oldest_waiting_hours", "median_hours", "p90_hours"]
    if replies.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for (mailbox, team), group in replies.groupby(["mailbox", "team"], dropna=False):
        answered = group[group["replied_at"].notna()]["hours"]
        waiting = group[group["replied_at"].isna() & ~group["superseded"]]["hours"]
        rows.append(
            {
                "mailbox": mailbox,
                "team": team,
                "received": len(group),
                "waiting": len(waiting),
                "oldest_waiting_hours": waiting.max() if len(waiting) else None,
                "median_hours": answered.median() if len(answered) else None,
                "p90_hours": answered.quantile(0.9) if len(answered) else None,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def waiting_threads(replies: pd.DataFrame) -> pd.DataFrame:
    """Customer emails still unanswered (and not superseded by a newer one), oldest first,
    one row per email with everyone who holds it."""
    waiting = replies[replies["replied_at"].isna() & ~replies["superseded"]]
    if waiting.empty:
        return pd.DataFrame(columns=["received_at", "customer", "sender", "held_by", "working_hours"])
    key = waiting["message_id"].where(waiting["message_id"] != "", waiting["id"])
    grouped = (
        waiting.assign(key=key)
        .groupby("key", as_index=False)
        .agg(
            received_at=("received_at", "min"),
            customer=("customer", "first"),
            sender=("sender", "first"),
            held_by=("person", lambda s: ", ".join(sorted(set(s)))),
            working_hours=("working_hours", "max"),
        )
    )
    return grouped.drop(columns=["key"]).sort_values("received_at").reset_index(drop=True)


def reply_latency(replies: pd.DataFrame, by: str = "person") -> pd.DataFrame:
    """Median and 90th percentile of working hours to the first reply, per ``by`` and week."""
    answered = replies[replies["replied_at"].notna()].copy()
    if answered.empty:
        return pd.DataFrame(columns=[by, "week", "replies", "median_hours", "p90_hours"])
    iso = pd.to_datetime(answered["received_at"], utc=True).dt.isocalendar()
    answered["week"] = [f"{y}-W{w:02d}" for y, w in zip(iso["year"], iso["week"], strict=True)]
    # pandas' own grouped quantile, not a Python function per group (docs/performance.md).
    hours = answered.groupby([by, "week"])["working_hours"]
    out = pd.DataFrame(
        {"replies": hours.size(), "median_hours": hours.median(), "p90_hours": hours.quantile(0.9)}
    ).reset_index()
    return out.sort_values(["week", by]).reset_index(drop=True)


# -- rules ------------------------------------------------------------------------------------
def preview_rules(lake, old: Settings, new: Settings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What new keyword rules would change: (hours per category and admin kind before and
    after, the events whose category changes)."""
    from timeaudit.analysis.metrics import open_analysis

    query = "SELECT source, account, id, category, coalesce(admin_kind, '') AS kind, minutes FROM classified_events"
    before = open_analysis(lake, old).con.execute(query).df()
    after = open_analysis(lake, new).con.execute(query).df()

    def hours(frame: pd.DataFrame) -> pd.Series:
        label = frame["category"] + frame["kind"].map(lambda k: f" ({k})" if k else "")
        return frame.groupby(label)["minutes"].sum() / 60

    table = pd.DataFrame({"before": hours(before), "after": hours(after)}).fillna(0.0)
    table = table[table.index.str.match(r"^(admin|internal|focus|customer)")].round(1)
    merged = before.merge(after, on=["source", "account", "id"], suffixes=("_before", "_after"))
    changed = merged[
        (merged["category_before"] != merged["category_after"]) | (merged["kind_before"] != merged["kind_after"])
    ]
    return table.rename_axis("category").reset_index(), changed
