"""The Training page in Streamlit's AppTest: real background runs on the synthetic demo set."""
from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs import jobs
from core.runs.store import RunStore
from core.train.models import MODELS
from core.train.config import PRESETS, TrainConfig, config_fields, field_spec
from core.train.device import usable_devices
from dashboard import training_keys
from core import i18n
from dashboard.config_form import field_key, form_fields, label, widget_value
from tests.run_checks import live_views, progress_shown

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
PAGE = str(DASHBOARD / "views" / "training.py")
TINY = {field_key(name): value for name, value in dict(
    model="tutorial_mlp", optimizer="adam", lr=1e-3, batch_size=64, epochs=2, train_subset=512, test_subset=256,
    log_every=1, device="cpu").items()}
WIDGET = {"choice": "selectbox", "bool": "checkbox", "int": "number_input", "float": "number_input",
          "optional_int": "number_input", "text": "text_input"}  # what each kind of field is drawn as


@pytest.fixture
def store():
    """The store the page uses (CIFARLAB_RUNS_DIR of this test); its trainers die with the test."""
    store = RunStore()
    yield store
    for run in store.list_runs():
        jobs.kill_trainer(run, signal.SIGKILL)  # only `core train --run <id>` processes, never this one


def page(kind: str = "synthetic") -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["dataset_kind"] = kind
    return at.run()


def widget(at: AppTest, name: str):
    """The form's widget for a TrainConfig field."""
    return getattr(at, WIDGET[field_spec(name).kind])(key=field_key(name))


def fill(at: AppTest, values: dict) -> None:
    by_key = {field_key(spec.name): spec.name for spec in form_fields()}
    for key, value in values.items():
        widget(at, by_key[key]).set_value(value)


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly charts on the page by title, as plotly JSON."""
    out = {}
    for el in at.get("plotly_chart"):
        spec = json.loads(el.proto.spec)
        out[spec["layout"]["title"]["text"]] = spec
    return out


def values(field) -> list:
    """A trace's x or y as a list (plotly writes numeric arrays as base64 typed arrays)."""
    if isinstance(field, dict) and "bdata" in field:
        import base64

        import numpy as np

        shape = field.get("shape")
        array = np.frombuffer(base64.b64decode(field["bdata"]), dtype=np.dtype(field["dtype"]))
        return array.reshape(shape).tolist() if shape else array.tolist()
    return list(field or [])


