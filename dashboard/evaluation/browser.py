"""The misclassified-image browser: class filters, sort, a paged grid of thumbnails, one image enlarged.

The confusion matrix (a clicked cell) and the most-confused-pair buttons set the same two filters
through `set_pair` / `on_cell_selected`.
"""
from __future__ import annotations

import numpy as np
import streamlit as st

from core import evaluate
from core.evaluate import history as hist
from dashboard.evaluation import saliency_view
from dashboard.evaluation.keys import (CHANGES_KEY, CLOSE_KEY, CONFUSION_KEY, HISTORY_FILTER_KEY, INSPECT_KEY,
                                       INSPECT_PREFIX, PAGE_KEY, PRED_KEY, SORT_KEY, TOPK_CHART_KEY, TRUE_KEY)
from dashboard.figures import evaluation as figs, pixelated

ANY = -1  # the class filters' "Any class" (None would show as an empty select box)
SORT_LABELS = {"confidence": "Most confident mistakes first", "loss": "Highest loss first"}
PAGE_SIZE, GRID_COLUMNS, THUMB_SCALE, BIG_SCALE, TOP_K = 24, 6, 4, 8, 5


# ---- state changes (used as widget callbacks) -----------------------------------------------
def set_pair(true_class: int, predicted_class: int) -> None:
    """Filter the browser to one cell of the confusion matrix (ANY: no filter), from its first page."""
    st.session_state.update({TRUE_KEY: true_class, PRED_KEY: predicted_class, PAGE_KEY: 1, INSPECT_KEY: None})


def reset() -> None:
    """No filters, first page, no image open (another run was chosen)."""
    set_pair(ANY, ANY)
    st.session_state[HISTORY_FILTER_KEY] = "all"


def strip_markdown(history: hist.PredictionHistory, index: int, classes: tuple[str, ...], *,
                   last: int | None = None, names: bool = True) -> str:
    """One image's prediction after each recorded epoch as badges: green = right, red = wrong."""
    strip = hist.image_strip(history, index)
    cut = strip[-last:] if last else strip
    more = "… " if last and len(strip) > last else ""
    badges = []
    for epoch, predicted, conf, right in cut:
        colour = "green" if right else "red"
        label = f"{epoch}: {classes[predicted]} {conf:.0%}" if names else f"{epoch}"
        badges.append(f":{colour}-badge[{label}]")
    return more + " ".join(badges)


def on_cell_selected() -> None:
    """A click on a cell of the confusion heatmap: its customdata is [true class, predicted class, ...]."""
    event = st.session_state.get(CONFUSION_KEY)
    for point in (event or {}).get("selection", {}).get("points", []):
        custom = point.get("customdata")
        if custom:
            set_pair(int(custom[0]), int(custom[1]))
            return


def selected_pair() -> tuple[int, int] | None:
    """The cell both filters point at, or None when either is "Any class"."""
    pair = (st.session_state.get(TRUE_KEY, ANY), st.session_state.get(PRED_KEY, ANY))
    return None if ANY in pair else pair


def _first_page() -> None:
    st.session_state.update({PAGE_KEY: 1, INSPECT_KEY: None})


def _close_image() -> None:
    st.session_state[INSPECT_KEY] = None


# ---- the section -----------------------------------------------------------------------------
@st.dialog("Misclassified test image", width="large", on_dismiss=_close_image)
def show_image(index: int, image: np.ndarray, preds: evaluate.Predictions,
               history: hist.PredictionHistory | None = None, model_ref: tuple[str, str] | None = None) -> None:
    """One test image, enlarged, with its top-k probabilities, its predictions epoch by epoch and
    where the model looks (`model_ref`: checkpoint path and key)."""
    classes = preds.classes
    a, b = st.columns([1, 2])
    a.image(pixelated(image, BIG_SCALE), width=32 * BIG_SCALE)
    a.markdown(f"**Test image #{index}**  \nTrue class: **{classes[preds.labels[index]]}**  \n"
               f"Predicted: **{classes[preds.predicted[index]]}** ({preds.confidence[index]:.1%})  \n"
               f"Loss: {preds.loss[index]:.3f} = −ln {preds.probs[index][preds.labels[index]]:.4g}")
    a.caption("The loss is −ln of the probability the model gave the true class: 0 when it is sure of the truth, "
              "2.303 for a one-in-ten guess, and larger the less likely it thought the truth was.")
    b.plotly_chart(figs.topk_bar(evaluate.top_k(preds.probs[index], classes, TOP_K), int(preds.labels[index])),
                   key=TOPK_CHART_KEY)
    if history is not None and index < history.num_images:
        st.markdown("**Its prediction after each epoch** (green: right, red: wrong)")
        st.markdown(strip_markdown(history, index, classes))
    if model_ref is not None:
        saliency_view.saliency_pair(model_ref, image, int(preds.predicted[index]), int(preds.labels[index]),
                                    classes)
    if a.button("Close", key=CLOSE_KEY):
        _close_image()
        st.rerun()


