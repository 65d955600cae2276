"""The queue in the store (claiming, cancel, move up, reconciliation after a restart), device
assignment and the thread split: unit tests without trainer processes."""
from __future__ import annotations

import os
import sqlite3
import threading
import time

import pytest

from core.runs import queue
from core.runs.store import RunStateError, RunStore, ordinal
from core.train.config import TrainConfig


@pytest.fixture
def store(tmp_path):
    return RunStore(tmp_path / "runs")


def cpu(**changes) -> TrainConfig:
    return TrainConfig.smoke(**changes)


def cpu_picker(run, held):
    return queue.pick_device(run, held, gpus=[])


def enqueue(store: RunStore, n: int, **changes) -> list[int]:
    return [store.create_run(cpu(**changes), name=f"r{i}", queue=True).id for i in range(n)]


def test_queued_runs_wait_in_order_with_their_place(store):
    ids = enqueue(store, 3)
    assert [store.get(i).place for i in ids] == [1, 2, 3]
    assert [r.id for r in store.waiting_runs()] == ids
    assert store.get(ids[1]).status_text == "queued (2nd in line)" and store.get(ids[1]).waiting
    assert store.slot_holders() == []


def test_claiming_takes_the_first_in_line_while_slots_are_free(store):
    ids = enqueue(store, 3)
    first = store.claim_next(2, cpu_picker)
    second = store.claim_next(2, cpu_picker)
    assert (first.id, second.id) == (ids[0], ids[1])
    assert first.place is None and first.status == "queued" and first.devices == "cpu" and first.claimed_at
    assert store.claim_next(2, cpu_picker) is None  # both slots held
    assert store.get(ids[2]).place == 1  # moved up as the others left the line
    store.mark_running(ids[0], pid=os.getpid(), device="cpu")
    store.mark_finished(ids[0], "completed", "ok")
    assert store.claim_next(2, cpu_picker).id == ids[2]


def test_claim_only_takes_the_named_run_when_it_is_first(store):
    a, b = enqueue(store, 2)
    assert store.claim_next(5, cpu_picker, only=b) is None
    assert store.claim_next(5, cpu_picker, only=a).id == a


def test_two_launchers_at_once_never_claim_the_same_run_or_overfill(store):
    """Eight threads (each its own connection, like processes) claim at once with 3 slots."""
    enqueue(store, 6)
    claimed, barrier = [], threading.Barrier(8)

    def claim():
        other = RunStore(store.root)
        barrier.wait()
        while True:
            run = other.claim_next(3, cpu_picker)
            if run is None:
                return
            claimed.append(run.id)

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(claimed) == 3 and len(set(claimed)) == 3
    assert len(store.slot_holders()) == 3 and len(store.waiting_runs()) == 3


def test_cancel_and_move_up(store):
    a, b, c = enqueue(store, 3)
    moved = store.move_up(c)
    assert moved.place == 2 and store.get(b).place == 3
    assert store.move_up(c, to_front=True).place == 1
    assert [r.id for r in store.waiting_runs()] == [c, a, b]
    assert store.move_up(c).place == 1  # first stays first
    cancelled = store.cancel(a)
    assert cancelled.status == "stopped" and cancelled.place is None and cancelled.can_resume
    assert "Cancelled" in cancelled.message
    assert [r.place for r in store.waiting_runs()] == [1, 2]
    with pytest.raises(RunStateError, match="only a waiting run can be cancelled"):
        store.cancel(a)
    with pytest.raises(RunStateError, match="only a waiting run can be moved up"):
        store.move_up(a)
    requeued = store.requeue(a, queue=True)  # Resume puts it back at the end of the line
    assert requeued.waiting and requeued.place == 3


def test_a_waiting_run_is_never_reconciled_as_interrupted(store, monkeypatch):
    ids = enqueue(store, 2)
    monkeypatch.setattr("core.runs.store.QUEUED_GRACE_S", 0.0)
    store.reconcile(start_queued=False)
    assert all(store.get(i).waiting for i in ids)


