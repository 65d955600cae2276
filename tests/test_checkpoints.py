"""Checkpoints and atomic files: a crash mid-write never leaves a torn file."""
from __future__ import annotations

import pytest
import torch

from core.atomic_file import atomic_write
from core.train.checkpoints import CheckpointError, checkpoint_key, load_checkpoint, save_checkpoint


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
