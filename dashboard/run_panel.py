"""The Training page's run sections: the selected run (live while it trains) and all runs.

    run_panel.remember(runs)                 # once per page run, before anything below
    run_panel.show_flash()                   # a button callback's message, once
    run = run_panel.selected_run(store, runs, active)   # picker, Stop/Resume, status, live charts
    run_panel.all_runs(store, runs, run)     # table, comparison, rename and delete

Everything shown comes from the run store (core.runs); training happens in its own process
(core.runs.jobs), so a reload or a second tab shows the same live run. Every word comes from the
catalogues (core/i18n/<lang>/training_run.toml) in the session's language.

Watching costs the run little (bench/live_overhead.py). While a run trains, what changes with every
row (its progress line with elapsed time and time left, what the trainer does now, four numbers, the
loss chart) is one element, the live view (dashboard/live_view.py), that asks the dashboard's live
route (dashboard/live_feed.py) for new rows about once a second and redraws itself in place: the page
does not rerun for it. The rest (settled_part: accuracy and learning-rate charts, the changes made,
the nine steps, the epoch-by-epoch section) changes only when an epoch ends, a change is applied or
the trainer moves on to testing or saving: the page run draws it, and the live view asks for a page
rerun when the route says one of those happened (live_feed.settled_key; at most once per 3 s) or when
a run started or ended anywhere; the run's own changes rerun only the run's part of the page
(_run_body_fragment), not the form and the table of runs. Served without the route (AppTest, a
bare `streamlit run dashboard/app.py`), one small fragment feeds the same view every LIVE_EVERY_S
and reruns the page on the same changes. A finished run's progress line, numbers and loss chart
are ordinary elements (finished_part).
"""
from __future__ import annotations

import html
import threading
from collections import OrderedDict
from typing import Callable

import streamlit as st

from core.runs import jobs
from core.runs import progress as run_progress
from core.runs.store import Run, RunError, RunStore
from core.train.walkthrough import STEPS
from dashboard import common, history_panel, live_feed, live_view, run_controls
from dashboard.figures import training as ft
from core.i18n import t
from dashboard.lang import lang, tr
from dashboard.training_keys import (ALL_SETTINGS, COMPARE, DELETE, DELETE_CONFIRM, ENDPOINT, FLASH, LIVE, MACHINES,
                                     PER_MACHINE, PROGRESS_CLASS, RENAME, RENAME_TEXT, RESUME, SEEN, SELECTED, SETTLED, STOP)

COMPARE_X = "train_compare_x"   # the comparison's x axis: one of ft.COMPARE_AXES


# ---- messages and button callbacks -----------------------------------------------------------

def remember(runs: list[Run]) -> None:
    """The statuses this page run shows; the live view (or fragment) reruns the page when they change."""
    st.session_state[SEEN] = {r.id: r.status for r in runs}


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


def show_flash() -> None:
    if FLASH in st.session_state:
        kind, text = st.session_state.pop(FLASH)
        (st.success if kind == "success" else st.error)(common.plain(text))


def act(action, run_id: int, done: str) -> None:  # button callbacks: store first, then the message
    try:
        action(common.run_store(), run_id)
        flash("success", done)
    except (RunError, ValueError) as exc:
        flash("error", str(exc))


def rename(run_id: int) -> None:
    act(lambda store, i: store.rename(i, st.session_state.get(RENAME_TEXT, "")), run_id,
        tr("training.run.manage.renamed", id=run_id))


def delete(run_id: int) -> None:
    st.session_state[DELETE_CONFIRM] = False  # the next selected run starts unconfirmed
    st.session_state.get(LIVE, {}).pop(run_id, None)
    act(lambda store, i: store.delete(i), run_id, tr("training.run.manage.deleted", id=run_id))


# ---- one run, live ---------------------------------------------------------------------------

LIVE_EVERY_S = 1.5   # the live fragment, served without the live route (rows arrive twice a second:
                     # worker.FLUSH_EVERY_S): charts grow at least every 2 s
