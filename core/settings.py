"""Where things live, read from environment variables with sensible defaults.

| variable                  | default              | meaning                                        |
|---------------------------|----------------------|------------------------------------------------|
| CIFAR10_ROOT              | ./data               | folder holding cifar-10-batches-py/            |
| CIFARLAB_SYNTHETIC_ROOT   | ./data/synthetic     | folder for the synthetic demo set              |
| CIFARLAB_RUNS_DIR         | ./runs               | run store (SQLite) and one folder per run      |
| CIFARLAB_MAX_ACTIVE_RUNS  | 1                    | how many runs may train at the same time; more |
|                           |                      | wait in the queue and start by themselves      |
| CIFARLAB_CPU_THREADS      | the CPUs we may use  | threads that CPU runs share between them       |
| CIFARLAB_SPLIT_THREADS    | 1                    | "0": each CPU run takes every thread (the old  |
|                           |                      | behaviour; bench/concurrent_runs.py compares)  |
| CIFARLAB_OFFLINE          | unset                | "1": never try to download CIFAR-10            |

Relative paths (and the defaults) are taken from the working directory of the process that reads
them: the dashboard or the CLI the user started. A process that starts another one (a trainer)
passes what it resolved as absolute paths (`child_env`), so both always agree on every folder,
whatever folder the child runs in.
"""
from __future__ import annotations

import os
from pathlib import Path

PATH_VARIABLES = ("CIFAR10_ROOT", "CIFARLAB_SYNTHETIC_ROOT", "CIFARLAB_RUNS_DIR")


def _path_from_env(name: str, default: Path) -> Path:
    value = os.environ.get(name, "").strip()
    return Path(value).expanduser().resolve() if value else default.resolve()


def data_root() -> Path:
    """Folder that holds (or will hold) `cifar-10-batches-py/`."""
    return _path_from_env("CIFAR10_ROOT", Path.cwd() / "data")


def synthetic_root() -> Path:
    """Folder that holds (or will hold) the synthetic demo set in the same layout."""
    return _path_from_env("CIFARLAB_SYNTHETIC_ROOT", Path.cwd() / "data" / "synthetic")


def runs_dir() -> Path:
    """Folder of the run store: `runs.sqlite` plus one sub-folder per run."""
    return _path_from_env("CIFARLAB_RUNS_DIR", Path.cwd() / "runs")


def max_active_runs() -> int:
    raw = os.environ.get("CIFARLAB_MAX_ACTIVE_RUNS", "1").strip() or "1"
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"CIFARLAB_MAX_ACTIVE_RUNS must be a whole number, got {raw!r}") from exc
    if value < 1:
        raise ValueError(f"CIFARLAB_MAX_ACTIVE_RUNS must be at least 1, got {value}")
    return value


def cpu_threads() -> int:
    """Threads the CPU runs share (core.runs.queue.thread_shares): CIFARLAB_CPU_THREADS, else the
    CPUs this process may run on."""
    raw = os.environ.get("CIFARLAB_CPU_THREADS", "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError as exc:
            raise ValueError(f"CIFARLAB_CPU_THREADS must be a whole number, got {raw!r}") from exc
        if value < 1:
            raise ValueError(f"CIFARLAB_CPU_THREADS must be at least 1, got {value}")
        return value
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def split_threads() -> bool:
    """Whether CPU runs training at the same time split the threads (default) or each take all."""
    return os.environ.get("CIFARLAB_SPLIT_THREADS", "1").strip() not in {"0", "false", "no"}


def offline() -> bool:
    return os.environ.get("CIFARLAB_OFFLINE", "").strip() in {"1", "true", "yes"}


def resolved() -> dict[str, str]:
    """Every path setting as this process resolved it: variable name -> absolute path."""
    return {"CIFAR10_ROOT": str(data_root()), "CIFARLAB_SYNTHETIC_ROOT": str(synthetic_root()),
            "CIFARLAB_RUNS_DIR": str(runs_dir())}


def child_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a process this one starts: `base` (default: ours) with every path
    setting replaced by the absolute path resolved here."""
    env = dict(os.environ if base is None else base)
    env.update(resolved())
    return env
