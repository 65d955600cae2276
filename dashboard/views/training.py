"""Training: start a run in the background, watch it live, stop and resume it, compare runs.

Everything shown comes from the run store (core.runs); training happens in its own process
(core.jobs), so a reload or a second tab shows the same live run.
"""
from __future__ import annotations



import streamlit as st

from core import data, settings

from core.runs import jobs
from core.train.config import DEVICES, OPTIMIZERS, PRESETS, SCHEDULES, ConfigError
from core.train.device import available_devices
from core.train.models import MODELS
from core.runs.store import RunError, RunStore
from dashboard import common
from dashboard.figures import training as ft

# ---- widget and session_state keys ---------------------------------------------------------
PRESET = "train_preset"
FIELDS = {  # TrainConfig field -> (label, widget key)
    "model": ("Model", "train_model"), "optimizer": ("Optimizer", "train_optimizer"),
    "lr": ("Learning rate", "train_lr"), "schedule": ("LR schedule", "train_schedule"),
    "batch_size": ("Batch size", "train_batch_size"), "epochs": ("Epochs", "train_epochs"),
    "weight_decay": ("Weight decay", "train_weight_decay"),
    "label_smoothing": ("Label smoothing", "train_label_smoothing"),
    "augment": ("Augment images", "train_augment"), "seed": ("Seed", "train_seed"),
    "device": ("Device", "train_device"), "train_subset": ("Training images (0 = all)", "train_train_subset"),
    "warmup": ("Warm-up fraction", "train_warmup"), "momentum": ("Momentum / β1", "train_momentum"),
    "log_every": ("Report loss every N steps", "train_log_every"),
    "test_subset": ("Test images (0 = all)", "train_test_subset"),
}
NAME, FORM, START = "train_name", "train_form", "train_start"
SELECTED, STOP, RESUME = "train_selected_run", "train_stop", "train_resume"
COMPARE, ALL_SETTINGS = "train_compare", "train_compare_all_settings"
RENAME_TEXT, RENAME, DELETE_CONFIRM, DELETE = "train_rename_text", "train_rename", "train_delete_confirm", "train_delete"
LIVE = "train_live_metrics"   # {run id: {"attempts", "last_id", "frame"}}: what this tab has read so far
SEEN = "train_seen_statuses"  # {run id: status} at the last full run, to notice changes from elsewhere
FLASH = "train_flash"         # (kind, text) to show once after a button's callback
DEFAULT_PRESET = "fast_mlp"
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


def preset_values(name: str) -> dict:
    cfg = PRESETS[name].config
    return {f: (getattr(cfg, f) or 0) if f in ("train_subset", "test_subset") else getattr(cfg, f) for f in FIELDS}


def load_preset() -> None:  # on_change: runs before the widgets exist, so their keys may be set
    st.session_state.update({FIELDS[f][1]: v for f, v in preset_values(st.session_state[PRESET]).items()})


def flash(kind: str, text: str) -> None:
    st.session_state[FLASH] = (kind, text)


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


def metrics_for(store: RunStore, run) -> "ft.pd.DataFrame":
    """The run's metrics, reading only rows added since this tab's last read."""
    cache = st.session_state.setdefault(LIVE, {})
    entry = cache.get(run.id)
    if entry is None or entry["attempts"] != run.attempts:  # new attempt (resume): read everything again
        entry = cache[run.id] = {"attempts": run.attempts, "last_id": 0, "frame": ft.empty_metrics()}
    new = store.metrics(run.id, since_id=entry["last_id"])
    if len(new):
        entry["frame"], entry["last_id"] = ft.merge_metrics(entry["frame"], new), int(new["id"].max())
    return entry["frame"]