_FIGURES: OrderedDict[tuple, object] = OrderedDict()   # built charts, shared by all tabs (see figure)
_FIGURES_LOCK = threading.Lock()
_FIGURES_KEPT = 32


def _entry(run: Run) -> dict:
    cache = st.session_state.setdefault(LIVE, {})
    entry = cache.get(run.id)
    if entry is None or entry["attempts"] != run.attempts:  # new attempt (resume): read everything again
        entry = cache[run.id] = {"attempts": run.attempts, "last_id": 0, "frame": ft.empty_metrics(),
                                 "versions": {}, "epochs": 0}
    return entry


def metrics_for(store: RunStore, run: Run) -> "ft.pd.DataFrame":
    """The run's metrics, reading only rows added since this tab's last read."""
    entry = _entry(run)
    new = store.metrics(run.id, since_id=entry["last_id"])
    if len(new):
        entry["frame"], entry["last_id"] = ft.merge_metrics(entry["frame"], new), int(new["id"].max())
        versions = entry["versions"]
        for name, ids in new.groupby("name")["id"]:   # per metric: rows seen, newest id (chart keys)
            count, _ = versions.get(name, (0, 0))
            versions[name] = (count + len(ids), int(ids.max()))
        entry["epochs"] = versions.get("epoch_test_acc", (0, 0))[0]
    return entry["frame"]


def _versions(run: Run, *names: str) -> tuple:
    versions = _entry(run)["versions"]
    return tuple(versions.get(n, (0, 0)) for n in names)


def figure(key: tuple, build: Callable[[], object]):
    """The chart for `key` (which names every input it shows), built once: every tab and every
    second that shows the same rows reuses it (plotly figures are only read once built)."""
    with _FIGURES_LOCK:
        if key in _FIGURES:
            _FIGURES.move_to_end(key)
            return _FIGURES[key]
    fig = build()
    with _FIGURES_LOCK:
        _FIGURES[key] = fig
        while len(_FIGURES) > _FIGURES_KEPT:
            _FIGURES.popitem(last=False)
    return fig


def counts_text(run: Run, prog: run_progress.Progress) -> str:
    """Epoch, batch and step in plain words with this run's own counts, then the details."""
    cfg, per_epoch = run.config, run.steps_per_epoch
    if per_epoch:
        text = tr("training.run.counts.plain", batch=cfg.batch_size, steps=per_epoch, images=per_epoch * cfg.batch_size,
                  epochs=prog.epochs, total=prog.total_steps or per_epoch * prog.epochs)
    else:
        text = tr("training.run.counts.not_started", batch=cfg.batch_size, epochs=prog.epochs)
    details = [tr("training.run.counts.details", batch=cfg.batch_size)]
    if cfg.train_subset:
        details.append(tr("training.run.counts.subset", n=cfg.train_subset))
    if cfg.val_images:
        details.append(tr("training.run.counts.validation", n=cfg.val_images))
    return text + "  \n" + " ".join(details)


def _base(store: RunStore, run: Run, events, language: str) -> tuple:
    """What names one run's charts in the figure cache: its store, id and creation time (a deleted
    run's id, and its rows' ids, can come back for a new run), attempt, the changes marked, language."""
    marks = tuple((e.id, e.step) for e in events)
    return (str(store.root), run.id, run.created_at, run.attempts, run.dataset == "synthetic", marks, language)


def progress_line(fraction: float, text: str) -> None:
    """The run's progress: its line of text over a bar, one markdown element, drawn as the live view
    draws it (the same class, PROGRESS_CLASS, and the same look when a run ends). Not st.progress:
    it eases its bar to each new width, which cost the browser about 4% of a core when this line
    was redrawn every 1.5 s (bench/live_overhead.py --replay; the fragment still does without the route)."""
    percent = 100 * min(max(fraction, 0.0), 1.0)
    color = st.get_option("theme.primaryColor") or "#2563eb"
    st.markdown(
        f'<div class="{PROGRESS_CLASS}" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{percent:.0f}" aria-label="{html.escape(text)}">'
        f'<div style="font-size: 0.875rem; margin-bottom: 0.35rem">{html.escape(text)}</div>'
        f'<div style="background: rgba(49, 51, 63, 0.1); height: 0.5rem; border-radius: 0.25rem">'
        f'<div style="width: {percent:.1f}%; background: {color}; height: 100%; border-radius: 0.25rem"></div>'
        f'</div></div>', unsafe_allow_html=True)


