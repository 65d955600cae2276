"""Sweeps: settings parsed and checked as the config checks them, one queued run per combination,
the summary (mean ± std over seeds), and a real 4-run sweep through the queue with 2 slots."""
from __future__ import annotations

import os
import signal
import statistics
import time

import pytest

from core.runs import jobs
from core.runs.store import RunStore
from core.runs.sweep import MAX_RUNS, parse_axis, plan_sweep, start_sweep, summarize, summary_table
from core.train.config import ConfigError

TINY = dict(dataset="synthetic", epochs=1, train_subset=512, test_subset=256, batch_size=64, device="cpu",
            log_every=2)


@pytest.fixture
def store(tmp_path):
    store = RunStore(tmp_path / "runs")
    yield store
    for run in store.list_runs():
        jobs.kill_trainer(run, signal.SIGKILL)


@pytest.mark.parametrize("text, expected", [
    ("seed=0,1,2", ("seed", (0, 1, 2))),
    ("lr=1e-3, 2e-3", ("lr", (0.001, 0.002))),
    ("--batch-size=32,64", ("batch_size", (32, 64))),
    ("augment=on,off", ("augment", (True, False))),
    ("train_subset=all,1000", ("train_subset", (None, 1000))),
    ("optimizer=sgd,adamw", ("optimizer", ("sgd", "adamw"))),
])
def test_a_sweep_setting_is_parsed_as_its_field_says(text, expected):
    assert parse_axis(text) == expected


@pytest.mark.parametrize("text, field, message", [
    ("lr=1e-3,-1", "lr", "must be > 0, got -1"),
    ("seed=a", "seed", "must be a whole number, got 'a'"),
    ("optimizer=adam,rmsprop", "optimizer", "must be one of adam, adamw, sgd, got 'rmsprop'"),
    ("warmup=0.5,1", "warmup", "must be in [0, 1), got 1"),
    ("colour=red", "colour", "is not a setting; settings a sweep can vary:"),
    ("dataset=cifar10", "dataset", "cannot be swept"),
    ("seed", "seed", "write a sweep setting as NAME=V1,V2"),
    ("seed=1,1", "seed", "lists a value twice"),
    ("augment=maybe", "augment", "must be true or false"),
])
def test_a_bad_sweep_setting_names_the_field_with_its_own_message(text, field, message):
    with pytest.raises(ConfigError) as err:
        parse_axis(text)
    assert err.value.field == field and message in err.value.message


def test_combinations_are_checked_before_anything_is_stored(store):
    plan = plan_sweep("fast_mlp", [parse_axis("seed=0,1"), parse_axis("lr=1e-3,2e-3")], **TINY)
    assert [name for name, _ in plan] == ["fast_mlp seed=0 lr=0.001", "fast_mlp seed=0 lr=0.002",
                                          "fast_mlp seed=1 lr=0.001", "fast_mlp seed=1 lr=0.002"]
    assert {(c.seed, c.lr, c.preset, c.epochs) for _, c in plan} == {(s, lr, "fast_mlp", 1) for s in (0, 1)
                                                                     for lr in (1e-3, 2e-3)}
    with pytest.raises(ConfigError) as err:  # a rule across settings: batch larger than the subset
        start_sweep(store, "fast_mlp", [parse_axis("batch_size=64,1024")], **TINY)
    assert err.value.field == "batch_size" and "at most the number of training images" in err.value.message
    assert store.list_runs() == [] and store.sweeps() == []
    with pytest.raises(ConfigError, match="give one or two settings"):
        plan_sweep("fast_mlp", [parse_axis("seed=0,1"), parse_axis("lr=1e-3"), parse_axis("epochs=1")])
    with pytest.raises(ConfigError, match="is given twice"):
        plan_sweep("fast_mlp", [parse_axis("seed=0,1"), parse_axis("seed=2")])
    with pytest.raises(ConfigError, match=f"at most {MAX_RUNS}"):
        plan_sweep("fast_mlp", [parse_axis("seed=" + ",".join(map(str, range(9)))),
                                parse_axis("epochs=" + ",".join(map(str, range(1, 9))))])
    with pytest.raises(ConfigError, match="unknown preset"):
        plan_sweep("nope", [parse_axis("seed=0")])


def _finish(store, run, final, best):
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.mark_finished(run.id, "completed", "ok", best_test_acc=best, final_test_acc=final)


