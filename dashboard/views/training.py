"""Training: start a run in the background, watch it live, stop and resume it, compare runs.

The form is generated from TrainConfig's description of itself (dashboard.config_form), with the
chosen preset and model explained above it; the run sections live in dashboard.run_panel. Training
happens in its own process (core.runs.jobs), so a reload or a second tab shows the same live run.
"""
from __future__ import annotations

import streamlit as st

from core import data, settings
from core.runs import jobs
from core.runs.store import Run, RunError, RunStore
from core.train.config import PRESETS, ConfigError, field_spec
from core.train.device import usable_devices
from dashboard import common, config_form, lr_finder_panel, run_panel, sweep_panel
from dashboard.lang import lang, tr
from dashboard.training_keys import FIND_LR, FORM, NAME, PRESET, SELECTED, START

DEFAULT_PRESET = "tutorial_mlp"  # the tutorial's own recipe first; the faster ones are a choice away
SHOW_NEXT = "train_show_next"   # a run just started or queued here: the picker shows it on the next page run
DRAWN_ABOVE = ("model",)        # drawn before the form (it reruns the page, so its description follows it)


def load_preset() -> None:  # on_change: runs before the widgets exist, so their keys may be set
    config_form.fill(PRESETS[st.session_state[PRESET]].config)


def new_run_form(store: RunStore, kind: str, active: list[Run], data_missing: bool) -> None:
    """Preset picker (what it is for, what it changes), model, and the settings form; Start
    training stores the run and starts its trainer."""
    st.subheader(tr("training.page.new_run"))
    st.caption(tr("training.page.trains_on", dataset=common.kind_label(kind)))
    here = lang()   # options stay preset names; the select shows their titles in this language
    preset = PRESETS[st.selectbox(tr("training.form.preset"), list(PRESETS), key=PRESET, on_change=load_preset,
                                  format_func=lambda p: PRESETS[p].text("title", here))]
    dataset = None if data_missing else common.get_dataset(kind, show_problems=False)
    config_form.preset_summary(preset, len(dataset.train) if dataset is not None else None)
    config_form.draw_field(st, field_spec("model"))
    config_form.model_summary(st.session_state[config_form.field_key("model")])
    with st.form(FORM, border=True):
        config_form.draw({"device": usable_devices()}, skip=DRAWN_ABOVE)
        st.text_input(tr("training.form.run_name"), key=NAME, placeholder=tr("training.form.run_name_example"))
        busy = len([r for r in active if not r.waiting]) >= settings.max_active_runs()
        submitted = st.form_submit_button(
            tr("training.form.queue" if busy else "training.form.start"), type="primary", key=START,
            disabled=data_missing, width="stretch",
            help=tr("training.form.queue_help", n=settings.max_active_runs()) if busy else None)
        find = st.form_submit_button(tr("training.form.find_lr"), key=FIND_LR, disabled=data_missing,
                                     width="stretch", help=tr("training.form.find_lr_help"))
    if not (submitted or find):
        lr_finder_panel.draw()
        return
    try:
        cfg = preset.config.replace(**config_form.changes(), dataset=kind, preset=preset.name)
        if find:
            lr_finder_panel.start(cfg)
            lr_finder_panel.draw()
            return
        run = jobs.start_run(store, cfg, st.session_state.get(NAME) or None)
    except ConfigError as exc:   # a value out of range, or e.g. more processes than this machine has GPUs or cores
        st.error(config_form.error_text(exc))
        return
    except (RunError, ValueError) as exc:
        st.error(str(exc))
        return
    st.session_state[SHOW_NEXT] = run.id  # picked just before the run picker is drawn (see below)
    st.rerun()


# ---- page ----------------------------------------------------------------------------------
st.title(tr("training.page.title"))
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

form_col, run_col = st.columns([1.3, 2], gap="medium")  # medium: the form column stays >= 300 px at 1280 px
with form_col:
    new_run_form(store, kind, active, data_missing)
    sweep_panel.form(store, kind, data_missing)
with run_col:
    st.subheader(tr("training.page.run"))
    if SHOW_NEXT in st.session_state:  # set in the same page run as the picker, so the browser's old value
        st.session_state[SELECTED] = st.session_state.pop(SHOW_NEXT)  # (sent with any rerun) cannot win
    run = run_panel.selected_run(store, runs, active)

st.divider()
st.subheader(tr("training.page.all_runs"))
run_panel.all_runs(store, runs, run)
sweep_panel.view(store)
