"""DataFrame in, Plotly figure out. No Streamlit here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from timeaudit.outputs.figures import weekly_split_figure

__all__ = ["weekly_split_figure", "share_trend_figure", "team_share_figure"]


def _laid_out(fig: go.Figure, title: str, height: int, left: int = 40, **layout) -> go.Figure:
    """``fig`` in the dashboard's one look: the white template (timeaudit.outputs.figures makes
    it plotly's default), the margins every chart shares."""
    fig.update_layout(title=title, height=height, margin=dict(l=left, r=20, t=50, b=40), **layout)
    return fig


def share_trend_figure(
    frame: pd.DataFrame, by: str | None = None, target: float | None = None, title: str = "Customer share, per week"
) -> go.Figure:
    """Customer share per week: one line, or one line per ``by`` value."""
    fig = go.Figure()
    groups = [(title, frame)] if by is None else list(frame.groupby(by))
    for name, part in groups:
        fig.add_scatter(
            x=part["week"],
            y=part["customer_share"],
            mode="lines+markers",
            name=str(name),
            hovertemplate="%{x}: %{y:.0%}<extra>" + str(name) + "</extra>",
        )
    if target is not None:
        fig.add_hline(y=target, line_dash="dot", line_color="#888", annotation_text=f"target {target:.0%}")
    return _laid_out(fig, title, 320, yaxis_tickformat=".0%", yaxis_range=[0, 1], showlegend=by is not None)


def team_share_figure(teams: pd.DataFrame, week: str) -> go.Figure:
    """Customer share of every team for one week, side by side."""
    part = teams[teams["week"] == week].sort_values("customer_share", ascending=False)
    fig = go.Figure(
        go.Bar(
            x=part["team"],
            y=part["customer_share"],
            marker_color="#1b9e77",
            text=[f"{v:.0%}" for v in part["customer_share"]],
            textposition="outside",
            hovertemplate="%{x}: %{y:.0%}<extra></extra>",
        )
    )
    return _laid_out(fig, f"Customer share by team, {week}", 320, yaxis_tickformat=".0%", yaxis_range=[0, 1])


def top_series_figure(series: pd.DataFrame, limit: int = 10) -> go.Figure:
    """The costliest meetings and series, by person-hours (largest on top)."""
    part = series.head(limit).iloc[::-1]
    fig = go.Figure(
        go.Bar(
            x=part["person_hours"],
            y=part["title"],
            orientation="h",
            marker_color="#d95f02",
            customdata=part["action"],
            hovertemplate="%{y}: %{x:.1f} person-hours<br>suggestion: %{customdata}<extra></extra>",
        )
    )
    return _laid_out(
        fig,
        "Costliest internal meetings and series (person-hours)",
        80 + 28 * len(part),
        left=160,
        xaxis_title="person-hours",
    )


def admin_kind_figure(admin: pd.DataFrame) -> go.Figure:
    """Admin hours by kind, stacked per team."""
    fig = go.Figure()
    totals = admin.groupby(["team", "kind"], as_index=False)["hours"].sum()
    for kind, part in totals.groupby("kind"):
        fig.add_bar(x=part["team"], y=part["hours"].round(1), name=str(kind))
    return _laid_out(fig, "Admin hours by kind and team", 340, barmode="stack", yaxis_title="hours")


def fragmentation_figure(days: pd.DataFrame) -> go.Figure:
    """Focus hours against fragmented hours, per day (summed over the chosen people)."""
    per_day = days.groupby("day", as_index=False)[["focus_hours", "fragmented_hours"]].sum()
    fig = go.Figure()
    fig.add_bar(x=per_day["day"], y=per_day["focus_hours"].round(1), name="Focus", marker_color="#1f78b4")
    fig.add_bar(x=per_day["day"], y=per_day["fragmented_hours"].round(1), name="Fragmented", marker_color="#a6cee3")
    return _laid_out(fig, "Focus against fragmented time, per day", 320, barmode="stack", yaxis_title="hours")


def customer_hours_figure(contacts: pd.DataFrame) -> go.Figure:
    """Hours per customer (meetings plus estimated email) over the chosen period."""
    part = contacts.sort_values("hours")
    fig = go.Figure()
    fig.add_bar(
        y=part["customer"], x=part["meeting_hours"].round(1), name="Meetings", orientation="h", marker_color="#1b9e77"
    )
    fig.add_bar(
        y=part["customer"], x=part["email_hours"].round(1), name="Email", orientation="h", marker_color="#66c2a5"
    )
    return _laid_out(fig, "Hours per customer", 80 + 26 * len(part), left=160, barmode="stack", xaxis_title="hours")


def latency_figure(latency: pd.DataFrame) -> go.Figure:
    """Median and 90th-percentile reply time to customers in working hours, per team and week."""
    fig = go.Figure()
    for team, part in latency.groupby("team"):
        fig.add_scatter(x=part["week"], y=part["median_hours"], mode="lines+markers", name=f"{team} median")
        fig.add_scatter(x=part["week"], y=part["p90_hours"], mode="lines", line_dash="dot", name=f"{team} 90th pct")
    return _laid_out(fig, "Reply time to customers (working hours)", 340, yaxis_title="working hours")