def finished_part(store: RunStore, run: Run, frame, events, prog: run_progress.Progress, language: str) -> None:
    """A run's progress line, four numbers and loss chart when it is not training: what the live
    view shows while it trains (the same numbers: live_feed.metrics), as ordinary elements, with an
    interactive plotly chart."""
    progress_line(prog.fraction, prog.text(language))
    # Two by two, and the charts one under another: the run's column is about 500 px wide on a
    # 1280 px projector, too narrow for four numbers or two charts side by side.
    for col, number in zip([*st.columns(2), *st.columns(2)], live_feed.metrics(run, frame, prog, language)):
        col.metric(number["label"], number["value"], help=number.get("help"))
    synthetic = run.dataset == "synthetic"
    loss = figure(("loss", *_base(store, run, events, language),
                   _versions(run, "train_loss", "epoch_test_loss", "epoch_train_loss")),
                  lambda: ft.loss_figure(frame, synthetic=synthetic, events=events, lang=language))
    st.plotly_chart(loss, key=f"train_loss_chart_{run.id}")   # last: settled_part starts with its caption


def settled_part(store: RunStore, run: Run, frame, events, prog: run_progress.Progress, language: str) -> None:
    """What changes only at an epoch's end or with a change made to the run: the accuracy and
    learning-rate charts (each change marked where it was applied), the list of those changes and
    the nine steps. For an active run the page run draws it, and the live view (or fragment) reruns
    the page when any of it would change (live_feed.settled_key)."""
    synthetic, base = run.dataset == "synthetic", _base(store, run, events, language)
    epochs, per_epoch, cfg = ft.run_epochs(run), run.steps_per_epoch, run.config
    acc, gap = figure(("acc", *base, epochs, per_epoch,
                       _versions(run, "epoch_train_acc", "epoch_test_acc", "epoch_val_acc")),
                      lambda: (ft.accuracy_figure(frame, synthetic=synthetic, epochs=epochs, events=events,
                                                  steps_per_epoch=per_epoch, lang=language),
                               ft.gap_note(frame, language)))
    planned = (lambda: run_progress.planned_lr(cfg, per_epoch, events)) if per_epoch else (lambda: None)
    lr = figure(("lr", *base, per_epoch, run.total_steps, _versions(run, "lr", "epoch_lr")),
                lambda: ft.lr_figure(frame, events=events, synthetic=synthetic, planned=planned(), lang=language))
    st.caption(ft.loss_caption(cfg, language))   # under the loss chart, the fast part's last element
    st.plotly_chart(acc, key=f"train_acc_chart_{run.id}")
    st.caption(ft.accuracy_caption(cfg, language))
    if gap:
        st.warning(gap, icon=":material/trending_up:")
    st.plotly_chart(lr, key=f"train_lr_chart_{run.id}")
    st.caption(ft.lr_caption(cfg, language))
    run_controls.history(run, events)
    nine_steps(prog if run.is_active else None)


# ---- the nine steps, with the trainer's phase ------------------------------------------------

def step_name(number: int) -> str:
    """A tutorial step's name: its English title, or in Chinese the tutorial's own words."""
    step = STEPS[number - 1]
    return step.chinese if lang() == "zh" else step.title


def _now_badge() -> str:
    return f":orange-badge[:material/play_arrow: {tr('training.run.steps.now')}]"


def steps_markdown(loop_running: bool) -> str:
    """The nine steps, numbered and named as the tutorial does, each with its code; numbers and names
    on blue while the trainer runs the loop."""
    color = "blue" if loop_running else "gray"
    lines = []
    for step in STEPS:
        code = "  \n".join(f"`{line.strip()}`" for line in step.code.splitlines())
        name = f"**{step_name(step.number)}**"
        if loop_running:
            name = f":blue-background[{name}]"
        lines.append(f":{color}-badge[{step.number}] {name}  \n{code}")
    return "\n\n".join(lines)


