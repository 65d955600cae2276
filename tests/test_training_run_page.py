"""The Training page's run side in AppTest: captions under every chart, the epoch-mean loss, the
learning-rate curve, the overfitting flag, the comparison's x axis and table, the settings that are
off, and the nine steps with the trainer's phase highlighted. Runs are stored rows (no trainer), so
every number the page shows can be checked against them."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.runs.progress import phase_row
from core.runs.store import RunStore
from core.text import format_duration
from core.train.config import TrainConfig
from core.train.engine import lr_factor
from core.train.walkthrough import STEPS
from dashboard import run_panel
from dashboard.training_keys import ALL_SETTINGS, COMPARE, SELECTED
from tests.run_checks import live_views

PAGE = str(Path(__file__).resolve().parent.parent / "dashboard" / "views" / "training.py")
PER_EPOCH = 8
EPOCH_S = 6.0           # seconds on the run's clock per epoch (tests included)


@pytest.fixture
def store(stand_in_store):
    return stand_in_store


def stored_run(store: RunStore, name: str, accs: list[tuple[float, float]], *, finish: bool = True,
               speed: float = 1000.0, epochs: int | None = None, **settings) -> int:
    """A run with every row the trainer writes for `accs` ((train acc, test acc) per epoch): step
    reports every log_every steps, each epoch's rows, the rate at the start and at each epoch's end."""
    cfg = TrainConfig.smoke(epochs=epochs or len(accs), lr=1e-3, log_every=2, **settings)
    total = PER_EPOCH * cfg.epochs
    run = store.create_run(cfg, name=name)
    store.mark_running(run.id, pid=os.getpid(), device="cpu (test)")
    store.set_plan(run.id, steps_per_epoch=PER_EPOCH, total_steps=total)
    rows = [(0, 1, "lr", cfg.lr * lr_factor(cfg, 0, total))]
    for epoch, (train, test) in enumerate(accs, start=1):
        end = epoch * PER_EPOCH
        rows += [(s, epoch, "train_loss", 2.3 - 0.05 * s) for s in range(end - PER_EPOCH + 2, end + 1, 2)]
        rows += [(end, epoch, "epoch_train_loss", 2.2 - 0.3 * epoch), (end, epoch, "epoch_test_loss", 2.1 - 0.3 * epoch),
                 (end, epoch, "epoch_train_acc", train), (end, epoch, "epoch_test_acc", test),
                 (end, epoch, "epoch_images_per_sec", speed + 10 * epoch), (end, epoch, "epoch_elapsed_s", EPOCH_S * epoch),
                 (end, epoch, "epoch_lr", cfg.lr * lr_factor(cfg, end, total))]
    store.log_metrics(run.id, rows)
    store.heartbeat(run.id, train_seconds=EPOCH_S * len(accs))
    if finish:
        store.mark_finished(run.id, "completed", "ok", final_test_acc=accs[-1][1] if accs else None,
                            final_metrics={"step": PER_EPOCH * len(accs)})
    return run.id


def page(lang: str = "en", selected: int | None = None, **state) -> AppTest:
    """The Training page after its first run, in `lang`, with `selected` picked and `state` (widget
    keys and values) set before it."""
    at = AppTest.from_file(PAGE, default_timeout=90)
    at.session_state["dataset_kind"] = "synthetic"
    at.session_state["lang"] = lang
    if selected is not None:
        at.session_state[SELECTED] = selected
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly charts on the page by title, as plotly JSON."""
    return {(spec := json.loads(el.proto.spec))["layout"]["title"]["text"]: spec for el in at.get("plotly_chart")}


def values(field) -> list:
    """A trace's x or y as a list (plotly writes numeric arrays as base64 typed arrays)."""
    if isinstance(field, dict) and "bdata" in field:
        import base64

        import numpy as np

        array = np.frombuffer(base64.b64decode(field["bdata"]), dtype=np.dtype(field["dtype"]))
        return array.reshape(field["shape"]).tolist() if field.get("shape") else array.tolist()
    return list(field or [])


def trace(chart: dict, name: str) -> dict:
    (found,) = [t for t in chart["data"] if t.get("name") == name]
    return found


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def nine_steps(at: AppTest) -> str:
    """The markdown of the nine steps (it starts with step 1's number badge)."""
    (loop,) = [m.value for m in at.markdown if m.value.startswith((":blue-badge[1]", ":gray-badge[1]"))]
    return loop