def poll(at: AppTest, predicate, timeout: float = 240, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        at.run()
        assert not at.exception, at.exception
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def loss_steps(at: AppTest) -> list[int]:
    chart = charts(at).get("Loss (synthetic)")
    return values(chart["data"][0]["x"]) if chart else []


def test_start_stop_and_resume_a_run_from_the_page_with_live_charts(store):
    steps_per_run = 2 * (512 // 64)
    at = page()
    assert not at.exception
    fill(at, TINY)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    (run,) = store.list_runs()
    assert run.dataset == "synthetic" and run.config.batch_size == 64 and run.config.preset == "tutorial_mlp"
    assert at.selectbox(key="train_selected_run").value == run.id
    start = at.button(key="train_start")  # the slot is taken: another run would wait in the queue
    assert not start.disabled and start.label == "Queue this run"
    assert not at.button(key="train_stop").disabled and at.button(key="train_resume").disabled

    # Stop at once (the trainer is still starting): it stops after its first step on any machine.
    at.button(key="train_stop").click().run()
    poll(at, lambda: store.get(run.id).status == "stopped", what="the run to stop")
    at.run()  # the page as it is now
    assert at.button(key="train_stop").disabled and not at.button(key="train_resume").disabled
    assert len(store.metrics(run.id)) > 0
    assert loss_steps(at) == [1]  # chart data from the store
    loss = charts(at)["Loss (synthetic)"]
    assert loss["layout"]["xaxis"]["title"]["text"] == "optimiser step"
    assert loss["layout"]["yaxis"]["title"]["text"] == "cross-entropy loss"
    assert [t["name"] for t in loss["data"]][:2] == ["train loss (raw)", "train loss (EMA, α=0.2)"]
    assert "Accuracy per epoch (synthetic)" in charts(at) and progress_shown(at)

    # A second tab (a fresh session) finds the same run and its chart without being told.
    other = page()
    assert other.selectbox(key="train_selected_run").value == run.id and loss_steps(other) == [1]

    at.button(key="train_resume").click().run()
    seen = []  # how many loss points the chart had at each poll: it grows, never shrinks

    def completed() -> bool:
        seen.append(len(loss_steps(at)))
        return store.get(run.id).status == "completed"

    poll(at, completed, what="the resumed run to complete")
    at.run()
    done = store.get(run.id)
    assert done.final_metrics["step"] == steps_per_run
    assert seen == sorted(seen)
    assert loss_steps(at) == list(range(1, steps_per_run + 1))  # continued: no gaps, no repeats
    acc = charts(at)["Accuracy per epoch (synthetic)"]
    assert values(acc["data"][1]["x"]) == [1, 2] and acc["layout"]["yaxis"]["title"]["text"] == "accuracy (%)"
    assert [m.value for m in at.metric][:2] == ["2/2", f"{steps_per_run}/{steps_per_run}"]
    table = at.dataframe[0].value
    assert table.loc[0, "status"] == "completed" and table.loc[0, "dataset"] == "synthetic"
    assert not at.button(key="train_start").disabled


@pytest.mark.parametrize(("name", "value", "message"), [
    ("lr", 0.0, "**Learning rate**: must be > 0"),
    ("lr", -0.01, "**Learning rate**: must be > 0"),
    ("batch_size", 0, "**Batch size**: must be >= 1"),
    ("epochs", -1, "**Epochs**: must be >= 1"),
    ("label_smoothing", 1.0, "**Label smoothing**: must be in [0, 1)"),
    ("crop_padding", 17, "**Crop padding**: must be between 0 and 16 pixels"),     # under More settings
    ("ema_decay", 1.0, "**EMA decay**: must be in (0, 1)"),
    ("train_subset", -3, "**Training images (0 = all)**: must be at least 1"),
])
def test_invalid_form_values_show_the_fields_message_and_start_nothing(store, name, value, message):
    at = page()
    widget(at, name).set_value(value)
    at.button(key="train_start").click().run()
    assert not at.exception
    assert any(message in e.value.replace("\\", "") for e in at.error), [e.value for e in at.error]  # markdown-escaped
    assert store.list_runs() == []


@pytest.mark.parametrize("name", ["cpu_cnn", "gpu_cnn", "fast_mlp"])
def test_choosing_a_preset_fills_the_form(store, name):
    at = page()
    assert at.selectbox(key="train_preset").value == "tutorial_mlp"  # the tutorial's recipe fills the first form
    for spec in form_fields():
        assert widget(at, spec.name).value == widget_value(spec, getattr(PRESETS["tutorial_mlp"].config, spec.name))
    at.selectbox(key="train_preset").set_value(name).run()
    preset = PRESETS[name]
    assert at.selectbox(key="train_model").value == preset.config.model
    assert at.number_input(key="train_lr").value == pytest.approx(preset.config.lr)
    assert at.number_input(key="train_batch_size").value == preset.config.batch_size
    assert at.checkbox(key="train_augment").value is preset.config.augment
    for spec in form_fields():  # every field, the advanced ones too
        assert widget(at, spec.name).value == widget_value(spec, getattr(preset.config, spec.name)), spec.name
    assert any(preset.cpu_time_hint in c.value for c in at.caption)


def test_every_config_field_has_a_widget_in_the_app():
    """The whole app (sidebar included) on the Training page: a widget for each field's key."""
    at = AppTest.from_file(str(DASHBOARD / "app.py"), default_timeout=60)
    at.session_state["dataset_kind"] = "synthetic"
    at.run()
    at.switch_page("views/training.py").run()
    assert not at.exception, at.exception
    assert at.title[0].value == "Training"
    widgets = {w.key: w for kind in ("selectbox", "number_input", "checkbox", "text_input", "radio")
               for w in at.get(kind)}
    for spec in config_fields():
        assert field_key(spec.name) in widgets, f"no widget for {spec.name}"
    assert field_key("dataset") == "dataset_kind" and widgets["dataset_kind"] in at.sidebar.radio
    assert training_keys.PRESET == field_key("preset")
    for spec in form_fields():
        drawn = widgets[field_key(spec.name)]
        assert drawn.type == WIDGET[spec.kind] or (drawn.type, WIDGET[spec.kind]) == ("selectbox", "selectbox")
        assert drawn.label == label(spec.name) and drawn.help.startswith(spec.help)
        if spec.kind == "choice":
            values = usable_devices() if spec.name == "device" else list(spec.choices)
            assert drawn.options == [spec.choice_label(v) for v in values]     # titles, not ids
    assert any(e.label == i18n.t("training.form.more_settings", "en") == "More settings" for e in at.expander)
    page_keys = {v for k, v in vars(training_keys).items() if k.isupper()}
    assert not page_keys & {field_key(s.name) for s in form_fields()}  # no page key shadows a field's


def test_settings_under_more_settings_reach_the_run(store):
    at = page()
    fill(at, TINY | {field_key("epochs"): 1})
    tricks = dict(precision="fp32", tta=True, ema=True, ema_decay=0.9, alternate_flip=True, crop_padding=2,
                  whiten_bias_epochs=1, bias_lr_scale=2.0, warmup=0.1, momentum=0.8, compile=False)
    for name, value in tricks.items():
        widget(at, name).set_value(value)
    at.button(key="train_start").click().run()
    assert not at.exception and not at.error
    (run,) = store.list_runs()
    assert {name: getattr(run.config, name) for name in tricks} == tricks
    assert (run.config.test_subset, run.config.log_every, run.config.device) == (256, 1, "cpu")


def _finished_run(store: RunStore, name: str, lr: float, accs: list[float]) -> int:
    run = store.create_run(TrainConfig.smoke(epochs=len(accs), lr=lr), name=name)
    store.mark_running(run.id, pid=os.getpid(), device="cpu (test)")
    rows = []
    for epoch, acc in enumerate(accs, start=1):
        rows += [(epoch * 8 - 4, epoch, "train_loss", 2.0 / epoch), (epoch * 8, epoch, "train_loss", 1.8 / epoch),
                 (epoch * 8, epoch, "epoch_test_acc", acc), (epoch * 8, epoch, "epoch_train_acc", acc + 0.05)]
    store.log_metrics(run.id, rows)
    store.mark_finished(run.id, "completed", "ok", best_test_acc=max(accs), final_test_acc=accs[-1])
    return run.id


def test_compare_runs_overlays_curves_and_diffs_their_settings(store):
    a = _finished_run(store, "slow", 1e-4, [0.2, 0.3])
    b = _finished_run(store, "fast", 1e-3, [0.3, 0.5])
    at = page()
    assert at.selectbox(key="train_selected_run").value == b  # newest first when nothing trains
    at.multiselect(key="train_compare").set_value([a, b]).run()
    assert not at.exception
    overlay = charts(at)["Test accuracy per epoch"]
    assert [t["name"] for t in overlay["data"]] == [f"#{b} fast", f"#{a} slow"]
    assert overlay["layout"]["xaxis"]["title"]["text"] == "epoch"
    assert "Train loss (EMA-smoothed)" in charts(at)
    diff = at.dataframe[1].value
    assert list(diff.index) == ["lr"] and diff.loc["lr"].tolist() == ["0.001", "0.0001"]
    at.toggle(key="train_compare_all_settings").set_value(True).run()
    assert "batch_size" in at.dataframe[1].value.index


def test_rename_and_delete_with_confirmation(store):
    keep = _finished_run(store, "keep", 1e-3, [0.4])
    gone = _finished_run(store, "old name", 1e-3, [0.5])
    at = page()
    assert at.selectbox(key="train_selected_run").value == gone
    at.text_input(key="train_rename_text").input("new name")
    at.button(key="train_rename").click().run()
    assert store.get(gone).name == "new name"
    assert at.button(key="train_delete").disabled  # not confirmed yet
    at.checkbox(key="train_delete_confirm").check().run()
    at.button(key="train_delete").click().run()
    assert not at.exception
    assert [r.id for r in store.list_runs()] == [keep]
    assert not (store.root / str(gone)).exists()
    assert at.selectbox(key="train_selected_run").value == keep
    assert at.checkbox(key="train_delete_confirm").value is False


def test_an_active_run_cannot_be_deleted(store):
    run = store.create_run(TrainConfig.smoke(), name="busy")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")  # this process stands in for the trainer
    at = page()
    assert at.checkbox(key="train_delete_confirm").disabled and at.button(key="train_delete").disabled
    assert at.button(key="train_start").label == "Queue this run"
    store.mark_finished(run.id, "stopped", "test over")


def test_missing_cifar10_is_explained_and_start_is_disabled(no_cifar, store):
    at = page("cifar10")
    assert any("CIFAR-10 was not found" in e.value for e in at.error)
    assert at.button(key="train_start").disabled
    assert any(b.label == "Use the synthetic demo set" for b in at.button)


def test_damaged_cifar10_is_named_before_a_start_and_start_is_disabled(tmp_path, monkeypatch, store):
    import numpy as np

    from core import data

    rng = np.random.default_rng(0)
    split = data.Split(rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8), np.arange(40) % 10)
    data.write_batch_folder(tmp_path / "bad", split, split, data.CLASSES)
    victim = tmp_path / "bad" / data.BATCHES_DIR / "data_batch_2"
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated: the sidebar used to show a green check
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "bad"))
    at = page("cifar10")
    assert at.button(key="train_start").disabled
    assert any("data_batch_2" in e.value for e in at.error), [e.value for e in at.error]
    assert store.list_runs() == []