def test_a_claimed_run_whose_launcher_died_is_interrupted_and_frees_its_slot(store, monkeypatch):
    a, b = enqueue(store, 2)
    claimed = store.claim_next(1, cpu_picker)
    assert claimed.id == a and store.claim_next(1, cpu_picker) is None
    monkeypatch.setattr("core.runs.store.QUEUED_GRACE_S", 0.0)
    time.sleep(0.01)
    store.reconcile(start_queued=False)
    assert store.get(a).status == "interrupted"
    assert store.claim_next(1, cpu_picker).id == b


def test_reconcile_starts_the_line_after_a_restart(store, monkeypatch):
    """A dashboard that restarts (a new RunStore on the same folder) moves a line left waiting."""
    from core.runs import jobs

    ids = enqueue(store, 2)
    started = []
    monkeypatch.setattr(jobs, "_launch", lambda s, run, *, resume: started.append(run.id) or os.getpid())
    monkeypatch.setenv("CIFARLAB_MAX_ACTIVE_RUNS", "1")
    RunStore(store.root).reconcile()
    assert started == [ids[0]]
    run = store.get(ids[0])
    assert run.pid == os.getpid() and not run.waiting and run.devices == "cpu"
    assert store.get(ids[1]).place == 1
    RunStore(store.root).reconcile()  # nothing more while the slot is held
    assert started == [ids[0]]


def test_an_older_store_gets_the_queue_columns(tmp_path):
    root = tmp_path / "old"
    root.mkdir()
    conn = sqlite3.connect(root / "runs.sqlite")
    conn.executescript("""CREATE TABLE runs (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL,
        config TEXT NOT NULL, preset TEXT, status TEXT NOT NULL, dataset TEXT NOT NULL, device TEXT, pid INTEGER,
        created_at REAL NOT NULL, started_at REAL, finished_at REAL, heartbeat_at REAL, message TEXT,
        best_test_acc REAL, final_test_acc REAL, final_metrics TEXT, stop_requested INTEGER NOT NULL DEFAULT 0,
        train_seconds REAL NOT NULL DEFAULT 0, attempts INTEGER NOT NULL DEFAULT 0, steps_per_epoch INTEGER,
        total_steps INTEGER);""")
    conn.execute("INSERT INTO runs (name, config, status, dataset, created_at) VALUES ('old', ?, 'completed', "
                 "'synthetic', 1.0)", (cpu().to_json(),))
    conn.commit()
    conn.close()
    store = RunStore(root)
    old = store.get(1)
    assert old.status == "completed" and old.place is None and old.devices is None
    assert store.create_run(cpu(), queue=True).place == 1


# ---- devices ----------------------------------------------------------------------------------

def test_each_gpu_run_gets_a_gpu_of_its_own_and_waits_when_all_are_taken(store):
    gpus = ["0", "1"]
    ids = enqueue(store, 3, device="cuda")

    def pick(run, held):
        return queue.pick_device(run, held, gpus=gpus)

    a, b = store.claim_next(5, pick), store.claim_next(5, pick)
    assert {a.devices, b.devices} == {"cuda:0", "cuda:1"}
    assert store.claim_next(5, pick) is None and store.get(ids[2]).place == 1  # no free GPU: it waits
    store.mark_running(a.id, pid=os.getpid(), device="cuda (NVIDIA H200)")
    store.mark_finished(a.id, "completed", "ok")
    c = store.claim_next(5, pick)
    assert c.id == ids[2] and c.devices == a.devices


def test_pick_device_rules():
    run = type("R", (), {"config": cpu(device="auto")})()
    assert queue.pick_device(run, [], gpus=[]) == "cpu"
    assert queue.pick_device(run, ["cuda:0"], gpus=["0", "1"]) == "cuda:1"
    assert queue.pick_device(run, ["cuda:0,1"], gpus=["0", "1"]) is None  # a 2-GPU run holds both
    assert queue.pick_device(type("R", (), {"config": cpu(device="cpu")})(), ["cpu", "cpu"], gpus=["0"]) == "cpu"
    # a GPU asked for on a machine without one: given anyway, so its trainer fails it with the device's message
    assert queue.pick_device(type("R", (), {"config": cpu(device="cuda")})(), [], gpus=[]) == "cuda"
    assert queue.cuda_visible("cuda:3") == "3" and queue.cuda_visible("cpu") is None


