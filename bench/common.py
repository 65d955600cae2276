"""What the benchmark scripts share: where the images are, how many threads, one line of conditions.

    ap = argparse.ArgumentParser(...)
    common.add_machine_args(ap)            # --data-root (default $CIFAR10_ROOT, else .cache/cifar10-dev), --threads
    args = ap.parse_args(argv)
    dataset = common.setup(args)           # torch.set_num_threads(args.threads), CIFAR-10 from args.data_root
    print(common.conditions(args, ...))    # "# preset ..., load average 1.23"
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def default_data_root() -> str:
    """$CIFAR10_ROOT, else the development split kept in the repository's .cache/."""
    return os.environ.get("CIFAR10_ROOT") or str(REPO / ".cache" / "cifar10-dev")


def add_machine_args(ap: argparse.ArgumentParser, *, threads: int = 2) -> None:
    ap.add_argument("--data-root", default=default_data_root(), help="folder holding cifar-10-batches-py/")
    ap.add_argument("--threads", type=int, default=threads,
                    help="torch.set_num_threads (2: the two-core target machine)")


def setup(args: argparse.Namespace, *, load: bool = True):
    """Set torch's thread count from --threads; return the CIFAR-10 dataset from --data-root
    (None with load=False)."""
    import torch

    from core import data

    torch.set_num_threads(args.threads)
    return data.load_cifar10(args.data_root, download=False) if load else None


def load_average() -> float:
    return os.getloadavg()[0]


def rotated(names: list[str], round_: int) -> list[str]:
    """The variants in the order of one round: rotated by one each round, so no variant always
    runs first (or last) on a machine whose load drifts."""
    k = round_ % len(names)
    return names[k:] + names[:k]
