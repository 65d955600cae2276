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
