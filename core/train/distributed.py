"""Data-parallel training on N processes: PyTorch's own torch.distributed, started by torchrun.

    torchrun --standalone --nproc-per-node 2 -m core -- train --run 7 --runs-dir runs
    # what `python -m core train --nproc 2 ...` and the Training page start (torchrun_command).
    # The `--` stops torchrun's own parser from reading `--run` as an abbreviation of its
    # --run-path (Python 3.11's argparse refuses it as ambiguous); core's CLI drops the `--`.

Every process ("rank") runs the same engine.fit with a World (start() joins the process group:
NCCL on CUDA, one GPU per process; gloo on the CPU). What changes under a World, and why:

  data        every rank keeps the whole split in memory (it is small) and draws the same
              seeded permutation and augmentation each epoch (ShardedBatches); of each batch,
              rank r takes its contiguous slice of batch_size / N images. `batch_size` is the
              global batch (the images of one optimiser step over all ranks), so the learning
              rate means the same at any N and a run can resume with another N.
  gradients   DistributedDataParallel averages each step's gradients over the ranks: the step
              is the one-process step over the union of the slices (for nets without batch
              norm, equal up to float rounding: tests/test_distributed.py).
  batch norm  per rank (not SyncBatchNorm): each rank normalises its own slice (at least 128
              images per rank for gpu_cnn on 8 GPUs), which costs no communication, whereas
              SyncBatchNorm all-reduces twice per norm layer per step. The running statistics
              of rank 0 are broadcast before every evaluation (sync_buffers), so the evaluated
              and checkpointed model is rank 0's on every rank.
  evaluation  each rank infers its share of the test (and validation) images; the shares'
              logits are gathered (all_gather), so every rank scores the whole split exactly as
              one process would, and rank 0 hands the logits to the prediction history.
  reports     the training loss and accuracy sums are all-reduced (sum_counts) at each report
              and at the end of each epoch: NaN detection sees the same global number on every
              rank, so all of them declare `diverged` at the same step.
  decisions   stop requests and controls come from the run store, which only rank 0 reads:
              every AGREE_EVERY steps rank 0 asks and broadcasts its answer (Agreement), so all
              ranks stop or change the learning rate after the same step. A stop then saves
              last.pt as for one process; resume works with any N.
  writes      only rank 0 writes metrics, heartbeats, history and checkpoints.
  failures    the process group has a timeout (CIFARLAB_DIST_TIMEOUT_S, default 180 s): a
              rank that dies or hangs makes the others' next collective fail within it (a
              killed process's sockets close at once, so usually far sooner); torchrun then
              ends the remaining ones, and rank 0 records the run `interrupted` (resumable).

Several machines: the same `-m core -- train --run ID --runs-dir SHARED` on each, under
`torchrun --nnodes M --nproc-per-node G --rdzv-backend c10d --rdzv-endpoint HOST:PORT`
(multinode_command), with the runs folder on a shared file system.
"""
from __future__ import annotations

import math
import os
import re
import socket
import sys
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn

from core.train.batches import BatchIterator
from core.train.config import ConfigError
from core.train.control import Control
from core.train.device import DeviceError, resolve_device

TIMEOUT_ENV = "CIFARLAB_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 180.0   # the longest any rank waits in one collective (checkpoint writes included)
AGREE_EVERY = 8             # steps between two agreements on stop requests and controls
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class RankLostError(RuntimeError):
    """Another training process ended or stopped answering; the run can resume from its last
    checkpoint (the worker records it `interrupted`)."""


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes."""
    rank: int                 # 0 .. size-1; rank 0 talks to the run store
    size: int                 # processes in all
    local_rank: int           # on this machine (the GPU it uses)
    local_size: int           # processes on this machine
    backend: str              # "nccl" | "gloo"
    device: torch.device

    @property
    def leader(self) -> bool:
        return self.rank == 0

    @property
    def machines(self) -> int:
        return max(1, self.size // max(self.local_size, 1))


# ---- launching --------------------------------------------------------------------------------

def launched_by_torchrun(env: dict[str, str] | None = None) -> bool:
    """Whether this process is one of torchrun's workers (its environment says so)."""
    env = os.environ if env is None else env
    return all(name in env for name in TORCHRUN_VARS)


