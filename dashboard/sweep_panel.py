"""The Training page's sweeps: a form that starts one (core.runs.sweep) and the view of a sweep.

    sweep_panel.form(store, kind, data_missing)   # preset, one or two settings with their values
    sweep_panel.view(store)                        # pick a sweep: mean ± std per setting, curves

A sweep's runs are ordinary runs waiting in the queue; they show in the runs table like any
other and can be evaluated, compared and deleted one by one. Every word is in the session's
language (training.sweep.* in the catalogues; the summary table's columns by their core names).
"""
from __future__ import annotations

import re

import pandas as pd
import streamlit as st

from core.runs.store import RunError, RunStore
from core.runs.sweep import NOT_SWEPT, SweepSummary, parse_axis, start_sweep, summarize, summary_table
from core.train.config import PRESETS, ConfigError, config_fields
from dashboard import common, config_form
from dashboard.figures.sweep import sweep_accuracy_figure
from dashboard.lang import lang, tr
from dashboard.run_panel import metrics_for
from dashboard.training_keys import FLASH

PRESET, NAME, START, PICK = "sweep_preset", "sweep_name", "sweep_start", "sweep_pick"
FIRST, FIRST_VALUES = "sweep_setting_1", "sweep_values_1"
SECOND, SECOND_VALUES = "sweep_setting_2", "sweep_values_2"
FIXED = "sweep_fixed"
SHOW_NEXT = "sweep_show_next"
NONE = "(none)"
# The summary table's columns (core.runs.sweep.summary_table) -> their catalogue keys
# (training.sweep.column.<key>); how best.pt was chosen and run statuses likewise.
COLUMNS = {"setting": "setting", "seeds": "seeds", "completed": "completed", "final test acc (%)": "final",
           "best.pt test acc (%)": "best", "best.pt chosen by": "chosen_by", "best setting": "best_setting"}
CHOSEN_BY = {"validation": "validation", "no validation split": "no_validation", "mixed": "mixed"}
STATUSES = ("queued", "running", "completed", "stopped", "failed", "diverged", "interrupted")


def _settings() -> list[str]:
    return [spec.name for spec in config_fields() if spec.name not in NOT_SWEPT]


def _fixed(text: str) -> dict:
    """'epochs=2, train_subset=2000' -> {'epochs': 2, 'train_subset': 2000} (each checked)."""
    out = {}
    for part in filter(None, (p.strip() for p in re.split(r"[,;\n]\s*(?=[A-Za-z_-]+\s*=)", text))):
        name, values = parse_axis(part)
        if len(values) != 1:
            raise ConfigError(name, tr("training.sweep.one_value"))
        out[name] = values[0]
    return out


def form(store: RunStore, kind: str, data_missing: bool) -> None:
    """Preset, one or two settings with comma-separated values, optional fixed settings; Start
    sweep queues one run per combination."""
    with st.expander(tr("training.sweep.expander"), expanded=False):
        st.caption(tr("training.sweep.intro"))
        settings, here = _settings(), lang()   # options stay ids; the selects show their titles in this language
        none = tr("training.sweep.none")
        with st.form("sweep_form", border=False):
            st.selectbox(tr("training.sweep.preset"), list(PRESETS), key=PRESET,
                         format_func=lambda p: PRESETS[p].text("title", here), index=list(PRESETS).index("fast_mlp"))
            left, right = st.columns([1, 2])
            left.selectbox(tr("training.sweep.setting_1"), settings, key=FIRST, index=settings.index("seed"),
                           format_func=lambda n: config_form.label(n, here))
            right.text_input(tr("training.sweep.values_1"), key=FIRST_VALUES, value="0, 1, 2",
                             help=tr("training.sweep.values_1_help"))
            left, right = st.columns([1, 2])
            left.selectbox(tr("training.sweep.setting_2"), [NONE, *settings], key=SECOND,
                           index=1 + settings.index("lr"),
                           format_func=lambda n: none if n == NONE else config_form.label(n, here))
            right.text_input(tr("training.sweep.values_2"), key=SECOND_VALUES, value="1e-3, 2e-3",
                             help=tr("training.sweep.values_2_help"))
            st.text_input(tr("training.sweep.fixed"), key=FIXED, placeholder=tr("training.sweep.fixed_example"),
                          help=tr("training.sweep.fixed_help"))
            st.text_input(tr("training.sweep.name"), key=NAME, placeholder=tr("training.sweep.name_example"))
            submitted = st.form_submit_button(tr("training.sweep.start"), key=START, disabled=data_missing,
                                              width="stretch")
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
        st.error(config_form.error_text(exc))
        return
    except (RunError, ValueError) as exc:
        st.error(common.plain(str(exc)))
        return
    state[SHOW_NEXT] = sweep.id  # picked just before the sweep picker is drawn (the browser's old value loses)
    waiting = sum(r.waiting for r in runs)
    state[FLASH] = ("success", tr("training.sweep.started", sweep=sweep_label(sweep), runs=len(runs),
                                  training=len(runs) - waiting, waiting=waiting))
    st.rerun()


