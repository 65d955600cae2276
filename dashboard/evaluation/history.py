"""Epoch by epoch: the prediction history's scrubber, per-class accuracy over epochs, forgotten images.

`draw_history` is shared with the Training page (dashboard.history_panel), which redraws it live.
"""
from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from core.evaluate import history as hist
from dashboard.evaluation.loading import shown_names
from dashboard.figures import evaluation as figs
from dashboard.lang import lang, tr


def explain() -> str:
    """What the section shows and how to read it, in the session's language."""
    return tr("evaluation.history.explain")


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


def _chart(where, fig, key: str, caption: str) -> None:
    """A chart with its one-line reading guide under it."""
    where.plotly_chart(fig, key=key)
    where.caption(caption)


def draw_history(history: hist.PredictionHistory, classes: tuple[str, ...], prefix: str, *,
                 synthetic: bool = False, narrow: bool = False) -> None:
    """The scrubber and what it drives (accuracy, per class, confusion at that epoch) and the class x
    epoch heatmap; `prefix` keeps the widget keys of two places apart. `narrow` (a page column about
    500 px wide, e.g. the Training page's): the charts one under another instead of side by side."""
    epochs = [int(e) for e in history.epochs]
    names = shown_names(tuple(classes))
    _scrubber_value(history, prefix)
    if len(epochs) > 1:
        epoch = st.select_slider(tr("evaluation.history.epoch"), options=epochs, key=f"{prefix}_epoch",
                                 help=tr("evaluation.history.epoch_help"))
    else:
        epoch = epochs[0]
        st.caption(tr("evaluation.history.one_epoch", epoch=epoch))
    index = epochs.index(epoch)
    summary = hist.epoch_summary(history, index, classes)
    overall = hist.overall_over_epochs(history)
    cols = [*st.columns(2), *st.columns(2)] if narrow else st.columns(3)   # narrow: two by two, no label cut
    change = tr("evaluation.history.delta", pts=100 * (overall[index] - overall[index - 1])) if index else None
    cols[0].metric(tr("evaluation.history.accuracy"), f"{summary.accuracy:.1%}", delta=change)
    cols[1].metric(tr("evaluation.history.epochs"), f"{len(epochs)}")
    cols[2].metric(tr("evaluation.history.images"), f"{history.num_images:,}")
    per_class = hist.per_class_over_epochs(history, len(classes))

    def pair():
        return (st.container(), st.container()) if narrow else st.columns([3, 2])

    language = lang()
    left, right = pair()
    _chart(left, figs.per_class_over_epochs(names, epochs, per_class, epoch, lang=language), f"{prefix}_per_class",
           tr("evaluation.history.heatmap_caption"))
    _chart(right, figs.per_class_accuracy_bar(names, summary.per_class_accuracy, summary.accuracy, summary.support,
                                              lang=language), f"{prefix}_bar",
           tr("evaluation.history.bar_caption", epoch=epoch))
    left, right = pair()
    confusion = figs.confusion_heatmap(summary.confusion, summary.confusion_normalized, names, lang=language)
    confusion.update_layout(title=tr("evaluation.history.confusion_title", epoch=epoch), height=520)
    _chart(left, confusion, f"{prefix}_confusion", tr("evaluation.confusion.caption_counts"))
    forgotten = hist.forgotten_per_class(history, len(classes))
    _chart(right, figs.forgotten_bar(names, forgotten, summary.support, lang=language), f"{prefix}_forgotten",
           tr("evaluation.history.forgotten_caption"))
    if synthetic:
        st.caption(tr("evaluation.history.synthetic"))


@st.fragment
def _scrubbed(run_dir: str, classes: tuple[str, ...], prefix: str, synthetic: bool) -> None:
    history = read_history(run_dir)
    if history is not None:
        draw_history(history, classes, prefix, synthetic=synthetic)


def history_section(run_dir: str | os.PathLike, classes: tuple[str, ...], prefix: str, *,
                    synthetic: bool = False) -> hist.PredictionHistory | None:
    """The Evaluation page's section; returns the history (None, after saying so, when there is none)."""
    st.subheader(tr("evaluation.history.title"))
    history = read_history(run_dir)
    if history is None:
        st.info(tr("evaluation.history.none"))
        return None
    if history.num_images and int(history.labels.max()) >= len(classes):
        st.warning(tr("evaluation.history.mismatch"))
        return None
    st.caption(explain())
    _scrubbed(str(run_dir), tuple(classes), prefix, synthetic)
    return history
