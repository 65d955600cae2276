"""Compare the evaluated run with another one, class by class."""
from __future__ import annotations

import streamlit as st

from core import data, evaluate
from core.runs.store import Run, RunStore
from dashboard.common import chart_text, plain
from dashboard.evaluation import loading
from dashboard.evaluation.keys import COMPARE_CHART_KEY, COMPARE_KEY
from dashboard.figures import evaluation as figs


def comparison(store: RunStore, runs: list[Run], run: Run, which: str, summary: evaluate.Summary,
               dataset: data.Dataset) -> None:
    """A run picker, then grouped per-class accuracy bars of `run` and the picked run."""
    st.subheader("Compare with another run")
    others = {r.id: r for r in runs if r.id != run.id}
    other_id = st.selectbox("Other run", [None, *others], key=COMPARE_KEY,
                            format_func=lambda i: "—" if i is None else loading.run_label(others[i]))
    if other_id is None:
        return
    other = others[other_id]
    if other.dataset != run.dataset:
        st.warning(f"{plain(other.label)} was tested on {other.dataset_label} and {plain(run.label)} on {run.dataset_label}: "
                   "their classes differ, so there is nothing to compare class by class.")
        return
    available = loading.checkpoint_names(store, other)
    other_which = which if which in available else available[0]  # the same kind of checkpoint when it has one
    _, other_summary = loading.evaluate_checkpoint(store, other, other_which, dataset)
    st.plotly_chart(figs.compare_per_class(dataset.classes, [
        (chart_text(f"{run.label} ({which})"), summary.per_class_accuracy, summary.accuracy),
        (chart_text(f"{other.label} ({other_which})"), other_summary.per_class_accuracy, other_summary.accuracy)]),
        key=COMPARE_CHART_KEY)
