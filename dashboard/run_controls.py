"""Changes to the selected run while it trains: learning rate, epochs, stop at the epoch's end.

    run_controls.draw(run)          # the controls (an active run), and its place in the queue (a waiting one)
    run_controls.history(run, events)   # the changes asked for the run, where each was applied

Each button stores a request (core.runs.store.RunStore.request_control, the same as `python -m
core control`); the trainer applies it between two steps and records the step, and the charts
mark it there (dashboard.figures.training.mark_events).
"""
from __future__ import annotations

import streamlit as st

from core.runs import jobs
from core.runs.store import Run, RunError, RunEvent, ordinal
from core.train.config import ConfigError, field_spec
from dashboard import common
from dashboard.figures import training as ft
from dashboard.training_keys import (APPLY_EPOCHS, APPLY_LR, APPLY_LR_FACTOR, FLASH, LR_FACTOR, NEW_EPOCHS, NEW_LR,
                                     STOP_AT_EPOCH_END)


def request(run_id: int, kind: str, key: str | None) -> None:
    """A button's callback: store the request, then say so (or why not) once."""
    value = st.session_state.get(key) if key else None
    try:
        event = common.run_store().request_control(run_id, kind, value)
        st.session_state[FLASH] = ("success", f"Asked run #{run_id} for {event.text}: the trainer applies it "
                                   "between two steps and the charts mark the step.")
    except ConfigError as exc:
        label = {"lr_factor": "Learning-rate factor"}.get(exc.field) or field_spec(exc.field).label
        st.session_state[FLASH] = ("error", f"{label}: {exc.message}")
    except (RunError, ValueError) as exc:
        st.session_state[FLASH] = ("error", str(exc))


CANCEL, MOVE_UP, TO_FRONT = "train_queue_cancel", "train_queue_move_up", "train_queue_to_front"


def queue_action(action, run_id: int, done: str) -> None:
    """A queue button's callback (cancel, move up): store first, then the message."""
    try:
        run = action(common.run_store(), run_id)
        st.session_state[FLASH] = ("success", done.format(place=ordinal(run.place)))
    except (RunError, ValueError) as exc:
        st.session_state[FLASH] = ("error", str(exc))


def queue_box(run: Run) -> None:
    """A run waiting for a slot: its place in line, Cancel, Move up and To the front."""
    with st.container(border=True):
        ahead = f"{run.place - 1} run(s) wait ahead of it" if run.place and run.place > 1 else "it is next"
        st.markdown(f":material/hourglass_top: **Waiting in the queue: {ordinal(run.place)} in line** ({ahead}). "
                    "It starts by itself when a running run ends (`CIFARLAB_MAX_ACTIVE_RUNS` runs train at once), "
                    "also with this page closed.")
        cancel, up, front = st.columns(3)
        cancel.button("Cancel", key=CANCEL, width="stretch", on_click=queue_action,
                      args=(jobs.cancel, run.id, f"Cancelled {run.label}: it is stopped and out of the queue; "
                            "Resume puts it back at the end of the line."),
                      help="Take it out of the line (nothing was trained).  \nCommand line: "
                           "`python -m core queue --cancel ID`")
        up.button("Move up", key=MOVE_UP, width="stretch", disabled=run.place == 1, on_click=queue_action,
                  args=(jobs.move_up, run.id, f"Moved {run.label} up: it is now {{place}} in line."),
                  help="Swap places with the run ahead of it.  \nCommand line: `python -m core queue --move-up ID`")
        front.button("To the front", key=TO_FRONT, width="stretch", disabled=run.place == 1, on_click=queue_action,
                     args=(lambda store, i: jobs.move_up(store, i, to_front=True), run.id,
                           f"Moved {run.label} to the front of the line."),
                     help="Make it the next run to start.  \nCommand line: `python -m core queue --to-front ID`")


def draw(run: Run) -> None:
    """The three changes and the stop at the epoch's end, for an active run (a run waiting for a
    slot also gets the queue box first; changes asked while it waits apply when it starts). The
    controls are drawn for every active run, so their values survive the wait (Streamlit forgets
    a widget's value when a page run does not draw it)."""
    if not run.is_active:
        return
    if run.waiting:
        queue_box(run)
    st.session_state.setdefault(LR_FACTOR, 0.5)
    st.session_state.setdefault(NEW_LR, float(run.config.lr))
    st.session_state.setdefault(NEW_EPOCHS, int(ft.run_epochs(run)))
    with st.container(border=True):
        st.caption("**Change this run while it trains** — applied between two steps, marked on the charts")
        factor, lr, epochs, stop = st.columns(4, vertical_alignment="bottom")
        factor.number_input("Learning-rate factor", key=LR_FACTOR, min_value=0.0, step=0.1, format="%g",
                            help="Multiply the learning rate by this (0.5 halves it); the schedule's shape "
                                 "continues.  \nCommand line: `python -m core control --lr-factor X`")
        factor.button("Multiply lr", key=APPLY_LR_FACTOR, on_click=request, args=(run.id, "lr_factor", LR_FACTOR),
                      width="stretch")
        lr.number_input("New learning rate", key=NEW_LR, min_value=0.0, step=1e-4, format="%g",
                        help="Set the learning rate (the schedule's peak).  \nCommand line: "
                             "`python -m core control --lr X`")
        lr.button("Set lr", key=APPLY_LR, on_click=request, args=(run.id, "lr", NEW_LR), width="stretch")
        epochs.number_input("Epochs", key=NEW_EPOCHS, min_value=1, step=1,
                            help="Make the run this many epochs long; the rest of the schedule is stretched or "
                                 "squeezed from now on.  \nCommand line: `python -m core control --epochs N`")
        epochs.button("Set epochs", key=APPLY_EPOCHS, on_click=request, args=(run.id, "epochs", NEW_EPOCHS),
                      width="stretch")
        stop.button("Stop at epoch end", key=STOP_AT_EPOCH_END, on_click=request,
                    args=(run.id, "stop_at_epoch_end", None), width="stretch",
                    help="Finish this epoch (test, checkpoints), then stop; Resume continues.  \nCommand line: "
                         "`python -m core control --stop-at-epoch-end`")


def history(run: Run, events: list[RunEvent]) -> None:
    """The run's settings as changed, and every change asked for it."""
    if not events:
        return
    changed = ft.settings_with_changes(run, events)
    if changed:
        st.caption(f"Changed while training: {common.plain(changed)}")
    st.dataframe(ft.events_table(events, active=run.is_active), hide_index=True, width="stretch")
