"""Background runs as real OS processes: start, stop, resume, SIGKILL and resume, one at a time."""
from __future__ import annotations

import os
import signal
import time

import pytest

from core.runs import jobs

from core import settings
from core.train.checkpoints import load_checkpoint
from core.train.config import TrainConfig
from core.runs.store import RunStore, process_alive
from run_checks import STEPS_PER_EPOCH, assert_complete_history



def tiny(epochs: int, **changes) -> TrainConfig:
    return TrainConfig.smoke(epochs=epochs, log_every=1, **changes)


@pytest.fixture
def store(tmp_path):
    """A store whose trainer processes are all killed when the test ends, pass or fail."""
    store = RunStore(tmp_path / "runs")
    yield store
    for run in store.list_runs():
        jobs.kill_trainer(run, signal.SIGKILL)  # only `core train --run <id>` processes, never this one


def wait_for(predicate, timeout: float = 240, what: str = "condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_until_finished(store: RunStore, run_id: int, timeout: float = 240):
    def ended():
        store.reconcile()  # a trainer that died shows as interrupted instead of running forever
        run = store.get(run_id)
        return None if run.is_active else run

    return wait_for(ended, timeout, f"run #{run_id} to end")


def max_logged_step(store: RunStore, run_id: int) -> int:
    frame = store.metrics(run_id)
    loss = frame[frame["name"] == "train_loss"]
    return int(loss["step"].max()) if len(loss) else 0


def test_background_run_trains_to_completion_and_records_everything(store):
    run = jobs.start_run(store, tiny(2), name="baseline")
    assert run.pid and run.status == "queued"
    done = wait_until_finished(store, run.id)
    assert done.status == "completed", done.message
    assert done.device.startswith("cpu") and done.started_at and done.finished_at
    assert done.total_steps == 2 * STEPS_PER_EPOCH and done.final_metrics["step"] == done.total_steps
    assert 0 <= done.final_test_acc <= 1 and done.best_test_acc is None   # no validation split: no "best"
    assert store.checkpoint_path(run.id, "last") and not store.checkpoint_path(run.id, "best")
    assert_complete_history(store, run.id, epochs=2)
    log = store.log_path(run.id).read_text()
    assert "Epoch 2/2" in log and "Training complete in" in log
    wait_for(lambda: not process_alive(run.pid), 30, "the trainer process to exit")  # and be reaped


def test_stop_then_resume_continues_the_same_run_without_gaps_or_repeats(store):
    run = jobs.start_run(store, tiny(3), name="stop me")
    # Asked while the process still starts up: the trainer stops after its very first step, on any
    # machine however fast, with the run mid-epoch.
    jobs.request_stop(store, run.id)
    stopped = wait_until_finished(store, run.id)
    assert stopped.status == "stopped", stopped.message
    ckpt = load_checkpoint(store.checkpoint_path(run.id, "last"))
    assert ckpt["step"] == 1 and ckpt["epoch"] == 0
    assert max_logged_step(store, run.id) == 1  # nothing logged past the checkpoint
    assert not stopped.stop_requested  # the request was used up

    resumed = jobs.resume_run(store, run.id)
    assert resumed.id == run.id and resumed.status == "queued"
    done = wait_until_finished(store, run.id)
    assert done.status == "completed", done.message
    assert done.attempts == 2
    # The same number of steps as an uninterrupted run of this config, each logged exactly once.
    assert done.final_metrics["step"] == 3 * STEPS_PER_EPOCH == done.total_steps
    assert_complete_history(store, run.id, epochs=3)
    assert done.train_seconds > stopped.train_seconds


def test_killed_trainer_leaves_a_readable_store_and_resumes_from_its_checkpoint(store):
    # 30 one-step epochs: a checkpoint every step, and time to kill it mid-run on a fast machine too.
    epochs = 30
    run = jobs.start_run(store, TrainConfig.smoke(epochs=epochs, train_subset=64, test_subset=64, log_every=1),
                         name="kill me")
    last = store.run_dir(run.id) / "last.pt"
    wait_for(lambda: last.is_file() and store.get(run.id).status == "running", what="a first checkpoint")
    trainer = store.get(run.id)
    assert jobs.kill_trainer(trainer, signal.SIGKILL)

    assert store.get(run.id).status == "running"  # as recorded, until someone reconciles
    store.reconcile()
    seen = store.get(run.id)
    assert seen.status == "interrupted", seen.message
    assert "is gone" in seen.message
    assert store.list_runs()[0].status == "interrupted"
    ckpt = load_checkpoint(store.checkpoint_path(run.id, "last"))
    assert ckpt["model"] == "tutorial_mlp" and "model_state" in ckpt
    assert 1 <= ckpt["step"] < epochs and ckpt["step"] <= max_logged_step(store, run.id)

    jobs.resume_run(store, run.id)
    done = wait_until_finished(store, run.id)
    assert done.status == "completed", done.message
    frame = store.metrics(run.id)
    assert not frame.duplicated(["name", "step"]).any()
    assert sorted(frame.loc[frame["name"] == "train_loss", "step"]) == list(range(1, epochs + 1))
    assert sorted(frame.loc[frame["name"] == "epoch_test_acc", "epoch"]) == list(range(1, epochs + 1))


def test_a_run_started_while_the_slots_are_busy_waits_in_line_and_starts_by_itself(store, monkeypatch):
    """CIFARLAB_MAX_ACTIVE_RUNS=1 (the default): the second and third runs wait, in order; the
    third moves up, the second is cancelled; when the first ends, its own trainer starts the
    next one (nobody calls reconcile or start_queued here)."""
    monkeypatch.delenv("CIFARLAB_MAX_ACTIVE_RUNS", raising=False)
    first = jobs.start_run(store, tiny(3), name="first")
    assert first.pid and not first.waiting and first.devices == "cpu"
    second = jobs.start_run(store, tiny(1), name="second")
    third = jobs.start_run(store, tiny(1), name="third")
    assert (second.status, second.place, second.pid) == ("queued", 1, None)
    assert (third.place, third.status_text) == (2, "queued (2nd in line)")
    assert jobs.move_up(store, third.id).place == 1 and store.get(second.id).place == 2
    cancelled = jobs.request_stop(store, second.id)  # a waiting run is cancelled, not asked to stop
    assert cancelled.status == "stopped" and cancelled.place is None and "Cancelled" in cancelled.message
    assert store.get(third.id).place == 1

    done_third = wait_for(lambda: (lambda r: r if r.status == "completed" else None)(store.get(third.id)),
                          what="the third run to start by itself and complete")
    assert store.get(first.id).status == "completed"
    assert done_third.started_at >= store.get(first.id).finished_at  # one at a time
    assert done_third.devices == "cpu" and done_third.threads == settings.cpu_threads()  # alone: every core
    assert store.get(second.id).status == "stopped" and store.get(second.id).attempts == 0

    jobs.resume_run(store, second.id)  # back in line, and the line is free: it starts
    assert wait_until_finished(store, second.id).status == "completed"


def test_two_slots_split_the_cpu_threads(store, monkeypatch):
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "2")
    monkeypatch.setenv("CIFARLAB_CPU_THREADS", "2")
    assert settings.max_active_runs() == 2
    first = jobs.start_run(store, tiny(30), name="first")
    assert store.get(first.id).threads == 2  # alone, it takes both
    second = jobs.start_run(store, tiny(30), name="second")
    assert not second.waiting
    assert {store.get(first.id).threads, store.get(second.id).threads} == {1}
    wait_for(lambda: "(1 threads)" in (store.get(second.id).device or ""), what="the second trainer's device text")
    jobs.request_stop(store, second.id)
    assert wait_until_finished(store, second.id).status == "stopped"
    wait_for(lambda: store.get(first.id).threads == 2, what="the second trainer's exit to re-split the CPU")
    log = store.log_path(first.id)
    wait_for(lambda: "CPU threads: 1 -> 2" in log.read_text(), what="the first trainer to take both threads back")
    assert "CPU threads: 2 -> 1" in log.read_text()
    jobs.request_stop(store, first.id)
    wait_until_finished(store, first.id)