def test_gpu_list_passed_on_by_a_launcher(monkeypatch):
    monkeypatch.setenv(queue.GPUS_ENV, "2,5")
    assert queue.gpu_ids() == ["2", "5"]
    monkeypatch.setenv(queue.GPUS_ENV, "")
    assert queue.gpu_ids() == []


def test_a_trainer_gets_its_gpu_alone_or_its_thread_share(store, monkeypatch):
    from core.runs import jobs

    monkeypatch.setenv(queue.GPUS_ENV, "0,1")
    store.create_run(cpu(device="cuda"), queue=True)
    run = store.claim_next(2, lambda r, held: queue.pick_device(r, held, gpus=["0", "1"]))
    env = jobs.trainer_env(run)
    assert env["CUDA_VISIBLE_DEVICES"] == "0" and env[queue.GPUS_ENV] == "0,1"
    store.create_run(cpu(), queue=True)
    run = store.claim_next(2, cpu_picker)
    store.set_threads({run.id: 3})
    env = jobs.trainer_env(store.get(run.id))
    assert env["OMP_NUM_THREADS"] == "3" and env.get("CUDA_VISIBLE_DEVICES") == os.environ.get("CUDA_VISIBLE_DEVICES")
    assert env[queue.NICE_ENV] == str(queue.TRAINER_NICE)


# ---- threads ----------------------------------------------------------------------------------

@pytest.mark.parametrize("cores, runs, shares", [
    (2, 1, [2]), (2, 2, [1, 1]), (2, 3, [1, 1, 1]),
    (8, 1, [8]), (8, 2, [4, 3]), (8, 3, [3, 2, 2]), (4, 2, [2, 1]), (16, 4, [4, 4, 4, 3]),
    (1, 2, [1, 1]), (3, 2, [2, 1]), (2, 0, []),
])
def test_thread_shares(cores, runs, shares):
    assert queue.thread_shares(cores, runs) == shares
    if runs > 1 and cores >= 4:
        assert sum(shares) == cores - 1  # one core left to the dashboard
    elif runs:
        assert sum(shares) >= min(cores, runs)


def test_rebalance_splits_the_cpu_between_the_cpu_runs_holding_a_slot(store, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CPU_THREADS", "2")
    a, b, c = enqueue(store, 3)
    store.claim_next(3, cpu_picker)
    assert queue.rebalance_threads(store) == {a: 2}
    store.claim_next(3, cpu_picker)
    assert queue.rebalance_threads(store) == {a: 1, b: 1}
    assert (store.threads(a), store.threads(b), store.threads(c)) == (1, 1, None)  # c still waits
    store.mark_running(a, pid=os.getpid(), device="cpu")
    store.mark_finished(a, "completed", "ok")
    assert queue.rebalance_threads(store) == {b: 2}
    monkeypatch.setenv("CIFARLAB_SPLIT_THREADS", "0")
    store.claim_next(3, cpu_picker)
    assert queue.rebalance_threads(store) == {b: 2, c: 2}  # the old behaviour, for comparison


def test_a_trainer_follows_its_share(store, monkeypatch):
    import torch

    monkeypatch.delenv(queue.NICE_ENV, raising=False)
    before = torch.get_num_threads()
    run_id = enqueue(store, 1)[0]
    share = queue.ThreadShare(store, run_id)
    try:
        assert share.poll() is None and torch.get_num_threads() == before  # no share stored: unchanged
        store.set_threads({run_id: 1})
        assert share.poll() == 1 and torch.get_num_threads() == 1
        store.set_threads({run_id: 2})
        assert share.poll() == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_ordinals():
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
