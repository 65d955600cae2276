"""Data: the dataset folder format, CIFAR-10, the synthetic demo set, one normalisation.

    ds = load_dataset("cifar10")          # or "synthetic"; roots from core.settings
    ds.train.images                        # uint8 (N, 32, 32, 3), ds.train.labels int64 (N,)

Modules: `dataset` (Split, Dataset, KINDS, errors), `batch_files` (the folder format and its
decoded cache), `cifar10` (find, download, verify), `synthetic` (the demo set), `images`
(layout and normalisation; imports torch, so it is not re-exported here).
No Streamlit here: errors are `DataError`s whose message is written for the user.
"""
from __future__ import annotations

import os
from pathlib import Path

from core import settings
from core.data.batch_files import (ALL_FILES, BATCHES_DIR, META_FILE, TEST_FILES, TRAIN_FILES, cache_dirs,
                                   read_meta, write_batch_folder)
from core.data.cifar10 import (ARCHIVE_MD5, ARCHIVE_NAME, CIFAR10_URL, OFFICIAL_MD5, cifar10_status, download_cifar10,
                               load_cifar10)
from core.data.dataset import (CLASSES, KINDS, ChecksumWarning, DataCorruptError, DataError, DataMissingError,
                               Dataset, DataStatus, Split, kind_label)
from core.data.synthetic import load_synthetic


def dataset_root(kind: str) -> Path:
    """The folder a dataset kind is read from (CIFAR10_ROOT or CIFARLAB_SYNTHETIC_ROOT)."""
    kind_label(kind)  # ValueError for an unknown kind
    return settings.synthetic_root() if kind == "synthetic" else settings.data_root()


def load_dataset(kind: str, root: str | os.PathLike | None = None) -> Dataset:
    """"cifar10" (never downloads) or "synthetic", from `root` or the kind's configured folder."""
    root = dataset_root(kind) if root is None else root
    if kind == "cifar10":
        return load_cifar10(root, download=False)
    return load_synthetic(root)


__all__ = [
    "ALL_FILES", "ARCHIVE_MD5", "ARCHIVE_NAME", "BATCHES_DIR", "CIFAR10_URL", "CLASSES", "KINDS", "META_FILE",
    "OFFICIAL_MD5", "TEST_FILES", "TRAIN_FILES", "ChecksumWarning", "DataCorruptError", "DataError",
    "DataMissingError", "DataStatus", "Dataset", "Split", "cache_dirs", "cifar10_status", "dataset_root",
    "download_cifar10", "kind_label", "load_cifar10", "load_dataset", "load_synthetic", "read_meta",
    "write_batch_folder",
]