def test_merging_new_rows_keeps_the_latest_value_of_a_rewritten_step(store):
    from dashboard.figures import training as ft

    run = store.create_run(TrainConfig.smoke(), name="m")
    store.log_metrics(run.id, [(1, 1, "train_loss", 2.0), (2, 1, "train_loss", 1.9)])
    frame = ft.merge_metrics(ft.empty_metrics(), store.metrics(run.id))
    last = int(frame["id"].max())
    store.log_metrics(run.id, [(2, 1, "train_loss", 1.5), (3, 1, "train_loss", 1.4)])  # a resumed trainer
    frame = ft.merge_metrics(frame, store.metrics(run.id, since_id=last))
    assert ft.series(frame, "train_loss")[["step", "value"]].values.tolist() == [[1, 2.0], [2, 1.5], [3, 1.4]]


def test_progress_reports_speed_and_time_left_from_the_step_reports(store):
    from dashboard.figures import training as ft

    run = store.create_run(TrainConfig.smoke(epochs=2), name="p")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.set_plan(run.id, steps_per_epoch=8, total_steps=16)
    t0 = time.time() - 10
    # Steps 1..10 reported one per second: 1 step/s, 64 images/s, 6 steps (6 s) to go.
    store.log_metrics(run.id, [(s, 1 + (s > 8), "train_loss", 2.0, t0 + s) for s in range(1, 11)])
    store.heartbeat(run.id)
    run = store.get(run.id)
    prog = ft.progress(run, store.metrics(run.id), now=t0 + 10)
    assert (prog.epoch, prog.step, prog.total_steps) == (2, 10, 16)
    assert prog.steps_per_sec == pytest.approx(1.0) and prog.images_per_sec == pytest.approx(64.0)
    assert prog.eta_s == pytest.approx(6.0) and prog.fraction == pytest.approx(10 / 16)
    assert prog.text().startswith("Running · epoch 2/2 · step 10/16 · 64 images/s · elapsed ")
    assert prog.text().endswith(" · run ends in ~0m 6s + testing")   # more in tests/test_progress.py
    store.mark_finished(run.id, "stopped", "done")