def max_processes(device: str = "auto") -> int:
    """How many processes a run may use on this machine: one per GPU, else one per CPU core."""
    dev = resolve_device(device)
    if dev.type == "cuda":
        return torch.cuda.device_count()
    if dev.type == "cpu":
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1


def check_processes(nproc: int, device: str, batch_size: int, *, per_machine: int | None = None) -> None:
    """ConfigError("nproc", ...) when `nproc` processes cannot train this config here: more than
    this machine's GPUs (or CPU cores), MPS (no data parallelism), or a batch that does not split
    evenly. `per_machine`: the processes on this machine when several machines share the run."""
    if nproc < 1:
        raise ConfigError("nproc", f"must be at least 1, got {nproc}")
    if batch_size % nproc:
        raise ConfigError("nproc", f"must divide the batch size ({batch_size:,} images: each process takes "
                                   f"an equal share of every batch), got {nproc}")
    if nproc == 1:
        return
    try:
        dev = resolve_device(device)
    except DeviceError as exc:
        raise ConfigError("device", str(exc)) from None
    if dev.type not in ("cuda", "cpu"):
        raise ConfigError("nproc", f"data-parallel runs need CUDA GPUs or the CPU, not {dev.type}; "
                                   "choose 1 process, or device cpu")
    here, most = per_machine or nproc, max_processes(device)
    if here > most:
        what = f"{most} GPU{'s' if most != 1 else ''}" if dev.type == "cuda" else f"{most} CPU cores"
        raise ConfigError("nproc", f"this machine has {what}: choose at most {most} processes, got {here}")


def torchrun_command(run_id: int, runs_dir: str | os.PathLike, nproc: int, *, resume: bool = False,
                     python: str | None = None) -> list[str]:
    """The one-machine launch: torchrun (as `python -m torch.distributed.run`, so the same Python
    environment is used) starting `nproc` trainers of stored run `run_id`."""
    cmd = [python or sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           str(nproc), "-m", "core", "--", "train", "--run", str(run_id), "--runs-dir", str(runs_dir)]
    return cmd + (["--resume"] if resume else [])


def multinode_command(run_id: int, runs_dir: str | os.PathLike, *, nnodes: int, nproc_per_node: int,
                      endpoint: str) -> str:
    """What to type on each of `nnodes` machines (the runs folder on a shared file system)."""
    return (f"torchrun --nnodes {nnodes} --nproc-per-node {nproc_per_node} --rdzv-backend c10d "
            f"--rdzv-endpoint {endpoint} --rdzv-id cifarlab-run-{run_id} -m core -- train --run {run_id} "
            f"--runs-dir {runs_dir} --resume")


def launch_env(env: dict[str, str], nproc: int, device: str) -> dict[str, str]:
    """The environment for torchrun. OMP_NUM_THREADS is the threads of the whole run on this
    machine, which start() splits between its processes: all the cores for a CPU run, unless the
    caller (e.g. the queue's thread split) set it already. (torchrun alone would set 1.)"""
    env = dict(env)
    if nproc > 1 and "OMP_NUM_THREADS" not in env and resolve_device(device).type == "cpu":
        env["OMP_NUM_THREADS"] = str(max_processes("cpu"))
    return env


# ---- joining and leaving the process group ----------------------------------------------------

def timeout_s() -> float:
    raw = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        raise ConfigError(TIMEOUT_ENV, f"must be a number of seconds, got {raw!r}") from None
    return value if value > 0 else DEFAULT_TIMEOUT_S