def draw_run(store: RunStore, run) -> None:
    frame = metrics_for(store, run)
    prog = ft.progress(run, frame)
    st.progress(prog.fraction, text=prog.text())
    cols = st.columns(4)
    cols[0].metric("Epoch", f"{prog.epoch}/{prog.epochs}")
    cols[1].metric("Step", f"{prog.step}" + (f"/{prog.total_steps}" if prog.total_steps else ""))
    cols[2].metric("Images / second", f"{prog.images_per_sec:,.0f}" if prog.images_per_sec else "–")
    cols[3].metric("Best test accuracy", f"{100 * run.best_test_acc:.2f}%" if run.best_test_acc is not None else "–")
    synthetic = run.dataset == "synthetic"
    left, right = st.columns(2)
    left.plotly_chart(ft.loss_figure(frame, synthetic=synthetic), key=f"train_loss_chart_{run.id}")
    right.plotly_chart(ft.accuracy_figure(frame, synthetic=synthetic, epochs=run.config.epochs),
                       key=f"train_acc_chart_{run.id}")


@st.fragment(run_every=1.0)
def live(run_id: int | None) -> None:
    """Redraws the selected run every second while it trains; otherwise only notices changes."""
    store = common.run_store()
    if store.statuses() != st.session_state.get(SEEN):  # started, stopped or finished anywhere
        st.rerun()
    run = store.get(run_id) if run_id is not None and run_id in st.session_state[SEEN] else None
    if run is not None and run.is_active:
        draw_run(store, run)


# ---- page ----------------------------------------------------------------------------------
st.title("Training")
store = common.run_store()
kind = common.dataset_kind()
runs = store.list_runs()
st.session_state[SEEN] = {r.id: r.status for r in runs}
active = [r for r in runs if r.is_active]
if FLASH in st.session_state:
    kind_, text = st.session_state.pop(FLASH)
    (st.success if kind_ == "success" else st.error)(text)
data_missing = kind == "cifar10" and not data.cifar10_status(settings.data_root()).present
if data_missing:
    common.get_dataset(kind)  # explains what is missing, offers the demo set and the download

for f, value in preset_values(DEFAULT_PRESET).items():  # keep edits across page switches
    st.session_state[FIELDS[f][1]] = st.session_state.get(FIELDS[f][1], value)
st.session_state[PRESET] = st.session_state.get(PRESET, DEFAULT_PRESET)

form_col, run_col = st.columns([1.3, 2], gap="large")
with form_col:
    st.subheader("New run")
    st.caption(f"Trains on the **{data.kind_label(kind)}** (choose in the sidebar).")
    preset = PRESETS[st.selectbox("Preset", list(PRESETS), key=PRESET, on_change=load_preset,
                                  format_func=lambda p: PRESETS[p].title)]
    st.caption(f"{preset.description}  \n:material/timer: **CPU:** {preset.cpu_time_hint} · **GPU:** "
               f"{preset.gpu_time_hint}")
    devices = [d for d in DEVICES if d == "auto" or d in available_devices()]
    with st.form(FORM, border=True):
        a, b = st.columns(2)
        a.selectbox(FIELDS["model"][0], list(MODELS), key=FIELDS["model"][1])
        b.selectbox(FIELDS["optimizer"][0], OPTIMIZERS, key=FIELDS["optimizer"][1])
        a.number_input(FIELDS["lr"][0], format="%g", step=1e-4, key=FIELDS["lr"][1])
        b.selectbox(FIELDS["schedule"][0], SCHEDULES, key=FIELDS["schedule"][1])
        for i, f in enumerate(("batch_size", "epochs", "weight_decay", "label_smoothing", "seed", "train_subset")):
            is_int = f in ("batch_size", "epochs", "seed", "train_subset")
            (a, b)[i % 2].number_input(FIELDS[f][0], step=1 if is_int else 0.01,
                                       format=None if is_int else "%g", key=FIELDS[f][1])
        a.selectbox(FIELDS["device"][0], devices, key=FIELDS["device"][1])
        b.checkbox(FIELDS["augment"][0], key=FIELDS["augment"][1], help="Random crop (reflect padding) and "
                   "horizontal flip of each training batch; test images are never augmented.")
        with st.expander("More settings"):
            c, d = st.columns(2)
            c.number_input(FIELDS["warmup"][0], step=0.05, format="%g", key=FIELDS["warmup"][1])
            d.number_input(FIELDS["momentum"][0], step=0.05, format="%g", key=FIELDS["momentum"][1])
            c.number_input(FIELDS["log_every"][0], step=1, key=FIELDS["log_every"][1])
            d.number_input(FIELDS["test_subset"][0], step=1, key=FIELDS["test_subset"][1])
        st.text_input("Run name (optional)", key=NAME, placeholder="e.g. lower lr")
        busy = len(active) >= settings.max_active_runs()
        submitted = st.form_submit_button(
            "Start training", type="primary", key=START, disabled=busy or data_missing, width="stretch",
            help=f"{active[0].label} is still training; stop it first or set CIFARLAB_MAX_ACTIVE_RUNS" if busy else None)
    if submitted:
        values = {f: st.session_state[key] for f, (_, key) in FIELDS.items()}
        values |= {f: values[f] or None for f in ("train_subset", "test_subset")}  # 0 = all images
        try:
            cfg = preset.config.replace(**values, dataset=kind, preset=preset.name)
        except ConfigError as exc:
            st.error(f"**{FIELDS.get(exc.field, (exc.field,))[0]}**: {exc.message}")
        else:
            try:
                run = jobs.start_run(store, cfg, st.session_state.get(NAME) or None)
            except (RunError, ValueError) as exc:
                st.error(str(exc))
            else:
                st.session_state[SELECTED] = run.id  # the selectbox below is not drawn yet
                st.rerun()