def test_missing_data_fails_the_run_with_the_data_layers_message(no_cifar, store):
    run = jobs.start_run(store, tiny(1, dataset="cifar10"), name="no data")
    done = wait_until_finished(store, run.id, timeout=120)
    assert done.status == "failed"
    assert "CIFAR-10 was not found" in done.message and "synthetic" in done.message
    assert "Traceback" not in done.message


def test_resume_and_stop_are_refused_where_they_make_no_sense(store):
    run = store.create_run(tiny(1), name="done")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.mark_finished(run.id, "completed", "ok")
    with pytest.raises(jobs.JobError, match="is completed; only a stopped or interrupted run can be resumed"):
        jobs.resume_run(store, run.id)
    with pytest.raises(jobs.JobError, match="only a queued or running run can be stopped"):
        jobs.request_stop(store, run.id)


def test_invalid_config_is_refused_before_anything_is_stored(store):
    from core.train.config import ConfigError

    with pytest.raises(ConfigError) as err:
        jobs.start_run(store, {**tiny(1).to_dict(), "lr": -1.0})
    assert err.value.field == "lr"
    assert store.list_runs() == []


def test_trainer_processes_get_our_settings_as_absolute_paths(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "3")
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    monkeypatch.setenv("CIFARLAB_RUNS_DIR", "relative/runs")
    monkeypatch.delenv("CIFARLAB_SYNTHETIC_ROOT")
    env = jobs.trainer_env()
    assert env["PYTHONPATH"] == "/somewhere/else"  # untouched: the package is installed, not path-patched
    assert env["CIFARLAB_MAX_ACTIVE_RUNS"] == "3" and env["CIFAR10_ROOT"] == os.environ["CIFAR10_ROOT"]
    assert env["CIFARLAB_RUNS_DIR"] == str(tmp_path / "relative" / "runs")
    assert env["CIFARLAB_SYNTHETIC_ROOT"] == str(tmp_path / "data" / "synthetic")
    assert env["PYTHONUNBUFFERED"] == "1"
    store = RunStore(tmp_path / "r")
    run = store.create_run(tiny(1))
    cmd = jobs.trainer_command(store, run.id, resume=True)
    assert cmd[1:] == ["-m", "core", "train", "--run", str(run.id), "--runs-dir", str(store.root), "--resume"]


