"""Checkpoint files: written atomically, read with `weights_only=True`, resumed from the newest good one.

A checkpoint is a plain dict of tensors and primitive values, so it loads without
unpickling arbitrary objects:

    format           int, CHECKPOINT_FORMAT
    model            str, a name from core.train.models.MODELS
    model_state      state_dict of the model
    config           dict, TrainConfig.to_dict()
    epoch, step      int: completed epochs, optimiser steps taken so far
    metrics          dict[str, float]: the latest epoch's metrics
    optimizer_state, scheduler_state, rng   what resuming needs (engine's business)
    torch_version, device                    str

A run folder holds up to three, each a file of its own (one damaged file never takes another):

    last.pt        the newest: every epoch end and on stop
    previous.pt    the last.pt it replaced, kept until the run completes (resume's fallback)
    best.pt        only with a validation split (cfg.val_images): the epoch with the highest
                   validation accuracy. Without a split there is no "best" (choosing by test
                   accuracy would be choosing on the split that is reported): last.pt is the
                   model. Runs trained before this rule may still hold a best.pt chosen by test
                   accuracy; model_checkpoints() labels it so.

Writing: the payload is serialised in memory first (checkpoint_bytes), then written with plain
file I/O and renamed into place (core.atomic_file), so a full disk or a folder that may not be
written raises CheckpointWriteError, whose message names the cause and the fix. Reading:
load_checkpoint raises CheckpointError naming the file; find_resume_point picks last.pt, or when
it cannot be read the newest other checkpoint that can, and says why (ResumePoint.note).
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from core.atomic_file import atomic_write_bytes, file_problem, remove_temporaries

CHECKPOINT_FORMAT = 1
LAST, PREVIOUS, BEST = "last.pt", "previous.pt", "best.pt"
CHECKPOINT_LABELS = {
    ("best", True): "Best (by validation accuracy)",
    ("last", True): "Last (end of training)",
    ("last", False): "Last (end of training; no validation split, so this is the model)",
    ("best", False): "Best by test accuracy (older run: chosen on the test set, so optimistic)",
}


def checkpoint_label(which: str, val_images: int) -> str:
    """What checkpoint `which` ("best" or "last") of a run with `val_images` held out is, honestly."""
    return CHECKPOINT_LABELS[which, bool(val_images)]


def model_checkpoints(folder: str | os.PathLike, val_images: int) -> list[str]:
    """The checkpoints in a run folder to evaluate, the run's model first: with a validation split
    "best" then "last"; without one "last" (and "best" after it only for an older run that wrote one)."""
    order = ("best", "last") if val_images else ("last", "best")
    return [w for w in order if (Path(folder) / f"{w}.pt").is_file()]
CHECKPOINT_NAMES = (LAST, PREVIOUS, BEST)
RESUME_KEYS = ("step", "epoch", "step_in_epoch", "optimizer_state", "scheduler_state", "rng")


class CheckpointError(Exception):
    """A checkpoint file is missing, torn or not one of ours (`reason`: the short why, no file name)."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


class CheckpointWriteError(CheckpointError):
    """A checkpoint could not be written because of the machine: a full disk, a folder that may
    not be written, a read-only disk. The file it would have replaced is untouched.

    `cause` and `fix` are the user's words; the engine sets `resume_from` (what Resume will do)."""

    def __init__(self, path: str | os.PathLike, error: OSError):
        self.path, self.error, self.errno = Path(path), error, error.errno
        problem = file_problem(error, self.path.parent)
        self.kind = problem.kind if problem else "other"
        self.cause = problem.cause if problem else f"writing to {self.path.parent} failed ({_short(error)})"
        self.fix = problem.fix if problem else "Check that disk and that folder"
        self.resume_from: str | None = None
        super().__init__(str(self), self.cause)

    def __str__(self) -> str:
        then = f", then Resume: {self.resume_from}" if self.resume_from else ", then try again"
        return f"Could not save the checkpoint {self.path.name}: {self.cause}. {self.fix}{then}."


class NoUsableCheckpointError(CheckpointError):
    """Resume found checkpoint files in `folder` but none it can continue from (`tried`: each
    file with the reason)."""

    def __init__(self, message: str, folder: Path, tried: list[tuple[Path, str]]):
        super().__init__(message)
        self.folder, self.tried = folder, tried


def checkpoint_bytes(payload: dict[str, Any]) -> bytes:
    """The file's contents for `payload` (format and torch version added), serialised in memory."""
    payload = {"format": CHECKPOINT_FORMAT, "torch_version": str(torch.__version__), **payload}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    return buffer.getvalue()