def test_the_summary_groups_seeds_under_each_setting(store, monkeypatch):
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())  # nothing trains here
    sweep, runs = start_sweep(store, "fast_mlp", [parse_axis("seed=0,1,2"), parse_axis("lr=1e-3,2e-3")],
                              name="noise vs effect", val_images=50, **TINY)
    assert sweep.label == "sweep #1 noise vs effect" and len(runs) == 6
    assert all(r.sweep_id == sweep.id for r in runs)
    acc = {(0, 1e-3): (0.50, 0.52), (1, 1e-3): (0.54, 0.55), (2, 1e-3): (0.52, 0.53),
           (0, 2e-3): (0.60, 0.61), (1, 2e-3): (0.58, 0.60)}  # seed 2 at lr 2e-3 did not complete
    for run in runs:
        key = (run.config.seed, run.config.lr)
        if key in acc:
            _finish(store, store.get(run.id), *acc[key])
    summary = summarize(store, sweep.id)
    assert summary.group_by == ("lr",)
    low, high = summary.rows
    assert (low.label, high.label) == ("lr=0.001", "lr=0.002")
    assert low.final.n == 3 and low.final.mean == pytest.approx(0.52)
    assert low.final.std == pytest.approx(statistics.stdev([0.50, 0.54, 0.52]))
    assert low.best.mean == pytest.approx(statistics.fmean([0.52, 0.55, 0.53]))
    assert high.final.n == 2 and high.completed == 2 and len(high.runs) == 3
    assert high.is_best and not low.is_best and summary.best is high
    assert high.chosen_by == "validation"
    table = summary_table(summary)
    assert table[1]["final test acc (%)"] == f"{100 * 0.59:.2f} ± {100 * statistics.stdev([0.60, 0.58]):.2f}"
    assert table[1]["best setting"] == "★" and table[0]["best setting"] == ""
    assert table[1]["completed"] == "2/3" and table[1]["seeds"] == "0, 1, 2"


def test_a_seed_only_sweep_has_one_row_and_a_deleted_run_leaves_the_rest(store, monkeypatch):
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: os.getpid())
    sweep, runs = start_sweep(store, "fast_mlp", [parse_axis("seed=0,1")], **TINY)
    for run, acc in zip(runs, (0.4, 0.6)):
        _finish(store, store.get(run.id), acc, acc)
    (row,) = summarize(store, sweep.id).rows
    assert row.label == "all runs" and row.final.mean == pytest.approx(0.5) and not row.is_best
    # no validation split: no "best" (a best stored by an older version, chosen by test accuracy, is not shown)
    assert row.chosen_by == "no validation split" and row.best.n == 0 and row.best.text() == "–"
    store.delete(runs[0].id)
    (row,) = summarize(store, sweep.id).rows
    assert row.final.n == 1 and row.final.std is None and row.final.text() == "60.00"
    store.delete(runs[1].id)
    assert store.sweeps() == []  # the sweep goes with its last run


def test_a_four_run_sweep_completes_through_the_queue_two_at_a_time(store, monkeypatch):
    """Real trainer processes: 4 runs, CIFARLAB_MAX_ACTIVE_RUNS=2. The finishing trainers start the
    next ones (nobody calls start_queued or reconcile here). The summary's numbers are the runs' own."""
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "2")
    monkeypatch.setenv("CIFARLAB_CPU_THREADS", "2")
    sweep, runs = start_sweep(store, "fast_mlp", [parse_axis("seed=0,1"), parse_axis("lr=1e-3,2e-3")],
                              val_images=64, **TINY)
    assert [r.waiting for r in runs] == [False, False, True, True]
    assert [r.place for r in runs[2:]] == [1, 2]
    assert {store.get(r.id).threads for r in runs[:2]} == {1}  # two CPU runs: a core each
    most_active, deadline = 0, time.time() + 400
    while time.time() < deadline:
        now = [store.get(r.id) for r in runs]
        most_active = max(most_active, sum(r.status == "running" or (r.status == "queued" and not r.waiting)
                                           for r in now))
        if all(r.status in ("completed", "failed", "stopped", "diverged", "interrupted") for r in now):
            break
        time.sleep(0.2)
    done = [store.get(r.id) for r in runs]
    assert [r.status for r in done] == ["completed"] * 4, [r.message for r in done]
    assert most_active <= 2
    spans = sorted((r.started_at, r.finished_at) for r in done)
    for t, _ in spans:  # never more than two training at any moment
        assert sum(s <= t < f for s, f in spans) <= 2
    assert all(r.devices == "cpu" for r in done)

    summary = summarize(store, sweep.id)
    assert [row.label for row in summary.rows] == ["lr=0.001", "lr=0.002"]
    for row in summary.rows:
        mine = [r for r in done if r.config.lr == row.setting["lr"]]
        assert sorted(r.id for r in row.runs) == sorted(r.id for r in mine)
        finals = [r.final_test_acc for r in mine]
        bests = [r.best_test_acc for r in mine]
        assert None not in bests and row.chosen_by == "validation"
        assert row.final.mean == pytest.approx(statistics.fmean(finals), abs=1e-12)
        assert row.final.std == pytest.approx(statistics.stdev(finals), abs=1e-12)
        assert row.best.mean == pytest.approx(statistics.fmean(bests), abs=1e-12)
        for r in mine:  # the run's own final accuracy is its last epoch's test accuracy row
            frame = store.metrics(r.id)
            last = frame[frame["name"] == "epoch_test_acc"].sort_values("step")["value"].iloc[-1]
            assert r.final_test_acc == pytest.approx(last)
    top = max(summary.rows, key=lambda row: row.final.mean)
    assert summary.best is top
