"""Epoch by epoch: the prediction history's scrubber, per-class accuracy over epochs, forgotten images.

`draw_history` is shared with the Training page (dashboard.history_panel), which redraws it live.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.evaluate import history as hist
from dashboard.figures import evaluation as figs

EXPLAIN = ("After every epoch the trainer keeps each test image's predicted class and confidence. Move the "
           "slider to see the test accuracy, the per-class accuracy and the confusion matrix as they were at "
           "that epoch. The heatmap shows every class's accuracy over all epochs at once: a row that gets "
           "brighter is a class being learned; one that darkens again is being forgotten.")


@st.cache_data(max_entries=16, show_spinner=False)
def _read(path: str, stamp: tuple[int, int]) -> hist.PredictionHistory | None:
    return hist.load_history(Path(path).parent)


def read_history(run_dir: str | os.PathLike) -> hist.PredictionHistory | None:
    """The run's history, re-read only when the file changed (mtime, size)."""
    path = hist.history_path(run_dir)
    try:
        stat = path.stat()
    except OSError:
        return None
    return _read(str(path), (stat.st_mtime_ns, stat.st_size))


def _scrubber_value(history: hist.PredictionHistory, prefix: str) -> int:
    """The slider follows the newest epoch until the user moves it back."""
    key, latest_key = f"{prefix}_epoch", f"{prefix}_latest"
    epochs = [int(e) for e in history.epochs]
    latest = epochs[-1]
    if st.session_state.get(key) not in epochs or st.session_state.get(key) == st.session_state.get(latest_key):
        st.session_state[key] = latest
    st.session_state[latest_key] = latest
    return latest


def draw_history(history: hist.PredictionHistory, classes: tuple[str, ...], prefix: str, *,
                 synthetic: bool = False, narrow: bool = False) -> None:
    """The scrubber and what it drives (accuracy, per class, confusion at that epoch) and the class x
    epoch heatmap; `prefix` keeps the widget keys of two places apart. `narrow` (a page column about
    500 px wide, e.g. the Training page's): the charts one under another instead of side by side."""
    epochs = [int(e) for e in history.epochs]
    _scrubber_value(history, prefix)
    if len(epochs) > 1:
        epoch = st.select_slider("Epoch", options=epochs, key=f"{prefix}_epoch",
                                 help="The state of the predictions after this epoch's test evaluation.")
    else:
        epoch = epochs[0]
        st.caption(f"One epoch recorded so far (epoch {epoch}); the slider appears after the next one.")
    index = epochs.index(epoch)
    summary = hist.epoch_summary(history, index, classes)
    overall = hist.overall_over_epochs(history)
    cols = st.columns(3)
    cols[0].metric("Test accuracy at this epoch", f"{summary.accuracy:.1%}",
                   delta=f"{100 * (overall[index] - overall[index - 1]):+.1f} pts" if index else None)
    cols[1].metric("Epochs recorded", f"{len(epochs)}")
    cols[2].metric("Test images", f"{history.num_images:,}")
    per_class = hist.per_class_over_epochs(history, len(classes))
    def pair():
        return (st.container(), st.container()) if narrow else st.columns([3, 2])

    left, right = pair()
    left.plotly_chart(figs.per_class_over_epochs(classes, epochs, per_class, epoch), key=f"{prefix}_per_class")
    right.plotly_chart(figs.per_class_accuracy_bar(classes, summary.per_class_accuracy, summary.accuracy,
                                                   summary.support), key=f"{prefix}_bar")
    left, right = pair()
    confusion = figs.confusion_heatmap(summary.confusion, summary.confusion_normalized, classes)
    confusion.update_layout(title=f"Confusion matrix at epoch {epoch} (image counts)", height=520)
    left.plotly_chart(confusion, key=f"{prefix}_confusion")
    forgotten = hist.forgotten_per_class(history, len(classes))
    right.plotly_chart(figs.forgotten_bar(classes, forgotten, summary.support), key=f"{prefix}_forgotten")
    right.caption("Forgotten: correct after one epoch, wrong after the next, at least once (over all recorded "
                  "epochs). Many forgotten images in a class mean the model keeps changing its mind about it.")
    if synthetic:
        st.caption("Synthetic demo set: procedural shapes and textures drawn by the app, not CIFAR-10.")


@st.fragment
def _scrubbed(run_dir: str, classes: tuple[str, ...], prefix: str, synthetic: bool) -> None:
    history = read_history(run_dir)
    if history is not None:
        draw_history(history, classes, prefix, synthetic=synthetic)


def history_section(run_dir: str | os.PathLike, classes: tuple[str, ...], prefix: str, *,
                    synthetic: bool = False) -> hist.PredictionHistory | None:
    """The Evaluation page's section; returns the history (None, after saying so, when there is none)."""
    st.subheader("Epoch by epoch")
    history = read_history(run_dir)
    if history is None:
        st.info("This run has no prediction history: it was trained before the history was recorded, or "
                "has not finished an epoch yet. Runs started from the Training page record every epoch.")
        return None
    if history.num_images and int(history.labels.max()) >= len(classes):
        st.warning("This run's prediction history does not match its dataset's classes; it is not shown.")
        return None
    st.caption(EXPLAIN)
    _scrubbed(str(run_dir), tuple(classes), prefix, synthetic)
    return history
