"""What the model has learned: first-layer weights as pictures, each class's favourite input, and (conv
nets) one image's activation maps. The numbers come from core.evaluate.learned, the pictures from
dashboard.figures.learned.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import streamlit as st

from core.evaluate import learned
from dashboard.evaluation import loading
from dashboard.evaluation.keys import (ACTIVATION_IMAGE_KEY, ACTIVATION_TOP_KEY, LEARNED_SHOW_KEY, PATTERN_ASKED_KEY,
                                       PATTERN_BUTTON_KEY, PATTERN_CHART_KEY, PATTERN_STEPS_KEY, UNIT_CLASS_KEY,
                                       UNIT_COUNT_KEY, UNIT_ORDER_KEY, VARIANCE_CHART_KEY)
from dashboard.evaluation.loading import shown_names
from dashboard.figures import learned as figs, pixelated
from dashboard.lang import core_text, lang, tr

UNIT_COUNTS = (100, 200, 500, 1000)
TOP_UNITS = 10
GRID_COLUMNS = 25
PATTERN_SCALE = 4
PATTERNS_PER_ROW = 5
TILES_PER_ROW = 8        # activation tiles of 64 px: eight fit a row at 1280 px


@st.cache_data(max_entries=4, show_spinner=False)
def _units(path: str, key: str) -> learned.UnitPictures:
    return learned.first_layer_units(loading.load_model(path, key))


@st.cache_data(max_entries=4, show_spinner=False)
def _filters(path: str, key: str) -> learned.StemFilters:
    return learned.first_layer_filters(loading.load_model(path, key))


@st.cache_data(max_entries=32, show_spinner=False)
def _activations(path: str, key: str, index: int, _image: np.ndarray) -> learned.Activations:
    return learned.activation_maps(loading.load_model(path, key), _image)


@st.cache_resource(show_spinner=False)
def _pattern_store() -> tuple[OrderedDict, threading.Lock]:
    """Class patterns shared by sessions, newest last (results only: read-only arrays, never a model)."""
    return OrderedDict(), threading.Lock()


def _stored_patterns(path: str, key: str, steps: int) -> learned.ClassPatterns | None:
    store, lock = _pattern_store()
    with lock:
        found = store.get((path, key, steps))
        if found is not None:
            store.move_to_end((path, key, steps))
        return found


def _patterns(path: str, key: str, classes: tuple[str, ...], steps: int) -> learned.ClassPatterns:
    """The class patterns of one checkpoint version; computed with a progress bar the first time."""
    found = _stored_patterns(path, key, steps)
    if found is not None:
        return found
    store, lock = _pattern_store()
    ref = (path, key, steps)
    bar = st.progress(0.0, text=tr("evaluation.learned.ascent_start", n=len(classes), steps=steps))
    result = learned.class_patterns(
        loading.load_model(path, key), len(classes), steps=steps,
        progress=lambda done, total: bar.progress(done / total,
                                                  text=tr("evaluation.learned.ascent_step", done=done, total=total)))
    bar.empty()
    for array in (result.pictures, result.inputs, result.scores, result.probs):
        array.setflags(write=False)
    with lock:
        store[ref] = result
        while len(store) > 8:
            store.popitem(last=False)
    return result


def _learned(name: str) -> str:
    """A reading guide written in core.evaluate.learned (HOW_TO_READ_<NAME>), translated."""
    return core_text(f"evaluate.learned.{name.lower()}", getattr(learned, f"HOW_TO_READ_{name}"))


def _unit_grid(path: str, key: str, names: tuple[str, ...]) -> None:
    units = _units(path, key)
    st.markdown(tr("evaluation.learned.units_title", n=units.units))
    st.caption(_learned("UNITS"))
    c = st.columns([3, 2, 2])
    orders = {o: core_text(f"evaluate.learned.order.{o}", text) for o, text in learned.UNIT_ORDERS.items()}
    by = c[0].radio(tr("evaluation.learned.order"), list(orders), format_func=orders.get, key=UNIT_ORDER_KEY,
                    horizontal=True)
    target = c[1].selectbox(tr("evaluation.learned.class"), range(len(names)), format_func=names.__getitem__,
                            key=UNIT_CLASS_KEY, disabled=by != "drive", help=tr("evaluation.learned.class_help"))
    count = c[2].select_slider(tr("evaluation.learned.units_shown"), UNIT_COUNTS, value=200, key=UNIT_COUNT_KEY)
    order = learned.unit_order(units, by, target if by == "drive" else None)
    if by == "drive":
        st.caption(tr("evaluation.learned.drive_caption", name=names[target]))
    else:
        st.caption(tr("evaluation.learned.norm_caption"))
    cols = st.columns(TOP_UNITS)
    for col, i in zip(cols, order[:TOP_UNITS]):
        col.image(pixelated(figs.to_uint8(units.pictures[i]), 2), width=64,   # ten fit a row at 1280 px
                  caption=tr("evaluation.learned.unit_drive", i=i, norm=units.norms[i], drive=units.drive[target, i])
                  if by == "drive" else tr("evaluation.learned.unit", i=i, norm=units.norms[i]))
    shown = order[:count]
    st.image(figs.mosaic(units.pictures[shown], GRID_COLUMNS, scale=2),
             caption=tr("evaluation.learned.mosaic", n=len(shown), per_row=GRID_COLUMNS))


def _class_patterns(path: str, key: str, names: tuple[str, ...], synthetic: bool, conv: bool) -> None:
    st.markdown(tr("evaluation.learned.patterns_title"))
    st.caption(_learned("PATTERNS") + (" " + _learned("CONV_PATTERNS") if conv else ""))
    steps = st.select_slider(tr("evaluation.learned.steps"), (10, 20, 40, 80), value=learned.ASCENT_STEPS,
                             key=PATTERN_STEPS_KEY, help=tr("evaluation.learned.steps_help"))
    asked = st.session_state.get(PATTERN_ASKED_KEY) == (path, key)     # then a new step count recomputes at once
    if not asked and _stored_patterns(path, key, steps) is None:
        slot = st.empty()
        if not slot.button(tr("evaluation.learned.find_patterns"), key=PATTERN_BUTTON_KEY,
                           help=tr("evaluation.learned.find_help", steps=steps, n=len(names))):
            return
        slot.empty()
        st.session_state[PATTERN_ASKED_KEY] = (path, key)
    result = _patterns(path, key, names, steps)
    for start in range(0, len(names), PATTERNS_PER_ROW):
        cols = st.columns(PATTERNS_PER_ROW)
        for c, col in zip(range(start, min(start + PATTERNS_PER_ROW, len(names))), cols):
            col.image(pixelated(figs.to_uint8(result.pictures[c]), PATTERN_SCALE), width=32 * PATTERN_SCALE,
                      caption=tr("evaluation.learned.pattern", name=names[c], start=result.scores[0, c],
                                 end=result.best_scores[c], p=result.probs[c]))
    st.caption(tr("evaluation.learned.patterns_caption", steps=steps)
               + (tr("evaluation.learned.patterns_synthetic") if synthetic else ""))
    with st.expander(tr("evaluation.learned.ascent_expander")):
        st.plotly_chart(figs.ascent_chart(result.scores, names, lang=lang()), key=PATTERN_CHART_KEY)
        st.caption(tr("evaluation.learned.ascent_caption"))


def _stem_filters(path: str, key: str) -> None:
    stem = _filters(path, key)
    n, _, k, _ = stem.weights.shape
    st.markdown(tr("evaluation.learned.filters_title", n=n, k=k))
    whitening = stem.kind == "whitening"
    st.caption(_learned("FILTERS") + " "
               + (_learned("WHITENING") if whitening else tr("evaluation.learned.filters_learned")))
    scale = max(1, 48 // k)
    per_row = n // 2 if whitening else min(n, 12)   # 48 px pictures: twelve fit a row at 1280 px
    for start in range(0, n, per_row):
        cols = st.columns(per_row)
        for col, i in zip(cols, range(start, min(n, start + per_row))):
            half = n // 2
            label = f"−#{i - half + 1}" if whitening and i >= half else f"#{i + 1}"
            col.image(pixelated(figs.to_uint8(stem.pictures[i]), scale), width=k * scale, caption=label)
    if whitening:
        st.caption(tr("evaluation.learned.whitening_rows", n=n // 2))
        st.plotly_chart(figs.variance_bar(stem.variances[:n // 2], lang=lang()), key=VARIANCE_CHART_KEY)
        st.caption(tr("evaluation.learned.variance_caption"))


def _activation_maps(path: str, key: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                     names: tuple[str, ...]) -> None:
    st.markdown(tr("evaluation.learned.activations_title"))
    st.caption(_learned("ACTIVATIONS"))
    c = st.columns([1, 1, 3])
    index = int(c[0].number_input(tr("evaluation.learned.image"), 0, len(images) - 1, 0, key=ACTIVATION_IMAGE_KEY))
    top = int(c[1].select_slider(tr("evaluation.learned.channels"), (4, 8, 12, 16), value=8, key=ACTIVATION_TOP_KEY))
    image = images[index]
    result = _activations(path, key, index, image)
    right = predicted[index] == labels[index]
    c[2].image(pixelated(image, 3), width=96,
               caption=tr("evaluation.learned.activation_image" if right else "evaluation.learned.activation_wrong",
                          i=index, true=names[labels[index]], predicted=names[predicted[index]]))
    for group in result.groups:
        channels = group.top(top)
        tiles, vmax = figs.activation_tiles(group.maps[channels])
        count, h, w = group.maps.shape
        st.caption(tr("evaluation.learned.group", name=_group_name(group.name), count=count, h=h, w=w,
                      shown=len(channels), vmax=vmax))
        for start in range(0, len(channels), TILES_PER_ROW):
            cols = st.columns(TILES_PER_ROW)
            for col, ch, tile in zip(cols, channels[start:], tiles[start:start + TILES_PER_ROW]):
                col.image(tile, width=64, caption=tr("evaluation.learned.channel", ch=ch, mean=group.mean[ch]))


def _group_name(name: str) -> str:
    """'stem' or 'group 2' (core.evaluate.learned.activation_maps) as the captions name it."""
    if name == "stem":
        return tr("evaluation.learned.stem")
    return tr("evaluation.learned.group_n", n=name.removeprefix("group "))


def learned_section(checkpoint: str, key: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                    classes: tuple[str, ...], synthetic: bool) -> None:
    """The section of the Evaluation page for one checkpoint version (`key`)."""
    st.subheader(tr("evaluation.learned.title"))
    st.caption(tr("evaluation.learned.intro") + (tr("evaluation.learned.intro_synthetic") if synthetic else ""))
    if not st.toggle(tr("evaluation.learned.show"), key=LEARNED_SHOW_KEY, help=tr("evaluation.learned.show_help")):
        return
    names = shown_names(classes)
    conv = learned.is_conv_net(loading.load_model(checkpoint, key).model)
    if conv:
        _stem_filters(checkpoint, key)
        _activation_maps(checkpoint, key, images, labels, predicted, names)
    else:
        _unit_grid(checkpoint, key, names)
    _class_patterns(checkpoint, key, names, synthetic, conv)