def write_checkpoint(path: str | os.PathLike, data: bytes, *, previous: str | os.PathLike | None = None) -> Path:
    """Put checkpoint bytes at `path` atomically; with `previous`, the file it replaces is kept
    there. CheckpointWriteError (cause and fix) when the machine refuses the write."""
    try:
        return atomic_write_bytes(path, data, keep=previous)
    except OSError as exc:
        raise CheckpointWriteError(path, exc) from exc


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], *,
                    previous: str | os.PathLike | None = None) -> Path:
    """Write `payload` to `path` via a temporary file and an atomic rename.

    A kill at any moment leaves either the old file or the new one, never a torn file.
    """
    return write_checkpoint(path, checkpoint_bytes(payload), previous=previous)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`; raise CheckpointError with the file's name."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No checkpoint at {path}.", "is missing")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for torn or foreign files
        kind = type(exc).__name__
        kind = f"{type(exc).__module__}.{kind}" if kind == "error" else kind   # e.g. struct.error
        reason = f"could not be read ({kind}: {_short(exc)})"
        raise CheckpointError(f"Checkpoint {path} {reason}.", reason) from exc
    if not isinstance(payload, dict) or "model_state" not in payload or "model" not in payload:
        reason = "is not a CIFAR Lab checkpoint (no model or model_state)"
        raise CheckpointError(f"{path} {reason}.", reason)
    return payload


@dataclass
class ResumePoint:
    """The checkpoint a resume continues from, and the newer ones it had to pass over."""
    path: Path
    step: int
    epoch: int
    skipped: list[tuple[Path, str]] = field(default_factory=list)   # (file, why it was not used)
    last_missing: bool = False
    _payload: dict[str, Any] | None = field(default=None, repr=False)

    def take_payload(self) -> dict[str, Any]:
        """The loaded checkpoint, handed over once (so its tensors are not held twice)."""
        payload, self._payload = self._payload, None
        if payload is None:
            raise RuntimeError(f"the checkpoint {self.path} was already taken")
        return payload

    @property
    def note(self) -> str | None:
        """What the user should hear when this is not last.pt, e.g. "last.pt could not be read
        (...); resumed from previous.pt at epoch 3 (step 24).", else None."""
        if self.path.name == LAST:
            return None
        why = [f"{path.name} {reason}" for path, reason in self.skipped]
        if self.last_missing:
            why.insert(0, f"{LAST} was missing")
        return "; ".join(why + [f"resumed from {self.path.name} at epoch {self.epoch} (step {self.step})."])


def find_resume_point(folder: str | os.PathLike, *, model: str | None = None) -> ResumePoint | None:
    """The checkpoint in `folder` to resume from: last.pt when it loads and can be resumed from
    (of `model`, with training state), else the newest of previous.pt and best.pt that can.

    None when the folder holds no checkpoint at all (a resume then starts from the beginning);
    NoUsableCheckpointError, naming every file and why, when none of those present will do.
    """
    folder = Path(folder)
    tried: list[tuple[Path, str]] = []

    def attempt(path: Path) -> dict[str, Any] | None:
        try:
            payload = load_checkpoint(path)
        except CheckpointError as exc:
            tried.append((path, exc.reason))
            return None
        reason = _not_resumable(payload, model)
        if reason is not None:
            tried.append((path, reason))
            return None
        return payload

    last = folder / LAST
    if last.is_file():
        payload = attempt(last)
        if payload is not None:
            return _point(last, payload)
    chosen: tuple[Path, dict[str, Any]] | None = None
    for name in (PREVIOUS, BEST):
        path = folder / name
        if not path.is_file():
            continue
        payload = attempt(path)
        if payload is not None and (chosen is None or int(payload["step"]) > int(chosen[1]["step"])):
            chosen = (path, payload)
        del payload   # one passed over is released at once
    if chosen is not None:
        return _point(*chosen, skipped=[t for t in tried if t[0] != chosen[0]], last_missing=not last.exists())
    if tried:
        files = "; ".join(f"{path.name} {reason}" for path, reason in tried)
        raise NoUsableCheckpointError(f"no checkpoint in {folder} can be resumed from: {files}.", folder, tried)
    return None


def remove_temporary_checkpoints(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary checkpoint files a kill mid-write leaves in a run folder
    (.last.pt.*.tmp, .previous.pt.*.tmp, .best.pt.*.tmp); returns those removed."""
    return remove_temporaries(folder, CHECKPOINT_NAMES)


def checkpoint_key(path: str | os.PathLike) -> str:
    """A short string that changes whenever the file at `path` is replaced (for caches)."""
    st = Path(path).stat()
    return f"{st.st_mtime_ns:x}-{st.st_size:x}-{st.st_ino:x}"


def _point(path: Path, payload: dict[str, Any], **kwargs: Any) -> ResumePoint:
    return ResumePoint(path, int(payload["step"]), int(payload["epoch"]), _payload=payload, **kwargs)


def _not_resumable(payload: dict[str, Any], model: str | None) -> str | None:
    missing = [key for key in RESUME_KEYS if key not in payload]
    if missing:
        return f"has no training state to resume from (no {', '.join(missing)})"
    if model is not None and payload["model"] != model:
        return f"holds a {payload['model']!r} model, not the run's {model!r}"
    return None


def _short(exc: BaseException, limit: int = 160) -> str:
    """The first sentence of an error's first line, at most `limit` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    if ". " in text:
        text = text.split(". ", 1)[0]
    return text if len(text) <= limit else text[:limit - 1] + "…"
