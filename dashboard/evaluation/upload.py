"""Try your own image: the chosen checkpoint's top classes for an uploaded PNG or JPEG."""
from __future__ import annotations

import streamlit as st

from core import evaluate
from core.evaluate.upload import UploadError
from dashboard.common import plain
from dashboard.evaluation import loading, saliency_view
from dashboard.evaluation.keys import UPLOAD_CHART_KEY, UPLOAD_KEY
from dashboard.figures import evaluation as figs, pixelated
from dashboard.lang import lang, tr

TOP_K = 5
PREVIEW_WIDTH = 160


def upload_panel(checkpoint: str, key: str, classes: tuple[str, ...], synthetic: bool) -> None:
    """An upload widget; for a good image, the upload, what the model sees, and its top classes.

    `checkpoint` and `key` name the checkpoint version (see loading.load_model); a bad file gets an
    error naming it, with core.evaluate's message in the session's language.
    """
    st.subheader(tr("evaluation.upload.title"))
    upload = st.file_uploader(tr("evaluation.upload.label", limit=evaluate.limit_text(lang=lang())),
                              type=list(evaluate.UPLOAD_EXTENSIONS), key=UPLOAD_KEY,
                              max_upload_size=evaluate.MAX_UPLOAD_BYTES // 2**20)  # the browser checks it too
    st.caption(evaluate.limits_text(lang()))
    if upload is None:
        return
    names = loading.shown_names(classes)
    try:
        result = evaluate.predict_image(loading.load_model(checkpoint, key), upload.getvalue(), classes=names,
                                        k=TOP_K)
    except ValueError as exc:    # UploadError: the file; anything else names what went wrong in English
        st.error(f"{plain(upload.name)}: {plain(exc.text(lang()) if isinstance(exc, UploadError) else exc)}")
        return
    a, b, c = st.columns([1, 1, 2])
    width, height = result.original_size
    a.image(upload.getvalue(), caption=tr("evaluation.upload.yours", w=width, h=height, format=result.format),
            width=PREVIEW_WIDTH)
    b.image(pixelated(result.image, 5), caption=tr("evaluation.upload.model_sees"), width=PREVIEW_WIDTH)
    c.plotly_chart(figs.topk_bar(result.top, lang=lang()), key=UPLOAD_CHART_KEY)
    c.caption(tr("evaluation.upload.chart_caption", k=TOP_K))
    saliency_view.saliency_pair((checkpoint, key), result.image, int(result.top[0][0]), None, names,
                                prefix="upload_")
    if synthetic:
        st.caption(tr("evaluation.upload.synthetic"))
