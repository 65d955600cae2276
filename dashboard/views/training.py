"""Training: start a run in the background, watch it live, stop and resume it, compare runs.

The form is generated from TrainConfig's description of itself (dashboard.config_form); the run
sections live in dashboard.run_panel. Training happens in its own process (core.runs.jobs), so a
reload or a second tab shows the same live run.
"""
from __future__ import annotations

import streamlit as st

from core import data, settings
from core.runs import jobs
from core.runs.store import Run, RunError, RunStore
from core.train.config import PRESETS, ConfigError
from core.train.device import usable_devices
from dashboard import common, config_form, lr_finder_panel, run_panel, sweep_panel
from dashboard.training_keys import FIND_LR, FORM, NAME, PRESET, SELECTED, START

DEFAULT_PRESET = "tutorial_mlp"  # the tutorial's own recipe first; the faster ones are a choice away
SHOW_NEXT = "train_show_next"   # a run just started or queued here: the picker shows it on the next page run


def load_preset() -> None:  # on_change: runs before the widgets exist, so their keys may be set
    config_form.fill(PRESETS[st.session_state[PRESET]].config)


def new_run_form(store: RunStore, kind: str, active: list[Run], data_missing: bool) -> None:
    """Preset picker and the settings form; Start training stores the run and starts its trainer."""
    st.subheader("New run")
    st.caption(f"Trains on the **{data.kind_label(kind)}** (choose in the sidebar).")
    preset = PRESETS[st.selectbox("Preset", list(PRESETS), key=PRESET, on_change=load_preset,
                                  format_func=lambda p: PRESETS[p].title)]
    st.caption(f"{preset.description}  \n:material/timer: **CPU:** {preset.cpu_time_hint} · **GPU:** "
               f"{preset.gpu_time_hint}")
    with st.form(FORM, border=True):
        config_form.draw({"device": usable_devices()})
        st.text_input("Run name (optional)", key=NAME, placeholder="e.g. lower lr")
        busy = len([r for r in active if not r.waiting]) >= settings.max_active_runs()
        submitted = st.form_submit_button(
            "Queue this run" if busy else "Start training", type="primary", key=START, disabled=data_missing,
            width="stretch", help=f"{settings.max_active_runs()} run(s) train already (CIFARLAB_MAX_ACTIVE_RUNS): "
            "this one waits in the queue and starts by itself when a slot frees." if busy else None)
        find = st.form_submit_button(
            "Find a learning rate", key=FIND_LR, disabled=data_missing, width="stretch",
            help="A short test run (at most 300 steps, about a minute on a CPU for the MLP) with these settings "
                 "and the rate rising from 1e-7 to 10; it suggests a rate and stores no run.  \nCommand line: "
                 "`python -m core lr-find`")
    if not (submitted or find):
        lr_finder_panel.draw()
        return
    try:
        cfg = preset.config.replace(**config_form.changes(), dataset=kind, preset=preset.name)
    except ConfigError as exc:
        st.error(f"**{config_form.label(exc.field)}**: {exc.message}")
        return
    if find:
        lr_finder_panel.start(cfg)
        lr_finder_panel.draw()
        return
    try:
        run = jobs.start_run(store, cfg, st.session_state.get(NAME) or None)
    except ConfigError as exc:   # e.g. more processes than this machine has GPUs or cores
        st.error(f"**{config_form.label(exc.field)}**: {exc.message}")
        return
    except (RunError, ValueError) as exc:
        st.error(str(exc))
        return
    st.session_state[SHOW_NEXT] = run.id  # picked just before the run picker is drawn (see below)
    st.rerun()


# ---- page ----------------------------------------------------------------------------------
st.title("Training")
store = common.run_store()
kind = common.dataset_kind()
runs = store.list_runs()
active = [r for r in runs if r.is_active]
run_panel.remember(runs)
run_panel.show_flash()
data_missing = kind == "cifar10" and not data.cifar10_status(settings.data_root()).usable  # missing or damaged
if data_missing:
    common.get_dataset(kind)  # explains what is missing, offers the demo set and the download

config_form.keep(PRESETS[DEFAULT_PRESET].config)  # keep edits across page switches
st.session_state[PRESET] = st.session_state.get(PRESET, DEFAULT_PRESET)

form_col, run_col = st.columns([1.3, 2], gap="large")
with form_col:
    new_run_form(store, kind, active, data_missing)
    sweep_panel.form(store, kind, data_missing)
with run_col:
    st.subheader("Run")
    if SHOW_NEXT in st.session_state:  # set in the same page run as the picker, so the browser's old value
        st.session_state[SELECTED] = st.session_state.pop(SHOW_NEXT)  # (sent with any rerun) cannot win
    run = run_panel.selected_run(store, runs, active)

st.divider()
st.subheader("All runs")
run_panel.all_runs(store, runs, run)
sweep_panel.view(store)
