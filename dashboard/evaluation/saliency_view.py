"""Where the model looks: saliency maps for the predicted and the true class, side by side.

Used by the image dialog of the misclassified browser and by the upload section; the maps come
from core.evaluate.saliency (Grad-CAM / LayerCAM for conv nets, gradient x input for the MLP).
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core.evaluate import saliency as sal
from dashboard.evaluation import loading
from dashboard.evaluation.keys import LAYER_KEY, OPACITY_KEY, SHOW_KEY, SMOOTH_KEY
from dashboard.lang import core_text, tr

SCALE = 7
SMOOTH_SAMPLES = 16


@st.cache_data(max_entries=64, show_spinner=False)
def _maps(path: str, key: str, image: bytes, targets: tuple[int, ...], layer: str, smooth: int):
    """(heat, method, grid) per target for one image (raw uint8 32x32x3 bytes) and checkpoint version."""
    model = loading.load_model(path, key).model
    pixels = np.frombuffer(image, np.uint8).reshape(32, 32, 3).copy()
    return [(m.heat, m.method, m.grid) for m in
            sal.saliency_maps(model, pixels, list(targets), layer=layer, smooth=smooth)]


def _method(method: str) -> str:
    """The map's method as the caption names it ("grad-cam", "gradient x input", ...: core.evaluate.saliency)."""
    return core_text(f"evaluate.saliency.method.{method.replace(' ', '_')}", method)


def saliency_pair(model_ref: tuple[str, str], image: np.ndarray, predicted: int, true: int | None,
                  classes: tuple[str, ...], prefix: str = "") -> None:
    """Maps of the predicted class and (when known and different) the true class, with controls
    (`classes`: the names as the page shows them)."""
    path, key = model_ref
    if not st.toggle(tr("evaluation.saliency.show"), key=prefix + SHOW_KEY):
        return
    conv = sal.is_conv_net(loading.load_model(path, key).model)
    st.markdown(tr("evaluation.saliency.title"))
    c = st.columns([2, 2])
    opacity = c[0].slider(tr("evaluation.saliency.opacity"), 0.0, 1.0, 0.55, 0.05, key=prefix + OPACITY_KEY)
    if conv:
        layers = {name: core_text(f"evaluate.saliency.layer.{name}", text) for name, text in sal.LAYERS.items()}
        layer = c[1].radio(tr("evaluation.saliency.map"), list(layers), format_func=layers.get, key=prefix + LAYER_KEY,
                           horizontal=True)
        smooth = 0
    else:
        layer = "last"
        smooth = SMOOTH_SAMPLES if c[1].toggle(tr("evaluation.saliency.smooth", n=SMOOTH_SAMPLES),
                                               key=prefix + SMOOTH_KEY) else 0
    targets = [predicted] + ([true] if true is not None and true != predicted else [])
    maps = _maps(path, key, np.ascontiguousarray(image, np.uint8).tobytes(), tuple(targets), layer, smooth)
    cols = st.columns(len(targets) + 1)
    cols[0].image(np.repeat(np.repeat(image, SCALE, 0), SCALE, 1), caption=tr("evaluation.saliency.the_image"),
                  width=32 * SCALE)
    for col, target, (heat, method, grid) in zip(cols[1:], targets, maps):
        role = "predicted" if target == predicted else "true"
        col.image(sal.overlay(image, heat, opacity, SCALE), width=32 * SCALE,
                  caption=tr(f"evaluation.saliency.{role}", name=classes[target], method=_method(method),
                             rows=grid[0], cols=grid[1]))
    if true is not None and true == predicted:
        st.caption(tr("evaluation.saliency.same"))
    st.caption(core_text("evaluate.saliency.how_to_read", sal.HOW_TO_READ))