def _frames(store: RunStore, run_ids: list[int]) -> dict[int, pd.DataFrame]:
    """Each run's metric rows, read incrementally (the same cache as the run panel's charts)."""
    return {run.id: metrics_for(store, run) for run in (store.get(i) for i in run_ids)}


def sweep_label(sweep) -> str:
    """'sweep #3 seeds × lr' in the session's language (the name as its user wrote it)."""
    return tr("training.sweep.label", id=sweep.id, name=sweep.name)


def status_text(status: str) -> str:
    """A run status in the session's language ('completed', '已完成')."""
    return tr(f"training.sweep.status.{status}") if status in STATUSES else status


def _axes_text(summary: SweepSummary) -> str:
    """'Fast MLP (same net, better recipe): Seed = 0, 1 × Learning rate = 0.001, 0.002 · runs: 4 completed'."""
    sweep = summary.sweep
    preset = (PRESETS[sweep.preset].text("title", lang()) if sweep.preset in PRESETS
              else sweep.preset or tr("training.sweep.custom"))
    axes = " × ".join(f"{config_form.label(name)} = {', '.join(map(str, values))}" for name, values in sweep.axes)
    counts = tr("training.sweep.separator").join(tr("training.sweep.count", n=n, status=status_text(status))
                                                 for status, n in sorted(summary.status_counts.items()))
    return tr("training.sweep.axes", preset=preset, axes=axes, counts=counts or tr("training.sweep.none_left"))


def _table(summary: SweepSummary) -> pd.DataFrame:
    """core.runs.sweep.summary_table with its headers and words in the session's language."""
    table = pd.DataFrame(summary_table(summary))
    if table.empty:
        return table
    table["setting"] = [row.label if row.setting else tr("training.sweep.all_runs") for row in summary.rows]
    table["best.pt chosen by"] = [tr(f"training.sweep.chosen_by.{CHOSEN_BY[v]}") if v in CHOSEN_BY else v
                                  for v in table["best.pt chosen by"]]
    return table.rename(columns={name: tr(f"training.sweep.column.{key}") for name, key in COLUMNS.items()})


def view(store: RunStore) -> None:
    """The chosen sweep: a row per setting with mean ± std over seeds, the best one marked, and
    every run's test accuracy overlaid."""
    sweeps = store.sweeps()
    if sweeps:
        with st.container():   # one block: the sweep section as a whole (tests read it on its own)
            _view(store, sweeps)


def _view(store: RunStore, sweeps: list) -> None:
    st.subheader(tr("training.sweep.title"))
    st.caption(tr("training.sweep.how_to_read"))
    ids = [s.id for s in sweeps]
    if SHOW_NEXT in st.session_state:
        st.session_state[PICK] = st.session_state.pop(SHOW_NEXT)
    if st.session_state.get(PICK) not in ids:
        st.session_state[PICK] = ids[0]
    labels = {s.id: sweep_label(s) for s in sweeps}
    picked = st.selectbox(tr("training.sweep.pick"), ids, key=PICK, format_func=lambda i: labels[i])
    summary = summarize(store, picked)
    st.caption(common.plain(_axes_text(summary)))
    table = _table(summary)
    if table.empty:
        st.info(tr("training.sweep.deleted"))
        return
    best = [row.is_best for row in summary.rows]
    styled = table.style.apply(lambda row: ["background-color: #dcfce7; font-weight: 600" if best[row.name] else ""
                                            for _ in row], axis=1)
    st.dataframe(styled, hide_index=True, width="stretch", key="sweep_table")
    fig = sweep_accuracy_figure(summary, _frames(store, [r.id for r in summary.runs]), lang())
    st.plotly_chart(fig, key=f"sweep_curves_{picked}")
    st.caption(tr("training.sweep.runs_are_runs"))
