"""Checkpoint files: written atomically, read with `weights_only=True`.

A checkpoint is a plain dict of tensors and primitive values, so it loads without
unpickling arbitrary objects:

    format           int, CHECKPOINT_FORMAT
    model            str, a name from core.models.MODELS
    model_state      state_dict of the model
    config           dict, TrainConfig.to_dict()
    epoch, step      int: completed epochs, optimiser steps taken so far
    metrics          dict[str, float]: the latest epoch's metrics
    optimizer_state, scheduler_state, rng   what resuming needs (engine's business)
    torch_version, device                    str
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from core.atomic_file import atomic_write

CHECKPOINT_FORMAT = 1


class CheckpointError(Exception):
    """A checkpoint file is missing, torn or not one of ours."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write `payload` to `path` via a temporary file and an atomic rename.

    A kill at any moment leaves either the old file or the new one, never a torn file.
    """
    path = Path(path)
    payload = {"format": CHECKPOINT_FORMAT, "torch_version": str(torch.__version__), **payload}
    with atomic_write(path) as fh:
        torch.save(payload, fh)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`; raise CheckpointError with the file's name."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        raise CheckpointError(f"Checkpoint {path} could not be read ({type(exc).__name__}: {exc}).") from exc
    if not isinstance(payload, dict) or "model_state" not in payload or "model" not in payload:
        raise CheckpointError(f"{path} is not a CIFAR Lab checkpoint (no model or model_state).")
    return payload


def checkpoint_key(path: str | os.PathLike) -> str:
    """A short string that changes whenever the file at `path` is replaced (for caches)."""
    st = Path(path).stat()
    return f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"
