"""The queue's rules: which device a run gets when it leaves the line, and how CPU runs share threads.

    device = pick_device(run, held=["cuda:0"])      # 'cuda:1' (a free GPU), 'cpu', or None: keep waiting
    thread_shares(cores=2, runs=2)                  # [1, 1]: two CPU runs, one core's threads each
    rebalance_threads(store)                        # store each CPU run's share; trainers follow it
    share = ThreadShare(store, run_id); share.poll()    # in the trainer: torch.set_num_threads on a change

Devices. A run whose config asks for CUDA (or "auto" on a GPU machine) takes one free GPU of its
own ("cuda:K", K as CUDA_VISIBLE_DEVICES numbers them); runs on different GPUs never share one,
and a run that finds every GPU taken waits in line. Its trainer is started with
CUDA_VISIBLE_DEVICES=K, so it sees that GPU alone as cuda:0. An MPS device is held by one run at
a time. The CPU is shared: any number of CPU runs up to CIFARLAB_MAX_ACTIVE_RUNS, with the threads
split between them.

Threads. One PyTorch process takes a thread per core by default, so two at once on two cores run
four busy threads on two cores and each waits on the other (measured: 200-430 images/s each
against 3,300 for one alone). The CPU runs holding a slot split the cores instead
(`thread_shares`): one run alone keeps them all; with two or more, each gets an equal share and,
where there are 4 cores or more, one core stays free for the dashboard. Trainers also run at a
lower scheduling priority (nice 5), so pages stay responsive on a busy machine. The shares are
stored per run (`threads`) and re-split whenever a run starts or ends; each trainer applies its
share between two steps (`ThreadShare.poll`, called with the stop check), so the first run drops
to half its threads when a second one starts, and takes them back when it ends. bench/
concurrent_runs.py measures the result.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

from core import settings

if TYPE_CHECKING:
    from core.runs.store import Run, RunStore

TRAINER_NICE = 5              # trainers yield to the dashboard when both want the CPU
GPUS_ENV = "CIFARLAB_GPUS"    # the GPUs the first launcher saw, passed on to trainers that launch the next run


def gpu_ids() -> list[str]:
    """The GPUs runs may use, as CUDA_VISIBLE_DEVICES numbers them ('0', '1', ...); [] without CUDA.
    A trainer sees only its own GPU, so a launcher passes the full list on (GPUS_ENV)."""
    passed = os.environ.get(GPUS_ENV)
    if passed is not None:
        return [g for g in passed.split(",") if g]
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip():
        return [v.strip() for v in visible.split(",") if v.strip()][:count]
    return [str(i) for i in range(count)]


def _mps_available() -> bool:
    import torch

    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def device_kind(config_device: str, gpus: list[str] | None = None) -> str:
    """'cuda', 'mps' or 'cpu': what a config's device choice takes on this machine."""
    gpus = gpu_ids() if gpus is None else gpus
    if config_device == "auto":
        return "cuda" if gpus else ("mps" if _mps_available() else "cpu")
    return config_device


def gpus_wanted(run: "Run") -> int:
    """How many GPUs a run takes: one per process (a data-parallel run's nproc, when its config has one)."""
    return max(1, int(getattr(run.config, "nproc", 1) or 1))


def held_devices(held: list[str]) -> set[str]:
    """'cuda:0,1' (a multi-GPU run) counts as cuda:0 and cuda:1."""
    out: set[str] = set()
    for text in held:
        kind, _, ids = text.partition(":")
        out.update(f"{kind}:{i}" for i in ids.split(",")) if ids else out.add(kind)
    return out


def pick_device(run: "Run", held: list[str], gpus: list[str] | None = None) -> str | None:
    """The device `run` takes given the devices others hold; None when it must wait for one.
    A config asking for a device this machine lacks gets it anyway: its trainer then fails the
    run with the device's own message instead of the run waiting forever."""
    gpus = gpu_ids() if gpus is None else gpus
    kind = device_kind(run.config.device, gpus)
    taken = held_devices(held)
    if kind == "cuda":
        if not gpus:
            return "cuda"
        free = [g for g in gpus if f"cuda:{g}" not in taken]
        need = min(gpus_wanted(run), len(gpus))
        return f"cuda:{','.join(free[:need])}" if len(free) >= need else None
    if kind == "mps":
        return None if "mps" in taken else "mps"
    return "cpu"


def cuda_visible(devices: str | None) -> str | None:
    """CUDA_VISIBLE_DEVICES for a trainer holding `devices` ('cuda:1' -> '1'); None: leave as is."""
    if devices and devices.startswith("cuda:"):
        return devices.split(":", 1)[1]
    return None


def thread_shares(cores: int, runs: int) -> list[int]:
    """Threads for each of `runs` CPU runs on `cores` cores: one run alone takes every core; two or
    more split them evenly (the first ones get the remainder), leaving one core to the dashboard
    where there are at least 4. Never fewer than 1 thread a run."""
    if runs <= 0:
        return []
    cores = max(1, int(cores))
    if runs == 1:
        return [cores]
    budget = cores - 1 if cores >= 4 else cores
    base, extra = divmod(budget, runs)
    return [max(1, base + (1 if i < extra else 0)) for i in range(runs)]


def rebalance_threads(store: "RunStore") -> dict[int, int]:
    """Split the CPU between the CPU runs holding a slot (oldest first) and store each share;
    returns {run id: threads}. With CIFARLAB_SPLIT_THREADS=0 every run keeps all cores (the old
    behaviour, for comparison)."""
    cpu_runs = [r for r in store.slot_holders() if r.devices == "cpu"]
    cores = settings.cpu_threads()
    counts = thread_shares(cores, len(cpu_runs)) if settings.split_threads() else [cores] * len(cpu_runs)
    shares = {r.id: n for r, n in zip(cpu_runs, counts)}
    store.set_threads({i: n for i, n in shares.items() if store.threads(i) != n})
    return shares


NICE_ENV = "CIFARLAB_TRAINER_NICE"   # set by the launcher: how much a trainer lowers its priority


class ThreadShare:
    """In a trainer: follows the run's stored thread share (torch.set_num_threads between two
    steps). A trainer started by a launcher (NICE_ENV set) first lowers its own priority, so the
    dashboard stays responsive."""

    def __init__(self, store: "RunStore", run_id: int):
        self.store, self.run_id = store, run_id
        self.applied: int | None = None
        try:
            nice = int(os.environ.get(NICE_ENV, "0") or 0)
        except ValueError:
            nice = 0
        if nice > 0:
            try:
                os.nice(nice)
            except OSError:
                pass

    def poll(self) -> int | None:
        """Apply a changed share; returns the threads now in use (None: no share stored)."""
        import torch

        wanted = self.store.threads(self.run_id)
        if wanted is None or wanted == self.applied:
            return self.applied
        now = torch.get_num_threads()
        if wanted != now:
            torch.set_num_threads(wanted)
            print(f"CPU threads: {now} -> {wanted} (CPU runs training at the same time share the cores)",
                  flush=True)
        self.applied = wanted
        return wanted


def use_device_here(devices: str | None, gpus: list[str] | None = None) -> None:
    """For a run trained in this very process (`python -m core train` without --run): make its
    claimed GPU the current CUDA device, so "cuda" means that GPU here too."""
    ids = cuda_visible(devices)
    if ids is None or "," in ids:
        return
    gpus = gpu_ids() if gpus is None else gpus
    if ids in gpus:
        import torch

        torch.cuda.set_device(gpus.index(ids))
