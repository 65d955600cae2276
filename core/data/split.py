"""The validation split: training images held out to measure progress and pick best.pt.

    keep, held = validation_split(labels, n=5000, seed=0)   # index arrays into the training split

Stratified by class (each class gives its share of `n`, the largest remainders rounded up, so the
split's class mix is the training set's), seeded (the same seed and labels give the same split)
and disjoint (no image is in both). The test split is never used for choices: it is only reported.
"""
from __future__ import annotations

import numpy as np


def validation_split(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices kept for training, indices held out for validation), each sorted ascending.

    ValueError when `n` leaves no training image (n must be below len(labels)); n = 0 holds out none.
    """
    labels = np.asarray(labels)
    total = len(labels)
    if n < 0 or n >= total:
        raise ValueError(f"val_images: must be below the number of training images ({total:,}), got {n:,}")
    if n == 0:
        return np.arange(total), np.arange(0)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n / total
    quota = np.floor(exact).astype(np.int64)
    # Largest remainders first (ties: the smaller class label), until the quotas add up to n.
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[: n - int(quota.sum())]] += 1
    rng = np.random.default_rng(seed)
    held = [rng.permutation(np.flatnonzero(labels == c))[:q] for c, q in zip(classes, quota)]
    held_idx = np.sort(np.concatenate(held))
    keep = np.ones(total, dtype=bool)
    keep[held_idx] = False
    return np.flatnonzero(keep), held_idx
