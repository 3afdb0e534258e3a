"""Team: weekly hours by category over time, and customer share per team side by side."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.widgets import chart, csv_download, goal_status, pct, summary_downloads, week_picker
from timeaudit.analysis.goals import check_goals
from timeaudit.core.errors import UserError

CHARTS = ["Hours by category", "Customer share by team", "Customer share over time", "Goals"]


def pooled_as(pool: str) -> str:
    return f" as “{pool}”" if pool else ""


def show() -> None:
    st.title("Team")
    if data.load_or_explain() is None:
        return
    settings = data.settings()
    min_group = settings.privacy.min_group_size
    teams = data.teams()
    hidden = teams.attrs["hidden_teams"]
    if hidden:
        names = ", ".join(f"{t} ({n} people)" for t, n in sorted(hidden.items()))
        st.warning(
            f"Hidden: {names}. Team figures are shown only for teams of at least {min_group} people; "
            f"smaller teams are counted together{pooled_as(teams.attrs['pool'])} (with the next smallest "
            "team while that is still too few), so nobody's own hours can be read from them or from the totals."
        )
    names = teams.attrs["shown_teams"]
    if teams.empty or not names:
        st.info(f"No team has at least {min_group} people, so there is nothing to show here.")
        return
    weeks = sorted(teams["week"].unique())
    left, right = st.columns(2)
    with left:
        team = st.selectbox("Team", names, key="team")
    with right:
        week = week_picker(weeks, data.default_week(weeks), "team-week")
    mine = teams[(teams["team"] == team) & (teams["week"] <= week)]
    now = mine[mine["week"] == week]
    if not now.empty:
        row = now.iloc[0]
        cols = st.columns(4)
        cols[0].metric("Customer share", pct(row["customer_share"]))
        cols[1].metric("People", int(row["people"]))
        cols[2].metric("With customers", f"{row['customer_meeting_hours'] + row['customer_email_hours']:.1f} h")
        cols[3].metric("Meetings and admin", f"{row['internal_meeting_hours'] + row['admin_hours']:.1f} h")
        cover = data.team_cover_mail(team)
        cover = cover[cover["week"] == week]
        left, right = st.columns(2)
        left.metric(
            "Emails copying the sender's manager",
            int(cover["cover_mails"].sum()),
            help="Internal emails the team sent with the sender's own manager on Cc but not on To",
        )
        right.metric(
            "Managers' time reading them",
            f"{cover['manager_hours'].sum():.1f} h",
            help=f"{settings.rules.email_minutes_per_read * 60:g} s per email",
        )
    goals = settings.goals_for(team)
    _chat(team, week)
    # One chart at a time: only the open tab's chart is made and drawn, so the page is quick
    # to show; another tab reruns the page for its own.
    split, others, trend, goal_tab = st.tabs(CHARTS, key="team-chart", on_change="rerun")
    if split.open:
        with split:
            chart(
                charts.weekly_split_figure(mine, f"{team}: hours by category, per week"),
                key="team-split",
            )
    if others.open:
        with others:
            chart(charts.team_share_figure(teams, week), key="team-share")
    if trend.open:
        with trend:
            chart(
                charts.share_trend_figure(
                    teams[teams["week"] <= week],
                    by="team",
                    target=settings.goals_for(None).customer_share,
                    title="Customer share per team, per week",
                ),
                key="team-trend",
            )
    if goal_tab.open:
        with goal_tab:
            show_goals(team, week, mine, goals)
    csv_download(teams[teams["week"] == week], f"timeaudit-teams-{week}.csv", "download-teams")
    summary_downloads("team-summary", week, team=team)


def show_goals(team: str, week: str, mine, goals) -> None:
    """The team's week against its goals (reply times included: they need the week's audit,
    so only this tab computes them), and the hour goals per person, week by week."""
    try:
        checks = data.summary(week, team=team).goals
    except UserError as e:
        st.caption(f"Reply-time goals are not shown: {e}")
        row = mine[mine["week"] == week]
        checks = check_goals(goals, row.iloc[0], int(row.iloc[0]["people"])) if len(row) else []
    goal_status(checks, key="team-goals")
    chart(
        charts.share_trend_figure(mine, target=goals.customer_share, title=f"{team}: customer share, per week"),
        key="team-goal-share",
    )
    chart(charts.goals_figure(mine, goals, f"{team}: hours per person against the goals"), key="team-goal-hours")


def _chat(team: str, week: str) -> None:
    """The team's chat in the week (through the same privacy gate as the other team figures)."""
    chat = data.teams_chat()
    row = chat[(chat["team"] == team) & (chat["week"] == week)]
    if row.empty or not row["chat_hours"].iloc[0]:
        return
    row = row.iloc[0]
    cols = st.columns(4)
    cols[0].metric("Chat", f"{row['chat_hours']:.1f} h", help="Estimated from messages sent and read")
    cols[1].metric("Chat with customers", f"{row['customer_chat_hours']:.1f} h")
    cols[2].metric("Interruptions of focus", int(row["interruptions"]), help="Reflex replies to chat during focus time")
    cols[3].metric("Focus lost to refocusing", f"{row['refocus_hours']:.1f} h")


if __name__ == "__main__":
    show()
