"""Plotly figures shared by the dashboard and the exports: DataFrame in, figure out."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from timeaudit.analysis.metrics import CATEGORY_COLOURS, CATEGORY_COLUMNS

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
