"""Compare the evaluated run with another one, class by class."""
from __future__ import annotations

import streamlit as st

from core import data, evaluate
from core.runs.store import Run, RunStore
from dashboard.common import chart_text, plain
from dashboard.evaluation import loading
from dashboard.evaluation.keys import COMPARE_CHART_KEY, COMPARE_KEY
from dashboard.figures import evaluation as figs
from dashboard.lang import lang, tr


def comparison(store: RunStore, runs: list[Run], run: Run, which: str, summary: evaluate.Summary,
               dataset: data.Dataset) -> None:
    """A run picker, then grouped per-class accuracy bars of `run` and the picked run."""
    st.subheader(tr("evaluation.compare.title"))
    others = {r.id: r for r in runs if r.id != run.id}
    labels = {None: "—", **{i: loading.run_label(r) for i, r in others.items()}}   # made now, in this run's language
    other_id = st.selectbox(tr("evaluation.compare.other"), list(labels), key=COMPARE_KEY, format_func=labels.get)
    if other_id is None:
        return
    other = others[other_id]
    if other.dataset != run.dataset:
        st.warning(tr("evaluation.compare.other_dataset", other=plain(other.label), run=plain(run.label),
                      other_dataset=loading.dataset_word(other.dataset), dataset=loading.dataset_word(run.dataset)))
        return
    available = loading.checkpoint_names(store, other)
    other_which = which if which in available else available[0]  # the same kind of checkpoint when it has one
    _, other_summary = loading.evaluate_checkpoint(store, other, other_which, dataset)
    st.plotly_chart(figs.compare_per_class(loading.shown_names(dataset.classes), [
        (chart_text(f"{run.label} ({loading.checkpoint_word(which)})"), summary.per_class_accuracy, summary.accuracy),
        (chart_text(f"{other.label} ({loading.checkpoint_word(other_which)})"), other_summary.per_class_accuracy,
         other_summary.accuracy)], lang=lang()), key=COMPARE_CHART_KEY)
    st.caption(tr("evaluation.compare.caption"))
