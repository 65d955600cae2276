"""The Training page's run sections: the selected run (live while it trains) and all runs.

    run_panel.remember(runs)                 # once per page run, before anything below
    run_panel.show_flash()                   # a button callback's message, once
    run = run_panel.selected_run(store, runs, active)   # picker, Stop/Resume, status, live charts
    run_panel.all_runs(store, runs, run)     # table, comparison, rename and delete

Everything shown comes from the run store (core.runs); training happens in its own process
(core.runs.jobs), so a reload or a second tab shows the same live run.

Watching costs the run almost nothing (bench/live_overhead.py): while a run trains, one small
fragment reruns every LIVE_EVERY_S (1.5 s); it reads only the metric rows added since its last read, redraws the
progress line (elapsed time, time left, what the trainer is doing) and hands the charts over again,
but rebuilds a chart only when rows it shows arrived (figures are shared by every tab showing the
same rows). The epoch-by-epoch section has its own slower fragment (dashboard.history_panel).
With no run active, the fragment only compares the runs' statuses (one small query).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable

import streamlit as st

from core.runs import jobs
from core.runs.store import Run, RunError, RunStore
from dashboard import common, run_controls
from dashboard import history_panel
from dashboard.figures import training as ft
from dashboard.training_keys import (ALL_SETTINGS, COMPARE, DELETE, DELETE_CONFIRM, ENDPOINT, FLASH, LIVE, MACHINES,
                                     PER_MACHINE, RENAME, RENAME_TEXT, RESUME, SEEN, SELECTED, STOP)

NINE_STEPS = """\
for epoch in range(epochs):                 # 1. the epoch loop: every image, once per epoch
    for images, labels in batches:          # 2. the step loop, one batch at a time
        # 3. read data and labels (a batch of images, their true classes)
        optimizer.zero_grad()               # 4. zero the gradients left from the last step
        outputs = model(images)             # 5. forward: images -> 10 scores (logits) each
        predicted = outputs.argmax(1)       # 6. predictions: the highest score wins
        loss = criterion(outputs, labels)   # 7. loss: how wrong the scores are
        loss.backward()                     # 8. backward: the gradient of every weight
        optimizer.step()                    # 9. step: nudge every weight against its gradient