# ---- captions and the run's own charts -------------------------------------------------------

def test_every_chart_has_a_caption_that_says_how_to_read_it(store):
    stored_run(store, "plain", [(0.30, 0.34), (0.42, 0.41)])
    at = page()
    assert {"Loss (synthetic)", "Accuracy per epoch (synthetic)", "Learning rate (synthetic)"} <= set(charts(at))
    text = captions(at)
    loss = [c for c in text if c.startswith("Light line: the training loss, the mean since the point before: one point every 2 steps, or every second")]
    assert len(loss) == 1 and "smoothed (20% new + 80% old)" in loss[0]
    assert "abel smoothing" not in loss[0]                                   # this run has none
    assert any("Train accuracy is a running mean over the epoch" in c and "in epoch 1 test can sit above train" in c
               for c in text)
    assert any(c.startswith("The learning rate at every step. Line: the constant schedule") for c in text)


def test_the_label_smoothing_caption_names_this_runs_value(store):
    stored_run(store, "smooth", [(0.30, 0.34)], label_smoothing=0.2)
    at = page()
    (loss,) = [c for c in captions(at) if c.startswith("Light line")]
    assert "Label smoothing 0.2 lifts the training loss's floor" in loss
    assert "the test loss can sit below the training loss" in loss
    at = page("zh")
    (loss,) = [c for c in captions(at) if c.startswith("浅色线")]
    assert "标签平滑 0.2" in loss and "每 2 个 step 一个点" in loss


def test_the_loss_chart_has_each_epochs_mean_training_loss(store):
    stored_run(store, "means", [(0.30, 0.34), (0.42, 0.41), (0.50, 0.45)])
    loss = charts(page())["Loss (synthetic)"]
    means = trace(loss, "train loss (epoch mean)")
    assert values(means["x"]) == [8, 16, 24]                                  # where each epoch ended
    assert values(means["y"]) == pytest.approx([2.2 - 0.3 * e for e in (1, 2, 3)])
    assert [t["name"] for t in loss["data"]][:3] == ["train loss (raw)", "train loss (EMA, α=0.2)",
                                                       "test loss (per epoch)"]


def test_the_learning_rate_curve_is_the_configs_schedule(store):
    stored_run(store, "onecycle", [(0.30, 0.34), (0.42, 0.41), (0.50, 0.45)], schedule="onecycle", warmup=0.25)
    lr = charts(page())["Learning rate (synthetic)"]
    cfg, total = store.list_runs()[0].config, 3 * PER_EPOCH
    line = trace(lr, "the schedule")
    assert values(line["x"]) == list(range(total + 1))                      # every step of this short run
    assert values(line["y"]) == pytest.approx([cfg.lr * lr_factor(cfg, s, total) for s in range(total + 1)])
    logged = trace(lr, "logged by the trainer")                            # on the line, where it was logged
    assert values(logged["x"]) == [0, 8, 16, 24]
    assert values(logged["y"]) == pytest.approx([cfg.lr * lr_factor(cfg, s, total) for s in (0, 8, 16, 24)])


def test_a_change_of_rate_shows_as_a_jump_in_the_curve(store):
    run_id = stored_run(store, "changed", [(0.30, 0.34)], finish=False)
    event = store.request_control(run_id, "lr_factor", 0.5)
    store.mark_event_applied(event.id, step=3, epoch=1)
    store.log_metrics(run_id, [(3, 1, "lr", 5e-4)])
    line = trace(charts(page())["Learning rate (synthetic)"], "the schedule")
    x, y = values(line["x"]), values(line["y"])
    assert x == [0, 1, 2, 3, 3, 4, 5, 6, 7, 8] and y == pytest.approx([1e-3] * 4 + [5e-4] * 6)


def test_a_growing_gap_between_train_and_test_accuracy_is_flagged(store):
    stored_run(store, "overfits", [(0.30, 0.33), (0.45, 0.44), (0.55, 0.48), (0.64, 0.50)])
    at = page()
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("**Overfitting?** The gap between train and test accuracy grew from -3.0 points "
                              "(epoch 1) to 14.0 points (epoch 4)")
    acc = charts(at)["Accuracy per epoch (synthetic)"]
    assert [a["text"] for a in acc["layout"]["annotations"]] == ["gap 14.0 pts ↑"]

    store.delete(store.list_runs()[0].id)
    stored_run(store, "generalises", [(0.30, 0.33), (0.45, 0.44), (0.50, 0.49), (0.55, 0.53)])
    at = page()
    assert not at.warning and not charts(at)["Accuracy per epoch (synthetic)"]["layout"].get("annotations")


