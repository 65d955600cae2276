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
from dashboard.evaluation.loading import shown_names
from dashboard.figures import evaluation as figs, pixelated
from dashboard.lang import core_text, lang, tr

ANY = -1  # the class filters' "Any class" (None would show as an empty select box)
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
    """One image's prediction after each recorded epoch as badges: green = right, red = wrong
    (`classes`: the names as the page shows them)."""
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
def show_image(index: int, image: np.ndarray, preds: evaluate.Predictions,
               history: hist.PredictionHistory | None = None, model_ref: tuple[str, str] | None = None) -> None:
    """Open the dialog of one test image (its title in the session's language)."""
    st.dialog(tr("evaluation.dialog.title"), width="large", on_dismiss=_close_image)(_image_card)(
        index, image, preds, history, model_ref)


def _image_card(index: int, image: np.ndarray, preds: evaluate.Predictions,
                history: hist.PredictionHistory | None, model_ref: tuple[str, str] | None) -> None:
    """One test image, enlarged, with its top-k probabilities, its predictions epoch by epoch and
    where the model looks (`model_ref`: checkpoint path and key)."""
    names = shown_names(preds.classes)
    true, predicted = int(preds.labels[index]), int(preds.predicted[index])
    a, b = st.columns([1, 2])
    a.image(pixelated(image, BIG_SCALE), width=32 * BIG_SCALE)
    a.markdown(tr("evaluation.dialog.card", index=index, true=names[true], predicted=names[predicted],
                  confidence=float(preds.confidence[index]), loss=float(preds.loss[index]),
                  p_true=float(preds.probs[index][true])))
    a.caption(tr("evaluation.dialog.loss_caption"))
    b.plotly_chart(figs.topk_bar(evaluate.top_k(preds.probs[index], names, TOP_K), true, lang=lang()),
                   key=TOPK_CHART_KEY)
    b.caption(tr("evaluation.dialog.topk_caption", k=TOP_K))
    if history is not None and index < history.num_images:
        st.markdown(tr("evaluation.dialog.strip"))
        st.markdown(strip_markdown(history, index, names))
    if model_ref is not None:
        saliency_view.saliency_pair(model_ref, image, predicted, true, names)
    if a.button(tr("evaluation.dialog.close"), key=CLOSE_KEY):
        _close_image()
        st.rerun()


def _history_filter(history: hist.PredictionHistory, query: dict) -> None:
    """The history filter and its k; adds the matching images' mask to `query` as "among"."""
    h = st.columns([2, 1, 3], vertical_alignment="bottom")
    if st.session_state.get(HISTORY_FILTER_KEY) not in hist.HISTORY_FILTERS:
        st.session_state[HISTORY_FILTER_KEY] = "all"
    kinds = {k: core_text(f"evaluate.history_filter.{k}", text) for k, text in hist.HISTORY_FILTERS.items()}
    kind = h[0].selectbox(tr("evaluation.browser.history"), list(kinds), format_func=kinds.get, key=HISTORY_FILTER_KEY,
                          on_change=_first_page)
    most = max(1, history.num_epochs - 1)   # a run of 2 epochs can change its mind once at most
    st.session_state[CHANGES_KEY] = min(max(1, st.session_state.get(CHANGES_KEY, 2)), most)
    k = int(h[1].number_input(tr("evaluation.browser.changes"), 1, most, key=CHANGES_KEY, on_change=_first_page,
                              disabled=kind != "changed"))
    h[2].caption(tr("evaluation.browser.history_help", epochs=history.num_epochs))
    query["among"] = hist.trajectories(history).mask(kind, k)


def misclassified_browser(preds: evaluate.Predictions, images: np.ndarray,
                          history: hist.PredictionHistory | None = None,
                          model_ref: tuple[str, str] | None = None) -> None:
    """Filters, then the matching mistakes of the test split (`images`: its uint8 NHWC pixels).

    With the run's prediction history: a history filter (learned then forgotten, never learned,
    changed its mind k+ times) and each image's predictions epoch by epoch."""
    st.subheader(tr("evaluation.browser.title"))
    names = shown_names(preds.classes)
    options = [ANY, *range(len(names))]
    for key in (TRUE_KEY, PRED_KEY):
        if st.session_state.get(key) not in options:
            st.session_state[key] = ANY
    # format_funcs read dicts made now, in this run's language (a test harness may call them outside the run)
    name_of = {ANY: tr("evaluation.browser.any_class"), **dict(enumerate(names))}.get
    sorts = {s: tr(f"evaluation.browser.sort_{s}") for s in evaluate.SORT_KEYS}
    f = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    true_class = f[0].selectbox(tr("evaluation.browser.true_class"), options, format_func=name_of, key=TRUE_KEY,
                                on_change=_first_page)
    pred_class = f[1].selectbox(tr("evaluation.browser.predicted_class"), options, format_func=name_of,
                                key=PRED_KEY, on_change=_first_page)
    sort = f[2].selectbox(tr("evaluation.browser.sort"), list(sorts), format_func=sorts.get, key=SORT_KEY,
                          on_change=_first_page)
    query = dict(true_class=None if true_class == ANY else true_class,
                 predicted_class=None if pred_class == ANY else pred_class)
    if history is not None:
        _history_filter(history, query)

    total = evaluate.misclassified(preds, **query, limit=0).total
    pages = max(1, -(-total // PAGE_SIZE))
    st.session_state[PAGE_KEY] = min(max(1, st.session_state.get(PAGE_KEY, 1)), pages)
    page_no = f[3].number_input(tr("evaluation.browser.page", pages=pages), 1, pages, key=PAGE_KEY)
    hits = evaluate.misclassified(preds, **query, sort=sort, offset=(page_no - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    mistakes = int((~preds.correct).sum())
    st.caption(tr("evaluation.browser.matches", total=total, mistakes=mistakes, images=len(preds.labels)))

    inspect = st.session_state.get(INSPECT_KEY)
    if inspect is not None and 0 <= inspect < len(preds.labels):
        show_image(inspect, images[inspect], preds, history, model_ref)

    if total == 0:
        diagonal = query["true_class"] is not None and query["true_class"] == query["predicted_class"]
        st.info(tr("evaluation.browser.none") + (tr("evaluation.browser.diagonal") if diagonal else ""))
    rows = hits.rows(names)
    for start in range(0, len(rows), GRID_COLUMNS):
        for col, row in zip(st.columns(GRID_COLUMNS), rows[start:start + GRID_COLUMNS]):
            col.image(pixelated(images[row["index"]], THUMB_SCALE), width=32 * THUMB_SCALE,
                      caption=f"{row['true_name']} →  \n**{row['predicted_name']}** · {row['confidence']:.0%}")
            if history is not None and row["index"] < history.num_images:
                col.markdown(strip_markdown(history, row["index"], names, last=6, names=False),
                             help=tr("evaluation.browser.strip_help"))
            col.button(f"#{row['index']}", key=f"{INSPECT_PREFIX}{row['index']}",
                       help=tr("evaluation.browser.show_help"),
                       on_click=lambda i=row["index"]: st.session_state.update({INSPECT_KEY: i}))
    if rows:
        st.caption(tr("evaluation.browser.grid_caption"))
