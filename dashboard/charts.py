"""DataFrame in, Plotly figure out. No Streamlit here."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from timeaudit.figures import weekly_split_figure

__all__ = ["weekly_split_figure", "share_trend_figure", "team_share_figure"]


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
    fig.update_layout(
        title=title,
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1],
        template="plotly_white",
        height=320,
        margin=dict(l=40, r=20, t=50, b=40),
        showlegend=by is not None,
    )
    return fig


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
    fig.update_layout(
        title=f"Customer share by team, {week}",
        yaxis_tickformat=".0%",
        yaxis_range=[0, 1],
        template="plotly_white",
        height=320,
        margin=dict(l=40, r=20, t=50, b=40),
    )
    return fig