def misclassified_browser(preds: evaluate.Predictions, images: np.ndarray,
                          history: hist.PredictionHistory | None = None,
                          model_ref: tuple[str, str] | None = None) -> None:
    """Filters, then the matching mistakes of the test split (`images`: its uint8 NHWC pixels).

    With the run's prediction history: a history filter (learned then forgotten, never learned,
    changed its mind k+ times) and each image's predictions epoch by epoch."""
    st.subheader("Misclassified test images")
    classes = preds.classes
    options = [ANY, *range(len(classes))]
    for key in (TRUE_KEY, PRED_KEY):
        if st.session_state.get(key) not in options:
            st.session_state[key] = ANY
    name_of = lambda i: "Any class" if i == ANY else classes[i]  # noqa: E731
    f = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    true_class = f[0].selectbox("True class", options, format_func=name_of, key=TRUE_KEY, on_change=_first_page)
    pred_class = f[1].selectbox("Predicted class", options, format_func=name_of, key=PRED_KEY, on_change=_first_page)
    sort = f[2].selectbox("Sort", list(SORT_LABELS), format_func=SORT_LABELS.get, key=SORT_KEY, on_change=_first_page)
    query = dict(true_class=None if true_class == ANY else true_class,
                 predicted_class=None if pred_class == ANY else pred_class)
    if history is not None:
        h = st.columns([2, 1, 3], vertical_alignment="bottom")
        if st.session_state.get(HISTORY_FILTER_KEY) not in hist.HISTORY_FILTERS:
            st.session_state[HISTORY_FILTER_KEY] = "all"
        kind = h[0].selectbox("History over the epochs", list(hist.HISTORY_FILTERS),
                              format_func=hist.HISTORY_FILTERS.get, key=HISTORY_FILTER_KEY, on_change=_first_page)
        most = max(1, history.num_epochs - 1)   # a run of 2 epochs can change its mind once at most
        st.session_state[CHANGES_KEY] = min(max(1, st.session_state.get(CHANGES_KEY, 2)), most)
        k = int(h[1].number_input("k (changes of mind)", 1, most, key=CHANGES_KEY, on_change=_first_page,
                                  disabled=kind != "changed"))
        h[2].caption(f"Over the {history.num_epochs} recorded epochs. Learned, then forgotten: right after one "
                     "epoch, wrong after the next (at least once). Never learned: wrong after every epoch. "
                     "Changed its mind: the predicted class changed from one epoch to the next k or more times.")
        query["among"] = hist.trajectories(history).mask(kind, k)

    total = evaluate.misclassified(preds, **query, limit=0).total
    pages = max(1, -(-total // PAGE_SIZE))
    st.session_state[PAGE_KEY] = min(max(1, st.session_state.get(PAGE_KEY, 1)), pages)
    page_no = f[3].number_input(f"Page (of {pages})", 1, pages, key=PAGE_KEY)
    hits = evaluate.misclassified(preds, **query, sort=sort, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    mistakes = int((~preds.correct).sum())
    st.caption(f"{total:,} misclassified images match (of {mistakes:,} mistakes in {len(preds.labels):,} test "
               "images). Pixels are the raw test images, enlarged without smoothing.")

    inspect = st.session_state.get(INSPECT_KEY)
    if inspect is not None and 0 <= inspect < len(preds.labels):
        show_image(inspect, images[inspect], preds, history, model_ref)

    if total == 0:
        diagonal = query["true_class"] is not None and query["true_class"] == query["predicted_class"]
        st.info("No misclassified images match these filters."
                + (" Cells on the diagonal are correct predictions." if diagonal else ""))
    rows = hits.rows(classes)
    for start in range(0, len(rows), GRID_COLUMNS):
        for col, row in zip(st.columns(GRID_COLUMNS), rows[start:start + GRID_COLUMNS]):
            col.image(pixelated(images[row["index"]], THUMB_SCALE), width=32 * THUMB_SCALE,
                      caption=f"{row['true_name']} →  \n**{row['predicted_name']}** · {row['confidence']:.0%}")
            if history is not None and row["index"] < history.num_images:
                col.markdown(strip_markdown(history, row["index"], classes, last=6, names=False),
                             help="Epochs: green = right, red = wrong (the last 6)")
            col.button(f"#{row['index']}", key=f"{INSPECT_PREFIX}{row['index']}",
                       help="Show larger, with its top classes",
                       on_click=lambda i=row["index"]: st.session_state.update({INSPECT_KEY: i}))
