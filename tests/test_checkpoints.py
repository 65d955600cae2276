"""Checkpoints and atomic files: a crash mid-write never leaves a torn file; a full disk, a folder
that cannot be written and a damaged file each give a clear error, and resume finds a good file."""
from __future__ import annotations

import errno
import os
import tempfile

import pytest
import torch

from core.atomic_file import atomic_write
from core.train.checkpoints import (CheckpointError, CheckpointWriteError, NoUsableCheckpointError, checkpoint_key,
                                    find_resume_point, load_checkpoint, remove_temporary_checkpoints, save_checkpoint)


def _payload(value: float) -> dict:
    return {"model": "tutorial_mlp", "model_state": {"w": torch.full((2, 2), value)}, "epoch": 1, "step": 7,
            "config": {"lr": 0.1}, "rng": {"cpu": torch.get_rng_state()}}


def test_checkpoint_round_trips_with_weights_only_loading(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _payload(3.0))
    loaded = load_checkpoint(path)
    assert torch.equal(loaded["model_state"]["w"], torch.full((2, 2), 3.0))
    assert loaded["step"] == 7 and loaded["format"] == 1 and isinstance(loaded["torch_version"], str)


def test_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", _payload(1.0))
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_write(path) as fh:
            fh.write(b"half a checkpoint")
            raise RuntimeError("killed mid-write")
    assert torch.equal(load_checkpoint(path)["model_state"]["w"], torch.full((2, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_torn_or_foreign_files_give_a_clear_error_naming_the_file(tmp_path):
    torn = tmp_path / "torn.pt"
    save_checkpoint(torn, _payload(1.0))
    torn.write_bytes(torn.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="torn.pt"):
        load_checkpoint(torn)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="not a CIFAR Lab checkpoint"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="No checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_checkpoint_key_changes_when_the_file_is_replaced(tmp_path):
    path = save_checkpoint(tmp_path / "best.pt", _payload(1.0))
    before = checkpoint_key(path)
    assert checkpoint_key(path) == before
    save_checkpoint(path, _payload(2.0))
    assert checkpoint_key(path) != before


# ---- what the machine can do to a checkpoint: full disk, no permission, damage, kills ----------

def _fail_writes(monkeypatch, code: int) -> None:
    """Every write and fsync fails with `code` (use inside monkeypatch.context(): one save only)."""
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    monkeypatch.setattr(os, "write", fail)
    monkeypatch.setattr(os, "fsync", fail)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_gives_a_write_error_naming_the_cause_and_keeps_the_old_file(tmp_path, code):
    path = save_checkpoint(tmp_path / "last.pt", _payload(1.0))
    with pytest.MonkeyPatch.context() as mp:
        _fail_writes(mp, code)
        with pytest.raises(CheckpointWriteError) as err:
            save_checkpoint(path, _payload(2.0))
    assert isinstance(err.value, CheckpointError) and err.value.errno == code
    message = str(err.value)
    assert f"the disk holding {tmp_path} is full" in message and "Free some space" in message
    assert "inline_container" not in message and "\n" not in message
    assert torch.equal(load_checkpoint(path)["model_state"]["w"], torch.full((2, 2), 1.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("code,words", [(errno.EACCES, "is not writable"), (errno.EPERM, "is not writable"),
                                        (errno.EROFS, "is read-only")])
def test_a_folder_that_cannot_be_written_gives_a_write_error_naming_the_folder(tmp_path, monkeypatch, code, words):
    # Simulated (the tests run as root, which ignores permission bits): creating the file fails.
    def mkstemp(*args, **kwargs):
        raise OSError(code, os.strerror(code), str(kwargs.get("dir")))
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    with pytest.raises(CheckpointWriteError) as err:
        save_checkpoint(tmp_path / "last.pt", _payload(1.0))
    assert f"{tmp_path} {words}" in str(err.value) and err.value.errno == code
    assert list(tmp_path.iterdir()) == []


def test_the_replaced_checkpoint_is_kept_as_previous_in_a_file_of_its_own(tmp_path):
    last, previous = tmp_path / "last.pt", tmp_path / "previous.pt"
    save_checkpoint(last, _payload(1.0), previous=previous)
    assert not previous.exists()                              # nothing to keep yet
    save_checkpoint(last, _payload(2.0), previous=previous)
    assert load_checkpoint(previous)["model_state"]["w"][0, 0] == 1.0
    assert load_checkpoint(last)["model_state"]["w"][0, 0] == 2.0
    assert last.stat().st_ino != previous.stat().st_ino and last.stat().st_nlink == 1 == previous.stat().st_nlink
    with pytest.MonkeyPatch.context() as mp:                  # a failed save changes neither
        _fail_writes(mp, errno.ENOSPC)
        with pytest.raises(CheckpointWriteError):
            save_checkpoint(last, _payload(3.0), previous=previous)
    assert load_checkpoint(previous)["model_state"]["w"][0, 0] == 1.0
    assert load_checkpoint(last)["model_state"]["w"][0, 0] == 2.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", "previous.pt"]


def _at_step(value: float, step: int) -> dict:
    """A checkpoint with what resuming needs (the engine's optimiser, schedule and RNG state)."""
    return {**_payload(value), "step": step, "epoch": step // 4, "step_in_epoch": 0,
            "optimizer_state": {"state": {}, "param_groups": []}, "scheduler_state": {}}


def test_resume_takes_last_pt_when_it_loads(tmp_path):
    save_checkpoint(tmp_path / "last.pt", _at_step(3.0, 12))
    save_checkpoint(tmp_path / "previous.pt", _at_step(2.0, 8))
    point = find_resume_point(tmp_path)
    assert point.path == tmp_path / "last.pt" and point.step == 12 and point.epoch == 3
    assert point.skipped == [] and point.note is None


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path):
    save_checkpoint(tmp_path / "previous.pt", _at_step(2.0, 8))
    save_checkpoint(tmp_path / "best.pt", _at_step(1.0, 4))
    (tmp_path / "last.pt").write_bytes(b"\x00" * 64)
    point = find_resume_point(tmp_path)
    assert point.path == tmp_path / "previous.pt" and point.step == 8
    assert [p.name for p, _ in point.skipped] == ["last.pt"]
    assert point.note.startswith("last.pt could not be read (")
    assert point.note.endswith("resumed from previous.pt at epoch 2 (step 8).")
    assert len(point.note) < 400 and "\n" not in point.note
    assert torch.equal(point.take_payload()["model_state"]["w"], torch.full((2, 2), 2.0))

    (tmp_path / "previous.pt").unlink()                   # e.g. a kill between two renames
    point = find_resume_point(tmp_path)
    assert point.path == tmp_path / "best.pt" and "resumed from best.pt at epoch 1" in point.note


def test_a_checkpoint_of_another_model_is_not_resumed_from(tmp_path):
    save_checkpoint(tmp_path / "last.pt", {**_at_step(3.0, 12), "model": "cpu_cnn"})
    save_checkpoint(tmp_path / "previous.pt", _at_step(2.0, 8))
    point = find_resume_point(tmp_path, model="tutorial_mlp")
    assert point.path.name == "previous.pt" and "cpu_cnn" in point.note


def test_a_checkpoint_without_training_state_is_not_resumed_from(tmp_path):
    save_checkpoint(tmp_path / "best.pt", _payload(3.0))     # weights only: fine to evaluate, not to resume
    save_checkpoint(tmp_path / "previous.pt", _at_step(2.0, 8))
    point = find_resume_point(tmp_path)
    assert point.path.name == "previous.pt"
    (tmp_path / "previous.pt").unlink()
    with pytest.raises(NoUsableCheckpointError, match="best.pt .*no training state"):
        find_resume_point(tmp_path)


def test_resume_with_no_checkpoint_at_all_starts_over_and_with_none_readable_says_so(tmp_path):
    assert find_resume_point(tmp_path) is None
    for name in ("last.pt", "best.pt"):
        (tmp_path / name).write_bytes(b"torn")
    with pytest.raises(NoUsableCheckpointError) as err:
        find_resume_point(tmp_path)
    assert isinstance(err.value, CheckpointError)
    assert "last.pt" in str(err.value) and "best.pt" in str(err.value) and str(tmp_path) in str(err.value)
    assert [p.name for p, _ in err.value.tried] == ["last.pt", "best.pt"]


def test_temporary_checkpoint_files_are_removed_and_nothing_else(tmp_path):
    stale = [".last.pt.a1b2c3.tmp", ".best.pt.zz9.tmp", ".previous.pt.link.tmp", ".best.pt.link.tmp"]
    kept = ["last.pt", "best.pt", ".run.json.tmp", "notes.tmp", ".last.pt.keep"]
    for name in stale + kept:
        (tmp_path / name).write_bytes(b"x")
    removed = remove_temporary_checkpoints(tmp_path)
    assert sorted(p.name for p in removed) == sorted(stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)
    assert remove_temporary_checkpoints(tmp_path / "missing") == []


def test_an_unreadable_checkpoint_is_named_in_one_short_line(tmp_path):
    (tmp_path / "last.pt").write_bytes(b"\x00garbage" * 50)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(tmp_path / "last.pt")
    assert "last.pt" in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 400