def test_the_progress_line_says_what_the_run_does_with_elapsed_time_and_time_left(store):
    from core.runs.progress import phase_row

    run = store.create_run(TrainConfig.smoke(epochs=3, batch_size=8, dataset="synthetic"), name="eta")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")          # a trainer that is "alive": this test
    store.set_plan(run.id, steps_per_epoch=4, total_steps=12)
    t0 = time.time() - 12
    rows = [(0, 1, phase_row("starting"), 1.0, t0 - 1), (0, 1, phase_row("training"), 1.0, t0)]
    rows += [(s, 1, "train_loss", 2.0, t0 + s) for s in (1, 2, 3, 4)]               # 1 step/s
    rows += [(4, 1, phase_row("testing"), 1.0, t0 + 4.0), (4, 1, "epoch_test_acc", 0.3, t0 + 6.0),
             (4, 1, phase_row("saving"), 1.0, t0 + 6.0), (4, 2, phase_row("training"), 1.0, t0 + 7.0)]  # 3 s end
    rows += [(s, 2, "train_loss", 2.0, t0 + 7.0 + (s - 4)) for s in (5, 6)]
    store.log_metrics(run.id, rows)
    store.heartbeat(run.id, train_seconds=11.0)
    at = page()
    ((_, text),) = progress_shown(at)
    # epoch 2: 2 steps (2 s) + its end (3 s); the run: 6 steps (6 s) + two epoch ends (6 s)
    assert text.startswith("Training · epoch 2/3 · step 6/12 · 8 images/s · elapsed 0m 1")
    assert text.endswith("· epoch ends in ~0m 5s · run ends in ~0m 12s"), text

    store.log_metrics(run.id, [(8, 2, phase_row("testing"), 1.0)])           # now the trainer tests epoch 2
    at.run()
    ((_, text),) = progress_shown(at)
    assert text.startswith("Testing (evaluating the epoch's model) · epoch 2/3 · step 8/12")
    store.mark_finished(run.id, "stopped", "done")


