"""The Training page's "epoch by epoch" section for the selected run (live while it trains).

    history_panel.history_section(store, run)     # one call, from dashboard.run_panel

Reads the run's prediction history (core.train.history, written by the trainer after each epoch)
and draws the same scrubber and charts as the Evaluation page (dashboard.evaluation.history). While
the run trains, the Training page's live view reruns this section when the file changes (once per
epoch: dashboard.live_feed.settled_key), so the per-class heatmap grows and the scrubber follows the
newest epoch until the user moves it back; no timer of its own redraws an unchanged file. Its own words come from the
catalogues (training.run.history.*).
"""
from __future__ import annotations

import streamlit as st

from core import data
from core.data.synthetic import SYNTHETIC_CLASSES
from core.runs.store import Run, RunStore
from dashboard.evaluation import history as eval_history
from dashboard.lang import tr

def _classes(run: Run) -> tuple[str, ...]:
    return SYNTHETIC_CLASSES if run.dataset == "synthetic" else tuple(data.CLASSES)


def _draw(store: RunStore, run_id: int) -> None:
    try:
        run = store.get(run_id)
    except Exception:  # deleted meanwhile
        return
    history = eval_history.read_history(store.run_dir(run.id))
    if history is None:
        st.caption(tr("training.run.history.waiting"))
        return
    eval_history.draw_history(history, _classes(run), f"tr_hist_{run.id}", synthetic=run.dataset == "synthetic",
                              narrow=True)   # in the Training page's run column


def history_section(store: RunStore, run: Run | None) -> None:
    """An expander with the selected run's predictions epoch by epoch."""
    if run is None:
        return
    with st.expander(tr("training.run.history.title"), expanded=run.is_active):
        st.caption(tr("training.run.history.explain"))
        _draw(store, run.id)
