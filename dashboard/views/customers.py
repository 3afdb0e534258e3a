"""Customers: time with each customer, the neglected ones, and the replies they wait for."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, data
from dashboard.widgets import audit_page, chart, csv_download, summary_downloads


def show() -> None:
    page = audit_page("Customers", "customers")
    if page is None:
        return
    _, settings, weeks, team, tables = page
    contacts, neglected, waiting = tables["contacts"], tables["neglected"], tables["waiting"]
    if contacts.empty:
        st.info("No customers configured: add [[customers]] with their domains to timeaudit.toml.")
        return
    chat_waiting = tables["chat_waiting"]
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Hours with customers", f"{contacts['hours'].sum():.1f} h")
    c2.metric(
        "Neglected customers",
        len(neglected),
        help=f"No meeting or email for {settings.audit.neglected_after_days} days or more",
    )
    c3.metric("Emails waiting for an answer", len(waiting))
    c4.metric(
        "Chats waiting for an answer",
        len(chat_waiting),
        help="Conversations shared with a customer (Slack Connect, DMs) whose newest customer message has no reply",
    )
    chart(charts.customer_hours_figure(contacts), key="customer-hours")

    st.subheader(f"Neglected: no meeting or email for {settings.audit.neglected_after_days} days or more")
    if neglected.empty:
        st.success("Every customer heard from us recently.")
    else:
        st.dataframe(
            neglected[["customer", "tier", "owner", "last_contact", "days_silent"]].rename(
                columns={
                    "customer": "Customer",
                    "tier": "Tier",
                    "owner": "Owner",
                    "last_contact": "Last contact",
                    "days_silent": "Days silent",
                }
            ),
            hide_index=True,
            width="stretch",
        )

    st.subheader("Waiting for an answer, oldest first")
    if tables["replies"].empty:
        st.info("No customer email in the data (calendar-only sources), so reply times cannot be shown.")
    elif waiting.empty:
        st.success("No customer email is waiting for an answer.")
    else:
        st.dataframe(
            waiting.rename(
                columns={
                    "received_at": "Received",
                    "customer": "Customer",
                    "sender": "From",
                    "held_by": "Held by",
                    "working_hours": "Working hours waiting",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Working hours waiting": st.column_config.NumberColumn(format="%.1f")},
        )
    if not chat_waiting.empty:
        st.subheader("Customer chat waiting for an answer, oldest first")
        st.dataframe(
            chat_waiting[
                ["waiting_since", "customer", "sender", "conversation_kind", "messages", "working_hours"]
            ].rename(
                columns={
                    "waiting_since": "Since",
                    "customer": "Customer",
                    "sender": "From",
                    "conversation_kind": "Where",
                    "messages": "Messages",
                    "working_hours": "Working hours waiting",
                }
            ),
            hide_index=True,
            width="stretch",
            column_config={"Working hours waiting": st.column_config.NumberColumn(format="%.1f")},
        )
    if not tables["latency"].empty:
        chart(charts.latency_figure(tables["latency"]), key="latency")
        with st.expander("Reply times per person (working hours)"):
            people = (
                tables["latency_people"]
                .groupby("person", as_index=False)
                .agg(
                    replies=("replies", "sum"), median_hours=("median_hours", "median"), p90_hours=("p90_hours", "max")
                )
            )
            st.dataframe(
                people.rename(
                    columns={
                        "person": "Person",
                        "replies": "Replies",
                        "median_hours": "Median of weekly medians",
                        "p90_hours": "Worst weekly 90th percentile",
                    }
                ).round(1),
                hide_index=True,
                width="stretch",
            )
        with st.expander("Every customer email and its reply"):
            _customer_emails(tables["replies"], weeks)

    _shared_mailboxes(tables["shared"], settings)

    st.subheader("Customer share against the target")
    teams = data.teams()
    if team:
        teams = teams[teams["team"] == team]
    chart(
        charts.share_trend_figure(
            teams, by="team", target=settings.audit.target_customer_share, title="Customer share per team, per week"
        ),
        key="customer-share",
    )
    with st.expander("All customers: last contact, owner, hours"):
        st.dataframe(contacts.drop(columns=["position"]), hide_index=True, width="stretch")
    csv_download(contacts.drop(columns=["position"]), f"timeaudit-customers-{weeks[-1]}.csv", "download-customers")
    summary_downloads("customers-summary", weeks[-1], team=team)


SHOWN_EMAILS = 1_000  # of one customer's emails, drawn at once; their CSV holds them all


def _customer_emails(replies, weeks: list[str]) -> None:
    """Every customer email and its reply, one customer at a time, newest first. At 1,000 people
    the whole table is some 270,000 rows (a year of them): handed to Streamlit on every page
    run it was 70 MB serialised, kept in memory for each session, and slowed the page's charts."""
    customers = sorted(replies["customer"].dropna().unique())
    customer = st.selectbox(
        "Customer", customers, index=None, placeholder="Pick a customer to list its emails", key="customer-emails"
    )
    if customer is None:
        st.caption(f"{len(replies):,} customer emails with their replies, from {len(customers)} customers.")
        return
    theirs = replies[replies["customer"] == customer].sort_values("received_at", ascending=False)
    st.dataframe(theirs.head(SHOWN_EMAILS), hide_index=True, width="stretch")
    if len(theirs) > SHOWN_EMAILS:
        st.caption(f"The newest {SHOWN_EMAILS:,} of {len(theirs):,}: the CSV holds them all.")
    name = f"timeaudit-emails-{customer}-{weeks[-1]}.csv".replace(" ", "-")
    csv_download(theirs, name, "download-customer-emails")


def _shared_mailboxes(shared, settings) -> None:
    """Customer emails waiting and reply times per shared mailbox (support@, sales@...)."""
    if not settings.shared_mailboxes:
        return
    st.subheader("Shared mailboxes")
    if shared.empty:
        st.info("No customer email reached the shared mailboxes in this period.")
        return
    st.dataframe(
        shared.rename(
            columns={
                "mailbox": "Mailbox",
                "team": "Team",
                "received": "Customer emails",
                "waiting": "Waiting",
                "oldest_waiting_hours": "Oldest waiting (hours)",
                "median_hours": "Median to reply (hours)",
                "p90_hours": "90th percentile (hours)",
            }
        ).round(1),
        hide_index=True,
        width="stretch",
    )


if __name__ == "__main__":
    show()
