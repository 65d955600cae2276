"""Try your own image: the chosen checkpoint's top classes for an uploaded PNG or JPEG."""
from __future__ import annotations

import streamlit as st

from core import evaluate
from dashboard.common import plain
from dashboard.evaluation import loading, saliency_view
from dashboard.evaluation.keys import UPLOAD_CHART_KEY, UPLOAD_KEY
from dashboard.figures import evaluation as figs, pixelated

TOP_K = 5
PREVIEW_WIDTH = 160


def upload_panel(checkpoint: str, key: str, classes: tuple[str, ...], synthetic: bool) -> None:
    """An upload widget; for a good image, the upload, what the model sees, and its top classes.

    `checkpoint` and `key` name the checkpoint version (see loading.load_model); a bad file gets an
    error naming it, with core.evaluate's message.
    """
    st.subheader("Try your own image")
    upload = st.file_uploader(f"A PNG or JPEG image (up to {evaluate.limit_text()})",
                              type=list(evaluate.UPLOAD_EXTENSIONS), key=UPLOAD_KEY,
                              max_upload_size=evaluate.MAX_UPLOAD_BYTES // 2**20)  # the browser checks it too
    st.caption(evaluate.limits_text())
    if upload is None:
        return
    try:
        result = evaluate.predict_image(loading.load_model(checkpoint, key), upload.getvalue(), classes=classes,
                                        k=TOP_K)
    except ValueError as exc:
        st.error(f"{plain(upload.name)}: {plain(exc)}")
        return
    a, b, c = st.columns([1, 1, 2])
    width, height = result.original_size
    a.image(upload.getvalue(), caption=f"your image ({width}x{height} {result.format})", width=PREVIEW_WIDTH)
    b.image(pixelated(result.image, 5), caption="what the model sees (32x32)", width=PREVIEW_WIDTH)
    c.plotly_chart(figs.topk_bar(result.top), key=UPLOAD_CHART_KEY)
    saliency_view.saliency_pair((checkpoint, key), result.image, int(result.top[0][0]), None, classes,
                                prefix="upload_")
    if synthetic:
        st.caption("This run learned the synthetic demo set, so real photos mean little to it.")
