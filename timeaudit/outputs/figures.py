"""Plotly figures shared by the dashboard and the exports: DataFrame in, figure out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from timeaudit.analysis.goals import PER_PERSON
from timeaudit.analysis.metrics import CATEGORY_COLOURS, CATEGORY_COLUMNS
from timeaudit.core.config import GoalValues


def laid_out(fig: go.Figure, title: str, height: int, left: int = 40, **layout) -> go.Figure:
    """``fig`` in the product's one look: the white template (plotly's default, set below), the
    margins every chart shares."""
    fig.update_layout(title=title, height=height, margin=dict(l=left, r=20, t=50, b=40), **layout)
    return fig


# Every figure's look, as plotly's default: naming the template in each figure's layout costs
# some 70 ms a figure (plotly validates a copy of it each time), as the default a few.
pio.templates.default = "plotly_white"


def weekly_split_figure(weekly: pd.DataFrame, title: str = "Hours by category, per week") -> go.Figure:
    """Stacked bars of hours per category for each week (one colour per category)."""
    fig = go.Figure()
    for label, column in CATEGORY_COLUMNS.items():
        fig.add_bar(
            x=weekly["week"],
            y=weekly[column].round(1),
            name=label,
            marker_color=CATEGORY_COLOURS[label],
            hovertemplate=f"{label}: %{{y:.1f}} h<extra>%{{x}}</extra>",
        )
    fig.update_layout(
        barmode="stack",
        title=title,
        yaxis_title="hours",
        xaxis_title=None,
        legend_title=None,
        margin=dict(l=40, r=20, t=50, b=40),
        height=380,
    )
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
        fig.add_hline(y=target, line_dash="dot", line_color="#888", annotation_text=f"goal {target:.0%}")
    return laid_out(fig, title, 320, yaxis_tickformat=".0%", yaxis_range=[0, 1], showlegend=by is not None)


CATEGORY_NAMES = {column: label for label, column in CATEGORY_COLUMNS.items()}
GOAL_COLOURS = {
    "meeting_hours": CATEGORY_COLOURS["Internal meetings"],
    "admin_hours": CATEGORY_COLOURS["Admin"],
    "focus_hours": CATEGORY_COLOURS["Focus"],
}


def goals_figure(
    weekly: pd.DataFrame, goals: GoalValues, title: str = "Hours per person against the goals"
) -> go.Figure:
    """Internal meeting, admin and focus hours per person per week (``weekly``: summed hours
    and ``people`` per week), each with its goal as a dotted line of the same colour."""
    fig = go.Figure()
    people = weekly["people"].clip(lower=1) if "people" in weekly else 1
    for key, goal in PER_PERSON.items():
        colour = GOAL_COLOURS[key]
        fig.add_scatter(
            x=weekly["week"],
            y=(weekly[goal.column] / people).round(1),
            mode="lines+markers",
            name=CATEGORY_NAMES[goal.column],
            line_color=colour,
            hovertemplate=f"{CATEGORY_NAMES[goal.column]}: %{{y:.1f}} h per person<extra>%{{x}}</extra>",
        )
        target = getattr(goals, key)
        if target is not None:
            word = "at most" if goal.at_most else "at least"
            fig.add_hline(
                y=target,
                line_dash="dot",
                line_color=colour,
                annotation_text=f"{goal.label}: {word} {target:g} h",
                annotation_font_color=colour,
            )
    return laid_out(
        fig,
        title,
        360,
        yaxis_title="hours per person",
        yaxis_rangemode="tozero",
        legend=dict(orientation="h", yanchor="top", y=-0.25, x=0),
    )
