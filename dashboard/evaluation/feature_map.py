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
from dashboard.figures import evaluation as figs, pixelated

SHOWN = 18


@st.cache_data(max_entries=8, show_spinner=False)
def _projection(path: str, key: str, which: str, kind: str, _images: np.ndarray, _labels: np.ndarray):
    return features.projection_for_checkpoint(path, _images, _labels, which=which)


def _compute(path: str, which: str, images: np.ndarray, labels: np.ndarray) -> None:
    """The first computation, with a progress bar counting the images (then read from the run's cache)."""
    n = len(images)
    bar = st.progress(0.0, text=f"Computing the features of {n:,} test images… 0 / {n:,}")

    def progress(done: int, total: int) -> None:
        text = (f"Computing the features… {done:,} / {total:,} images" if done < total else
                f"{total:,} / {total:,} images; projecting them with PCA…")
        bar.progress(done / total, text=text)

    features.projection_for_checkpoint(path, images, labels, which=which, progress=progress)
    bar.empty()


def feature_map(checkpoint: str, key: str, which: str, preds: evaluate.Predictions, images: np.ndarray,
                kind: str, synthetic: bool) -> None:
    st.subheader("A map of what the model sees")
    st.caption(features.HOW_TO_READ)
    cached = features.pca_cache_path(checkpoint, key, which).is_file()
    if not cached and not st.button("Compute the map", key=MAP_BUTTON_KEY,
                                    help="Runs the model over the test split once (seconds for the MLP, up to "
                                         "a minute for a conv net on a CPU); afterwards it is cached."):
        return
    if not cached:
        _compute(checkpoint, which, images, preds.labels)
    proj = _projection(checkpoint, key, which, kind, images, preds.labels)
    st.plotly_chart(figs.pca_scatter(proj.coords, preds.labels, preds.predicted, preds.classes,
                                             proj.explained),
                            key=MAP_CHART_KEY, on_select="rerun", selection_mode=("points", "box", "lasso"))
    st.caption(f"{len(preds.labels):,} test images, {proj.dims} features each"
               + (" · synthetic demo set" if synthetic else "")
               + ". Select points (click, box or lasso) to see those images below.")
    points = (st.session_state.get(MAP_CHART_KEY) or {}).get("selection", {}).get("points", [])
    chosen = sorted({int(p["customdata"][0]) for p in points if p.get("customdata")})
    if not chosen:
        return
    st.markdown(f"**{len(chosen)} selected**" + (f" (the first {SHOWN} shown)" if len(chosen) > SHOWN else ""))
    classes = preds.classes
    cols = st.columns(6)
    for i, index in enumerate(chosen[:SHOWN]):
        right = preds.predicted[index] == preds.labels[index]
        cols[i % 6].image(pixelated(images[index], 3), width=96,
                          caption=f"#{index} {classes[preds.labels[index]]} → "
                                  f"{'' if right else '**'}{classes[preds.predicted[index]]}{'' if right else '**'}")