def start(device: str, env: dict[str, str] | None = None) -> World:
    """Join the run's process group (torchrun's environment names it): NCCL with one GPU per
    process when the run trains on CUDA, gloo on the CPU. ConfigError when this machine cannot."""
    env = os.environ if env is None else env
    rank, size = int(env["RANK"]), int(env["WORLD_SIZE"])
    local_rank = int(env["LOCAL_RANK"])
    local_size = int(env.get("LOCAL_WORLD_SIZE", size))
    dev = resolve_device(device)
    if dev.type == "cuda":
        if local_size > torch.cuda.device_count():
            raise ConfigError("nproc", f"{local_size} processes on this machine but it has "
                                       f"{torch.cuda.device_count()} GPUs: one process per GPU")
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
        backend = "nccl"
    elif dev.type == "cpu":
        backend = "gloo"
        # OMP_NUM_THREADS holds the run's threads on this machine (launch_env): an equal share each.
        try:
            threads = int(env.get("OMP_NUM_THREADS", "") or torch.get_num_threads())
        except ValueError:
            threads = torch.get_num_threads()
        torch.set_num_threads(max(1, threads // local_size))
    else:
        raise ConfigError("nproc", f"data-parallel runs need CUDA GPUs or the CPU, not {dev.type}")
    kwargs: dict[str, Any] = {"backend": backend, "timeout": timedelta(seconds=timeout_s())}
    if backend == "nccl":
        kwargs["device_id"] = dev       # bind the communicator to this process's GPU at once
    dist.init_process_group(**kwargs)
    return World(rank, size, local_rank, local_size, backend, dev)


def finish() -> None:
    """Leave the process group (each process, whatever happened)."""
    if dist.is_available() and dist.is_initialized():
        try:
            dist.destroy_process_group()
        except Exception:  # a group broken by a lost rank: nothing left to tidy
            pass


def describe(world: World) -> str:
    """The run's device as the store shows it: '2 processes × cpu (gloo, 1 thread each)'."""
    if world.device.type == "cuda":
        what = f"cuda ({torch.cuda.get_device_name(world.device)}, {world.backend})"
    else:
        threads = torch.get_num_threads()
        what = f"cpu ({world.backend}, {threads} thread{'s' if threads != 1 else ''} each)"
    where = f" on {world.machines} machines" if world.machines > 1 else ""
    return f"{world.size} process{'es' if world.size != 1 else ''}{where} × {what}"


# ---- talking between ranks --------------------------------------------------------------------

def _collective(what: str, fn: Callable[[], Any]) -> Any:
    """Run one collective; a lost or silent rank becomes RankLostError saying so."""
    try:
        return fn()
    except RankLostError:
        raise
    except Exception as exc:  # gloo: RuntimeError / DistBackendError; NCCL: DistBackendError, timeouts
        raise RankLostError(f"another training process ended or stopped answering ({what}: "
                            f"{_first_sentence(str(exc)) or type(exc).__name__})") from exc


def broadcast(world: World, obj: Any = None) -> Any:
    """Rank 0's `obj` on every rank (pickled; small things only)."""
    box = [obj if world.leader else None]
    _collective("broadcast", lambda: dist.broadcast_object_list(box, src=0))
    return box[0]


def all_ok(world: World, error: str | None) -> None:
    """Every rank says whether its set-up worked; RankSetupError on all when one did not."""
    mine = None if error is None else f"process {world.rank} on {socket.gethostname()}: {error}"
    found: list[Any] = [None] * world.size
    _collective("set-up check", lambda: dist.all_gather_object(found, mine))
    problems = [p for p in found if p]
    if problems:
        raise RankSetupError("; ".join(problems))


class RankSetupError(RuntimeError):
    """A training process could not set itself up (missing data on its machine, ...)."""


# How the backends word a peer that is gone or silent (gloo, NCCL, the c10d store), for errors
# raised inside DDP's own gradient all-reduce, which do not pass through _collective.
_LOST_WORDS = ("connection closed", "connection reset", "broken pipe", "timed out", "timeout",
               "socket", "nccl", "gloo", "peer")


def lost_rank_message(exc: BaseException) -> str | None:
    """What to tell the user when `exc` means another rank ended or hung; None otherwise."""
    if isinstance(exc, RankLostError):
        return str(exc)
    if not (dist.is_available() and dist.is_initialized()):
        return None
    dist_error = getattr(dist, "DistError", ())
    text = str(exc).strip()
    if isinstance(exc, dist_error) or (isinstance(exc, RuntimeError) and any(w in text.lower() for w in _LOST_WORDS)):
        return f"another training process ended or stopped answering ({_first_sentence(text) or type(exc).__name__})"
    return None


def _first_sentence(text: str) -> str:
    """'Connection closed by peer [127.0.0.1]:11648' from a backend's message (its source file
    location and advice dropped)."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    line = re.sub(r"^\[[^\]]*\.(cc|cpp|h|py):\d+\]\s*", "", line)
    return line.split(". ")[0].rstrip(".")[:200]


def sum_counts(world: World, loss_sum: torch.Tensor, correct: torch.Tensor,
               seen: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(loss sum, correct, images) summed over every rank's share (one all_reduce)."""
    packed = torch.stack([loss_sum.detach().double(), correct.detach().double(),
                          torch.tensor(float(seen), dtype=torch.float64, device=loss_sum.device)])
    _collective("summing the training loss", lambda: dist.all_reduce(packed))
    return packed[0], packed[1], int(packed[2].item())   # .item(): sync point (report / epoch end)


def sync_buffers(world: World, *modules: nn.Module) -> None:
    """Rank 0's buffers (batch-norm running statistics) on every rank, before an evaluation."""
    for module in modules:
        for buf in module.buffers():
            _collective("sharing batch-norm statistics", lambda b=buf: dist.broadcast(b, src=0))


def gather_logits(world: World, infer_share: Callable[[slice], torch.Tensor], n: int) -> torch.Tensor:
    """Logits of all `n` images of a split: rank r infers its contiguous share (infer_share(slice)),
    the shares are gathered in order (equal-sized, padded), so every rank gets the whole (n, C)."""
    per = math.ceil(n / world.size) if n else 0
    lo = min(world.rank * per, n)
    mine = infer_share(slice(lo, min(lo + per, n)))
    classes = mine.shape[1] if mine.ndim == 2 else 10
    padded = torch.zeros(per, classes, dtype=torch.float32, device=mine.device)
    padded[:len(mine)] = mine
    parts = [torch.empty_like(padded) for _ in range(world.size)]
    _collective("gathering test logits", lambda: dist.all_gather(parts, padded))
    return torch.cat(parts)[:n]


def wrap(model: nn.Module, world: World) -> nn.Module:
    """DistributedDataParallel around `model` (rank 0's weights are copied to every rank here).
    Built again when the set of trainable parameters changes (the whitening bias freezing)."""
    from torch.nn.parallel import DistributedDataParallel

    ids = [world.device.index] if world.device.type == "cuda" else None
    return _collective("wrapping the model", lambda: DistributedDataParallel(model, device_ids=ids))


class Agreement:
    """Stop requests and controls that every rank applies after the same step.

    Only rank 0 has the real sources (the run store's stop flag and events, through the worker's
    callbacks); every AGREE_EVERY steps it asks them and broadcasts the answer. Between those
    steps nothing is asked and nothing changes. `should_stop()` and `controls()` take the place
    of fit's callbacks; whichever is called first after a step makes the exchange.
    """

    def __init__(self, world: World, step: Callable[[], int], should_stop: Callable[[], bool] | None,
                 controls: Callable[[], list[Control]] | None, every: int = AGREE_EVERY):
        self.world, self.step, self.every = world, step, every
        self._should_stop, self._controls = should_stop, controls
        self.at: int | None = None
        self.decision: tuple[bool, list[Control]] = (False, [])

    def _exchange(self) -> tuple[bool, list[Control]]:
        step = self.step()
        if step == self.at:
            return self.decision
        self.at = step
        if step % self.every:
            self.decision = (False, [])
            return self.decision
        answer = None
        if self.world.leader:
            stop = bool(self._should_stop()) if self._should_stop is not None else False
            answer = (stop, list(self._controls()) if self._controls is not None else [])
        self.decision = broadcast(self.world, answer)
        return self.decision

    def should_stop(self) -> bool:
        return self._exchange()[0]

    def controls(self) -> list[Control]:
        return self._exchange()[1]


class ShardedBatches(BatchIterator):
    """This rank's slice of each global batch: the same permutation and augmentation draws as
    one process (BatchIterator, same generator), so the union of the slices is its batch.

    len() is the global number of steps; the state (get_state / epoch_state) is the global
    iterator's, so a checkpoint resumes at any number of processes. Augmentation is drawn for
    the whole global batch (a cheap uint8 gather) and the slice kept, so every image gets the
    same crop and flip as in a one-process run; only the slice is normalised.
    """

    def __init__(self, *args: Any, world: World, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.batch_size % world.size:
            raise ConfigError("nproc", f"must divide the batch size ({self.batch_size:,}), got {world.size}")
        share = self.batch_size // world.size
        self.share = slice(world.rank * share, (world.rank + 1) * share)

    def _images(self, idx: torch.Tensor, seed: int, odd_epoch: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """This process's slice of the batch: augmentation is drawn for the whole batch, then sliced."""
        if not self.augment:
            idx = idx[self.share]
            return self.images[idx], idx
        return self._augmented(self.images[idx], idx, seed, odd_epoch)[self.share], idx[self.share]
