"""The Training page's learning-rate finder: a short background job, its curve, "Use this rate".

    lr_finder_panel.start(cfg)      # from the form's "Find a learning rate" button
    lr_finder_panel.draw()          # progress while it runs (polled), then the curve and suggestion

The finder is `python -m core lr-find` (core.train.lr_finder) in its own process, writing one JSON
file; no run is stored. This tab remembers which file is its own (FINDER_JOB).
"""
from __future__ import annotations

import streamlit as st

from core.runs import jobs
from core.runs.store import process_alive
from core.train.config import TrainConfig
from core.train.lr_finder import SUGGESTION_RULE, read_result
from dashboard import common
from dashboard.config_form import field_key
from dashboard.figures import training as ft
from dashboard.training_keys import FINDER_JOB, FLASH, USE_LR


def start(cfg: TrainConfig) -> None:
    pid, path = jobs.start_lr_finder(cfg)
    st.session_state[FINDER_JOB] = {"pid": pid, "path": str(path), "batch_size": cfg.batch_size,
                                    "optimizer": cfg.optimizer, "model": cfg.model}


def use_rate(rate: float) -> None:  # callback: before the form's widgets are drawn again
    st.session_state[field_key("lr")] = float(f"{rate:.3g}")
    st.session_state[FLASH] = ("success", f"Learning rate set to {rate:.3g} in the form; press Start training.")


@st.fragment(run_every=0.5)
def _poll(job: dict) -> None:
    """While the finder runs: its progress; once it has ended, the whole page draws the result."""
    state = read_result(job["path"]) or {"status": "running", "step": 0, "max_steps": 300}
    if state["status"] != "running" or not process_alive(job["pid"]):
        st.rerun()
    done, total = state.get("step", 0), state.get("max_steps", 300)
    text = f"Finding a learning rate: step {done} of at most {total}"
    if state.get("lr"):
        text += f" · lr {state['lr']:.2g}"
    st.progress(min(done / max(total, 1), 1.0), text=text)


def draw() -> None:
    job = st.session_state.get(FINDER_JOB)
    if job is None:
        return
    state = read_result(job["path"])
    if (state is None or state["status"] == "running") and process_alive(job["pid"]):
        _poll(job)
        return
    if state is None or state["status"] != "done":
        why = (state or {}).get("message") or "its process ended without a result"
        st.error(f"The learning-rate finder failed: {common.plain(why)}")
        return
    st.plotly_chart(ft.lr_finder_figure(state), key="train_lr_finder_chart")
    rate = state.get("suggestion")
    steps, ended = len(state.get("lrs") or []), state.get("ended", "")
    st.caption(f"{steps} steps in {state.get('seconds', 0):.0f} s ({ended}), {job['model']}, {job['optimizer']}, "
               f"batch {job['batch_size']}; nothing was stored. Suggestion: {SUGGESTION_RULE}. A good rate is "
               "usually there or a little lower; the loss must still be falling clearly.")
    if rate is None:
        st.warning("No suggestion: the loss never fell clearly. Try a smaller batch size or another optimizer.")
        return
    st.button(f"Use this rate ({rate:.3g})", key=USE_LR, on_click=use_rate, args=(rate,), type="primary")
