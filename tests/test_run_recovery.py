"""A run survives its environment: a full disk, a folder it may not write, a damaged checkpoint.

Each test trains a stored run in this process (core.runs.worker.run_stored on a RunStore in
tmp_path), breaks something the way the machine would, and checks that the run stays resumable,
says what happened and what to do, and that Resume then finishes it with the right step counts.

The tests run as root in CI, and root ignores permission bits, so a folder that may not be
written is simulated by making the creation of files in it raise PermissionError (EACCES), and a
full disk by making writes to checkpoint files raise OSError(ENOSPC): the real disk stays empty.
"""
from __future__ import annotations

import errno
import os
import re
import tempfile
from pathlib import Path

import pytest

from core.runs.store import RunStore
from core.runs.worker import run_stored
from core.train.checkpoints import CheckpointError, load_checkpoint
from core.train.config import TrainConfig
from run_checks import STEPS_PER_EPOCH, assert_complete_history

TEMPORARY = re.compile(r"^\..+\.pt\..*\.tmp$")  # .last.pt.<random>.tmp, .best.pt.<random>.tmp, ...


def tiny(epochs: int = 3, **changes) -> TrainConfig:
    return TrainConfig.smoke(epochs=epochs, log_every=1, **changes)


@pytest.fixture
def store(tmp_path) -> RunStore:
    return RunStore(tmp_path / "runs")


def _fd_path(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


class BrokenDisk:
    """While `on`, writing or syncing a temporary checkpoint file fails with `errno` (ENOSPC:
    the disk is full). Everything else (the database, logs) writes as usual."""

    def __init__(self, monkeypatch, code: int = errno.ENOSPC):
        if not Path("/proc/self/fd").is_dir():
            pytest.skip("needs /proc/self/fd to tell checkpoint files from other files")
        self.on, self.code, self.hits = False, code, 0
        real_write, real_fsync = os.write, os.fsync

        def failing(fd: int) -> bool:
            if self.on and TEMPORARY.match(os.path.basename(_fd_path(fd))):
                self.hits += 1
                return True
            return False

        def write(fd, data):
            if failing(fd):
                raise OSError(self.code, os.strerror(self.code))
            return real_write(fd, data)

        def fsync(fd):
            if failing(fd if isinstance(fd, int) else fd.fileno()):
                raise OSError(self.code, os.strerror(self.code))
            return real_fsync(fd)

        monkeypatch.setattr(os, "write", write)
        monkeypatch.setattr(os, "fsync", fsync)


class LockedFolder:
    """While `on`, creating a file in `folder` raises PermissionError (EACCES), as for a folder
    without write permission (simulated: the tests run as root, which ignores permission bits)."""

    def __init__(self, monkeypatch, folder: Path):
        self.on, self.folder = False, Path(folder).resolve()
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if self.on and dir is not None and Path(dir).resolve() == self.folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkstemp", mkstemp)


def at_epoch(n: int, action):
    """An on_epoch listener that calls `action()` when epoch `n` ends (before its checkpoints)."""
    def listener(epoch, step, metrics):
        if epoch == n:
            action()
    return listener


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if TEMPORARY.match(p.name))


# ---- a full disk ------------------------------------------------------------------------------

def test_a_full_disk_at_a_checkpoint_leaves_the_run_resumable_with_the_cause_and_the_fix(store, monkeypatch):
    disk = BrokenDisk(monkeypatch, errno.ENOSPC)
    run = store.create_run(tiny(3), name="full disk")
    with pytest.raises(CheckpointError):
        run_stored(store, run.id, on_epoch=at_epoch(2, lambda: setattr(disk, "on", True)))
    assert disk.hits
    seen = store.get(run.id)
    assert seen.status == "interrupted", seen.message
    assert seen.can_resume
    assert "disk" in seen.message and "is full" in seen.message and str(run.dir) in seen.message
    assert "free some space" in seen.message.lower() and "Resume" in seen.message
    assert "epoch 1" in seen.message                       # where Resume will continue from
    assert "Traceback" not in seen.message and "inline_container" not in seen.message
    assert load_checkpoint(run.dir / "last.pt")["step"] == STEPS_PER_EPOCH   # epoch 1's, intact
    assert temporaries(run.dir) == []

    disk.on = False                                        # space was freed
    result = run_stored(store, run.id, resume=True)
    assert result.status == "completed" and result.step == 3 * STEPS_PER_EPOCH
    done = store.get(run.id)
    assert done.status == "completed" and done.attempts == 2
    assert done.final_metrics["step"] == 3 * STEPS_PER_EPOCH == done.total_steps
    assert_complete_history(store, run.id, epochs=3)


