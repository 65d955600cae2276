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
from dashboard.evaluation.keys import (ACTIVATION_IMAGE_KEY, ACTIVATION_TOP_KEY, LEARNED_SHOW_KEY, PATTERN_ASKED_KEY, PATTERN_BUTTON_KEY,
                                       PATTERN_CHART_KEY, PATTERN_STEPS_KEY, UNIT_CLASS_KEY, UNIT_COUNT_KEY,
                                       UNIT_ORDER_KEY, VARIANCE_CHART_KEY)
from dashboard.figures import learned as figs, pixelated

UNIT_COUNTS = (100, 200, 500, 1000)
TOP_UNITS = 10
GRID_COLUMNS = 25
PATTERN_SCALE = 4
PATTERNS_PER_ROW = 5
INTRO = ("What the trained weights themselves look like, without any test image: the first layer's weights drawn "
         "as pictures, and for each class the input its score rises most for.")


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
    bar = st.progress(0.0, text=f"Gradient ascent for {len(classes)} classes… step 0 / {steps}")
    result = learned.class_patterns(
        loading.load_model(path, key), len(classes), steps=steps,
        progress=lambda done, total: bar.progress(done / total, text=f"Gradient ascent… step {done} / {total}"))
    bar.empty()
    for array in (result.pictures, result.inputs, result.scores, result.probs):
        array.setflags(write=False)
    with lock:
        store[ref] = result
        while len(store) > 8:
            store.popitem(last=False)
    return result


def _unit_grid(path: str, key: str, classes: tuple[str, ...]) -> None:
    units = _units(path, key)
    st.markdown(f"**The first layer's {units.units:,} units**")
    st.caption(learned.HOW_TO_READ_UNITS)
    c = st.columns([3, 2, 2])
    by = c[0].radio("Order", list(learned.UNIT_ORDERS), format_func=learned.UNIT_ORDERS.get, key=UNIT_ORDER_KEY,
                    horizontal=True)
    target = c[1].selectbox("Class", range(len(classes)), format_func=classes.__getitem__, key=UNIT_CLASS_KEY,
                            disabled=by != "drive", help="Used when ordering by drive.")
    count = c[2].select_slider("Units shown", UNIT_COUNTS, value=200, key=UNIT_COUNT_KEY)
    order = learned.unit_order(units, by, target if by == "drive" else None)
    if by == "drive":
        st.caption(f"Drive of a unit towards **{classes[target]}**: fc3 · fc2, the weight of the path from that "
                   "unit to the class's score through the two later layers, as if every unit of the second layer "
                   "were active (for a given image its ReLU switches some off, so this is an approximation). "
                   "The units that raise the class most come first.")
    else:
        st.caption("Largest weight vector first (its length, ||w||): the units that react most strongly to any "
                   "change of the pixels.")
    cols = st.columns(TOP_UNITS)
    for col, i in zip(cols, order[:TOP_UNITS]):
        col.image(pixelated(figs.to_uint8(units.pictures[i]), 3), width=96,
                  caption=f"unit {i} · norm {units.norms[i]:.2f} · drive {units.drive[target, i]:+.3f}"
                  if by == "drive" else f"unit {i} · norm {units.norms[i]:.2f}")
    shown = order[:count]
    st.image(figs.mosaic(units.pictures[shown], GRID_COLUMNS, scale=2),
             caption=f"The first {len(shown):,} units in this order, left to right, top to bottom "
                     f"({GRID_COLUMNS} per row).")


def _class_patterns(path: str, key: str, classes: tuple[str, ...], synthetic: bool, conv: bool) -> None:
    st.markdown("**The pattern each class's score rises most for**")
    st.caption(learned.HOW_TO_READ_PATTERNS + (" " + learned.HOW_TO_READ_CONV_PATTERNS if conv else ""))
    steps = st.select_slider("Ascent steps", (10, 20, 40, 80), value=learned.ASCENT_STEPS, key=PATTERN_STEPS_KEY,
                             help="Each step moves the pixels a little (by 0.05 on average, in the normalised "
                                  "units the model sees) up the class score's gradient.")
    asked = st.session_state.get(PATTERN_ASKED_KEY) == (path, key)     # then a new step count recomputes at once
    if not asked and _stored_patterns(path, key, steps) is None:
        slot = st.empty()
        if not slot.button("Find each class's pattern", key=PATTERN_BUTTON_KEY,
                           help=f"{steps} gradient-ascent steps for all {len(classes)} classes at once: about a second "
                                "for the MLP and a few for a conv net on a quiet CPU, much longer while training "
                                "runs alongside; afterwards it is kept for this checkpoint."):
            return
        slot.empty()
        st.session_state[PATTERN_ASKED_KEY] = (path, key)
    result = _patterns(path, key, classes, steps)
    for start in range(0, len(classes), PATTERNS_PER_ROW):
        cols = st.columns(PATTERNS_PER_ROW)
        for c, col in zip(range(start, min(start + PATTERNS_PER_ROW, len(classes))), cols):
            col.image(pixelated(figs.to_uint8(result.pictures[c]), PATTERN_SCALE), width=32 * PATTERN_SCALE,
                      caption=f"{classes[c]}: score {result.scores[0, c]:.2f} to {result.best_scores[c]:.2f} "
                              f"(p = {result.probs[c]:.0%})")
    with st.expander("The ascent, step by step"):
        st.plotly_chart(figs.ascent_chart(result.scores, classes), key=PATTERN_CHART_KEY)
    st.caption(f"{steps} steps from a grey image (every pixel 0.5); the image kept is the step with the highest "
               "score. p is the softmax probability of the class on its own pattern." + (" The model was trained on the **synthetic** demo set, so these are "
                                     "patterns of its procedural images, not of CIFAR-10." if synthetic else ""))


