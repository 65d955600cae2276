"""The Training page's sweeps: a form that starts one (core.runs.sweep) and the view of a sweep.

    sweep_panel.form(store, kind, data_missing)   # preset, one or two settings with their values
    sweep_panel.view(store)                        # pick a sweep: mean ± std per setting, curves

A sweep's runs are ordinary runs waiting in the queue; they show in the runs table like any
other and can be evaluated, compared and deleted one by one.
"""
from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from core.runs.store import RunError, RunStore
from core.runs.sweep import NOT_SWEPT, parse_axis, start_sweep, summarize, summary_table
from core.train.config import PRESETS, ConfigError, config_fields
from dashboard import common, config_form
from dashboard.figures.sweep import sweep_accuracy_figure
from dashboard.run_panel import metrics_for
from dashboard.training_keys import FLASH

PRESET, NAME, START, PICK = "sweep_preset", "sweep_name", "sweep_start", "sweep_pick"
FIRST, FIRST_VALUES = "sweep_setting_1", "sweep_values_1"
SECOND, SECOND_VALUES = "sweep_setting_2", "sweep_values_2"
FIXED = "sweep_fixed"
SHOW_NEXT = "sweep_show_next"
NONE = "(none)"


def _settings() -> list[str]:
    return [spec.name for spec in config_fields() if spec.name not in NOT_SWEPT]


def _fixed(text: str) -> dict:
    """'epochs=2, train_subset=2000' -> {'epochs': 2, 'train_subset': 2000} (each checked)."""
    out = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,;\n]\s*(?=[A-Za-z_-]+\s*=)", text))):
        name, values = parse_axis(part)
        if len(values) != 1:
            raise ConfigError(name, "takes one value here (list several values as a swept setting)")
        out[name] = values[0]
    return out


def form(store: RunStore, kind: str, data_missing: bool) -> None:
    """Preset, one or two settings with comma-separated values, optional fixed settings; Start
    sweep queues one run per combination."""
    with st.expander("Sweep: one run per combination of settings", expanded=False):
        st.caption("Train the same preset several times, varying one or two settings (e.g. seeds 0, 1, 2 × "
                   "learning rates). The runs wait in the queue and start as slots free up "
                   "(`CIFARLAB_MAX_ACTIVE_RUNS`).  \nCommand line: `python -m core sweep --set seed=0,1,2 "
                   "--set lr=1e-3,2e-3`")
        settings = _settings()
        with st.form("sweep_form", border=False):
            st.selectbox("Preset", list(PRESETS), key=PRESET, format_func=lambda p: PRESETS[p].title,
                         index=list(PRESETS).index("fast_mlp"))
            left, right = st.columns([1, 2])
            left.selectbox("Setting 1", settings, key=FIRST, index=settings.index("seed"),
                           format_func=lambda n: config_form.label(n))
            right.text_input("Values of setting 1", key=FIRST_VALUES, value="0, 1, 2", help="Comma-separated, e.g. 0, 1, 2")
            left, right = st.columns([1, 2])
            left.selectbox("Setting 2 (optional)", [NONE, *settings], key=SECOND, index=1 + settings.index("lr"),
                           format_func=lambda n: n if n == NONE else config_form.label(n))
            right.text_input("Values of setting 2", key=SECOND_VALUES, value="1e-3, 2e-3",
                             help="Comma-separated, e.g. 1e-3, 2e-3, 4e-3")
            st.text_input("Other settings (optional)", key=FIXED, placeholder="e.g. epochs=2, train_subset=5000",
                          help="Settings every run of the sweep gets, as NAME=VALUE separated by commas.")
            st.text_input("Sweep name (optional)", key=NAME, placeholder="e.g. seeds × lr")
            submitted = st.form_submit_button("Start sweep", key=START, disabled=data_missing, width="stretch")
        if submitted:
            _start(store, kind)


def _start(store: RunStore, kind: str) -> None:
    state = st.session_state
    texts = [f"{state[FIRST]}={state.get(FIRST_VALUES, '')}"]
    if state.get(SECOND, NONE) != NONE:
        texts.append(f"{state[SECOND]}={state.get(SECOND_VALUES, '')}")
    try:
        axes = [parse_axis(text.replace(" ", "")) for text in texts]
        fixed = _fixed(state.get(FIXED, "") or "")
        sweep, runs = start_sweep(store, state[PRESET], axes, name=(state.get(NAME) or "").strip() or None,
                                  dataset=kind, **fixed)
    except ConfigError as exc:
        st.error(f"**{common.plain(config_form.label(exc.field))}**: {common.plain(exc.message)}")
        return
    except (RunError, ValueError) as exc:
        st.error(common.plain(str(exc)))
        return
    state[SHOW_NEXT] = sweep.id  # picked just before the sweep picker is drawn (the browser's old value loses)
    waiting = sum(r.waiting for r in runs)
    state[FLASH] = ("success", f"Started {sweep.label} with {len(runs)} runs ({len(runs) - waiting} training, "
                    f"{waiting} waiting in the queue).")
    st.rerun()


def _frames(store: RunStore, run_ids: list[int]) -> dict[int, pd.DataFrame]:
    """Each run's metric rows, read incrementally (the same cache as the run panel's charts)."""
    return {run.id: metrics_for(store, run) for run in (store.get(i) for i in run_ids)}


def view(store: RunStore) -> None:
    """The chosen sweep: a row per setting with mean ± std over seeds, the best one marked, and
    every run's test accuracy overlaid."""
    sweeps = store.sweeps()
    if not sweeps:
        return
    st.subheader("Sweeps")
    st.caption("Each row is one setting of the sweep, averaged over its seeds: the ± is the spread that the "
               "seed alone causes (noise), to set beside the difference between rows (effect). Final: the last "
               "epoch's model; best.pt: the epoch with the highest validation accuracy, which only runs holding "
               "out a validation split have (Validation images > 0). ★ marks the highest mean final test "
               "accuracy.")
    ids = [s.id for s in sweeps]
    if SHOW_NEXT in st.session_state:
        st.session_state[PICK] = st.session_state.pop(SHOW_NEXT)
    if st.session_state.get(PICK) not in ids:
        st.session_state[PICK] = ids[0]
    labels = {s.id: s.label for s in sweeps}
    picked = st.selectbox("Sweep", ids, key=PICK, format_func=lambda i: labels[i])
    summary = summarize(store, picked)
    counts = ", ".join(f"{n} {status}" for status, n in sorted(summary.status_counts.items()))
    st.caption(common.plain(f"{summary.sweep.preset or 'custom'}: "
                            + " × ".join(f"{name} = {', '.join(map(str, values))}" for name, values in summary.sweep.axes)
                            + f" · runs: {counts or 'none left'}"))
    table = pd.DataFrame(summary_table(summary))
    if table.empty:
        st.info("The runs of this sweep were deleted.")
        return
    best = table["best setting"] == "★"
    styled = table.style.apply(lambda row: ["background-color: #dcfce7; font-weight: 600" if best[row.name] else ""
                                            for _ in row], axis=1)
    st.dataframe(styled, hide_index=True, width="stretch", key="sweep_table")
    runs = summary.runs
    fig = sweep_accuracy_figure(summary, _frames(store, [r.id for r in runs]))
    st.plotly_chart(fig, key=f"sweep_curves_{picked}")
    st.caption("The runs are ordinary runs: pick one above to watch it, compare it in **Compare runs**, evaluate "
               "it on the Evaluation page, or delete it.")
