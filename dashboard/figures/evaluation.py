"""Figures for the Evaluation page: plain functions that take numbers and return plotly figures.

No Streamlit here, so each builder can be tested (and reused) on its own. Titles, axes, legends and
hover text are in `lang` (core.i18n, keys under evaluation.fig); class names come as the page shows them.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from core import i18n
from core.i18n import DEFAULT_LANGUAGE

PRIMARY = "#2563eb"
SECOND = "#f59e0b"
MUTED = "#9ca3af"
FONT = dict(size=13)
MARGIN = dict(l=10, r=10, t=40, b=10)
CLASS_TICKS = -45   # class names on an x axis: steep enough not to overlap when long ("automobile (汽车)")


def per_class_accuracy_bar(classes: Sequence[str], accuracy: Sequence[float], overall: float,
                           support: Sequence[int] | None = None, *, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Bars of per-class test accuracy, best class first, with the overall accuracy as a line."""
    acc = np.asarray(accuracy, dtype=float)
    order = np.lexsort((np.arange(len(acc)), -acc))
    names = [classes[i] for i in order]
    custom = [int(support[i]) if support is not None else 0 for i in order]
    fig = go.Figure(go.Bar(
        x=names, y=acc[order], marker_color=PRIMARY, text=[f"{a:.0%}" for a in acc[order]],
        textposition="outside", cliponaxis=False, customdata=custom, name=i18n.t("evaluation.fig.per_class_name", lang),
        hovertemplate=i18n.t("evaluation.fig.per_class_hover", lang, x="%{x}", y="%{y:.1%}", n="%{customdata}")
        + "<extra></extra>"))
    fig.add_hline(y=overall, line_dash="dash", line_color="#374151")
    fig.update_layout(title=i18n.t("evaluation.fig.per_class_title", lang, overall=overall),
                      yaxis=dict(title=i18n.t("evaluation.fig.accuracy", lang), tickformat=".0%", range=[0, 1.08]),
                      xaxis=dict(title=i18n.t("evaluation.fig.class", lang), categoryorder="array",
                                 categoryarray=names, tickangle=CLASS_TICKS),
                      height=380, margin=dict(MARGIN, t=60), font=FONT, showlegend=False)   # a two-line title
    return fig


