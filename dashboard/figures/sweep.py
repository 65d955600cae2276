"""A sweep's runs overlaid: one colour per setting, one line per seed (no Streamlit here)."""
from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go

from core.i18n import DEFAULT_LANGUAGE, t
from core.runs.sweep import SweepSummary
from dashboard.figures.training import COLORS, LAYOUT, LEGEND_ACCURACY, series

DASHES = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")


def sweep_accuracy_figure(summary: SweepSummary, frames: dict[int, pd.DataFrame],
                          lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Test accuracy per epoch of every run of the sweep (`frames`: run id -> its metric rows), with
    its words in `lang`. Runs of one setting share a colour, so the spread between seeds (noise)
    shows beside the gap between settings (effect); the best setting's lines are drawn thicker."""
    fig = go.Figure()
    for i, row in enumerate(summary.rows):
        color = COLORS[i % len(COLORS)]
        label = row.label if row.setting else t("training.sweep.all_runs", lang)
        for j, run in enumerate(row.runs):
            test = series(frames.get(run.id, pd.DataFrame(columns=["name", "epoch", "value"])), "epoch_test_acc")
            if test.empty:
                continue
            name = html.escape(t("training.sweep.chart_trace", lang, setting=label, seed=run.config.seed), quote=False)
            fig.add_scatter(x=test["epoch"], y=100 * test["value"], mode="lines+markers", name=name,
                            legendgroup=row.label, line=dict(color=color, width=4 if row.is_best else 2,
                                                            dash=DASHES[j % len(DASHES)]),
                            hovertemplate=t("training.sweep.chart_hover", lang) + "<extra>" + name + "</extra>")
    fig.update_layout(**LAYOUT, legend=LEGEND_ACCURACY)
    fig.update_layout(title_text=t("training.sweep.chart_title", lang))
    fig.update_xaxes(title_text=t("training.sweep.chart_x", lang), dtick=1, rangemode="tozero")
    fig.update_yaxes(title_text=t("training.sweep.chart_y", lang), range=[0, 100])
    return fig
