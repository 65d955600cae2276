"""Figures of the one-batch walkthrough (core.train.walkthrough): the 3,072-long input vector, one
image's scores and probabilities, and the size of each parameter's gradient and update."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from core.train.walkthrough import ParamStep

FONT = dict(size=13)
CHANNEL_COLOURS = ("#dc2626", "#16a34a", "#2563eb")


def input_vector(vector: np.ndarray, *, height: int = 260) -> go.Figure:
    """The model's input for one image: 3,072 numbers, red channel first, then green, then blue."""
    n = len(vector) // 3
    fig = go.Figure()
    for c, (name, colour) in enumerate(zip(("red", "green", "blue"), CHANNEL_COLOURS)):
        xs = np.arange(c * n, (c + 1) * n)
        fig.add_trace(go.Scattergl(x=xs, y=vector[c * n:(c + 1) * n], mode="lines", name=f"{name} channel",
                                   line=dict(color=colour, width=1),
                                   hovertemplate="position %{x}<br>value %{y:.3f}<extra></extra>"))
    fig.update_layout(height=height, margin=dict(l=50, r=10, t=10, b=40), font=FONT, plot_bgcolor="white",
                      legend=dict(orientation="h", y=1.12, x=0), hovermode="closest",
                      xaxis=dict(title="position in the vector (C, H, W order)", gridcolor="#eee"),
                      yaxis=dict(title="normalised value", gridcolor="#eee", zeroline=True, zerolinecolor="#bbb"))
    return fig


def scores(classes: Sequence[str], logits: np.ndarray, probs: np.ndarray, true_class: int, *,
           height: int = 300) -> go.Figure:
    """One image's 10 scores (logits) and their softmax probabilities, the true class highlighted."""
    colours = ["#059669" if k == true_class else "#94a3b8" for k in range(len(classes))]
    fig = go.Figure([
        go.Bar(x=list(classes), y=logits, marker_color=colours, name="score (logit)", yaxis="y",
               offsetgroup=0, hovertemplate="%{x}: score %{y:.3f}<extra></extra>"),
        go.Bar(x=list(classes), y=probs, marker_color=colours, marker_pattern_shape="/", name="probability (softmax)",
               yaxis="y2", offsetgroup=1, opacity=0.6, hovertemplate="%{x}: p = %{y:.3f}<extra></extra>"),
    ])
    fig.update_layout(height=height, margin=dict(l=50, r=50, t=10, b=40), font=FONT, plot_bgcolor="white",
                      barmode="group", legend=dict(orientation="h", y=1.14, x=0),
                      yaxis=dict(title="score", gridcolor="#eee", zerolinecolor="#bbb"),
                      yaxis2=dict(title="probability", overlaying="y", side="right", range=[0, 1], showgrid=False))
    return fig


def gradient_sizes(rows: Sequence[ParamStep], *, height: int = 300) -> go.Figure:
    """Per parameter tensor: the gradient's size and the update's size (L2 norms, log scale)."""
    names = [r.name for r in rows]
    fig = go.Figure([
        go.Bar(y=names, x=[r.grad_norm for r in rows], orientation="h", name="gradient (L2 norm)",
               marker_color="#7c3aed", hovertemplate="%{y}: ‖gradient‖ = %{x:.3g}<extra></extra>"),
        go.Bar(y=names, x=[r.change_norm for r in rows], orientation="h", name="change made by the step (L2 norm)",
               marker_color="#f59e0b", hovertemplate="%{y}: ‖change‖ = %{x:.3g}<extra></extra>"),
    ])
    fig.update_layout(height=max(height, 40 + 34 * len(rows)), margin=dict(l=10, r=10, t=10, b=40), font=FONT,
                      plot_bgcolor="white", barmode="group", legend=dict(orientation="h", y=-0.15, x=0),
                      xaxis=dict(type="log", gridcolor="#eee"), yaxis=dict(autorange="reversed"))
    return fig