def after_epoch_markdown(phase: str | None) -> str:
    """The two things the trainer does after each epoch's nine steps: test, then save."""
    lines = []
    for name in ("testing", "saving"):
        badge = _now_badge() + " " if phase == name else ""
        lines.append(f"{badge}**{tr(f'training.run.steps.{name}_name')}** — {tr(f'training.run.steps.{name}_text')}")
    return "\n\n".join(lines)


def _phase(prog: run_progress.Progress | None) -> str | None:
    return prog.phase if prog is not None and prog.status == "running" else None


def nine_steps(prog: run_progress.Progress | None) -> None:
    """The tutorial's nine training steps, open; for an active run (`prog`) what the trainer does now
    is highlighted: the whole loop (steps 1-9) while it trains, the test or the save after an epoch.
    The line saying so, with the step it is at, is under the progress bar (the live view)."""
    phase = _phase(prog)
    with st.expander(tr("training.run.steps.title"), expanded=True):
        st.caption(tr("training.run.steps.intro"))
        st.markdown(steps_markdown(phase == "training"))
        st.markdown(after_epoch_markdown(phase))
        st.caption(tr("training.run.steps.engine"))


# ---- the live view ---------------------------------------------------------------------------

def _fragment_run(run_id: int | None) -> tuple[RunStore, Run | None]:
    """What a fragment starts with: the whole page reruns when a status changed anywhere (a run
    started, stopped or finished); else the store and the run `run_id` (None: none, or deleted)."""
    store = common.polling_store()
    if store.statuses() != st.session_state.get(SEEN):
        st.rerun()
    return store, store.get(run_id) if run_id is not None and run_id in st.session_state[SEEN] else None


@st.fragment(run_every=LIVE_EVERY_S)
def _live(run_id: int | None) -> None:
    """Without the live route only (see live): feeds the live view of the selected run while it
    trains; reruns the whole page when a status changed anywhere, or when the run's slow parts would
    change (an epoch ended, a change was applied); with no run active it only compares the statuses."""
    store, run = _fragment_run(run_id)
    if run is None or not run.is_active:
        return
    language = lang()
    view = live_feed.view(store, run, metrics_for(store, run), store.events(run.id), language)
    if view["settled"] != st.session_state.get(SETTLED):
        st.rerun()
    live_view.show(run.id, language=language, seen=st.session_state[SEEN], view=view, poll=False)


def live(store: RunStore, run: Run | None = None, frame=None, events=None, prog=None) -> None:
    """The live view of `run` while it trains (None: no run active, only watch the statuses).
    Served by `python -m dashboard`, the view polls the live route itself (dashboard.live_feed) and
    this page run only draws it once; otherwise one fragment (defined once: a fragment made anew on
    every page run can leave its earlier timers running in the browser) feeds it every LIVE_EVERY_S."""
    language = lang()
    if live_feed.served():
        view = live_feed.view(store, run, frame, events, language) if run is not None else None
        live_view.show(run.id if run is not None else None, language=language, seen=st.session_state[SEEN],
                       view=view)
        return
    if run is not None:   # what the page run drew: the fragment reruns the page when it changes
        st.session_state[SETTLED] = live_feed.settled_key(store, run, frame, events, prog)
    _live(run.id if run is not None else None)


def selected_run(store: RunStore, runs: list[Run], active: list[Run]) -> Run | None:
    """The run picker with Stop and Resume, the run's status and its charts; returns the run shown:
    epoch, batch and step explained in this run's counts, then its progress, four numbers and loss
    chart (the live view while it trains, else finished_part), then the rest (settled_part)."""
    head, body_slot = st.container(), st.container()  # fixed places (fragment ids)
    with head:
        run = _pick_run(runs, active)
    with body_slot:
        if run is None:
            live(store)
        elif run.is_active and live_feed.served():
            _run_body_fragment(run.id)
        else:
            frame, events = metrics_for(store, run), store.events(run.id)
            run_body(store, run, frame, events, ft.progress(run, frame))
    return run


