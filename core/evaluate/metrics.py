"""Numbers from predictions: confusion matrix, per-class scores, most-confused pairs, mistake queries.

Plain numpy on arrays of class ids and probabilities (no torch, no files, no model).

Confusion matrix and per-class scores (``summarize``, ``summarize_confusion``)
    confusion matrix: counts, rows = true class, columns = predicted class.
    per-class accuracy of class c = recall of c = confusion[c, c] / (images whose true class is c).
    precision of c = confusion[c, c] / (images predicted as c).
    F1 = 2 * precision * recall / (precision + recall).
    Conventions for empty denominators: a class that was never predicted has precision 0; a class
    with no test images has recall (= accuracy) 0; F1 is 0 when precision + recall is 0. A row of the
    row-normalised matrix (``row_normalize``) with no images is all zeros.

Most-confused pairs (``most_confused``)
    off-diagonal cells with a non-zero count, largest count first (ties: true class, then predicted
    class, in class order); `fraction` is the count over the images of the true class.

Misclassified queries (``misclassified``)
    filter by true class and/or predicted class; sort by the confidence in the wrong answer (the
    probability of the predicted class) or by the loss, largest first (ties: lower index first);
    page through with offset/limit.

Top-k (``top_k``)
    the k most probable classes of one row of probabilities, most probable first (ties: lower class
    id first).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np

if TYPE_CHECKING:  # only the type: this module computes with numpy alone
    from core.evaluate.predictions import Predictions

SORT_KEYS = ("confidence", "loss")


# --------------------------------------------------------------------------------------------
# Confusion matrix and per-class scores
# --------------------------------------------------------------------------------------------
def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """Counts (C, C) int64: rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape")
    for name, arr in (("labels", labels), ("predictions", predicted)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must be class ids in 0..{num_classes - 1}")
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (fraction of the true class predicted as each class); empty rows: 0."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class ConfusedPair:
    true_class: int
    predicted_class: int
    count: int
    fraction: float          # count / images of the true class
    true_name: str
    predicted_name: str


@dataclass(frozen=True)
class Summary:
    """Everything per class, from a confusion matrix (see the module docstring for conventions)."""

    classes: tuple[str, ...]
    confusion: np.ndarray            # int64 (C, C), rows = true, columns = predicted
    total: int
    correct: int
    accuracy: float                  # correct / total (0 for an empty split)
    support: np.ndarray              # int64 (C,) images per true class
    predicted_count: np.ndarray      # int64 (C,) images per predicted class
    precision: np.ndarray            # float64 (C,), 0 where a class was never predicted
    recall: np.ndarray               # float64 (C,), 0 where a class has no images
    f1: np.ndarray                   # float64 (C,), 0 where precision + recall == 0

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Accuracy on the images of each true class: the same number as recall."""
        return self.recall

    @property
    def confusion_normalized(self) -> np.ndarray:
        """The confusion matrix with each row divided by its images (empty rows: 0)."""
        return row_normalize(self.confusion)

    def most_confused(self, k: int | None = 10) -> list[ConfusedPair]:
        return most_confused(self.confusion, self.classes, k)

    def table(self) -> list[dict[str, Any]]:
        """One row per class: class, images, predicted, correct, accuracy, precision, recall, f1."""
        return [
            {"class": name, "images": int(self.support[i]), "predicted": int(self.predicted_count[i]),
             "correct": int(self.confusion[i, i]), "accuracy": float(self.recall[i]),
             "precision": float(self.precision[i]), "recall": float(self.recall[i]), "f1": float(self.f1[i])}
            for i, name in enumerate(self.classes)
        ]


def summarize_confusion(cm: np.ndarray, classes: Iterable[str]) -> Summary:
    cm = np.asarray(cm, dtype=np.int64)
    classes = tuple(classes)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(classes)} classes")
    diag = np.diag(cm)
    support = cm.sum(1)
    predicted_count = cm.sum(0)
    precision = _safe_div(diag, predicted_count)
    recall = _safe_div(diag, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = int(cm.sum())
    correct = int(diag.sum())
    return Summary(classes, cm, total, correct, correct / total if total else 0.0, support, predicted_count,
                   precision, recall, f1)


def summarize(labels, predicted, classes: Iterable[str]) -> Summary:
    classes = tuple(classes)
    return summarize_confusion(confusion_matrix(labels, predicted, len(classes)), classes)


def most_confused(cm: np.ndarray, classes: Iterable[str], k: int | None = 10) -> list[ConfusedPair]:
    """Off-diagonal cells with a count > 0, largest count first; ties in (true, predicted) order."""
    cm = np.asarray(cm, dtype=np.int64)
    classes = tuple(classes)
    support = cm.sum(1)
    cells = [(int(cm[t, p]), t, p) for t in range(len(cm)) for p in range(len(cm)) if t != p and cm[t, p] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    if k is not None:
        cells = cells[:k]
    return [ConfusedPair(t, p, n, n / support[t] if support[t] else 0.0, classes[t], classes[p]) for n, t, p in cells]


# --------------------------------------------------------------------------------------------
# Misclassified queries
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MisclassifiedPage:
    total: int               # misclassified images matching the filters, before paging
    offset: int
    limit: int
    indices: np.ndarray      # int64 indices into the test split
    true_class: np.ndarray   # int64
    predicted_class: np.ndarray
    confidence: np.ndarray   # float32: probability of the (wrong) predicted class
    loss: np.ndarray         # float32

    def __len__(self) -> int:
        return len(self.indices)

    def rows(self, classes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self.indices)):
            row = {"index": int(self.indices[i]), "true": int(self.true_class[i]),
                   "predicted": int(self.predicted_class[i]), "confidence": float(self.confidence[i]),
                   "loss": float(self.loss[i])}
            if classes is not None:
                row["true_name"] = classes[row["true"]]
                row["predicted_name"] = classes[row["predicted"]]
            out.append(row)
        return out


def misclassified(preds: Predictions, *, true_class: int | None = None, predicted_class: int | None = None,
                  sort: str = "confidence", offset: int = 0, limit: int = 24,
                  among: np.ndarray | None = None) -> MisclassifiedPage:
    """Wrongly classified test images, filtered, sorted (largest first) and paged.

    `among`: an optional boolean mask over the first len(among) test images (e.g. a history
    filter of core.evaluate.history); images outside it, or beyond it, are left out."""
    n_classes = len(preds.classes)
    for name, value in (("true_class", true_class), ("predicted_class", predicted_class)):
        if value is not None and not 0 <= int(value) < n_classes:
            raise ValueError(f"{name} must be a class id in 0..{n_classes - 1}, got {value}")
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    if offset < 0 or limit < 0:
        raise ValueError(f"offset and limit must be >= 0, got offset={offset}, limit={limit}")
    mask = preds.predicted != preds.labels
    if true_class is not None:
        mask &= preds.labels == int(true_class)
    if predicted_class is not None:
        mask &= preds.predicted == int(predicted_class)
    if among is not None:
        inside = np.zeros(len(mask), bool)
        among = np.asarray(among, bool)[:len(mask)]
        inside[:len(among)] = among
        mask &= inside
    idx = np.flatnonzero(mask)
    confidence = preds.confidence[idx]
    key = confidence if sort == "confidence" else preds.loss[idx]
    order = np.lexsort((idx, -key.astype(np.float64)))  # primary: key descending; ties: index ascending
    idx = idx[order][offset:offset + limit]
    return MisclassifiedPage(
        total=int(mask.sum()), offset=offset, limit=limit, indices=idx.astype(np.int64),
        true_class=preds.labels[idx], predicted_class=preds.predicted[idx],
        confidence=preds.confidence[idx].astype(np.float32), loss=preds.loss[idx].astype(np.float32))


def top_k(probs_row: np.ndarray, classes: tuple[str, ...], k: int = 3) -> list[tuple[int, str, float]]:
    """The k most probable classes as (class id, name, probability), most probable first."""
    probs_row = np.asarray(probs_row)
    k = max(1, min(k, len(probs_row)))
    order = np.lexsort((np.arange(len(probs_row)), -probs_row.astype(np.float64)))[:k]
    return [(int(i), classes[int(i)], float(probs_row[i])) for i in order]