@pytest.mark.parametrize("changes,per_epoch", [
    (dict(train_subset=100, batch_size=32), 3),      # the short last batch (4 images) is dropped
    (dict(train_subset=64, batch_size=64), 1),       # exactly one batch: nothing is dropped
])
def test_worker_stores_the_engines_plan_before_training(store, changes, per_epoch):
    from core.runs.worker import run_stored

    run = store.create_run(tiny(2, test_subset=32, **changes), name="plan")
    assert store.get(run.id).steps_per_epoch is None
    seen = []  # the plan as stored when each epoch ends: there from the start
    result = run_stored(store, run.id, on_epoch=lambda e, s, m: seen.append(
        (store.get(run.id).steps_per_epoch, store.get(run.id).total_steps)))
    assert result.status == "completed" and result.step == 2 * per_epoch
    done = store.get(run.id)
    assert (done.steps_per_epoch, done.total_steps) == (per_epoch, 2 * per_epoch)
    assert seen == [(per_epoch, 2 * per_epoch)] * 2
    frame = store.metrics(run.id)
    assert sorted(frame.loc[frame["name"] == "train_loss", "step"]) == list(range(1, 2 * per_epoch + 1))


@pytest.mark.parametrize("resume", [False, True])
def test_a_trainer_that_cannot_start_for_lack_of_permission_leaves_the_run_resumable(store, monkeypatch, resume):
    import errno

    def launch(store, run, *, resume):
        # What opening train.log in a folder without write permission raises (simulated: root ignores it).
        raise PermissionError(errno.EACCES, "Permission denied", str(store.log_path(run.id)))

    if resume:
        run = store.create_run(tiny(1), name="resume me")
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
        store.mark_finished(run.id, "stopped", "Stopped at step 1")
    monkeypatch.setattr(jobs, "_launch", launch)
    with pytest.raises(jobs.JobError, match="not writable"):
        if resume:
            jobs.resume_run(store, run.id)
        else:
            run = jobs.start_run(store, tiny(1), name="new")
    run = store.list_runs()[0]
    assert run.status == "interrupted" and run.can_resume, run.message
    assert "not writable" in run.message and str(run.dir) in run.message and "Resume" in run.message


def test_a_batch_larger_than_the_data_fails_the_run_naming_the_setting(store, synthetic_dataset):
    n = len(synthetic_dataset.train.labels)
    run = jobs.start_run(store, tiny(1, train_subset=None, val_images=n - 20, batch_size=32), name="big batch")
    done = wait_until_finished(store, run.id, timeout=120)
    assert done.status == "failed"
    assert "batch_size: must be at most the number of training images (20" in done.message
    assert "Traceback" not in done.message


def test_more_processes_than_the_machine_has_are_refused_before_anything_is_stored(store):
    from core.train.config import ConfigError

    too_many = 64 * (os.cpu_count() or 1)
    with pytest.raises(ConfigError) as err:
        jobs.start_run(store, tiny(1, nproc=too_many, batch_size=too_many, train_subset=None), name="too wide")
    assert err.value.field == "nproc" and "choose at most" in err.value.message
    with pytest.raises(ConfigError, match="must divide the batch size"):
        jobs.start_run(store, tiny(1, nproc=2, batch_size=63), name="uneven")
    assert store.list_runs() == []