def run_body(store: RunStore, run: Run, frame, events, prog: run_progress.Progress) -> None:
    """Everything below the run's status line: its counts, the live view or the finished run's
    progress and loss chart, the slow parts, the predictions epoch by epoch."""
    language = lang()
    st.caption(counts_text(run, prog))
    if run.is_active:
        live(store, run, frame, events, prog)
    else:
        live(store)
        finished_part(store, run, frame, events, prog, language)
    settled_part(store, run, frame, events, prog, language)
    history_panel.history_section(store, run)   # predictions epoch by epoch (redrawn by each run of this)


@st.fragment
def _run_body_fragment(run_id: int) -> None:
    """run_body of an active run, served with the live route: the live view's trigger (an epoch
    ended, a change was applied, the trainer's phase changed) reruns only this, not the form and
    the table of runs beside and below it (about 30% less browser CPU per epoch's end in a replay:
    bench/README.md). A status changed anywhere: the whole page."""
    store, run = _fragment_run(run_id)
    if run is None:
        return
    frame, events = metrics_for(store, run), store.events(run.id)
    run_body(store, run, frame, events, ft.progress(run, frame))


def _run_option(run: Run, language: str) -> str:
    return run.label + (t("training.run.synthetic_suffix", language) if run.dataset == "synthetic" else "")


def _pick_run(runs: list[Run], active: list[Run]) -> Run | None:
    if not runs:
        st.info(tr("training.run.no_runs"))
        return None
    ids = [r.id for r in runs]
    if st.session_state.get(SELECTED) not in ids:  # first visit, reload or deleted run: active or newest
        st.session_state[SELECTED] = active[0].id if active else ids[0]
    by_id = {r.id: r for r in runs}
    sel_col, stop_col, resume_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    language = lang()   # format functions keep the page run's language (they may be called after it)
    selected = sel_col.selectbox(tr("training.run.pick"), ids, key=SELECTED,
                                 format_func=lambda i: _run_option(by_id[i], language))
    run = by_id[selected]
    stop_col.button(tr("training.run.stop"), key=STOP, disabled=not run.is_active or run.stop_requested,
                    width="stretch", on_click=act,
                    args=(jobs.request_stop, run.id, tr("training.run.stop_requested", run=run.label)))
    resume_col.button(tr("training.run.resume"), key=RESUME, disabled=not run.can_resume, width="stretch",
                      on_click=act, args=(jobs.resume_run, run.id, tr("training.run.resumed", run=run.label)))
    st.markdown(status_line(run))
    with st.expander(tr("training.run.settings.title")):
        st.markdown(ft.settings_text(run, lang()))
    run_controls.draw(run)
    if run.message and run.status in ("failed", "diverged", "interrupted"):
        (st.error if run.status == "failed" else st.warning)(common.plain(run.message))
    elif run.stop_requested and run.is_active:
        st.info(tr("training.run.stopping"))
    return run


def status_line(run: Run) -> str:
    """The run's status badge and its main settings on one line."""
    cfg = run.config
    status = ft.status_text(run, lang())
    dataset = common.kind_label(run.dataset) if lang() != "en" else run.dataset_label
    return tr("training.run.summary", color=ft.STATUS_COLORS[run.status], icon=ft.STATUS_ICONS[run.status],
              status=status, model=cfg.model, optimizer=cfg.optimizer, lr=cfg.lr, batch=cfg.batch_size,
              epochs=cfg.epochs, dataset=dataset, device=run.device or tr("training.run.no_device"))


# ---- all runs --------------------------------------------------------------------------------

def all_runs(store: RunStore, runs: list[Run], run: Run | None) -> None:
    """Every run in a table; curves and settings of chosen runs side by side; rename or delete `run`."""
    if not runs:
        return
    language = lang()
    st.dataframe(ft.runs_table(runs, language), hide_index=True, width="stretch", placeholder="–",
                 column_config={tr("training.run.table.test_acc"): st.column_config.NumberColumn(
                     format="%.2f", help=tr("training.run.table.test_acc_help"))})
    _compare(store, runs)
    if run is not None:
        _several_machines(store, run)
        _rename_or_delete(run)


