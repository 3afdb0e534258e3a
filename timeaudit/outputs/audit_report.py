"""The audit as text or Markdown, for `timeaudit audit` and `timeaudit customers`."""

from __future__ import annotations

import math

import pandas as pd

from timeaudit.analysis import audit
from timeaudit.analysis.chat import customer_chat_waiting
from timeaudit.analysis.metrics import Analysis
from timeaudit.outputs.derived import weekly_metrics


def _table(frame: pd.DataFrame, markdown: bool) -> str:
    def cell(v) -> str:
        if isinstance(v, float):
            return "–" if math.isnan(v) else f"{v:,.1f}"
        return str(v).replace("|", "/")

    if frame.empty:
        return "(none)"
    header = [str(c) for c in frame.columns]
    rows = [[cell(v) for v in r] for r in frame.itertuples(index=False)]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), fmt.format(*("-" * w for w in widths))] + [fmt.format(*r) for r in rows])


def _heading(text: str, markdown: bool) -> str:
    return f"## {text}" if markdown else f"{text}\n{'=' * len(text)}"


def wasters_text(
    a: Analysis,
    scope: audit.Scope,
    markdown: bool = False,
    limit: int = 10,
    *,
    weekly: pd.DataFrame | None = None,
    every_cover: pd.DataFrame | None = None,
) -> str:
    """The time wasters of ``scope``. ``weekly`` and ``every_cover``: the weekly table and
    everyone's cover-yourself mail when at hand (stored), else computed on ``a``."""
    every_series = audit.meeting_series(a, scope)
    series = every_series.head(limit)
    currency = a.settings.audit.currency
    shown = pd.DataFrame(
        {
            "Meeting": series["title"],
            "Person-hours": series["person_hours"],
            f"Cost ({currency})": series["cost"],
            "Flags": series["flags"],
            "Suggestion": series["action"],
            "Serves goal": series["goal"],
            "Hours back / week": series["hours_back_per_week"],
        }
    )
    admin = audit.admin_by_kind(a, scope).groupby("kind", as_index=False)["hours"].sum()
    admin = admin.sort_values("hours", ascending=False).rename(columns={"kind": "Admin kind", "hours": "Hours"})
    weekly = weekly if weekly is not None else weekly_metrics(None, a.settings, a)
    email = audit.email_load(weekly[weekly["person"].isin(scope.people)], scope.weeks).head(limit)
    email = email[
        ["person", "team", "cc_only_email_hours", "internal_email_hours", "bulk_email_hours", "after_hours_email_hours"]
    ].rename(
        columns={
            "person": "Person",
            "team": "Team",
            "cc_only_email_hours": "Cc-only h",
            "internal_email_hours": "Internal h",
            "bulk_email_hours": "Bulk h",
            "after_hours_email_hours": "After-hours h",
        }
    )
    storms = audit.reply_storms(a, scope)
    cover = audit.cover_mail_in(a, scope, every_cover)
    suggested = audit.suggestions(a, scope, every_series, cover, storms, meetings=limit)
    suggested = pd.DataFrame(
        {
            "Suggestion": suggested["action"],
            "For": suggested["what"],
            "Because": suggested["why"],
            "Hours back / week": suggested["hours_back_per_week"],
        }
    )
    cover_teams = (
        audit.cover_mail_by_team(cover, scope.groups)
        .groupby("team", as_index=False)[["cover_mails", "manager_hours"]]
        .sum()
    )
    cover_teams = cover_teams.rename(
        columns={"team": "Team", "cover_mails": "Emails copying the manager", "manager_hours": "Manager hours"}
    )
    storms_t = pd.DataFrame(
        {
            "Thread (tags)": storms["subject_tags"],
            "Large replies": storms["large_replies"],
            "Largest list": storms["largest_list"],
            "People": storms["people"],
            "People-minutes": storms["people_minutes"],
            "Hours back / week": storms["hours_back_per_week"],
        }
    ).head(limit)
    threads = audit.costly_threads(a, scope, limit=5)[["subject_tags", "messages", "people", "people_minutes"]]
    threads = threads.rename(
        columns={
            "subject_tags": "Thread (tags)",
            "messages": "Messages",
            "people": "People",
            "people_minutes": "People-minutes",
        }
    )
    parts = [
        _heading(f"Time wasters, {scope.weeks[0]} to {scope.weeks[-1]}", markdown),
        "",
        _table(shown, markdown),
        "",
        _heading("Admin by kind", markdown),
        "",
        _table(admin, markdown),
        "",
        _heading("Email load", markdown),
        "",
        _table(email, markdown),
        "",
        _heading("Internal threads costing the most", markdown),
        "",
        _table(threads, markdown),
        "",
        _heading("Reply-all storms", markdown),
        "",
        _table(storms_t, markdown),
        "",
        _heading("Cover-yourself mail: internal email copying the sender's manager", markdown),
        "",
        _table(cover_teams, markdown),
        "",
        _heading("Suggestions, most hours back first", markdown),
        "",
        _table(suggested, markdown),
        "",
    ]
    return "\n".join(parts)


def customers_text(a: Analysis, scope: audit.Scope, markdown: bool = False) -> str:
    contacts = audit.customer_contacts(a, scope)
    neglected = audit.neglected_customers(a, contacts)
    replies = audit.customer_replies(a, scope)
    waiting = audit.waiting_threads(replies)

    def day(v) -> str:
        return "never" if pd.isna(v) else pd.Timestamp(v).strftime("%Y-%m-%d")

    hours = pd.DataFrame(
        {
            "Customer": contacts["customer"],
            "Tier": contacts["tier"],
            "Owner": contacts["owner"],
            "Hours": contacts["hours"],
            "Last contact": contacts["last_contact"].map(day),
            "Days silent": contacts["days_silent"],
        }
    )
    limit = a.settings.audit.neglected_after_days
    neglected_t = pd.DataFrame(
        {
            "Customer": neglected["customer"],
            "Tier": neglected["tier"],
            "Owner": neglected["owner"],
            "Last contact": neglected["last_contact"].map(day),
            "Days silent": neglected["days_silent"],
        }
    )
    waiting_t = pd.DataFrame(
        {
            "Received": waiting["received_at"].map(day),
            "Customer": waiting["customer"],
            "From": waiting["sender"],
            "Held by": waiting["held_by"],
            "Working hours waiting": waiting["working_hours"],
        }
    )
    chat = customer_chat_waiting(a, scope)
    chat_t = pd.DataFrame(
        {
            "Since": chat["waiting_since"].map(day),
            "Customer": chat["customer"],
            "From": chat["sender"],
            "Messages": chat["messages"],
            "Working hours waiting": chat["working_hours"],
        }
    )
    answered = replies[replies["replied_at"].notna()]
    latency = (
        f"Replies to customers: {len(answered)}; median {answered['working_hours'].median():.1f} working hours, "
        f"90th percentile {answered['working_hours'].quantile(0.9):.1f}."
        if len(answered)
        else "No customer emails answered in the data (calendar-only data has no email figures)."
    )
    parts = [
        _heading("Customers", markdown),
        "",
        _table(hours, markdown),
        "",
        _heading(f"Neglected: no meeting or email for {limit} days or more", markdown),
        "",
        _table(neglected_t, markdown),
        "",
        _heading("Customer emails waiting for an answer, oldest first", markdown),
        "",
        _table(waiting_t, markdown),
        "",
        latency,
        "",
    ]
    if len(chat):
        parts += [
            _heading("Customer chat waiting for an answer, oldest first", markdown),
            "",
            _table(chat_t, markdown),
            "",
        ]
    return "\n".join(parts)
