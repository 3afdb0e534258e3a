"""My week: one person's split of hours, their customer share and their costliest meetings."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.widgets import chart, csv_download, goal_status, hours, pct, summary_downloads, week_picker
from timeaudit.analysis.goals import check_goals
from timeaudit.core.weeks import weeks_ending
from timeaudit.outputs.summary import headline_figures, sum_weeks
from timeaudit.privacy import HIDDEN

TREND_WEEKS = 13
SHARE_HELP = (
    "Change against the previous 4 weeks. Share = (customer meetings + customer email) / "
    "(customer meetings + internal meetings + admin + email)"
)


def show() -> None:
    st.title("My week")
    weekly = data.load_or_explain()
    if weekly is None:
        return
    people = weekly.drop_duplicates("person").sort_values("name")
    labels = {r.person: f"{r.name} ({r.team})" if r.name != r.person else r.person for r in people.itertuples()}
    left, right = st.columns(2)
    with left:
        person = st.selectbox("Person", list(labels), format_func=labels.get, key="person")
    with right:
        week = week_picker(list(weekly["week"].unique()), data.default_week(list(weekly["week"].unique())), "week")
    mine = weekly[weekly["person"] == person]
    span = [w for w in weeks_ending(week, TREND_WEEKS) if w >= mine["week"].min()]
    trend = sum_weeks(mine[mine["week"].isin(span)], span)
    figures = headline_figures(trend)

    cols = st.columns(6)
    change = figures["Change"]
    cols[0].metric(
        "Customer share",
        pct(figures["Customer share"]),
        delta=None if change != change else f"{change * 100:+.1f} pts",
        help=SHARE_HELP,
    )
    cols[1].metric(
        "With customers",
        hours(figures["Customer meetings"] + figures["Customer email"]),
        help="Customer meetings plus estimated customer email",
    )
    cols[2].metric("Internal meetings", hours(figures["Internal meetings"]))
    cols[3].metric("Admin", hours(figures["Admin"]))
    cols[4].metric(
        "Email",
        hours(figures["Customer email"] + figures["Internal email"]),
        help=data.settings().rules.email_cost_text(),
    )
    gap = data.settings().rules.focus_gap_text()
    cols[5].metric("Focus", hours(figures["Focus"]), help=f"Focus blocks plus free gaps of {gap} or more")

    cover = data.cover_mail_of(person)
    this_week = cover[cover["week"] == week]
    recent = cover[cover["week"].isin(span)]
    manager = this_week["manager"].iloc[0] if len(this_week) else ""
    left, right = st.columns(2)
    left.metric(
        "Emails copying your manager",
        int(this_week["cover_mails"].sum()),
        help="Internal emails you sent with your manager on Cc but not on To: often sent to stay covered. "
        f"{int(recent['cover_mails'].sum())} since {span[0]}.",
    )
    right.metric(
        "Your manager's time reading them",
        f"{this_week['manager_hours'].sum() * 60:.0f} min",
        help=f"{data.settings().rules.email_minutes_per_read * 60:g} s per email"
        + (f" ({manager})" if manager and manager != HIDDEN else ""),
    )

    chart(
        charts.weekly_split_figure(trend, f"Hours by category, {span[0]} to {week}"),
        key="split",
    )
    goals = data.settings().goals_for(mine["team"].iloc[0])
    chart(charts.share_trend_figure(trend, target=goals.customer_share), key="share")
    st.subheader("This week against your team's goals")
    goal_status(check_goals(goals, trend.iloc[-1], 1), key="my-goals")
    if goals.reply_p90_hours is not None or goals.max_wait_hours is not None:
        st.caption(
            "The reply-time goals are counted per team: see the Team page's Goals tab, or your team lead's "
            "weekly digest."
        )
    chart(charts.goals_figure(trend, goals, "Your hours against the goals"), key="goals")

    st.subheader("Most expensive internal meetings this week")
    top = data.meetings(person, [week])
    if top.empty:
        st.write("No internal meetings this week.")
    else:
        st.dataframe(
            top.rename(
                columns={
                    "start_local": "When",
                    "title": "Meeting (title tags)",
                    "minutes": "Minutes",
                    "attendee_count": "People",
                    "person_hours": "Person-hours",
                    "reason": "Why it counts",
                    "flags": "Flags",
                }
            ).drop(columns=["week"]),
            hide_index=True,
            width="stretch",
            column_config={"Person-hours": st.column_config.NumberColumn(format="%.1f")},
        )
    with st.expander("Why these numbers: every event of the week and the rule that classified it"):
        st.dataframe(
            data.reasons(person, week).rename(
                columns={
                    "start_local": "When",
                    "minutes": "Minutes",
                    "title": "Title tags",
                    "category": "Category",
                    "reason": "Reason",
                }
            ),
            hide_index=True,
            width="stretch",
        )
    _chat(person, week)
    csv_download(mine[mine["week"].isin(span)], f"timeaudit-{person}-{week}.csv", "download-person")
    summary_downloads("person-summary", week, person=person)


def _chat(person: str, week: str) -> None:
    """The week's chat: its estimated hours, the customer part, and the focus it interrupted."""
    chat = data.chat()
    row = chat[(chat["person"] == person) & (chat["week"] == week)]
    if row.empty or not (row["chats_sent"].iloc[0] or row["chats_read"].iloc[0]):
        return
    row = row.iloc[0]
    rules = data.settings().rules
    st.subheader("Chat this week")
    cols = st.columns(4)
    cols[0].metric(
        "Chat",
        hours(row["chat_hours"]),
        help=f"{rules.chat_minutes_per_sent:g} min per message sent, {rules.chat_minutes_per_read:g} min per "
        "message read in conversations you wrote in",
    )
    cols[1].metric(
        "Chat with customers", hours(row["customer_chat_hours"]), help="Slack Connect and DMs with customers"
    )
    cols[2].metric(
        "Interruptions",
        int(row["interruptions"]),
        help=f"Messages that came in during focus time and that you answered within "
        f"{rules.interruption_reply_minutes:g} minutes",
    )
    cols[3].metric(
        "Focus lost to refocusing",
        hours(row["refocus_hours"]),
        help=f"{rules.refocus_minutes:g} min per interruption, at most what was left of the focus block",
    )


if __name__ == "__main__":
    show()
