"""`python -m core queue`, `python -m core sweep` and a foreground `train` that finds the slots busy.
Trainer launches are replaced by this process's pid (main() runs in-process), so nothing trains
in the background here; one real foreground run checks the thread share end to end."""
from __future__ import annotations

import os

import pytest

from core.cli import main
from core.runs import jobs
from core.runs.store import RunStore

TINY = ["--epochs", "1", "--train-subset", "512", "--test-subset", "256", "--batch-size", "64", "--device", "cpu"]


@pytest.fixture
def store(monkeypatch):
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "1")
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())  # no trainer processes
    return RunStore()


def test_a_sweep_from_the_command_line_queues_a_run_per_combination(store, capsys):
    assert main(["sweep", "--demo", "--set", "seed=0,1", "--set", "lr=1e-3,2e-3", "--name", "cli", *TINY]) == 0
    out = capsys.readouterr().out
    assert "Sweep #1 'cli': 4 runs of fast_mlp" in out
    assert "#1 cli seed=0 lr=0.001: queued on cpu" in out
    assert "#4 cli seed=1 lr=0.002: queued (3rd in line)" in out
    runs = store.sweep_runs(1)
    assert [(r.config.seed, r.config.lr) for r in runs] == [(0, 1e-3), (0, 2e-3), (1, 1e-3), (1, 2e-3)]
    assert all(r.config.preset == "fast_mlp" and r.dataset == "synthetic" and r.config.epochs == 1 for r in runs)

    for run, acc in zip(runs, (0.30, 0.50, 0.34, 0.54)):  # they finish (this process stands in)
        while store.get(run.id).waiting:
            store.claim_next(1, lambda r, held: "cpu")
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
        store.mark_finished(run.id, "completed", "ok", best_test_acc=acc, final_test_acc=acc)
    assert main(["sweep", "--show", "1"]) == 0
    out = capsys.readouterr().out
    assert "Runs: 4 completed" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("lr=")}
    assert "32.00 ± 2.83" in lines["lr=0.001"] and "★" not in lines["lr=0.001"]
    assert "52.00 ± 2.83" in lines["lr=0.002"] and "★" in lines["lr=0.002"]
    assert "no validation split" in lines["lr=0.002"] and "–" in lines["lr=0.002"]  # no "best" without one
    assert main(["sweep", "--list"]) == 0
    assert "cli  [fast_mlp: seed (2) × lr (2)]  4/4 completed" in capsys.readouterr().out


@pytest.mark.parametrize("args, fragment, code", [
    (["--set", "lr=1e-3,-1"], "error: --set lr: must be > 0, got -1", 2),
    (["--set", "seed=0,1", "--set", "seed=2"], "error: --set seed: is given twice", 2),
    (["--set", "colour=red"], "error: --set colour: is not a setting", 2),
    (["--set", "batch_size=64,1024"], "error: --set batch_size: must be at most the number of training images", 2),
    (["--set", "seed=0", "--lr", "-1"], "error: --lr (lr): must be > 0", 2),
    ([], "error: give one or two settings to sweep", 2),
    (["--show", "9"], "error: there is no sweep #9", 1),
])
def test_bad_sweeps_are_one_line_and_store_nothing(store, capsys, args, fragment, code):
    assert main(["sweep", "--demo", *args, *TINY]) == code
    err = capsys.readouterr().err
    assert err.startswith(fragment), err
    assert store.list_runs() == [] and store.sweeps() == []


def test_queue_lists_the_line_and_moves_or_cancels_a_run(store, capsys):
    first, second, third = (jobs.start_run(store, _smoke(), name=n) for n in ("first", "second", "third"))
    assert main(["queue"]) == 0
    out = capsys.readouterr().out
    assert "1 of 1 slot(s) in use (CIFARLAB_MAX_ACTIVE_RUNS=1)" in out and "  #1 first: queued on cpu" in out
    assert "  1st  #2 second" in out and "  2nd  #3 third" in out
    assert main(["queue", "--move-up", str(third.id)]) == 0
    assert "#3 third is now 1st in line." in capsys.readouterr().out
    assert main(["queue", "--cancel", str(second.id)]) == 0
    assert "Cancelled #2 second" in capsys.readouterr().out
    assert store.get(second.id).status == "stopped" and store.get(third.id).place == 1
    assert main(["runs"]) == 0
    out = capsys.readouterr().out
    assert "queued (1st in line)" in out and "stopped" in out
    assert main(["queue", "--cancel", str(first.id)]) == 1
    assert "only a waiting run can be cancelled" in capsys.readouterr().err


def test_a_foreground_train_while_the_slot_is_busy_is_queued_not_refused(store, capsys):
    busy = jobs.start_run(store, _smoke(), name="busy")
    assert not busy.waiting
    assert main(["train", "--demo", "--name", "later", *TINY]) == 0
    out = capsys.readouterr().out
    assert "is queued, 1st in line" in out and "starts by itself in the background" in out
    (later,) = [r for r in store.list_runs() if r.name == "later"]
    assert later.waiting and later.place == 1


def test_a_foreground_train_with_a_free_slot_trains_here_with_the_cpu_share(store, capsys, monkeypatch):
    import torch

    monkeypatch.setenv("CIFARLAB_CPU_THREADS", "1")
    before = torch.get_num_threads()
    try:
        assert main(["train", "--demo", "--name", "now", "--no-progress", *TINY]) == 0
        assert torch.get_num_threads() == 1  # the run's share, applied in this process
    finally:
        torch.set_num_threads(before)
    (run,) = store.list_runs()
    assert run.status == "completed" and run.devices == "cpu" and run.threads == 1 and run.attempts == 1
    assert "Training complete" in capsys.readouterr().out


def _smoke():
    from core.train.config import TrainConfig

    return TrainConfig.smoke()
