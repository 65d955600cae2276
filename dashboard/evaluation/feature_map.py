"""A map of what the model sees: the test split's penultimate features, projected to 2-D with PCA.

Computed on demand (a button) the first time per checkpoint version, then read from the run
folder's cache (core.evaluate.features); selecting points (box or lasso) shows those images.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import evaluate
from core.evaluate import features
from dashboard.evaluation.keys import MAP_BUTTON_KEY, MAP_CHART_KEY
from dashboard.evaluation.loading import shown_names
from dashboard.figures import evaluation as figs, pixelated
from dashboard.lang import core_text, lang, tr

SHOWN = 18


@st.cache_data(max_entries=8, show_spinner=False)
def _projection(path: str, key: str, which: str, kind: str, _images: np.ndarray, _labels: np.ndarray):
    return features.projection_for_checkpoint(path, _images, _labels, which=which)


def _compute(path: str, which: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The first computation, with a progress bar counting the images (then read from the run's cache)."""
    n = len(images)
    bar = st.progress(0.0, text=tr("evaluation.feature_map.computing", done=0, total=n))

    def progress(done: int, total: int) -> None:
        text = (tr("evaluation.feature_map.computing", done=done, total=total) if done < total else
                tr("evaluation.feature_map.projecting", total=total))
        bar.progress(done / total, text=text)

    features.projection_for_checkpoint(path, images, labels, which=which, progress=progress)
    bar.empty()


def feature_map(checkpoint: str, key: str, which: str, preds: evaluate.Predictions, images: np.ndarray,
                kind: str, synthetic: bool) -> None:
    st.subheader(tr("evaluation.feature_map.title"))
    st.caption(core_text("evaluate.features.how_to_read", features.HOW_TO_READ))
    cached = features.pca_cache_path(checkpoint, key, which).is_file()
    if not cached and not st.button(tr("evaluation.feature_map.compute"), key=MAP_BUTTON_KEY,
                                    help=tr("evaluation.feature_map.compute_help")):
        return
    if not cached:
        _compute(checkpoint, which, images, preds.labels)
    proj = _projection(checkpoint, key, which, kind, images, preds.labels)
    names = shown_names(preds.classes)
    st.plotly_chart(figs.pca_scatter(proj.coords, preds.labels, preds.predicted, names, proj.explained, lang=lang()),
                    key=MAP_CHART_KEY, on_select="rerun", selection_mode=("points", "box", "lasso"))
    st.caption(tr("evaluation.feature_map.caption", n=len(preds.labels), dims=proj.dims)
               + (tr("evaluation.feature_map.synthetic") if synthetic else ""))
    points = (st.session_state.get(MAP_CHART_KEY) or {}).get("selection", {}).get("points", [])
    chosen = sorted({int(p["customdata"][0]) for p in points if p.get("customdata")})
    if not chosen:
        return
    st.markdown(tr("evaluation.feature_map.selected", n=len(chosen))
                + (tr("evaluation.feature_map.first_shown", n=SHOWN) if len(chosen) > SHOWN else ""))
    cols = st.columns(6)
    for i, index in enumerate(chosen[:SHOWN]):
        right = preds.predicted[index] == preds.labels[index]
        predicted = names[preds.predicted[index]] if right else f"**{names[preds.predicted[index]]}**"
        cols[i % 6].image(pixelated(images[index], 3), width=96,
                          caption=f"#{index} {names[preds.labels[index]]} → {predicted}")