def test_the_progress_explains_epoch_batch_and_step_with_this_runs_counts(store):
    stored_run(store, "counts", [(0.30, 0.34), (0.42, 0.41)], batch_size=64)
    (line,) = [c for c in captions(page()) if c.startswith("**Epoch**: one pass")]
    assert "(512 each epoch)" in line and "batch 64 → 8 steps per epoch, 2 epochs → 16 steps." in line
    assert "Details: the images are reshuffled every epoch" in line and "first 512 training images" in line


# ---- settings that are off -------------------------------------------------------------------

def test_settings_that_are_off_are_not_listed_as_if_they_applied(store):
    plain = stored_run(store, "no augment", [(0.30, 0.34)], augment=False, crop_padding=4)
    flips = stored_run(store, "augment", [(0.30, 0.34)], augment=True, crop_padding=2)
    at = page(selected=plain)
    (listing,) = [m.value for m in at.markdown if m.value.startswith("`model` tutorial_mlp")]
    shown, note = listing.split("  \n")
    assert "`augment` False" in shown and "crop_padding" not in shown and "alternate_flip" not in shown
    assert "`crop_padding`" in note and "`ema_decay`" in note

    at.multiselect(key=COMPARE).set_value([plain, flips]).run()
    at.toggle(key=ALL_SETTINGS).set_value(True).run()
    table = at.dataframe[1].value
    plain_label, flips_label = f"#{plain} no augment", f"#{flips} augment"
    assert table.loc["crop_padding", plain_label] == "off (augment is off)"
    assert table.loc["crop_padding", flips_label] == "2"
    assert "ema_decay" not in table.index and "whiten_bias_epochs" not in table.index   # off in both
    at.toggle(key=ALL_SETTINGS).set_value(False).run()
    assert set(at.dataframe[1].value.index) == {"augment", "crop_padding", "alternate_flip"}


# ---- comparing runs --------------------------------------------------------------------------

def test_the_comparisons_x_axis_counts_epochs_images_or_seconds(store):
    small = stored_run(store, "small batch", [(0.30, 0.34), (0.42, 0.41), (0.50, 0.45)], batch_size=16,
                       train_subset=128, speed=500.0)
    large = stored_run(store, "large batch", [(0.35, 0.38), (0.45, 0.44)], batch_size=64, speed=2000.0)
    at = page()
    at.multiselect(key=COMPARE).set_value([small, large]).run()
    assert at.radio(key=run_panel.COMPARE_X).value == "epoch"
    expected = {"epoch": {small: [1, 2, 3], large: [1, 2]},
                "images": {small: [8 * 16, 16 * 16, 24 * 16], large: [8 * 64, 16 * 64]},
                "seconds": {small: [6.0, 12.0, 18.0], large: [6.0, 12.0]}}
    for axis, x_by_run in expected.items():
        at.radio(key=run_panel.COMPARE_X).set_value(axis).run()
        assert not at.exception, at.exception
        acc, loss = charts(at)["Test accuracy per epoch"], charts(at)["Train loss (EMA-smoothed)"]
        title = {"epoch": "epoch", "images": "images seen", "seconds": "seconds of training"}[axis]
        assert acc["layout"]["xaxis"]["title"]["text"] == loss["layout"]["xaxis"]["title"]["text"] == title
        for run_id, x in x_by_run.items():
            label = f"#{run_id} {store.get(run_id).name}"
            assert values(trace(acc, label)["x"]) == pytest.approx(x), (axis, label)
            batch, steps = store.get(run_id).config.batch_size, values(trace(loss, label)["x"])
            reports = [s for s in range(2, PER_EPOCH * len(x) + 1, 2)]      # the step reports, every 2 steps
            want = {"epoch": [s / PER_EPOCH for s in reports], "images": [s * batch for s in reports],
                    "seconds": [s * EPOCH_S / PER_EPOCH for s in reports]}[axis]
            assert steps == pytest.approx(want), (axis, label)


