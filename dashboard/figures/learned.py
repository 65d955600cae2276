"""Pictures and charts for "What the model has learned" (core.evaluate.learned): no Streamlit calls."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import plotly.graph_objects as go

from core import i18n
from core.i18n import DEFAULT_LANGUAGE

from dashboard.figures import pixelated

# viridis at six points (dark blue -> green -> yellow): perceptually even, readable for colour-blind eyes
_ANCHORS = np.array([[68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132], [122, 209, 81], [253, 231, 37]],
                    np.float64)


def colour_map(values: np.ndarray, vmax: float) -> np.ndarray:
    """uint8 (..., 3): values from 0 (dark blue) to vmax (yellow), linearly; below 0 as 0, above vmax as vmax."""
    t = np.clip(np.asarray(values, np.float64) / vmax, 0, 1) if vmax > 0 else np.zeros(np.shape(values))
    pos = t * (len(_ANCHORS) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_ANCHORS) - 2)
    w = (pos - lo)[..., None]
    return np.rint((1 - w) * _ANCHORS[lo] + w * _ANCHORS[lo + 1]).astype(np.uint8)


def to_uint8(pictures: np.ndarray) -> np.ndarray:
    """float pictures in [0, 1] -> uint8."""
    return np.rint(np.clip(np.asarray(pictures, np.float64), 0, 1) * 255).astype(np.uint8)


def mosaic(pictures: np.ndarray, columns: int, scale: int = 1, gap: int = 1, background: int = 255) -> np.ndarray:
    """uint8 (rows * (h*scale + gap) - gap, columns * (w*scale + gap) - gap, 3): float [0, 1] pictures
    (n, h, w, 3) in reading order, each enlarged `scale` times (sharp pixels), `gap` pixels apart."""
    pictures = to_uint8(pictures)
    n, h, w = pictures.shape[:3]
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    th, tw = h * scale + gap, w * scale + gap
    out = np.full((rows * th - gap, columns * tw - gap, 3), background, np.uint8)
    for i, pic in enumerate(pictures):
        r, c = divmod(i, columns)
        out[r * th:r * th + h * scale, c * tw:c * tw + w * scale] = pixelated(pic, scale)
    return out


def activation_tiles(maps: np.ndarray, size: int = 64) -> tuple[list[np.ndarray], float]:
    """Each (h, w) map coloured on one shared scale (0 to the largest value among them) and enlarged
    to about `size` pixels with sharp cells; returns (uint8 tiles, the scale's top)."""
    maps = np.asarray(maps, np.float32)
    vmax = float(maps.max()) if maps.size else 0.0
    scale = max(1, size // max(maps.shape[1:], default=1)) if maps.ndim == 3 else 1
    return [pixelated(colour_map(m, vmax), scale) for m in maps], vmax


def ascent_chart(scores: np.ndarray, classes: Sequence[str], *, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """Each class's score on its own pattern, step by step (one line per class)."""
    scores = np.asarray(scores, np.float64)
    steps = np.arange(len(scores))
    fig = go.Figure([go.Scatter(x=steps, y=scores[:, c], mode="lines", name=name,
                                hovertemplate=i18n.t("evaluation.fig.ascent_hover", lang, name=name, step="%{x}",
                                                                score="%{y:.2f}") + "<extra></extra>")
                     for c, name in enumerate(classes)])
    fig.update_layout(title=i18n.t("evaluation.fig.ascent_title", lang), height=320,
                      margin=dict(l=10, r=10, t=40, b=10), xaxis_title=i18n.t("evaluation.fig.step", lang),
                      yaxis_title=i18n.t("evaluation.fig.score", lang),
                      legend=dict(font=dict(size=11)))
    return fig


def variance_bar(variances: np.ndarray, *, lang: str = DEFAULT_LANGUAGE) -> go.Figure:
    """The training patches' variance along each whitening filter (log scale)."""
    v = np.asarray(variances, np.float64)
    fig = go.Figure(go.Bar(x=[f"{i + 1}" for i in range(len(v))], y=v, marker_color="#4c78a8",
                           hovertemplate=i18n.t("evaluation.fig.variance_hover", lang, filter="%{x}",
                                                variance="%{y:.3g}") + "<extra></extra>"))
    fig.update_layout(title=i18n.t("evaluation.fig.variance_title", lang), height=260,
                      margin=dict(l=10, r=10, t=40, b=10), yaxis_type="log",
                      xaxis_title=i18n.t("evaluation.fig.filter", lang),
                      yaxis_title=i18n.t("evaluation.fig.variance", lang))
    return fig
