"""Time wasters: the meetings, admin and email that cost the most, with what to do about them."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.widgets import audit_page, chart, csv_download, pct, summary_downloads
from timeaudit.analysis.audit import what_if


def show() -> None:
    page = audit_page("Time wasters", "wasters")
    if page is None:
        return
    weekly, settings, weeks, team, tables = page
    series = tables["series"]
    st.caption(f"{weeks[0]} to {weeks[-1]}, {team or 'everyone'}. Person-hours count each attendee's time once.")
    if series.empty:
        st.info("No internal meetings in this period.")
        return
    chart(charts.top_series_figure(series), key="top-series")
    shown = series.head(15).rename(
        columns={
            "label": "Meeting (title tags)",
            "occurrences": "Times",
            "minutes": "Minutes",
            "attendees": "People",
            "person_hours": "Person-hours",
            "cost": f"Cost ({settings.audit.currency})",
            "flags": "Flags",
            "action": "Suggestion",
            "why": "Because",
            "goal": "Serves goal",
            "hours_back_per_week": "Hours back / week",
        }
    )
    st.dataframe(
        shown[
            [
                "Meeting (title tags)",
                "Times",
                "Minutes",
                "People",
                "Person-hours",
                f"Cost ({settings.audit.currency})",
                "Flags",
                "Suggestion",
                "Because",
                "Serves goal",
                "Hours back / week",
            ]
        ],
        hide_index=True,
        width="stretch",
        column_config={
            c: st.column_config.NumberColumn(format="%.1f")
            for c in ("Minutes", "Person-hours", f"Cost ({settings.audit.currency})", "Hours back / week")
        },
    )

    st.subheader("Every suggestion, most hours back first")
    st.caption("The meetings' suggestions above, and the email habits below: cover-yourself mail and reply-all storms.")
    st.dataframe(
        tables["suggestions"].rename(
            columns={
                "kind": "About",
                "what": "What",
                "action": "Suggestion",
                "why": "Because",
                "hours_back_per_week": "Hours back / week",
            }
        ),
        hide_index=True,
        width="stretch",
        column_config={"Hours back / week": st.column_config.NumberColumn(format="%.2f")},
    )

    st.subheader("What if we followed the suggestions?")
    options = list(series.head(15)["series_key"])
    labels = dict(zip(series["series_key"], series["label"] + " — " + series["action"], strict=False))
    chosen = st.multiselect("Apply the suggestion for", options, format_func=labels.get, key="what-if")
    result = what_if(data.group_weekly(team), series, chosen, weeks)
    c1, c2, c3 = st.columns(3)
    c1.metric("Customer share now", pct(result["before"]))
    c2.metric(
        "Customer share after",
        pct(result["after"]),
        delta=None if not chosen else f"{(result['after'] - result['before']) * 100:+.1f} pts",
    )
    c3.metric("Hours back per week", f"{result['hours_back_per_week']:.1f} h")

    with st.expander("The meetings behind a series"):
        pick = st.selectbox("Series", options, format_func=labels.get, key="series-detail")
        occ = tables["occurrences"]
        st.dataframe(occ[occ["series_key"] == pick].drop(columns=["series_key"]), hide_index=True, width="stretch")

    st.subheader("Admin by kind")
    if tables["admin"].empty:
        st.write("No admin time in this period.")
    else:
        chart(charts.admin_kind_figure(tables["admin"]), key="admin")
        st.caption(
            "Keyword rules: " + "; ".join(f"{k}: {', '.join(v)}" for k, v in settings.rules.admin_keywords.items())
        )
    st.subheader("Email load")
    group = data.group_weekly(team)
    load = group[group["week"].isin(weeks)]
    per_team = load.groupby("team", as_index=False)[
        ["cc_only_email_hours", "internal_email_hours", "bulk_email_hours", "after_hours_email_hours"]
    ].sum()
    st.dataframe(
        per_team.rename(
            columns={
                "team": "Team",
                "cc_only_email_hours": "Cc-only (h)",
                "internal_email_hours": "Internal (h)",
                "bulk_email_hours": "Bulk (h)",
                "after_hours_email_hours": "Sent after hours (h)",
            }
        ).round(1),
        hide_index=True,
        width="stretch",
    )
    mine = weekly[weekly["week"].isin(weeks) & ((weekly["team"] == team) if team else True)]
    per_person = mine.groupby(["name", "team"], as_index=False)[
        ["cc_only_email_hours", "internal_email_hours", "bulk_email_hours", "after_hours_email_hours"]
    ].sum()
    with st.expander("Email load per person"):
        st.dataframe(
            per_person.sort_values("internal_email_hours", ascending=False).round(1), hide_index=True, width="stretch"
        )
    st.caption("Internal threads that cost the most people-minutes")
    st.dataframe(
        tables["threads"][["subject_tags", "messages", "people", "cc_copies", "people_minutes"]]
        .rename(
            columns={
                "subject_tags": "Thread (subject tags)",
                "messages": "Messages",
                "people": "People",
                "cc_copies": "Cc copies",
                "people_minutes": "People-minutes",
            }
        )
        .round(1),
        hide_index=True,
        width="stretch",
    )
    rules = settings.rules
    st.subheader("Reply-all storms")
    st.caption(
        f"Internal threads with {rules.storm_min_replies} or more replies that each went to "
        f"{rules.storm_min_recipients} or more people, by people-minutes. Hours back: the reading saved had each "
        "reply gone only to the person it answers."
    )
    storms = tables["storms"]
    if storms.empty:
        st.write("No reply-all storms in this period.")
    else:
        st.dataframe(
            storms[["subject_tags", "large_replies", "largest_list", "people", "people_minutes", "hours_back_per_week"]]
            .rename(
                columns={
                    "subject_tags": "Thread (subject tags)",
                    "large_replies": "Replies to many",
                    "largest_list": "Largest list",
                    "people": "People",
                    "people_minutes": "People-minutes",
                    "hours_back_per_week": "Hours back / week",
                }
            )
            .round(2),
            hide_index=True,
            width="stretch",
        )
    st.subheader("Cover-yourself mail")
    st.caption(
        "Internal email sent with the sender's own manager on Cc but not on To, and the time the managers spend "
        f"reading it ({rules.email_minutes_per_read * 60:g} s each)."
    )
    cover_teams = tables["cover_teams"].groupby("team", as_index=False)[["cover_mails", "manager_hours"]].sum()
    st.dataframe(
        cover_teams.rename(
            columns={"team": "Team", "cover_mails": "Emails copying the manager", "manager_hours": "Managers' hours"}
        ).round(2),
        hide_index=True,
        width="stretch",
    )
    if not tables["cover"].empty:
        with st.expander("Cover-yourself mail per person"):
            per_person = (
                tables["cover"]
                .groupby(["person", "manager", "team"], as_index=False)[["cover_mails", "manager_hours"]]
                .sum()
            )
            st.dataframe(
                per_person.sort_values("cover_mails", ascending=False).round(2), hide_index=True, width="stretch"
            )
    _chat(series, weeks, team)
    st.subheader("Fragmentation")
    chart(charts.fragmentation_figure(tables["fragmentation"]), key="fragmentation")
    csv_download(series, f"timeaudit-wasters-{weeks[-1]}.csv", "download-wasters")
    summary_downloads("wasters-summary", weeks[-1], team=team)


def _chat(series, weeks: list[str], team: str | None) -> None:
    """Internal chat and the focus it interrupted, per team, and where it ranks among the
    recurring meetings by person-hours."""
    chat = data.teams_chat()
    chat = chat[chat["week"].isin(weeks) & ((chat["team"] == team) if team else True)]
    if chat.empty or not chat["chat_hours"].sum():
        return
    st.subheader("Chat")
    cost = chat["internal_chat_hours"].sum() + chat["refocus_hours"].sum()
    rank = int((series["person_hours"] > cost).sum()) + 1
    st.caption(
        f"Internal chat and the focus it interrupted cost {cost:.1f} person-hours in this period: "
        + (f"as much as the #{rank} meeting series." if rank <= len(series) else "less than any meeting series.")
    )
    per_team = chat.groupby("team", as_index=False)[
        ["internal_chat_hours", "customer_chat_hours", "interruptions", "refocus_hours"]
    ].sum()
    st.dataframe(
        per_team.rename(
            columns={
                "team": "Team",
                "internal_chat_hours": "Internal chat (h)",
                "customer_chat_hours": "Customer chat (h)",
                "interruptions": "Interruptions of focus",
                "refocus_hours": "Focus lost (h)",
            }
        ).round(1),
        hide_index=True,
        width="stretch",
    )


if __name__ == "__main__":
    show()