def test_a_full_disk_before_any_checkpoint_says_resume_starts_over(store, monkeypatch):
    disk = BrokenDisk(monkeypatch, errno.EDQUOT)        # a disk quota: the same story as a full disk
    run = store.create_run(tiny(2), name="quota")
    with pytest.raises(CheckpointError):
        run_stored(store, run.id, on_epoch=at_epoch(1, lambda: setattr(disk, "on", True)))
    seen = store.get(run.id)
    assert seen.status == "interrupted" and "is full" in seen.message, seen.message
    assert "from the beginning" in seen.message            # nothing was saved yet
    assert list(run.dir.glob("*.pt")) == [] and temporaries(run.dir) == []
    disk.on = False
    result = run_stored(store, run.id, resume=True)
    assert result.status == "completed" and result.step == 2 * STEPS_PER_EPOCH
    assert_complete_history(store, run.id, epochs=2)


# ---- a folder that may not be written ---------------------------------------------------------

def test_a_run_folder_that_is_not_writable_leaves_the_run_resumable(store, monkeypatch):
    run = store.create_run(tiny(3), name="read-only")
    locked = LockedFolder(monkeypatch, run.dir)
    with pytest.raises(CheckpointError):
        run_stored(store, run.id, on_epoch=at_epoch(2, lambda: setattr(locked, "on", True)))
    seen = store.get(run.id)
    assert seen.status == "interrupted", seen.message
    assert "not writable" in seen.message and str(run.dir) in seen.message
    assert "permission" in seen.message.lower() and "Resume" in seen.message and "epoch 1" in seen.message
    assert "Traceback" not in seen.message

    locked.on = False                                      # permissions fixed
    result = run_stored(store, run.id, resume=True)
    assert result.status == "completed" and result.step == 3 * STEPS_PER_EPOCH
    assert_complete_history(store, run.id, epochs=3)


# ---- a damaged checkpoint ---------------------------------------------------------------------

def _interrupted_after_epoch_2(store: RunStore, **changes):
    """A run killed early in epoch 3 (a KeyboardInterrupt from its step callback): its newest
    checkpoints are epoch 2's."""
    run = store.create_run(tiny(3, **changes), name="damaged")
    from core.runs import worker

    real_on_step = worker._Callbacks.on_step

    def on_step(self, step, epoch, metrics):
        real_on_step(self, step, epoch, metrics)
        if step == 2 * STEPS_PER_EPOCH + 1:
            raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(worker._Callbacks, "on_step", on_step)
        with pytest.raises(KeyboardInterrupt):
            run_stored(store, run.id)
    seen = store.get(run.id)
    assert seen.status == "interrupted"
    assert load_checkpoint(run.dir / "last.pt")["step"] == 2 * STEPS_PER_EPOCH
    return seen


def test_a_damaged_last_checkpoint_falls_back_to_an_older_one_and_completes(store):
    before = _interrupted_after_epoch_2(store, device="auto")
    assert before.device != "auto"
    last = before.dir / "last.pt"
    last.write_bytes(b"\x00garbage, not a checkpoint" * 100)   # in place: any hard link shares it

    result = run_stored(store, before.id, resume=True)
    assert result.status == "completed" and result.step == 3 * STEPS_PER_EPOCH
    done = store.get(before.id)
    assert done.status == "completed"
    assert done.device == before.device and done.device != "auto"
    assert "last.pt could not be read" in done.message and "resumed from" in done.message
    assert re.search(r"resumed from (previous|best)\.pt at epoch [12]", done.message), done.message
    assert_complete_history(store, before.id, epochs=3)
    assert load_checkpoint(last)["step"] == 3 * STEPS_PER_EPOCH      # rewritten whole


