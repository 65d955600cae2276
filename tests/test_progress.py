"""Where a run stands (core.runs.progress): speed, elapsed time, time left and phase, from stored rows."""
from __future__ import annotations

import os
import time

import pytest

from core.runs.progress import current_phase, epoch_end_seconds, phase_row, progress, training_rate
from core.runs.store import RunStore
from core.train.config import TrainConfig


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def running(store, *, epochs=2, per_epoch=8, batch=8):
    run = store.create_run(TrainConfig.smoke(epochs=epochs, batch_size=batch), name="p")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.set_plan(run.id, steps_per_epoch=per_epoch, total_steps=epochs * per_epoch)
    return run


def test_speed_and_time_left_come_from_the_step_reports(store):
    run = running(store)
    t0 = time.time() - 10
    # Steps 1..10 reported one per second: 1 step/s, 8 images/s, 6 steps (6 s) to go.
    store.log_metrics(run.id, [(s, 1 + (s > 8), "train_loss", 2.0, t0 + s) for s in range(1, 11)])
    store.heartbeat(run.id, train_seconds=9.0)
    run = store.get(run.id)
    prog = progress(run, store.metrics(run.id), now=run.heartbeat_at + 1.0)
    assert (prog.epoch, prog.step, prog.total_steps) == (2, 10, 16)
    assert prog.steps_per_sec == pytest.approx(1.0) and prog.images_per_sec == pytest.approx(8.0)
    assert prog.elapsed_s == pytest.approx(10.0)             # 9 s at the heartbeat, 1 s since
    assert prog.run_eta_s == pytest.approx(6.0) and prog.fraction == pytest.approx(10 / 16)
    assert prog.epoch_end_s is None                            # no epoch end measured yet
    assert prog.text() == ("Running · epoch 2/2 · step 10/16 · 8 images/s · elapsed 0m 10s · "
                           "run ends in ~0m 6s + testing")
    store.mark_finished(run.id, "stopped", "done")


def test_a_test_pause_between_two_reports_is_not_training_time(store):
    run = running(store, epochs=3, per_epoch=4)
    t0 = time.time() - 100
    rows = [(s, 1, "train_loss", 2.0, t0 + s) for s in (1, 2, 3, 4)]          # 1 step/s
    rows += [(4, 1, phase_row("testing"), 1.0, t0 + 4.5), (4, 1, phase_row("saving"), 1.0, t0 + 9.0),
             (4, 2, phase_row("training"), 1.0, t0 + 10.5)]                    # the epoch's end took 6 s
    rows += [(s, 2, "train_loss", 2.0, t0 + 10.5 + (s - 4)) for s in (5, 6)]  # 1 step/s again
    store.log_metrics(run.id, rows)
    frame = store.metrics(run.id)
    assert training_rate(frame) == pytest.approx(1.0)        # the 6.5 s pause between 4 and 5 is left out
    assert epoch_end_seconds(frame) == pytest.approx(6.0)
    assert current_phase(frame) == ("training", pytest.approx(t0 + 10.5))
    run = store.get(run.id)
    prog = progress(run, frame, now=t0 + 12.5)
    # epoch 2: 2 steps left (2 s) + its end (6 s); run: 6 steps (6 s) + 2 epoch ends (12 s)
    assert prog.phase == "training" and prog.epoch == 2
    assert prog.epoch_eta_s == pytest.approx(8.0) and prog.run_eta_s == pytest.approx(18.0)
    assert "Training · epoch 2/3 · step 6/12" in prog.text()
    assert "epoch ends in ~0m 8s · run ends in ~0m 18s" in prog.text() and "testing" not in prog.text()


def test_while_testing_the_epoch_end_counts_down_from_its_measured_length(store):
    run = running(store, epochs=2, per_epoch=4)
    t0 = time.time() - 100
    rows = [(s, 1, "train_loss", 2.0, t0 + s) for s in (1, 2, 3, 4)]
    rows += [(4, 1, phase_row("testing"), 1.0, t0 + 4.0), (4, 2, phase_row("training"), 1.0, t0 + 9.0)]  # 5 s
    rows += [(s, 2, "train_loss", 2.0, t0 + 9.0 + (s - 4)) for s in (5, 6, 7, 8)]
    rows += [(8, 2, phase_row("testing"), 1.0, t0 + 13.0)]
    store.log_metrics(run.id, rows)
    prog = progress(store.get(run.id), store.metrics(run.id), now=t0 + 15.0)
    assert prog.phase == "testing" and prog.doing().startswith("Testing")
    assert prog.epoch == 2 and prog.step == 8
    assert prog.epoch_eta_s == pytest.approx(3.0) and prog.run_eta_s == pytest.approx(3.0)


