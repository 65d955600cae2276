"""Figures of the one-batch walkthrough (core.train.walkthrough): the 3,072-long input vector, the
batch's values before and after Normalize, one image's scores and probabilities, and the size of
each parameter's gradient and update.

Every word a figure shows (titles, axes, legends, hover text) comes from the catalogues
(core/i18n, keys walkthrough.fig.*) in the language passed as `lang`.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.i18n import t
from core.train.walkthrough import ParamStep

FONT = dict(size=13)
CHANNELS = ("red", "green", "blue")
CHANNEL_COLOURS = ("#dc2626", "#16a34a", "#2563eb")


def _channel(c: int, lang: str) -> str:
    return t(f"walkthrough.channel.{CHANNELS[c]}", lang)


def input_vector(vector: np.ndarray, *, lang: str = "en", height: int = 260) -> go.Figure:
    """The model's input for one image: 3,072 numbers, red channel first, then green, then blue."""
    n = len(vector) // 3
    fig = go.Figure()
    for c, colour in enumerate(CHANNEL_COLOURS):
        xs = np.arange(c * n, (c + 1) * n)
        fig.add_trace(go.Scattergl(
            x=xs, y=vector[c * n:(c + 1) * n], mode="lines", name=t("walkthrough.fig.channel_trace", lang,
                                                                     channel=_channel(c, lang)),
            line=dict(color=colour, width=1),
            hovertemplate=t("walkthrough.fig.vector_hover", lang) + "<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=30, b=40), font=FONT, plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0), hovermode="closest",
                      xaxis=dict(title=t("walkthrough.fig.vector_x", lang), gridcolor="#eee"),
                      yaxis=dict(title=t("walkthrough.fig.vector_y", lang), gridcolor="#eee", zeroline=True,
                                 zerolinecolor="#bbb"))
    return fig


def value_histograms(scaled: np.ndarray, normalized: np.ndarray, *, lang: str = "en", height: int = 280,
                     bins: int = 40) -> go.Figure:
    """How the batch's values spread, per channel: after ToTensor (0 to 1, left) and after Normalize
    (centred near 0, right). Arrays are (N, 3, H, W)."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        t("walkthrough.fig.hist_scaled", lang), t("walkthrough.fig.hist_normalized", lang)))
    for col, values in ((1, scaled), (2, normalized)):
        lo, hi = float(values.min()), float(values.max())
        edges = np.linspace(lo, hi if hi > lo else lo + 1, bins + 1)
        centres = (edges[:-1] + edges[1:]) / 2
        for c, colour in enumerate(CHANNEL_COLOURS):
            counts, _ = np.histogram(values[:, c], bins=edges)
            share = counts / max(counts.sum(), 1)
            fig.add_trace(go.Scatter(
                x=centres, y=share, mode="lines", line=dict(color=colour, width=2, shape="hvh"),
                name=_channel(c, lang), legendgroup=CHANNELS[c], showlegend=col == 1,
                hovertemplate=f"{_channel(c, lang)} · " + t("walkthrough.fig.hist_hover", lang) + "<extra></extra>"),
                row=1, col=col)
    fig.add_vline(x=0, line=dict(color="#888", dash="dot", width=1), row=1, col=2)
    fig.update_xaxes(title_text=t("walkthrough.fig.hist_x", lang), gridcolor="#eee")
    fig.update_yaxes(title_text=t("walkthrough.fig.hist_y", lang), tickformat=".0%", gridcolor="#eee", col=1)
    fig.update_yaxes(tickformat=".0%", gridcolor="#eee", col=2)
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=60, b=40), font=FONT, plot_bgcolor="white",
                      legend=dict(orientation="h", yanchor="bottom", y=1.12, x=0))
    fig.update_annotations(font=dict(size=13))
    return fig


def scores(classes: Sequence[str], logits: np.ndarray, probs: np.ndarray, true_class: int, *,
           lang: str = "en", height: int = 320) -> go.Figure:
    """One image's 10 scores (logits) and their softmax probabilities, the true class highlighted.
    `classes` are the names as the page shows them."""
    colours = ["#059669" if k == true_class else "#94a3b8" for k in range(len(classes))]
    fig = go.Figure([
        go.Bar(x=list(classes), y=logits, marker_color=colours, name=t("walkthrough.fig.score_name", lang),
               yaxis="y", offsetgroup=0, hovertemplate=t("walkthrough.fig.score_hover", lang) + "<extra></extra>"),
        go.Bar(x=list(classes), y=probs, marker_color=colours, marker_pattern_shape="/",
               name=t("walkthrough.fig.prob_name", lang), yaxis="y2", offsetgroup=1, opacity=0.6,
               hovertemplate=t("walkthrough.fig.prob_hover", lang) + "<extra></extra>"),
    ])
    fig.update_layout(height=height, margin=dict(l=50, r=50, t=30, b=40), font=FONT, plot_bgcolor="white",
                      barmode="group", legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      xaxis=dict(tickangle=-30),
                      yaxis=dict(title=t("walkthrough.fig.score_axis", lang), gridcolor="#eee", zerolinecolor="#bbb"),
                      # probabilities on their own scale (an untrained model's are all near 10%), in percent
                      yaxis2=dict(title=t("walkthrough.fig.prob_axis", lang), overlaying="y", side="right",
                                  range=[0, max(0.2, 1.15 * float(np.max(probs)))], tickformat=".0%",
                                  tickmode="auto", showgrid=False))
    return fig


def gradient_sizes(rows: Sequence[ParamStep], *, lang: str = "en", show_change: bool = True,
                   height: int = 300) -> go.Figure:
    """Per parameter tensor: the gradient's size and (with `show_change`) the update's size, as L2
    norms on a log scale."""
    names = [r.name for r in rows]
    bars = [go.Bar(y=names, x=[r.grad_norm for r in rows], orientation="h",
                   name=t("walkthrough.fig.grad_name", lang), marker_color="#7c3aed",
                   hovertemplate=t("walkthrough.fig.grad_hover", lang) + "<extra></extra>")]
    if show_change:
        bars.append(go.Bar(y=names, x=[r.change_norm for r in rows], orientation="h",
                           name=t("walkthrough.fig.change_name", lang), marker_color="#f59e0b",
                           hovertemplate=t("walkthrough.fig.change_hover", lang) + "<extra></extra>"))
    fig = go.Figure(bars)
    fig.update_layout(height=max(height, 70 + (34 if show_change else 22) * len(rows)),
                      margin=dict(l=10, r=10, t=30, b=40), font=FONT, plot_bgcolor="white", barmode="group",
                      legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0),
                      xaxis=dict(type="log", dtick=1, title=t("walkthrough.fig.grad_axis", lang), gridcolor="#eee"),
                      yaxis=dict(autorange="reversed"))
    return fig
