"""A run's predictions epoch by epoch: the scrubber, per-class curves, learned / forgotten images.

The trainer's worker writes ``<run>/history.npz`` (format: core.train.history); everything here
is plain numpy on a ``PredictionHistory`` (E epochs x N test images).

Definitions (an image is "correct" at an epoch when its predicted class is its true class):
    epoch_summary(h, i)     metrics.Summary of the i-th recorded epoch (confusion matrix, per class)
    per_class_over_epochs   (E, C): accuracy of each class at each recorded epoch
    forgetting events       times an image goes from correct at one recorded epoch to wrong at the
                            next (Toneva et al., 2019, "An empirical study of example forgetting")
    learned then forgotten  correct at some epoch and wrong at a later one (>= 1 forgetting event)
    never learned           wrong at every recorded epoch
    changes of mind         times the predicted class differs from the one at the previous epoch
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from core.evaluate.metrics import Summary, summarize
from core.train.history import HISTORY_FILE, PredictionHistory, history_path, read_history

HISTORY_FILTERS = {
    "all": "Any history",
    "forgotten": "Learned, then forgotten",
    "never": "Never learned",
    "changed": "Changed its mind k+ times",
}


def load_history(run_dir: str | Path, num_images: int | None = None) -> PredictionHistory | None:
    """The run's recorded history (None: none yet, unreadable, or about another number of images)."""
    history = read_history(run_dir)
    if history is None or history.num_epochs == 0:
        return None
    if num_images is not None and history.num_images > num_images:
        return None
    return history


def epoch_summary(history: PredictionHistory, index: int, classes: Iterable[str]) -> Summary:
    """Confusion matrix and per-class scores at the `index`-th recorded epoch (0-based)."""
    return summarize(history.labels.astype(np.int64), history.predicted[index].astype(np.int64), tuple(classes))


def overall_over_epochs(history: PredictionHistory) -> np.ndarray:
    """(E,) test accuracy at each recorded epoch."""
    if history.num_images == 0:
        return np.zeros(history.num_epochs)
    return (history.predicted == history.labels[None]).mean(1)


def per_class_over_epochs(history: PredictionHistory, num_classes: int) -> np.ndarray:
    """(E, C) float64: share of each class's test images predicted correctly at each recorded epoch
    (0 for a class without images)."""
    labels = history.labels.astype(np.int64)
    correct = (history.predicted == history.labels[None]).astype(np.float64)      # (E, N)
    onehot = np.zeros((len(labels), num_classes))
    onehot[np.arange(len(labels)), labels] = 1.0
    support = onehot.sum(0)
    hits = correct @ onehot                                                         # (E, C)
    return np.divide(hits, support[None], out=np.zeros_like(hits), where=support[None] > 0)


@dataclass(frozen=True)
class Trajectories:
    """Per test image (N,), over the recorded epochs."""

    ever_correct: np.ndarray      # bool
    forgetting: np.ndarray        # int: correct -> wrong transitions between consecutive epochs
    changes: np.ndarray           # int: epochs whose predicted class differs from the epoch before
    first_correct: np.ndarray     # int: index of the first correct epoch, -1 when never

    @property
    def forgotten(self) -> np.ndarray:
        return self.forgetting > 0

    @property
    def never_learned(self) -> np.ndarray:
        return ~self.ever_correct

    def mask(self, kind: str, k: int = 2) -> np.ndarray | None:
        """Boolean (N,) mask of one of HISTORY_FILTERS (None for "all")."""
        if kind == "all":
            return None
        if kind == "forgotten":
            return self.forgotten
        if kind == "never":
            return self.never_learned
        if kind == "changed":
            return self.changes >= k
        raise ValueError(f"unknown history filter {kind!r}; choose one of {', '.join(HISTORY_FILTERS)}")


def trajectories(history: PredictionHistory) -> Trajectories:
    correct = history.predicted == history.labels[None]                     # (E, N)
    ever = correct.any(0)
    forgetting = (correct[:-1] & ~correct[1:]).sum(0) if history.num_epochs > 1 else np.zeros(history.num_images, int)
    changes = (history.predicted[1:] != history.predicted[:-1]).sum(0) if history.num_epochs > 1 \
        else np.zeros(history.num_images, int)
    first = np.where(ever, correct.argmax(0), -1)
    return Trajectories(ever, np.asarray(forgetting, np.int64), np.asarray(changes, np.int64), first.astype(np.int64))


def forgotten_per_class(history: PredictionHistory, num_classes: int) -> np.ndarray:
    """(C,) int: test images of each class forgotten at least once."""
    forgotten = trajectories(history).forgotten
    return np.bincount(history.labels[forgotten].astype(np.int64), minlength=num_classes)[:num_classes]


def image_strip(history: PredictionHistory, index: int) -> list[tuple[int, int, float, bool]]:
    """One image over the epochs: (epoch, predicted class, confidence, correct) per recorded epoch."""
    label = int(history.labels[index])
    conf = history.confidence[:, index]
    return [(int(e), int(p), float(c), int(p) == label)
            for e, p, c in zip(history.epochs, history.predicted[:, index], conf)]


__all__ = ["HISTORY_FILE", "HISTORY_FILTERS", "PredictionHistory", "Trajectories", "epoch_summary",
           "forgotten_per_class", "history_path", "image_strip", "load_history", "overall_over_epochs",
           "per_class_over_epochs", "read_history", "trajectories"]