"""


# ---- messages and button callbacks -----------------------------------------------------------

def remember(runs: list[Run]) -> None:
    """The statuses this page run shows; the live fragment reruns the page when they change."""
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
    act(lambda store, i: store.rename(i, st.session_state.get(RENAME_TEXT, "")), run_id, f"Renamed run #{run_id}.")


def delete(run_id: int) -> None:
    st.session_state[DELETE_CONFIRM] = False  # the next selected run starts unconfirmed
    st.session_state.get(LIVE, {}).pop(run_id, None)
    act(lambda store, i: store.delete(i), run_id, f"Deleted run #{run_id}.")


# ---- one run, live ---------------------------------------------------------------------------

LIVE_EVERY_S = 1.5   # the live fragment while a run is active (rows arrive twice a second: worker.FLUSH_EVERY_S):
                     # charts grow at least every 2 s, at two thirds of the cost of a rerun every second
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


def draw_run(store: RunStore, run: Run) -> None:
    """Progress, four numbers, the loss, accuracy and learning-rate charts of one run (each change
    made while it trained marked where it was applied) and the list of those changes."""
    frame = metrics_for(store, run)
    events = store.events(run.id)
    prog = ft.progress(run, frame)
    st.progress(prog.fraction, text=prog.text())
    # Two by two, and the charts one under another: the run's column is about 500 px wide on a
    # 1280 px projector, too narrow for four numbers or two charts side by side.
    cols = [*st.columns(2), *st.columns(2)]
    cols[0].metric("Epoch", f"{prog.epoch}/{prog.epochs}")
    cols[1].metric("Step", f"{prog.step}" + (f"/{prog.total_steps}" if prog.total_steps else ""))
    cols[2].metric("Images / second", f"{prog.images_per_sec:,.0f}" if prog.images_per_sec else "–")
    label, value, help_text = ft.model_accuracy(run, frame)
    cols[3].metric(label, value, help=help_text)
    synthetic, marks = run.dataset == "synthetic", tuple((e.id, e.step) for e in events)
    epochs, per_epoch = ft.run_epochs(run), run.steps_per_epoch
    base = (run.id, run.attempts, synthetic, marks)
    loss = figure(("loss", *base, _versions(run, "train_loss", "epoch_test_loss")),
                  lambda: ft.loss_figure(frame, synthetic=synthetic, events=events))
    acc = figure(("acc", *base, epochs, per_epoch, _versions(run, "epoch_train_acc", "epoch_test_acc", "epoch_val_acc")),
                 lambda: ft.accuracy_figure(frame, synthetic=synthetic, epochs=epochs, events=events,
                                            steps_per_epoch=per_epoch))
    lr = figure(("lr", *base, _versions(run, "lr", "epoch_lr")),
                lambda: ft.lr_figure(frame, events=events, synthetic=synthetic))
    st.plotly_chart(loss, key=f"train_loss_chart_{run.id}")
    st.plotly_chart(acc, key=f"train_acc_chart_{run.id}")
    st.plotly_chart(lr, key=f"train_lr_chart_{run.id}")
    run_controls.history(run, events)


@st.fragment(run_every=LIVE_EVERY_S)
def _live(run_id: int | None) -> None:
    """Redraws the selected run while it trains; otherwise only notices changes of status (a
    status change anywhere reruns the whole page)."""
    store = common.polling_store()
    if store.statuses() != st.session_state.get(SEEN):  # started, stopped or finished anywhere
        st.rerun()
    run = store.get(run_id) if run_id is not None and run_id in st.session_state[SEEN] else None
    if run is not None and run.is_active:
        draw_run(store, run)


def live(run_id: int | None, active: bool) -> None:
    """The live part of the selected run, rerun every LIVE_EVERY_S (with no run active it only
    compares the statuses). One fragment defined once: a fragment made anew on every page run
    can leave its earlier timers running in the browser."""
    _live(run_id)


def selected_run(store: RunStore, runs: list[Run], active: list[Run]) -> Run | None:
    """The run picker with Stop and Resume, the run's status and its charts; returns the run shown."""
    head, live_slot, steps_slot = st.container(), st.container(), st.container()  # fixed places (fragment id)
    with head:
        run = _pick_run(runs, active)
    with live_slot:
        live(run.id if run is not None else None, bool(active))
        if run is not None and not run.is_active:
            draw_run(store, run)
    with steps_slot.expander("The nine training steps — what the trainer is doing right now"):
        st.code(NINE_STEPS, language="python")
        st.caption("After each epoch the trainer measures test loss and accuracy (model in eval mode, no "
                   "gradients) and saves a checkpoint. The real loop is `fit()` in `core/train/engine.py`.")
    history_panel.history_section(store, run)   # predictions epoch by epoch (live while it trains)
    return run


def _pick_run(runs: list[Run], active: list[Run]) -> Run | None:
    if not runs:
        st.info("No runs yet: pick a preset and press **Start training**. Training runs in the background, "
                "so you can switch pages, reload or open a second tab; charts appear here.")
        return None
    ids = [r.id for r in runs]
    if st.session_state.get(SELECTED) not in ids:  # first visit, reload or deleted run: active or newest
        st.session_state[SELECTED] = active[0].id if active else ids[0]
    by_id = {r.id: r for r in runs}
    sel_col, stop_col, resume_col = st.columns([3, 1, 1], vertical_alignment="bottom")
    selected = sel_col.selectbox("Run", ids, key=SELECTED, format_func=lambda i: by_id[i].label
                                 + (" (synthetic)" if by_id[i].dataset == "synthetic" else ""))
    run = by_id[selected]
    stop_col.button("Stop", key=STOP, disabled=not run.is_active or run.stop_requested, width="stretch",
                    on_click=act, args=(jobs.request_stop, run.id, f"Stop requested for {run.label}: it "
                                        "ends its current step, saves a checkpoint and stops."))
    resume_col.button("Resume", key=RESUME, disabled=not run.can_resume, width="stretch", on_click=act,
                      args=(jobs.resume_run, run.id, f"Resumed {run.label} from its last checkpoint."))
    cfg = run.config
    st.markdown(f":{ft.STATUS_COLORS[run.status]}-badge[{ft.STATUS_ICONS[run.status]} {run.status}] "
                f"&nbsp; {cfg.model} · {cfg.optimizer} lr {cfg.lr:g} · batch {cfg.batch_size} · "
                f"{cfg.epochs} epochs · {run.dataset_label} · {run.device or 'device not chosen yet'}")
    run_controls.draw(run)
    if run.message and run.status in ("failed", "diverged", "interrupted"):
        (st.error if run.status == "failed" else st.warning)(common.plain(run.message))
    elif run.stop_requested and run.is_active:
        st.info("Stopping after the current step…")
    return run