def confusion_heatmap(confusion: np.ndarray, shares: np.ndarray, classes: Sequence[str], *,
                      normalized: bool = False, selected: tuple[int, int] | None = None,
                      lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Confusion matrix (rows = true class, columns = predicted class) as an annotated heatmap.

    `confusion` holds the counts, `shares` the row-normalised matrix (each count over its row's
    images); `normalized` picks which one is coloured and written in the cells (hover shows both).
    A transparent square marker sits on every off-diagonal cell: heatmap cells cannot be selected
    in Streamlit (plotly.js sends no point data for them), the markers can, and each carries
    customdata [true class id, predicted class id]. `selected` outlines one cell.
    """
    cm = np.asarray(confusion)
    frac = np.asarray(shares, dtype=float)
    n = len(classes)
    z = frac if normalized else cm
    text = [[f"{frac[t, p]:.0%}" if normalized else f"{int(cm[t, p])}" for p in range(n)] for t in range(n)]
    names = list(classes)
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Blues", text=text, texttemplate="%{text}",
        textfont=dict(size=12), hoverinfo="skip", xgap=1, ygap=1,
        showscale=False,    # every cell writes its number: the colour scale would only take room from the cells
        zmin=0, zmax=1 if normalized else max(1, int(cm.max()))))
    cells = [(t, p) for t in range(n) for p in range(n) if t != p]
    fig.add_trace(go.Scatter(
        x=[names[p] for _, p in cells], y=[names[t] for t, _ in cells], mode="markers",
        marker=dict(symbol="square", size=34, color=SECOND, opacity=0),
        selected=dict(marker=dict(opacity=0.35)), unselected=dict(marker=dict(opacity=0)),
        customdata=[[t, p, int(cm[t, p]), frac[t, p]] for t, p in cells], name="cells", showlegend=False,
        hovertemplate=i18n.t("evaluation.fig.cell_hover", lang, true="%{y}", predicted="%{x}", n="%{customdata[2]}",
                        share="%{customdata[3]:.1%}") + "<extra></extra>"))
    if selected is not None:
        t, p = selected
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color=SECOND, width=3))
    fig.update_layout(
        title=i18n.t("evaluation.fig.confusion_shares" if normalized else "evaluation.fig.confusion_counts", lang),
        xaxis=dict(title=i18n.t("evaluation.fig.predicted_class", lang), side="bottom", tickangle=CLASS_TICKS,
                   tickfont=dict(size=13, color="#1f2937")),
        yaxis=dict(title=i18n.t("evaluation.fig.true_class", lang), autorange="reversed",
                   tickfont=dict(size=13, color="#1f2937")),
        height=600, margin=dict(l=10, r=10, t=50, b=10), font=FONT, clickmode="event+select",
        dragmode=False)
    return fig


def topk_bar(top: Sequence[tuple[int, str, float]], true_class: int | None = None, *,
             lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Horizontal bars of the k most probable classes, most probable on top; the true class in orange."""
    names = [name for _, name, _ in top][::-1]
    probs = [p for _, _, p in top][::-1]
    colors = [SECOND if (true_class is not None and cid == true_class) else PRIMARY for cid, _, _ in top][::-1]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colors,
                           text=[f"{p:.1%}" for p in probs], textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    title = i18n.t("evaluation.fig.topk_true" if true_class is not None else "evaluation.fig.topk", lang, k=len(top))
    fig.update_layout(title=title, xaxis=dict(title=i18n.t("evaluation.fig.probability", lang), tickformat=".0%",
                      range=[0, 1.15]), yaxis=dict(title=None), height=90 + 36 * len(top),
                      margin=MARGIN, font=FONT, showlegend=False)
    return fig


def compare_per_class(classes: Sequence[str], runs: Sequence[tuple[str, Sequence[float], float]], *,
                      lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Grouped bars: per-class accuracy of each (label, per-class accuracy, overall) run, side by side."""
    colors = [PRIMARY, SECOND, "#10b981", "#ef4444"]
    fig = go.Figure()
    for i, (label, acc, overall) in enumerate(runs):
        fig.add_trace(go.Bar(x=list(classes), y=list(acc), name=f"{label} ({overall:.1%})",
                             marker_color=colors[i % len(colors)],
                             hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>"))
    # the title at the very top, the legend (one row per run when the names are long) between it and the bars
    fig.update_layout(title=dict(text=i18n.t("evaluation.fig.compare_title", lang), y=0.98, yanchor="top"),
                      barmode="group",
                      yaxis=dict(title=i18n.t("evaluation.fig.accuracy", lang), tickformat=".0%", range=[0, 1]),
                      xaxis=dict(title=i18n.t("evaluation.fig.class", lang), tickangle=CLASS_TICKS), height=440,
                      margin=dict(MARGIN, t=90), font=FONT,
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    return fig


# ---- epoch by epoch (core.evaluate.history) ---------------------------------------------------

CLASS_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf")


def per_class_over_epochs(classes: Sequence[str], epochs: Sequence[int], accuracy: np.ndarray,
                          selected_epoch: int | None = None, *, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Heatmap: one row per class, one column per recorded epoch, colour = that class's test accuracy."""
    acc = np.asarray(accuracy, dtype=float)                      # (E, C)
    fig = go.Figure(go.Heatmap(
        z=acc.T, x=[int(e) for e in epochs], y=list(classes), colorscale="Viridis", zmin=0, zmax=1,
        colorbar=dict(title=i18n.t("evaluation.fig.accuracy", lang), tickformat=".0%"), xgap=1, ygap=1,
        hovertemplate=i18n.t("evaluation.fig.epoch_hover", lang, name="%{y}", epoch="%{x}", acc="%{z:.1%}")
        + "<extra></extra>"))
    if selected_epoch is not None:
        fig.add_vline(x=selected_epoch, line_color="#f97316", line_width=3)
    fig.update_layout(title=i18n.t("evaluation.fig.over_epochs_title", lang),
                      xaxis=dict(title=i18n.t("evaluation.fig.epoch", lang), dtick=max(1, len(epochs) // 12)),
                      yaxis=dict(title=None, autorange="reversed"), height=380, margin=dict(MARGIN, t=60),
                      font=FONT)
    return fig


def forgotten_bar(classes: Sequence[str], counts: Sequence[int], support: Sequence[int], *,
                  lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Bars: test images of each class forgotten at least once (correct at an epoch, wrong at the next)."""
    counts = np.asarray(counts, dtype=int)
    support = np.asarray(support, dtype=int)
    share = np.divide(counts, support, out=np.zeros(len(counts)), where=support > 0)
    fig = go.Figure(go.Bar(x=list(classes), y=counts, marker_color=SECOND, customdata=share,
                           text=[str(c) for c in counts], textposition="outside", cliponaxis=False,
                           hovertemplate=i18n.t("evaluation.fig.forgotten_hover", lang, x="%{x}", n="%{y}",
                                                           share="%{customdata:.1%}") + "<extra></extra>"))
    fig.update_layout(title=i18n.t("evaluation.fig.forgotten_title", lang),
                      yaxis=dict(title=i18n.t("evaluation.fig.images", lang)),
                      xaxis=dict(title=i18n.t("evaluation.fig.true_class", lang), tickangle=CLASS_TICKS), height=320, margin=MARGIN, font=FONT,
                      showlegend=False)
    return fig


def pca_scatter(coords: np.ndarray, labels: np.ndarray, predicted: np.ndarray, classes: Sequence[str],
                explained: Sequence[float], *, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """WebGL scatter of the 2-D map: colour = true class, a cross = a mistake; customdata = test index."""
    coords = np.asarray(coords)
    labels = np.asarray(labels)
    predicted = np.asarray(predicted)
    fig = go.Figure()
    index = np.arange(len(labels))
    for c, name in enumerate(classes):
        pick = labels == c
        wrong = predicted[pick] != c
        fig.add_trace(go.Scattergl(
            x=coords[pick, 0], y=coords[pick, 1], mode="markers", name=name,
            marker=dict(color=CLASS_COLORS[c % len(CLASS_COLORS)], size=np.where(wrong, 7, 5),
                        symbol=np.where(wrong, "x", "circle"), opacity=0.75, line=dict(width=0)),
            customdata=np.stack([index[pick], predicted[pick]], 1),
            hovertemplate=i18n.t("evaluation.fig.pca_hover", lang, index="%{customdata[0]}", name=name)
            + "<extra></extra>"))
    ex = list(explained) + [0.0, 0.0]
    fig.update_layout(title=i18n.t("evaluation.fig.pca_title", lang),
                      xaxis=dict(title=i18n.t("evaluation.fig.direction", lang, n=1, share=ex[0]), zeroline=False),
                      yaxis=dict(title=i18n.t("evaluation.fig.direction", lang, n=2, share=ex[1]), zeroline=False),
                      height=560, margin=MARGIN, font=FONT, dragmode="lasso", legend=dict(itemsizing="constant"))
    return fig