def test_the_comparison_table_has_speed_and_wall_time_from_the_stored_rows(store):
    small = stored_run(store, "small", [(0.30, 0.34), (0.42, 0.41), (0.50, 0.45)], batch_size=16, speed=500.0)
    large = stored_run(store, "large", [(0.35, 0.38), (0.45, 0.44)], batch_size=64, speed=2000.0)
    at = page()
    at.multiselect(key=COMPARE).set_value([small, large]).run()
    (table,) = [t.value for t in at.table if "images/s" in t.value.columns]
    for run_id, epochs, speed in ((small, 3, 500.0), (large, 2, 2000.0)):
        run, frame = store.get(run_id), store.metrics(run_id)
        row = table.loc[run.label]
        stored_speed = frame.query("name == 'epoch_images_per_sec'")["value"].mean()
        assert float(row["images/s"]) == pytest.approx(round(stored_speed)) == pytest.approx(speed + 10 * (epochs + 1) / 2)
        assert row["wall time"] == format_duration(run.train_seconds) == format_duration(EPOCH_S * epochs)
        assert int(row["images seen"]) == epochs * PER_EPOCH * run.config.batch_size
        assert int(row["epochs done"]) == epochs and float(row["test acc (%)"]) == pytest.approx(100 * run.final_test_acc)


# ---- the nine steps, live --------------------------------------------------------------------

def test_the_nine_steps_are_open_numbered_and_named_as_the_tutorial_does(store):
    stored_run(store, "done", [(0.30, 0.34)])
    at = page()
    (steps,) = [e for e in at.expander if e.label.startswith("The nine training steps")]
    assert steps.proto.expanded
    loop = [m.value for m in steps.markdown if m.value.startswith(":gray-badge[1]")][0]
    for step in STEPS:
        assert f":gray-badge[{step.number}] **{step.title}**" in loop
        for line in step.code.splitlines():
            assert f"`{line.strip()}`" in loop
    assert "inputs.view(-1, 32*32*3)" in loop                    # the reshape step is there
    assert ":orange-badge" not in markdown(at)                    # nothing runs: nothing highlighted
    at = page("zh")
    (steps,) = [e for e in at.expander if e.label.startswith("九个训练步骤")]
    loop = [m.value for m in steps.markdown if m.value.startswith(":gray-badge[1]")][0]
    for step in STEPS:
        assert f":gray-badge[{step.number}] **{step.chinese}**" in loop


def test_the_step_the_trainer_is_in_is_highlighted_from_its_phase_rows(store):
    run_id = stored_run(store, "live", [(0.30, 0.34)], finish=False, epochs=3)
    store.log_metrics(run_id, [(8, 2, phase_row("training"), 1.0), (10, 2, "train_loss", 1.5)])
    at = page()
    text = nine_steps(at)
    (live,) = live_views(at)   # what the trainer does now: under the progress line, in the live view
    assert live["view"]["now"] == {"badge": "now", "text": "**Steps 1–9: the training loop.** Epoch 2/3, "
                                   "step 10/24: steps 3–9 repeat for every batch, far too fast to follow one by one."}
    assert not [m.value for m in at.markdown if m.value.startswith(":orange-badge")]
    assert all(f":blue-badge[{n}]" in text for n in range(1, 10)) and ":gray-badge[" not in text
    after = [m.value for m in at.markdown if m.value.startswith("**After each epoch · test**")]
    assert len(after) == 1 and ":orange-badge" not in after[0]

    store.log_metrics(run_id, [(16, 2, "train_loss", 1.4), (16, 2, phase_row("testing"), 1.0)])
    at.run()
    text = nine_steps(at)
    assert all(f":gray-badge[{n}]" in text for n in range(1, 10)) and ":blue-badge[" not in text
    (after,) = [m.value for m in at.markdown if "After each epoch · test" in m.value]
    assert after.startswith(":orange-badge[:material/play_arrow: now] **After each epoch · test**")
    assert after.count(":orange-badge") == 1                     # the save line is not highlighted
    assert live_views(at)[0]["view"]["now"]["text"] == "**After the epoch: testing** (below the nine steps)."

    store.log_metrics(run_id, [(16, 2, phase_row("saving"), 1.0)])
    at.run()
    (after,) = [m.value for m in at.markdown if "After each epoch · test" in m.value]
    assert after.startswith("**After each epoch · test**") and "\n\n:orange-badge" in after