def test_a_restart_between_two_reports_of_one_epoch_is_left_out(store):
    run = running(store, epochs=1, per_epoch=10)
    t0 = time.time() - 1000
    rows = [(s, 1, "train_loss", 2.0, t0 + 2 * s) for s in (1, 2, 3)]        # 0.5 step/s
    rows += [(3, 1, phase_row("starting"), 1.0, t0 + 500.0)]                  # stopped, resumed much later
    rows += [(s, 1, "train_loss", 2.0, t0 + 500 + 2 * (s - 3)) for s in (4, 5)]
    store.log_metrics(run.id, rows)
    assert training_rate(store.metrics(run.id)) == pytest.approx(0.5)


def test_a_finished_run_has_no_time_left_and_says_how_it_ended(store):
    run = running(store, epochs=1, per_epoch=4)
    store.log_metrics(run.id, [(s, 1, "train_loss", 2.0, time.time() - 10 + s) for s in (1, 2, 3, 4)]
                      + [(4, 1, "epoch_train_loss", 2.0), (4, 1, "epoch_test_acc", 0.3),
                         (4, 1, "epoch_images_per_sec", 32.0)])
    store.heartbeat(run.id, train_seconds=5.0)
    store.mark_finished(run.id, "completed", "done")
    prog = progress(store.get(run.id), store.metrics(run.id))
    assert prog.fraction == 1.0 and prog.run_eta_s is None and prog.epoch_eta_s is None and prog.phase is None
    assert prog.text().startswith("Completed · epoch 1/1 · step 4/4") and "elapsed 0m 5s" in prog.text()


def test_phase_rows_are_named_and_checked():
    assert phase_row("testing") == "phase_testing"
    with pytest.raises(ValueError, match="unknown phase"):
        phase_row("sleeping")


# ---- the progress line in other languages ----------------------------------------------------

def test_the_progress_line_speaks_chinese_with_the_same_numbers(store):
    run = running(store, epochs=3, per_epoch=4)
    t0 = time.time() - 100
    rows = [(s, 1, "train_loss", 2.0, t0 + s) for s in (1, 2, 3, 4)]
    rows += [(4, 1, phase_row("testing"), 1.0, t0 + 4.5), (4, 2, phase_row("training"), 1.0, t0 + 10.5)]
    rows += [(s, 2, "train_loss", 2.0, t0 + 10.5 + (s - 4)) for s in (5, 6)]
    store.log_metrics(run.id, rows)
    prog = progress(store.get(run.id), store.metrics(run.id), now=t0 + 12.5)
    english, chinese = prog.text(), prog.text("zh")
    assert english.startswith("Training · epoch 2/3 · step 6/12 · 8 images/s")
    assert chinese.startswith("训练中 · epoch 2/3 · step 6/12 · 8 张图片/秒")
    assert "本 epoch 约 0m 8s 后结束" in chinese and "整个运行约 0m 18s 后结束" in chinese
    store.mark_finished(run.id, "stopped", "done")


def test_every_phase_and_status_has_its_chinese_words():
    from core.i18n import catalogue
    from core.runs.progress import PHASE_TEXT, PHASES, PIECES, STATUS_TEXT, phase_text, status_text

    zh = catalogue("zh")
    assert set(PHASE_TEXT) == set(PHASES)
    for name in PIECES:
        assert f"core.progress.{name}" in zh
    for phase in PHASES:
        assert phase_text(phase, "en") == PHASE_TEXT[phase] and phase_text(phase, "zh") == zh[f"core.progress.phase.{phase}"]
    for status in STATUS_TEXT:
        assert status_text(status, "zh") == zh[f"core.progress.status.{status}"]


# ---- the learning rate of every step ---------------------------------------------------------