def test_changes_to_a_running_run_are_asked_from_the_page_and_marked_where_applied(store):
    from dashboard.training_keys import APPLY_LR_FACTOR, LR_FACTOR, STOP_AT_EPOCH_END

    run = store.create_run(TrainConfig.smoke(lr=1e-3, dataset="synthetic"))
    store.mark_running(run.id, pid=os.getpid(), device="cpu")      # a trainer that is "alive": this test
    store.set_plan(run.id, steps_per_epoch=8, total_steps=8)
    at = page()
    at.number_input(key=LR_FACTOR).set_value(0.25)
    at.button(key=APPLY_LR_FACTOR).click().run()
    assert not at.exception and "lr × 0.25" in at.success[0].value
    at.button(key=STOP_AT_EPOCH_END).click().run()
    first, stop = store.events(run.id)
    assert (first.kind, first.value, first.pending) == ("lr_factor", 0.25, True) and stop.kind == "stop_at_epoch_end"

    # The trainer applies the first after step 3 and logs the new rate there.
    store.mark_event_applied(first.id, step=3, epoch=1)
    store.log_metrics(run.id, [(0, 1, "lr", 1e-3), (3, 1, "lr", 2.5e-4)]
                      + [(s, 1, "train_loss", 2.3 - 0.1 * s) for s in (1, 2, 3, 4)])
    at.run()
    lr_chart = charts(at)["Learning rate (synthetic)"]
    assert values(lr_chart["data"][0]["y"]) == [1e-3, 2.5e-4]
    assert [a["text"] for a in lr_chart["layout"]["annotations"]] == ["lr × 0.25 → 0.00025"]
    (live,) = live_views(at)   # the running run's loss chart: the live view's
    assert live["view"]["loss"]["events"] == [{"step": 3, "text": "lr × 0.25"}]
    assert any("Changed while training: lr 0.001 → 0.00025 \\(step 3\\)" in c.value for c in at.caption)
    table = at.dataframe[0].value
    assert table["applied"].tolist() == ["after step 3 (epoch 1)", "waiting for the trainer"]


def test_the_learning_rate_finder_runs_in_the_background_and_fills_the_form(store):
    from dashboard.training_keys import FIND_LR, FINDER_JOB, USE_LR

    at = page()
    fill(at, TINY)
    at.button(key=FIND_LR).click().run()
    assert not at.exception and FINDER_JOB in at.session_state
    assert store.list_runs() == []                                  # the finder stores no run
    poll(at, lambda: "Learning-rate finder" in charts(at), what="the finder's curve")
    state = json.loads(Path(at.session_state[FINDER_JOB]["path"]).read_text())
    assert state["status"] == "done" and len(state["lrs"]) <= 300 and state["suggestion"]
    at.button(key=USE_LR).click().run()
    assert widget(at, "lr").value == pytest.approx(float(f"{state['suggestion']:.3g}"))
    assert store.list_runs() == []


def test_the_model_select_shows_titles_not_ids(store):
    at = page()
    model = at.selectbox(key="train_model")
    assert model.options == [MODELS[name].title for name in MODELS] and "tutorial_mlp" not in model.options
    assert model.value == "tutorial_mlp"                       # the value is still the id the config takes


def test_the_page_shows_the_command_for_several_machines(store):
    from core.train.distributed import multinode_command

    run = store.create_run(TrainConfig.smoke(nproc=2), name="wide")
    at = page()
    at.number_input(key="train_nnodes").set_value(3).run()
    at.text_input(key="train_rdzv_endpoint").set_value("node1:29400").run()
    assert not at.exception
    expected = multinode_command(run.id, store.root, nnodes=3, nproc_per_node=2, endpoint="node1:29400")
    assert any(c.value == expected for c in at.code)
    assert "--nnodes 3 --nproc-per-node 2" in expected and "--rdzv-endpoint node1:29400" in expected
