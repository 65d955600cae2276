"""Prediction history: every test image's predicted class and confidence after every epoch.

The trainer (core.train.engine) records one row per finished epoch in ``<run>/history.npz``;
core.evaluate.history reads it back for the scrubber, per-class curves and the learned / forgotten
filters. File contents (numpy ``.npz``, no pickles):

    format      1
    labels      uint8 (N,)      true class of each test image the run evaluates (its test_subset)
    epochs      int32 (E,)      the epoch numbers recorded, increasing (1-based)
    predicted   uint8 (E, N)    argmax of the logits at that epoch
    confidence  uint16 (E, N)   softmax probability of the predicted class, times 65535, rounded

so about 3 bytes per image per epoch (30 kB per epoch for 10,000 test images). The whole file is
rewritten after each epoch through core.atomic_file (temporary file, fsync, rename): a reader sees
the previous version or the new one, never a torn file. A resumed run keeps only the epochs up to
its checkpoint's epoch (``HistoryRecorder(keep_through=...)``), like the run's metric rows, so a
redone epoch is never recorded twice.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.atomic_file import atomic_write_bytes

HISTORY_FILE = "history.npz"
HISTORY_FORMAT = 1
CONFIDENCE_SCALE = 65535


@dataclass(frozen=True)
class PredictionHistory:
    """The recorded epochs of one run (arrays as in the module docstring)."""

    labels: np.ndarray        # uint8 (N,)
    epochs: np.ndarray        # int32 (E,)
    predicted: np.ndarray     # uint8 (E, N)
    confidence_q: np.ndarray  # uint16 (E, N)

    @property
    def num_epochs(self) -> int:
        return len(self.epochs)

    @property
    def num_images(self) -> int:
        return len(self.labels)

    @property
    def confidence(self) -> np.ndarray:
        """float32 (E, N) in [0, 1] (quantised to 1/65535)."""
        return self.confidence_q.astype(np.float32) / CONFIDENCE_SCALE

    def through(self, epoch: int) -> "PredictionHistory":
        """Only the epochs <= `epoch`."""
        keep = self.epochs <= epoch
        return PredictionHistory(self.labels, self.epochs[keep], self.predicted[keep], self.confidence_q[keep])

    def with_epoch(self, epoch: int, predicted: np.ndarray, confidence_q: np.ndarray) -> "PredictionHistory":
        """This history plus epoch `epoch` (any recorded epoch >= `epoch` is replaced)."""
        base = self.through(epoch - 1)
        return PredictionHistory(
            self.labels, np.append(base.epochs, np.int32(epoch)).astype(np.int32),
            np.concatenate([base.predicted, predicted[None].astype(np.uint8)]),
            np.concatenate([base.confidence_q, confidence_q[None].astype(np.uint16)]))

    @classmethod
    def empty(cls, labels: np.ndarray) -> "PredictionHistory":
        n = len(labels)
        return cls(np.asarray(labels).astype(np.uint8), np.zeros(0, np.int32), np.zeros((0, n), np.uint8),
                   np.zeros((0, n), np.uint16))


def history_path(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / HISTORY_FILE


def encode_logits(logits: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(predicted uint8 (N,), confidence uint16 (N,)) from logits (N, C) on any device: one copy to the host."""
    probs = torch.softmax(logits.float(), dim=1)
    conf, predicted = probs.max(dim=1)
    # Round to 1/65535 on the device, then a single 3-bytes-per-image transfer.
    packed = torch.stack([predicted.to(torch.int32), (conf * CONFIDENCE_SCALE).round().to(torch.int32)])
    packed = packed.cpu().numpy()
    return packed[0].astype(np.uint8), packed[1].astype(np.uint16)


def to_bytes(history: PredictionHistory) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, format=np.array(HISTORY_FORMAT), labels=history.labels, epochs=history.epochs,
             predicted=history.predicted, confidence=history.confidence_q)
    return buf.getvalue()


def write_history(run_dir: str | os.PathLike, history: PredictionHistory) -> Path:
    """Replace the run's history file atomically (OSError when the machine refuses)."""
    return atomic_write_bytes(history_path(run_dir), to_bytes(history))


def read_history(run_dir: str | os.PathLike) -> PredictionHistory | None:
    """The run's history, or None when there is none (or it is torn, foreign or inconsistent)."""
    path = history_path(run_dir)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != HISTORY_FORMAT:
                return None
            history = PredictionHistory(z["labels"].astype(np.uint8), z["epochs"].astype(np.int32),
                                        z["predicted"].astype(np.uint8), z["confidence"].astype(np.uint16))
    except Exception:  # missing, torn (BadZipFile, EOFError) or foreign: no history
        return None
    n, e = history.num_images, history.num_epochs
    if history.predicted.shape != (e, n) or history.confidence_q.shape != (e, n):
        return None
    if e and np.any(np.diff(history.epochs) <= 0):
        return None
    return history


class HistoryRecorder:
    """The worker's engine.fit(on_predictions=recorder.record): the history so far in memory, the
    file rewritten after each epoch.

    A history that cannot be written (full disk, no permission) is kept in memory and written
    with the next epoch: the checkpoint written right after it reports the machine's problem.
    """

    def __init__(self, run_dir: str | os.PathLike, *, keep_through: int = 0):
        """Start from the run folder's file, keeping only epochs <= keep_through (0: a fresh run
        keeps nothing); the file is rewritten (or removed) at once when that drops anything."""
        self.run_dir = Path(run_dir)
        old = read_history(self.run_dir)
        self.history = old.through(keep_through) if old is not None else None
        self.unsaved = False
        if old is None and history_path(self.run_dir).exists():
            self._store()          # a file that cannot be read: removed
        elif old is not None and self.history.num_epochs != old.num_epochs:
            self._store()

    def record(self, epoch: int, logits: torch.Tensor, labels: torch.Tensor | np.ndarray) -> None:
        """Add epoch `epoch` (1-based) from the test logits and labels (test-split order); write the file."""
        labels = labels.cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
        labels = labels.astype(np.uint8)
        if self.history is None or not np.array_equal(self.history.labels, labels):
            self.history = PredictionHistory.empty(labels)   # another test split: start again
        predicted, confidence = encode_logits(logits)
        self.history = self.history.with_epoch(epoch, predicted, confidence)
        self._store()

    def _store(self) -> None:
        try:
            if self.history is not None and self.history.num_epochs:
                write_history(self.run_dir, self.history)
            else:
                history_path(self.run_dir).unlink(missing_ok=True)
            self.unsaved = False
        except OSError:
            self.unsaved = True    # kept in memory; the next epoch writes it all
