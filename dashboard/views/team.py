"""Team: weekly hours by category over time, and customer share per team side by side."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.widgets import chart, csv_download, pct, summary_downloads, week_picker

CHARTS = ["Hours by category", "Customer share by team", "Customer share over time"]


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
    _chat(team, week)
    # One chart at a time: only the open tab's chart is made and drawn, so the page is quick
    # to show; another tab reruns the page for its own.
    split, others, trend = st.tabs(CHARTS, key="team-chart", on_change="rerun")
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
                    target=settings.audit.target_customer_share,
                    title="Customer share per team, per week",
                ),
                key="team-trend",
            )
    csv_download(teams[teams["week"] == week], f"timeaudit-teams-{week}.csv", "download-teams")
    summary_downloads("team-summary", week, team=team)


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