def _several_machines(store: RunStore, run: Run) -> None:
    """The torchrun command to type on each machine for this run (data parallel over a shared runs folder)."""
    from core.train.distributed import multinode_command

    with st.expander(tr("training.run.machines.title", run=common.plain(run.label))):
        st.caption(tr("training.run.machines.explain"))
        a, b, c = st.columns([1, 1, 2])
        nodes = a.number_input(tr("training.run.machines.nodes"), 2, 64, 2, key=MACHINES)
        per = b.number_input(tr("training.run.machines.per_node"), 1, 64, max(1, run.config.nproc), key=PER_MACHINE)
        endpoint = c.text_input(tr("training.run.machines.endpoint"), "HOST:29500", key=ENDPOINT,
                                help=tr("training.run.machines.endpoint_help"))
        st.code(multinode_command(run.id, store.root, nnodes=int(nodes), nproc_per_node=int(per),
                                  endpoint=endpoint.strip() or "HOST:29500"), language="bash", wrap_lines=True)
        if run.is_active:
            st.caption(tr("training.run.machines.stop_first"))


def _compare(store: RunStore, runs: list[Run]) -> None:
    """Curves of the chosen runs on one axis (epochs, images seen or seconds), their speed and
    wall time, and their settings side by side."""
    labels = {r.id: r.label for r in runs}
    picked = st.multiselect(tr("training.run.compare.pick"), list(labels), key=COMPARE, format_func=labels.get,
                            placeholder=tr("training.run.compare.placeholder"))
    if not picked:
        return
    language = lang()
    chosen = [r for r in runs if r.id in picked]
    axis = st.radio(tr("training.run.compare.axis"), ft.COMPARE_AXES, key=COMPARE_X, horizontal=True,
                    format_func=lambda a: t(f"training.run.compare.axis_option.{a}", language),
                    help=tr("training.run.compare.axis_help"))
    frames = {r.id: metrics_for(store, r) for r in chosen}
    loss_fig, acc_fig = ft.compare_figures({common.chart_text(r.label): (r, frames[r.id]) for r in chosen},
                                           axis=axis, lang=language)
    left, right = st.columns(2)
    left.plotly_chart(loss_fig, key="train_compare_loss")
    left.caption(tr("training.run.compare.loss_caption", reading=tr(f"training.run.compare.reading.{axis}")))
    right.plotly_chart(acc_fig, key="train_compare_acc")
    right.caption(tr("training.run.compare.acc_caption", reading=tr(f"training.run.compare.reading.{axis}")))
    table = ft.comparison_table([(r, frames[r.id]) for r in chosen], language)
    st.table(table.set_index(table.columns[0]).style.format(ft.comparison_formats(language), na_rep="–"))
    st.caption(tr("training.run.compare.table_caption"))
    show_all = st.toggle(tr("training.run.compare.all_settings"), key=ALL_SETTINGS)
    st.dataframe(ft.config_diff(chosen, only_differences=not show_all, lang=language), width="stretch")
    st.caption(tr("training.run.compare.settings_caption"))


def _rename_or_delete(run: Run) -> None:
    label = common.plain(run.label)
    with st.expander(tr("training.run.manage.title", run=label)):
        st.text_input(tr("training.run.manage.new_name"), key=RENAME_TEXT, placeholder=run.name)
        st.button(tr("training.run.manage.rename"), key=RENAME, on_click=rename, args=(run.id,))
        sure = st.checkbox(tr("training.run.manage.confirm", run=label), key=DELETE_CONFIRM, disabled=run.is_active)
        st.button(tr("training.run.manage.delete"), key=DELETE, type="primary", disabled=not sure or run.is_active,
                  help=tr("training.run.manage.stop_first") if run.is_active else None,
                  on_click=delete, args=(run.id,))