def _stem_filters(path: str, key: str) -> None:
    stem = _filters(path, key)
    n, _, k, _ = stem.weights.shape
    st.markdown(f"**The first layer's {n} filters ({k}x{k} pixels each)**")
    st.caption(learned.HOW_TO_READ_FILTERS + (" " + learned.HOW_TO_READ_WHITENING if stem.kind == "whitening" else
                                             " These filters were learned during training."))
    scale = max(1, 48 // k)
    per_row = n // 2 if stem.kind == "whitening" else min(n, 16)
    for start in range(0, n, per_row):
        cols = st.columns(per_row)
        for col, i in zip(cols, range(start, min(n, start + per_row))):
            if stem.kind == "whitening":
                half = n // 2
                label = f"#{i + 1}" if i < half else f"−#{i - half + 1}"
            else:
                label = f"#{i + 1}"
            col.image(pixelated(figs.to_uint8(stem.pictures[i]), scale), width=k * scale, caption=label)
    if stem.kind == "whitening":
        st.caption("First row: filters #1-#12, largest patch variance first (the chart); second row: the same "
                   "filters negated.")
        st.plotly_chart(figs.variance_bar(stem.variances[:n // 2]), key=VARIANCE_CHART_KEY)


def _activation_maps(path: str, key: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                     classes: tuple[str, ...]) -> None:
    st.markdown("**Activation maps of one test image**")
    st.caption(learned.HOW_TO_READ_ACTIVATIONS)
    c = st.columns([1, 1, 3])
    index = int(c[0].number_input("Test image #", 0, len(images) - 1, 0, key=ACTIVATION_IMAGE_KEY))
    top = int(c[1].select_slider("Channels per group", (4, 8, 12, 16), value=8, key=ACTIVATION_TOP_KEY))
    image = images[index]
    result = _activations(path, key, index, image)
    right = predicted[index] == labels[index]
    c[2].image(pixelated(image, 3), width=96,
               caption=f"#{index}: {classes[labels[index]]}, predicted {classes[predicted[index]]}"
                       + ("" if right else " (wrong)"))
    for group in result.groups:
        channels = group.top(top)
        tiles, vmax = figs.activation_tiles(group.maps[channels])
        count, h, w = group.maps.shape
        st.caption(f"**{group.name}**: {count} channels of {h}x{w}; the {len(channels)} most active shown "
                   f"(colour scale 0 to {vmax:.2f}, dark blue to yellow)")
        cols = st.columns(16)
        for col, ch, tile in zip(cols, channels, tiles):
            col.image(tile, width=64, caption=f"ch {ch} · {group.mean[ch]:.2f}")


def learned_section(checkpoint: str, key: str, images: np.ndarray, labels: np.ndarray, predicted: np.ndarray,
                    classes: tuple[str, ...], synthetic: bool) -> None:
    """The section of the Evaluation page for one checkpoint version (`key`)."""
    st.subheader("What the model has learned")
    st.caption(INTRO + (" Trained on the **synthetic** demo set." if synthetic else ""))
    if not st.toggle("Show what the model has learned", key=LEARNED_SHOW_KEY,
                     help="Off by default: the pictures make every rerun of this page heavier."):
        return
    conv = learned.is_conv_net(loading.load_model(checkpoint, key).model)
    if conv:
        _stem_filters(checkpoint, key)
        _activation_maps(checkpoint, key, images, labels, predicted, classes)
    else:
        _unit_grid(checkpoint, key, classes)
    _class_patterns(checkpoint, key, classes, synthetic, conv)
