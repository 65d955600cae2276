"""Changes to the selected run while it trains: learning rate, epochs, stop at the epoch's end.

    run_controls.draw(run)          # the controls (an active run), and its place in the queue (a waiting one)
    run_controls.history(run, events)   # the changes asked for the run, where each was applied

Each button stores a request (core.runs.store.RunStore.request_control, the same as `python -m
core control`); the trainer applies it between two steps and records the step, and the charts
mark it there (dashboard.figures.training.mark_events). Every word comes from the catalogues
(core/i18n/<lang>/training_run.toml).
"""
from __future__ import annotations

import streamlit as st

from core.runs import jobs
from core.runs.store import Run, RunError, RunEvent, ordinal
from core.train.config import ConfigError
from dashboard import common
from dashboard.figures import training as ft
from dashboard.lang import lang, tr
from dashboard.training_keys import (APPLY_EPOCHS, APPLY_LR, APPLY_LR_FACTOR, FLASH, LR_FACTOR, NEW_EPOCHS, NEW_LR,
                                     STOP_AT_EPOCH_END)


def request(run_id: int, kind: str, key: str | None) -> None:
    """A button's callback: store the request, then say so (or why not) once."""
    value = st.session_state.get(key) if key else None
    try:
        event = common.run_store().request_control(run_id, kind, value)
        st.session_state[FLASH] = ("success", tr("training.run.controls.asked", id=run_id,
                                                 change=ft.event_text(event.kind, event.value, lang())))
    except ConfigError as exc:
        label = tr(f"training.run.controls.{exc.field}") if exc.field in CONTROL_FIELDS else exc.field
        st.session_state[FLASH] = ("error", f"{label}: {exc.text(lang())}")
    except (RunError, ValueError) as exc:
        st.session_state[FLASH] = ("error", str(exc))


CONTROL_FIELDS = ("lr_factor", "lr", "epochs")   # the settings a control changes (their labels: training.run.controls.*)
CANCEL, MOVE_UP, TO_FRONT = "train_queue_cancel", "train_queue_move_up", "train_queue_to_front"


def queue_action(action, run_id: int, done: str) -> None:
    """A queue button's callback (cancel, move up): store first, then the message ({place}: its place now)."""
    try:
        run = action(common.run_store(), run_id)
        st.session_state[FLASH] = ("success", done.replace("{place}", place_text(run.place)))
    except (RunError, ValueError) as exc:
        st.session_state[FLASH] = ("error", str(exc))


def place_text(place: int | None) -> str:
    """A place in the queue as the sentence around it wants it: '2nd' in English, '2' in Chinese."""
    return ordinal(place) if lang() == "en" else str(place or "–")


def queue_box(run: Run) -> None:
    """A run waiting for a slot: its place in line, Cancel, Move up and To the front."""
    with st.container(border=True):
        ahead = (tr("training.run.queue.ahead", n=run.place - 1) if run.place and run.place > 1
                 else tr("training.run.queue.next"))
        st.markdown(tr("training.run.queue.waiting", place=place_text(run.place), ahead=ahead))
        cancel, up, front = st.columns(3)
        cancel.button(tr("training.run.queue.cancel"), key=CANCEL, width="stretch", on_click=queue_action,
                      args=(jobs.cancel, run.id, tr("training.run.queue.cancelled", run=run.label)),
                      help=tr("training.run.queue.cancel_help"))
        up.button(tr("training.run.queue.move_up"), key=MOVE_UP, width="stretch", disabled=run.place == 1,
                  on_click=queue_action, args=(jobs.move_up, run.id, tr("training.run.queue.moved_up", run=run.label)),
                  help=tr("training.run.queue.move_up_help"))
        front.button(tr("training.run.queue.to_front"), key=TO_FRONT, width="stretch", disabled=run.place == 1,
                     on_click=queue_action, args=(lambda store, i: jobs.move_up(store, i, to_front=True), run.id,
                                                  tr("training.run.queue.moved_to_front", run=run.label)),
                     help=tr("training.run.queue.to_front_help"))


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
        st.caption(tr("training.run.controls.title"))
        # Three settings side by side, the stop under them: four columns squeeze the buttons' labels
        # on a 1280 px projector (the run's column is about 500 px wide there).
        factor, lr, epochs = st.columns(3, vertical_alignment="bottom")
        factor.number_input(tr("training.run.controls.lr_factor"), key=LR_FACTOR, min_value=0.0, step=0.1,
                            format="%g", help=tr("training.run.controls.lr_factor_help"))
        factor.button(tr("training.run.controls.multiply"), key=APPLY_LR_FACTOR, on_click=request,
                      args=(run.id, "lr_factor", LR_FACTOR), width="stretch")
        lr.number_input(tr("training.run.controls.lr"), key=NEW_LR, min_value=0.0, step=1e-4, format="%g",
                        help=tr("training.run.controls.lr_help"))
        lr.button(tr("training.run.controls.set_lr"), key=APPLY_LR, on_click=request, args=(run.id, "lr", NEW_LR),
                  width="stretch")
        epochs.number_input(tr("training.run.controls.epochs"), key=NEW_EPOCHS, min_value=1, step=1,
                            help=tr("training.run.controls.epochs_help"))
        epochs.button(tr("training.run.controls.set_epochs"), key=APPLY_EPOCHS, on_click=request,
                      args=(run.id, "epochs", NEW_EPOCHS), width="stretch")
        st.button(tr("training.run.controls.stop_at_epoch_end"), key=STOP_AT_EPOCH_END, on_click=request,
                  args=(run.id, "stop_at_epoch_end", None), icon=":material/stop_circle:",
                  help=tr("training.run.controls.stop_at_epoch_end_help"))


def history(run: Run, events: list[RunEvent]) -> None:
    """The run's settings as changed, and every change asked for it."""
    if not events:
        return
    language = lang()
    changed = ft.settings_with_changes(run, events, language)
    if changed:
        st.caption(tr("training.run.controls.changed", changes=common.plain(changed)))
    st.dataframe(ft.events_table(events, active=run.is_active, lang=language), hide_index=True, width="stretch")