# ---- all runs --------------------------------------------------------------------------------

def all_runs(store: RunStore, runs: list[Run], run: Run | None) -> None:
    """Every run in a table; curves and settings of chosen runs side by side; rename or delete `run`."""
    if not runs:
        return
    st.dataframe(ft.runs_table(runs), hide_index=True, width="stretch", placeholder="–",
                 column_config={"test acc (%)": st.column_config.NumberColumn(
                     format="%.2f", help="The test accuracy of the run's model: best.pt (the epoch with the highest "
                     "validation accuracy) with a validation split; without one the last epoch's (no \"best\")")})
    _compare(store, runs)
    if run is not None:
        _several_machines(store, run)
        _rename_or_delete(run)


def _several_machines(store: RunStore, run: Run) -> None:
    """The torchrun command to type on each machine for this run (data parallel over a shared runs folder)."""
    from core.train.distributed import multinode_command

    with st.expander(f"Train {common.plain(run.label)} on several machines"):
        st.caption("Each machine runs its share of the processes; the runs folder must be on a file system they all "
                   "share, with the images on each machine. Start the same command on every machine; the first to "
                   "join the rendezvous at HOST:PORT (the host's name sorting first) is process 0, the only one that "
                   "writes to the run store, so run the dashboard there. See README, \"Data-parallel runs\".")
        a, b, c = st.columns([1, 1, 2])
        nodes = a.number_input("Machines", 2, 64, 2, key=MACHINES)
        per = b.number_input("Processes per machine", 1, 64, max(1, run.config.nproc), key=PER_MACHINE)
        endpoint = c.text_input("Rendezvous HOST:PORT", "HOST:29500", key=ENDPOINT,
                                help="A machine all of them can reach, and a free port on it.")
        st.code(multinode_command(run.id, store.root, nnodes=int(nodes), nproc_per_node=int(per),
                                  endpoint=endpoint.strip() or "HOST:29500"), language="bash", wrap_lines=True)
        if run.is_active:
            st.caption("It resumes the run from its last checkpoint: stop it here first.")


def _compare(store: RunStore, runs: list[Run]) -> None:
    labels = {r.id: r.label for r in runs}
    picked = st.multiselect("Compare runs", list(labels), key=COMPARE, format_func=labels.get,
                            placeholder="Pick two or more runs to overlay their curves")
    if not picked:
        return
    chosen = [r for r in runs if r.id in picked]
    loss_fig, acc_fig = ft.compare_figures({common.chart_text(r.label): metrics_for(store, r) for r in chosen})
    left, right = st.columns(2)
    left.plotly_chart(loss_fig, key="train_compare_loss")
    right.plotly_chart(acc_fig, key="train_compare_acc")
    show_all = st.toggle("Show every setting", key=ALL_SETTINGS)
    st.dataframe(ft.config_diff(chosen, only_differences=not show_all), width="stretch")


def _rename_or_delete(run: Run) -> None:
    with st.expander(f"Rename or delete {common.plain(run.label)}"):
        st.text_input("New name", key=RENAME_TEXT, placeholder=run.name)
        st.button("Rename", key=RENAME, on_click=rename, args=(run.id,))
        sure = st.checkbox(f"Yes, delete {common.plain(run.label)} with its checkpoints and metrics", key=DELETE_CONFIRM,
                           disabled=run.is_active)
        st.button("Delete run", key=DELETE, type="primary", disabled=not sure or run.is_active,
                  help="Stop the run first" if run.is_active else None,
                  on_click=delete, args=(run.id,))