with run_col:
    st.subheader("Run")
    head, live_slot, steps_slot = st.container(), st.container(), st.container()  # fixed places (fragment id)
    with head:
        if not runs:
            st.info("No runs yet: pick a preset and press **Start training**. Training runs in the background, "
                    "so you can switch pages, reload or open a second tab; charts appear here.")
            selected = run = None
        else:
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
            if run.message and run.status in ("failed", "diverged", "interrupted"):
                (st.error if run.status == "failed" else st.warning)(run.message)
            elif run.stop_requested and run.is_active:
                st.info("Stopping after the current step…")
    with live_slot:
        live(selected)
        if run is not None and not run.is_active:
            draw_run(store, run)
    with steps_slot.expander("The nine training steps — what the trainer is doing right now"):
        st.code(NINE_STEPS, language="python")
        st.caption("After each epoch the trainer measures test loss and accuracy (model in eval mode, no "
                   "gradients) and saves a checkpoint. The real loop is `fit()` in `core/engine.py`.")

st.divider()
st.subheader("All runs")
if runs:
    st.dataframe(ft.runs_table(runs), hide_index=True, width="stretch", placeholder="–",
                 column_config={"best test acc (%)": st.column_config.NumberColumn(format="%.2f")})
    labels = {r.id: r.label for r in runs}
    picked = st.multiselect("Compare runs", list(labels), key=COMPARE, format_func=labels.get,
                            placeholder="Pick two or more runs to overlay their curves")
    if picked:
        chosen = [r for r in runs if r.id in picked]
        loss_fig, acc_fig = ft.compare_figures({r.label: metrics_for(store, r) for r in chosen})
        left, right = st.columns(2)
        left.plotly_chart(loss_fig, key="train_compare_loss")
        right.plotly_chart(acc_fig, key="train_compare_acc")
        show_all = st.toggle("Show every setting", key=ALL_SETTINGS)
        st.dataframe(ft.config_diff(chosen, only_differences=not show_all), width="stretch")
    with st.expander(f"Rename or delete {run.label}"):
        st.text_input("New name", key=RENAME_TEXT, placeholder=run.name)
        st.button("Rename", key=RENAME, on_click=rename, args=(run.id,))
        sure = st.checkbox(f"Yes, delete {run.label} with its checkpoints and metrics", key=DELETE_CONFIRM,
                           disabled=run.is_active)
        st.button("Delete run", key=DELETE, type="primary", disabled=not sure or run.is_active,
                  help="Stop the run first" if run.is_active else None,
                  on_click=delete, args=(run.id,))