def test_when_no_checkpoint_loads_resume_leaves_the_run_as_it_was_and_says_what_to_do(store):
    before = _interrupted_after_epoch_2(store, device="auto")
    names = sorted(p.name for p in before.dir.glob("*.pt"))
    assert "last.pt" in names
    for name in names:
        (before.dir / name).write_bytes(b"torn")

    with pytest.raises(CheckpointError) as err:
        run_stored(store, before.id, resume=True)
    after = store.get(before.id)
    assert after.status == "interrupted" and after.can_resume       # not failed: nothing is final
    assert (after.device, after.started_at, after.attempts, after.pid) == (
        before.device, before.started_at, before.attempts, before.pid)
    assert after.train_seconds == before.train_seconds and after.best_test_acc == before.best_test_acc
    for name in names:
        assert name in after.message
    assert "new run" in after.message and "delete" in after.message
    assert str(err.value) in after.message or after.message in str(err.value)
    assert store.metrics(before.id)["step"].max() >= 2 * STEPS_PER_EPOCH   # history kept


def test_a_requeued_run_whose_checkpoints_are_all_damaged_goes_back_to_interrupted(store):
    before = _interrupted_after_epoch_2(store)
    for path in before.dir.glob("*.pt"):
        path.write_bytes(b"torn")
    store.requeue(before.id)              # what the Resume button does before it starts the trainer
    with pytest.raises(CheckpointError):
        run_stored(store, before.id, resume=True)
    after = store.get(before.id)
    assert after.status == "interrupted" and after.attempts == before.attempts
    assert "could not be read" in after.message


def test_best_and_last_checkpoints_are_separate_files(store):
    run = store.create_run(tiny(1, val_images=64), name="one epoch")   # a validation split: best.pt exists
    run_stored(store, run.id)
    last, best = run.dir / "last.pt", run.dir / "best.pt"
    assert last.stat().st_ino != best.stat().st_ino and last.stat().st_nlink == 1 == best.stat().st_nlink
    last.write_bytes(b"damaged in place")
    assert load_checkpoint(best)["epoch"] == 1


# ---- leftovers of killed writes ---------------------------------------------------------------

def test_temporary_checkpoint_files_left_by_kills_are_removed_on_resume(store):
    before = _interrupted_after_epoch_2(store)
    left = [before.dir / f".last.pt.k{i}ll3d.tmp" for i in range(3)] + [before.dir / ".best.pt.x1y2z3.tmp"]
    for path in left:
        path.write_bytes(os.urandom(1024))
    keep = before.dir / "notes.tmp"                 # not ours: left alone
    keep.write_text("mine")
    run_stored(store, before.id, resume=True)
    assert temporaries(before.dir) == [] and keep.read_text() == "mine"


def test_temporary_checkpoint_files_are_removed_when_a_run_starts(store):
    run = store.create_run(tiny(1), name="fresh")
    (run.dir / ".last.pt.abcdef.tmp").write_bytes(b"x" * 2048)
    run_stored(store, run.id)
    assert temporaries(run.dir) == []


def test_which_errors_count_as_the_machines_doing(tmp_path):
    from core.runs.worker import environment_problem

    run_dir = tmp_path / "runs" / "3"
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "data" / "cache.npy"))
    assert "the disk holding" in environment_problem(full, run_dir) and "Resume" in environment_problem(full, run_dir)
    ours = PermissionError(errno.EACCES, "Permission denied", str(run_dir / "train.log"))
    assert f"the folder {run_dir} is not writable" in environment_problem(ours, run_dir)
    # A file this user may not read elsewhere (e.g. the data) is not a folder to make writable.
    assert environment_problem(PermissionError(errno.EACCES, "Permission denied", "/data/batch_1"), run_dir) is None
    assert environment_problem(OSError(errno.EIO, "Input/output error"), run_dir) is None
    assert environment_problem(ValueError("a bug"), run_dir) is None


def test_an_environment_error_elsewhere_in_training_also_leaves_the_run_resumable(store, monkeypatch):
    from core.runs import worker
    from core.train import engine

    run = store.create_run(tiny(1), name="no room for the folder")

    def fit(cfg, dataset, run_dir, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_dir / "somefile"))

    monkeypatch.setattr(engine, "fit", fit)
    with pytest.raises(worker.EnvironmentProblem, match="is full"):
        run_stored(store, run.id)
    seen = store.get(run.id)
    assert seen.status == "interrupted" and "Free some space" in seen.message and "Resume" in seen.message