def test_the_planned_rate_is_the_engines_schedule():
    from core.runs.progress import planned_lr
    from core.train.engine import lr_factor

    cfg = TrainConfig.smoke(epochs=30, schedule="onecycle", warmup=0.23, lr=0.4)
    steps, rates = planned_lr(cfg, 100, points=400)    # 3,000 steps: about every 7th, plus the corners
    assert steps[0] == 0 and steps[-1] == 3000 and steps == sorted(set(steps)) and len(steps) < 500
    assert rates == [pytest.approx(0.4 * lr_factor(cfg, s, 3000)) for s in steps]
    assert {690} <= set(steps) and max(rates) == pytest.approx(0.4)   # the warm-up's end: the peak


def test_the_planned_rate_is_the_rate_the_trainer_used_after_its_changes(tmp_path, synthetic_dataset):
    """A real stored run with a lower rate and a longer run asked before it starts: at every step the
    trainer logged its rate (start, each change, each epoch's end), the plan says the same."""
    from core.runs.progress import planned_lr
    from core.runs.worker import run_stored

    store = RunStore(tmp_path / "runs")
    cfg = TrainConfig.smoke(epochs=2, schedule="onecycle", warmup=0.25, lr=1e-2, log_every=1)
    run = store.create_run(cfg, name="lr")
    store.request_control(run.id, "lr_factor", 0.5)
    store.request_control(run.id, "epochs", 3)
    assert run_stored(store, run.id).status == "completed"
    run, events = store.get(run.id), store.events(run.id)
    assert all(not e.pending for e in events) and run.total_steps == 3 * run.steps_per_epoch
    steps, rates = planned_lr(run.config, run.steps_per_epoch, events)
    planned = dict(zip(steps, rates))        # at a change's step: the rate after it (the later value)
    logged = store.metrics(run.id).query("name in ['lr', 'epoch_lr']")
    assert len(logged) == 1 + 1 + 3            # the start, the changes' step, three epoch ends
    for step, value in zip(logged["step"], logged["value"]):
        assert planned[int(step)] == pytest.approx(value, rel=1e-9, abs=1e-15), step
    assert steps[-1] == run.total_steps
    change = events[0].step                  # both changes at once, after the first step
    before, after = [r for s, r in zip(steps, rates) if s == change]
    assert change >= 1 and after == pytest.approx(0.5 * before)


# ---- seconds of training and the accuracy gap ------------------------------------------------

def test_seconds_follow_the_epochs_clock_and_the_measured_speed_after_it(store):
    import numpy as np

    from core.runs.progress import seconds_at

    run = running(store, epochs=3, per_epoch=10)
    t0 = time.time() - 100
    rows = [(10, 1, "epoch_elapsed_s", 12.0), (20, 2, "epoch_elapsed_s", 30.0)]
    rows += [(s, 3, "train_loss", 2.0, t0 + 0.5 * s) for s in (21, 22, 23, 24)]   # 2 steps/s in epoch 3
    store.log_metrics(run.id, rows)
    got = seconds_at(store.metrics(run.id), [0, 5, 10, 15, 20, 24])
    assert got.tolist() == pytest.approx([0.0, 6.0, 12.0, 21.0, 30.0, 32.0])
    assert np.isnan(seconds_at(store.metrics(run.id).iloc[0:0], [3])).all()   # nothing known yet
    store.mark_finished(run.id, "stopped", "done")


def test_a_growing_train_test_gap_is_flagged_and_a_closing_one_is_not(store):
    from core.runs.progress import accuracy_gap

    def frame(pairs):
        rows = []
        for epoch, (train, test) in enumerate(pairs, start=1):
            rows += [(epoch * 8, epoch, "epoch_train_acc", train), (epoch * 8, epoch, "epoch_test_acc", test)]
        run = store.create_run(TrainConfig.smoke(epochs=len(pairs)), name="gap")
        store.log_metrics(run.id, rows)
        return store.metrics(run.id)

    growing = accuracy_gap(frame([(0.30, 0.33), (0.45, 0.44), (0.55, 0.48), (0.64, 0.50)]))
    assert growing is not None and (growing.since_epoch, growing.epoch) == (1, 4)
    assert growing.gap_then == pytest.approx(-0.03) and growing.gap_now == pytest.approx(0.14)
    assert accuracy_gap(frame([(0.30, 0.33), (0.45, 0.44)])) is None                      # too early to say
    assert accuracy_gap(frame([(0.30, 0.20), (0.40, 0.28), (0.45, 0.36)])) is None        # closing
    assert accuracy_gap(frame([(0.40, 0.39), (0.42, 0.40), (0.44, 0.41)])) is None        # 3 points: small
