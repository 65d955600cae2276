"""What a dataset is here: two splits of uint8 images with labels, its kind, and the data errors.

Two kinds exist (`KINDS`, id -> the label users see): CIFAR-10 and the synthetic demo set. Both
are read from the same folder format (core.data.batch_files) into a `Dataset`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
# The one place that lists the dataset kinds: id -> (label, short label for tables and run lists).
# The short label of the demo set stays "synthetic" so its numbers are never mistaken for CIFAR-10's.
KINDS: dict[str, tuple[str, str]] = {
    "cifar10": ("CIFAR-10", "CIFAR-10"),
    "synthetic": ("Synthetic demo set", "synthetic"),
}


def kind_label(kind: str, *, short: bool = False) -> str:
    """'CIFAR-10' or 'Synthetic demo set' ('synthetic' when short); ValueError for an unknown kind."""
    if kind not in KINDS:
        raise ValueError(f"dataset kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return KINDS[kind][short]


class DataError(Exception):
    """A problem with the data whose message is meant for the user (no traceback needed)."""


class DataMissingError(DataError):
    """CIFAR-10 is not there: names the folder looked in, what was tried and the two ways out."""


class DataCorruptError(DataError):
    """A batch file (or a download) is damaged: names the file."""


class ChecksumWarning(UserWarning):
    """The batch files differ from the official CIFAR-10 files (loaded anyway)."""


@dataclass(frozen=True, eq=False)
class Split:
    images: np.ndarray  # uint8 (N, 32, 32, 3), HWC, RGB
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])



@dataclass(frozen=True, eq=False)
class Dataset:
    train: Split
    test: Split
    classes: tuple[str, ...]
    root: Path
    synthetic: bool
    note: str = ""  # e.g. that the checksums differ from the official files

    @property
    def kind(self) -> str:
        return "synthetic" if self.synthetic else "cifar10"

    @property
    def label(self) -> str:
        return kind_label(self.kind)

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return self.train if name == "train" else self.test


@dataclass(frozen=True)
class DataStatus:
    present: bool                   # every batch file is there
    root: Path
    message: str
    damaged: tuple[str, ...] = ()   # files that are there but cannot be whole (see batch_files.damage)

    @property
    def usable(self) -> bool:
        return self.present and not self.damaged
