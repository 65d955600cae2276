"""A sweep's runs overlaid: one colour per setting, one line per seed (no Streamlit here)."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from core.runs.sweep import SweepSummary
from dashboard.figures.training import COLORS, LAYOUT, LEGEND_ACCURACY, series

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def sweep_accuracy_figure(summary: SweepSummary, frames: dict[int, pd.DataFrame]) -> go.Figure:
    """Test accuracy per epoch of every run of the sweep (`frames`: run id -> its metric rows).
    Runs of one setting share a colour, so the spread between seeds (noise) shows beside the gap
    between settings (effect); the best setting's lines are drawn thicker."""
    fig = go.Figure()
    for i, row in enumerate(summary.rows):
        color = COLORS[i % len(COLORS)]
        for j, run in enumerate(row.runs):
            test = series(frames.get(run.id, pd.DataFrame(columns=["name", "epoch", "value"])), "epoch_test_acc")
            if test.empty:
                continue
            name = html.escape(f"{row.label} · seed {run.config.seed}", quote=False)
            fig.add_scatter(x=test["epoch"], y=100 * test["value"], mode="lines+markers", name=name,
                            legendgroup=row.label, line=dict(color=color, width=4 if row.is_best else 2,
                                                            dash=DASHES[j % len(DASHES)]))
    fig.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    fig.update_layout(title_text="Test accuracy per epoch: a colour per setting, a line per seed")
    fig.update_xaxes(title_text="epoch", dtick=1, rangemode="tozero")
    fig.update_yaxes(title_text="accuracy (%)", range=[0, 100])
    return fig
