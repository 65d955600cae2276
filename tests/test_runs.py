"""The run store: statuses and their transitions, metrics across processes, liveness, folders."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.train.config import TrainConfig
from core.runs.store import RunNotFoundError, RunStateError, RunStore

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "store")


def _finished_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_store_defaults_to_settings_runs_dir_and_uses_wal(monkeypatch, tmp_path):
    monkeypatch.setenv("CIFARLAB_RUNS_DIR", str(tmp_path / "from-env"))
    store = RunStore()
    assert store.root == (tmp_path / "from-env").resolve()
    assert store.db_path.is_file()
    assert store.journal_mode() == "wal"
    # WAL is a property of the database file: a plain connection sees it too.
    with sqlite3.connect(store.db_path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_new_run_is_queued_with_a_self_describing_folder(store):
    cfg = TrainConfig.smoke(epochs=2, lr=3e-3)
    run = store.create_run(cfg, name="  my   first run ")
    assert run.status == "queued"
    assert run.name == "my first run"
    assert run.config == cfg and run.dataset == "synthetic"
    assert run.dir == store.root / str(run.id) and run.dir.is_dir()
    assert TrainConfig.from_json((run.dir / "config.json").read_text()) == cfg
    info = json.loads((run.dir / "run.json").read_text())
    assert info["status"] == "queued" and info["name"] == "my first run"
    assert store.checkpoint_path(run.id, "last") is None and store.checkpoint_path(run.id, "best") is None
    (run.dir / "best.pt").write_bytes(b"x")
    assert store.checkpoint_path(run.id, "best") == run.dir / "best.pt"
    with pytest.raises(ValueError):
        store.checkpoint_path(run.id, "middle")


def test_run_ids_are_never_reused_after_delete(store):
    first = store.create_run(TrainConfig.smoke())
    store.set_status(first.id, "failed", "boom")
    store.delete(first.id)
    second = store.create_run(TrainConfig.smoke())
    assert second.id > first.id


def test_a_run_goes_through_start_stop_resume_complete(store):
    run = store.create_run(TrainConfig.smoke())
    running = store.mark_running(run.id, pid=os.getpid(), device="cpu (test)")
    assert running.status == "running" and running.pid == os.getpid() and running.attempts == 1
    started = running.started_at
    store.mark_finished(run.id, "stopped", "stopped by test")
    assert store.get(run.id).status == "stopped"
    store.set_status(run.id, "queued", "Resuming…")
    again = store.mark_running(run.id, pid=os.getpid(), device="cpu (test)")
    assert again.attempts == 2 and again.started_at == started  # first start is kept
    done = store.mark_finished(run.id, "completed", "ok", best_test_acc=0.5, final_test_acc=0.45,
                               final_metrics={"test_acc": 0.45, "nan": float("nan")})
    assert (done.status, done.best_test_acc, done.final_test_acc) == ("completed", 0.5, 0.45)
    assert done.final_metrics == {"test_acc": 0.45, "nan": None}
    assert done.finished_at is not None


@pytest.mark.parametrize("final", ["completed", "failed", "diverged"])
def test_a_finished_run_refuses_to_change_status(store, final):
    run = store.create_run(TrainConfig.smoke(), name="done")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.mark_finished(run.id, final, "end")
    for status in ("running", "queued", "stopped", "interrupted", "completed"):
        with pytest.raises(RunStateError, match=rf"run #{run.id} 'done' is {final} and cannot become {status}"):
            store.set_status(run.id, status)
    assert store.get(run.id).status == final


def test_impossible_transitions_are_refused_with_a_clear_message(store):
    run = store.create_run(TrainConfig.smoke(), name="r")
    with pytest.raises(RunStateError, match="is queued and cannot become completed; it can only become"):
        store.set_status(run.id, "completed")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    with pytest.raises(RunStateError, match="is running and cannot become running"):  # no double trainer
        store.mark_running(run.id, pid=os.getpid(), device="cpu")
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(run.id, "paused")
    with pytest.raises(RunNotFoundError, match="no run #999"):
        store.set_status(999, "running")
    with pytest.raises(RunNotFoundError):
        store.get(999)


def test_metrics_upsert_never_duplicates_and_since_id_returns_only_new_rows(store):
    run = store.create_run(TrainConfig.smoke())
    assert store.metrics(run.id).empty
    assert list(store.metrics(run.id).columns) == ["id", "run_id", "step", "epoch", "name", "value", "time"]
    store.log_metrics(run.id, [(1, 1, "train_loss", 2.3), (2, 1, "train_loss", 2.1), (2, 1, "train_acc", 0.2)])
    first = store.metrics(run.id)
    assert len(first) == 3 and first["id"].is_monotonic_increasing
    last_id = int(first["id"].max())
    assert store.metrics(run.id, since_id=last_id).empty
    # A resumed trainer writes step 2 again: replaced, not duplicated, and seen as new.
    store.log_metrics(run.id, [(2, 1, "train_loss", 2.0), (3, 1, "train_loss", 1.9)])
    new = store.metrics(run.id, since_id=last_id)
    assert list(zip(new["step"], new["value"])) == [(2, 2.0), (3, 1.9)]
    everything = store.metrics(run.id)
    assert len(everything) == 4
    assert not everything.duplicated(["name", "step"]).any()
    loss = everything[everything["name"] == "train_loss"].sort_values("step")
    assert loss["value"].tolist() == [2.3, 2.0, 1.9]
    # Non-finite values are stored as missing, not as a crash.
    store.log_metrics(run.id, [(4, 1, "train_loss", float("nan"))])
    newest = store.metrics(run.id).sort_values("id").iloc[-1]
    assert newest["step"] == 4 and newest["value"] != newest["value"]  # NaN


def test_truncate_metrics_drops_rows_after_a_checkpoint_step(store):
    run = store.create_run(TrainConfig.smoke())
    store.log_metrics(run.id, [(s, 1, "train_loss", 1.0 / s) for s in range(1, 11)])
    assert store.truncate_metrics(run.id, after_step=6) == 4
    assert store.metrics(run.id)["step"].tolist() == [1, 2, 3, 4, 5, 6]


def test_running_run_whose_process_is_gone_becomes_interrupted_and_stays_so(store):
    run = store.create_run(TrainConfig.smoke(), name="orphan")
    store.mark_running(run.id, pid=_finished_pid(), device="cpu")
    assert store.get(run.id).status == "running"  # reading alone never writes
    assert [r.id for r in store.reconcile()] == [run.id]
    seen = store.get(run.id)
    assert seen.status == "interrupted"
    assert "is gone" in seen.message and "Resume" in seen.message
    assert store.reconcile() == []  # nothing left to change
    # Persisted: another store on the same folder agrees.
    assert RunStore(store.root).get(run.id).status == "interrupted"
    assert seen.can_resume
    assert json.loads((seen.dir / "run.json").read_text())["status"] == "interrupted"


def test_stale_heartbeat_interrupts_and_a_late_heartbeat_from_the_trainer_revives(tmp_path):
    store = RunStore(tmp_path / "store", stale_after_s=0.3)
    run = store.create_run(TrainConfig.smoke())
    store.mark_running(run.id, pid=os.getpid(), device="cpu")  # this process: alive
    store.reconcile()
    assert store.get(run.id).status == "running"
    time.sleep(0.5)
    store.reconcile()
    assert store.get(run.id).status == "interrupted"
    # The trainer was only asleep (e.g. a suspended laptop): its next heartbeat takes the run back.
    store.heartbeat(run.id, train_seconds=12.5)
    back = store.get(run.id)
    assert back.status == "running" and back.train_seconds == 12.5


def test_queued_run_whose_launcher_died_is_interrupted(store):
    run = store.create_run(TrainConfig.smoke())
    store.set_pid(run.id, _finished_pid())
    store.reconcile()
    assert store.get(run.id).status == "interrupted"


def test_create_run_with_max_active_refuses_while_one_trains(store):
    first = store.create_run(TrainConfig.smoke(), name="busy")
    store.mark_running(first.id, pid=os.getpid(), device="cpu")
    with pytest.raises(RunStateError, match=rf"run #{first.id} 'busy' is still training; stop it first or set "
                                            r"CIFARLAB_MAX_ACTIVE_RUNS"):
        store.create_run(TrainConfig.smoke(), max_active=1)
    assert len(store.list_runs()) == 1
    assert store.create_run(TrainConfig.smoke(), max_active=2).status == "queued"


def test_stop_request_is_a_flag_for_active_runs_only(store):
    run = store.create_run(TrainConfig.smoke(), name="s")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    assert not store.stop_requested(run.id)
    assert store.request_stop(run.id).stop_requested
    assert store.stop_requested(run.id)
    store.mark_finished(run.id, "stopped", "ok")
    assert not store.stop_requested(run.id)  # consumed by the stop
    with pytest.raises(RunStateError, match="only a queued or running run can be stopped"):
        store.request_stop(run.id)


def test_rename_and_delete(store):
    run = store.create_run(TrainConfig.smoke(), name="old")
    assert store.rename(run.id, " new name ").name == "new name"
    with pytest.raises(ValueError, match="must not be empty"):
        store.rename(run.id, "   ")
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    store.log_metrics(run.id, [(1, 1, "train_loss", 1.0)])
    with pytest.raises(RunStateError, match="stop it before deleting it"):
        store.delete(run.id)
    store.mark_finished(run.id, "completed", "ok")
    folder = run.dir
    store.delete(run.id)
    assert not folder.exists()
    assert store.list_runs() == []
    assert store.metrics(run.id).empty
    with pytest.raises(RunNotFoundError):
        store.delete(run.id)


def test_a_run_recorded_on_a_device_this_machine_lacks_stays_readable(store):
    from core.train.device import available_devices

    missing = next((d for d in ("cuda", "mps") if d not in available_devices()), None)
    if missing is None:
        pytest.skip("this machine has every device")
    run = store.create_run(TrainConfig.smoke(), name="from the gpu box")
    recorded = {**TrainConfig.smoke().to_dict(), "device": missing}
    with sqlite3.connect(store.db_path) as conn:
        conn.execute("UPDATE runs SET config = ? WHERE id = ?", (json.dumps(recorded), run.id))
    (seen,) = store.list_runs()
    assert seen.config.device == missing and seen.config.model == "tutorial_mlp"


def test_a_store_survives_its_folder_being_removed(store):
    import shutil

    store.create_run(TrainConfig.smoke())
    shutil.rmtree(store.root)
    assert store.list_runs() == []
    assert store.create_run(TrainConfig.smoke()).id == 1


def test_list_runs_is_newest_first(store):
    ids = [store.create_run(TrainConfig.smoke(), name=f"r{i}").id for i in range(3)]
    assert [r.id for r in store.list_runs()] == ids[::-1]


WRITER = textwrap.dedent("""
    import sys, time
    from core.train.config import TrainConfig
    from core.runs.store import RunStore
    store = RunStore(sys.argv[1])
    run_id = int(sys.argv[2])
    for step in range(1, 41):
        store.log_metrics(run_id, [(step, 1, "train_loss", 1.0 / step), (step, 1, "train_acc", step / 40)])
        store.heartbeat(run_id)
        time.sleep(0.05)
""")


def test_metrics_written_by_another_process_are_read_while_it_runs(store):
    run = store.create_run(TrainConfig.smoke())
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(store.root), str(run.id)], cwd=REPO, env=env)
    try:
        last_id, frames, reads_while_alive = 0, [], 0
        deadline = time.time() + 120
        while time.time() < deadline:
            alive = proc.poll() is None
            new = store.metrics(run.id, since_id=last_id)
            if len(new):
                assert new["id"].min() > last_id
                last_id = int(new["id"].max())
                frames.append(new)
                reads_while_alive += alive
            if not alive:
                break
            time.sleep(0.02)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert reads_while_alive >= 2, "rows should arrive while the writer is still running"
    import pandas as pd
    seen = pd.concat(frames + [store.metrics(run.id, since_id=last_id)])
    assert len(seen) == 80 and not seen["id"].duplicated().any()
    assert sorted(seen[seen["name"] == "train_loss"]["step"]) == list(range(1, 41))


def test_core_store_modules_do_not_import_streamlit():
    code = ("import sys, core.runs.store, core.runs.jobs, core.runs.worker, core.cli; "
            "assert 'streamlit' not in sys.modules, 'core imports streamlit'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True,
                   env=dict(os.environ))
