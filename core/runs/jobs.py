"""Start, stop and resume training runs as their own OS processes.

A run trains in `python -m core train --run <id> --runs-dir <dir>` (the same command a user could
type), started detached (its own session), so it keeps going when a browser tab closes or the
Streamlit script reruns. The process writes everything to the run store; pages only read it.

    run = start_run(store, cfg, name="baseline")   # starts now, or waits in the queue (run.place)
    request_stop(store, run.id)                    # trainer finishes its step, saves last.pt, 'stopped'
                                                   # (a run still waiting in line is cancelled)
    resume_run(store, run.id)                      # same run, from last.pt: steps and charts continue
    start_queued(store)                            # start waiting runs while slots are free

The queue: a new or resumed run joins the line (status `queued`, `place` 1, 2, ...). start_queued
claims the first waiting run in one SQLite write transaction (RunStore.claim_next: BEGIN
IMMEDIATE) when fewer than CIFARLAB_MAX_ACTIVE_RUNS runs hold a slot and a device is free for it
(core.runs.queue.pick_device), launches its trainer, and repeats. It is called when a run is
started or resumed, by a trainer when it ends (core.runs.worker: the slot it frees goes to the
next run, with no page open), and by RunStore.reconcile() (every page, `python -m core runs`), so
a line left behind by a crash or a dashboard restart moves again. Two callers at once cannot both
claim a run or overfill the slots: the claim is one transaction, and the second waits for it.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core import settings
from core.atomic_file import file_problem
from core.train.config import TrainConfig
from core.runs import queue
from core.runs.store import QUEUE_STARTERS, Run, RunError, RunStateError, RunStore, process_alive

class JobError(RunError):
    """A run could not be started, stopped or resumed; the message says why and what to do."""


def trainer_command(store: RunStore, run_id: int, *, resume: bool = False) -> list[str]:
    """`python -m core train --run ID ...`; a run with nproc > 1 under torchrun (one machine:
    core.train.distributed.torchrun_command; OMP_NUM_THREADS, when set, is the run's whole share)."""
    nproc = store.get(run_id).config.nproc
    if nproc > 1:
        from core.train.distributed import torchrun_command
        return torchrun_command(run_id, store.root, nproc, resume=resume)
    cmd = [sys.executable, "-m", "core", "train", "--run", str(run_id), "--runs-dir", str(store.root)]
    return cmd + (["--resume"] if resume else [])


def trainer_env(run: Run | None = None) -> dict[str, str]:
    """The environment of a trainer process: ours, with every folder setting as the absolute path
    this process resolved (settings.child_env), and unbuffered output for a live train.log. For a
    claimed `run`: its GPU alone visible (CUDA_VISIBLE_DEVICES), or its share of the CPU threads
    (OMP_NUM_THREADS; the trainer follows later changes of its share itself)."""
    env = settings.child_env()
    env["PYTHONUNBUFFERED"] = "1"
    if run is not None and run.devices:
        env[queue.GPUS_ENV] = ",".join(queue.gpu_ids())  # the trainer may launch the next run
        env[queue.NICE_ENV] = str(queue.TRAINER_NICE)
        visible = queue.cuda_visible(run.devices)
        if visible is not None:
            env["CUDA_VISIBLE_DEVICES"] = visible
        if run.threads:
            env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(run.threads)
    return env


def _launch(store: RunStore, run: Run, *, resume: bool) -> int:
    log_path = store.log_path(run.id)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} "
                  f"{'resume' if resume else 'start'} run #{run.id} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            trainer_command(store, run.id, resume=resume),
            cwd=store.run_dir(run.id), env=trainer_env(run), stdin=subprocess.DEVNULL,
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    _CHILDREN[proc.pid] = proc
    return proc.pid


def start_lr_finder(config: TrainConfig, folder: str | os.PathLike | None = None) -> tuple[int, Path]:
    """Start the learning-rate finder (`python -m core lr-find`, core.train.lr_finder) for `config`
    in the background; returns (its pid, the JSON file it writes: core.train.lr_finder.read_result).
    No run is stored; the files go to `folder` (default: <runs dir>/lr-finder/<time>/)."""
    _reap_children()
    folder = Path(folder) if folder is not None else settings.runs_dir() / "lr-finder" / f"{time.time_ns()}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(config.to_json() + "\n")
    result = folder / "result.json"
    result.unlink(missing_ok=True)
    with open(folder / "finder.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "lr-find", "--config-file", str(folder / "config.json"),
             "--out", str(result)],
            cwd=folder, env=trainer_env(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True)
    _CHILDREN[proc.pid] = proc
    return proc.pid, result


# Popen objects of the trainers this process started, so they are reaped when they end.
_CHILDREN: dict[int, subprocess.Popen] = {}


def _reap_children() -> None:
    for pid, proc in list(_CHILDREN.items()):
        if proc.poll() is not None:
            del _CHILDREN[pid]


def start_run(store: RunStore, config: TrainConfig | dict[str, Any], name: str | None = None, *,
              sweep_id: int | None = None) -> Run:
    """Validate `config`, store a new run at the end of the queue and start waiting runs while
    slots are free: returns the run, training (its trainer starting) or waiting (`place`)."""
    _reap_children()
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(dict(config))  # ConfigError names the bad field
    settings.max_active_runs()  # a bad CIFARLAB_MAX_ACTIVE_RUNS is reported before anything is stored
    if config.nproc > 1:        # more processes than this machine's GPUs or cores: refused before it is stored
        from core.train.distributed import check_processes
        check_processes(config.nproc, config.device, config.batch_size)
    run = store.create_run(config, name, queue=True, sweep_id=sweep_id)
    problems: dict[int, JobError] = {}
    start_queued(store, problems=problems)
    if run.id in problems:
        raise problems[run.id]
    return store.get(run.id)


def start_queued(store: RunStore, max_active: int | None = None, *,
                 problems: dict[int, JobError] | None = None) -> list[Run]:
    """Start the waiting runs, first in line first, while fewer than `max_active` (default:
    CIFARLAB_MAX_ACTIVE_RUNS) hold a slot and a device is free; re-split the CPU threads.
    Returns the runs started; a trainer that could not be launched marks its run failed or
    interrupted (with the reason, also put in `problems`) and the next run is tried. Safe to
    call from several processes at once (see the module doc)."""
    if store.read_only:
        return []
    max_active = settings.max_active_runs() if max_active is None else max_active
    store.reconcile(start_queued=False)  # slots of trainers that died are free again
    started: list[Run] = []
    gpus = queue.gpu_ids()
    while True:
        run = store.claim_next(max_active, lambda r, held: queue.pick_device(r, held, gpus))
        if run is None:
            break
        queue.rebalance_threads(store)  # its share (and the others' new one) before it starts
        run = store.get(run.id)
        resume = run.attempts > 0 or store.checkpoint_path(run.id, "last") is not None
        try:
            started.append(_start_trainer(store, run, resume=resume))
        except JobError as exc:  # that run is marked failed/interrupted with the reason; try the next one
            if problems is not None:
                problems[run.id] = exc
    queue.rebalance_threads(store)
    return started


if start_queued not in QUEUE_STARTERS:
    QUEUE_STARTERS.append(start_queued)  # RunStore.reconcile() moves a waiting line


def request_stop(store: RunStore, run_id: int) -> Run:
    """Ask a queued or running run to stop: the trainer ends its current step, saves last.pt and
    marks the run 'stopped'. A run still waiting in the queue is cancelled instead (`stopped`,
    nothing trained). Returns at once (poll the store to see the status change)."""
    try:
        if store.get(run_id).waiting:
            return store.cancel(run_id)
        return store.request_stop(run_id)
    except RunStateError as exc:
        raise JobError(str(exc)) from None


def cancel(store: RunStore, run_id: int) -> Run:
    """Take a waiting run out of the queue (`stopped`; Resume puts it back at the end of the line)."""
    try:
        return store.cancel(run_id)
    except RunStateError as exc:
        raise JobError(str(exc)) from None


def move_up(store: RunStore, run_id: int, *, to_front: bool = False) -> Run:
    """Move a waiting run one place up the queue (or to the front)."""
    try:
        return store.move_up(run_id, to_front=to_front)
    except RunStateError as exc:
        raise JobError(str(exc)) from None


def resume_run(store: RunStore, run_id: int) -> Run:
    """Continue a stopped or interrupted run in a new background process, from its last
    checkpoint: the same run id, its steps and charts carrying on where they ended. It goes to
    the end of the queue and starts when a slot is free (at once when one is)."""
    _reap_children()
    store.reconcile()
    run = store.get(run_id)
    if not run.can_resume:
        raise JobError(f"run {run.label!r} is {run.status}; only a stopped or interrupted run can be resumed")
    _end_leftover_trainer(run)
    settings.max_active_runs()
    try:
        store.requeue(run.id, queue=True)
    except RunStateError as exc:
        raise JobError(str(exc)) from None
    problems: dict[int, JobError] = {}
    start_queued(store, problems=problems)
    if run.id in problems:
        raise problems[run.id]
    return store.get(run.id)


def _start_trainer(store: RunStore, run: Run, *, resume: bool) -> Run:
    """Launch the trainer of a queued run and record its pid; a launch that fails fails the run."""
    try:
        pid = _launch(store, run, resume=resume)
    except OSError as exc:
        # The machine's doing (no space for train.log, a folder it may not write): nothing of the
        # run is lost, so it stays resumable and says what to fix. Anything else fails it.
        folder = store.run_dir(run.id)
        problem = file_problem(exc, Path(exc.filename).parent if exc.filename else folder)
        if problem is not None:
            message = (f"Could not {'resume' if resume else 'start'} the training process: {problem.cause}. "
                       f"{problem.fix}, then Resume.")
            store.mark_finished(run.id, "interrupted", message)
            raise JobError(f"run {run.label!r}: {message}") from exc
        store.mark_finished(run.id, "failed", f"could not start the training process: {exc}")
        raise JobError(f"could not {'resume' if resume else 'start'} the training process for run "
                       f"{run.label!r}: {exc}") from exc
    store.set_pid(run.id, pid)
    return store.get(run.id)


def kill_trainer(run: Run, sig: int = signal.SIGKILL, *, wait_s: float = 10.0) -> bool:
    """Send `sig` to a run's trainer (its whole process group) if it is one of our trainers.
    Returns True when a process was signalled. For tests and for clearing a hung trainer."""
    if not run.pid or run.pid == os.getpid() or not _is_trainer_of(run.pid, run.id):
        return False
    try:
        os.killpg(run.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(run.pid, sig)
        except (ProcessLookupError, PermissionError):
            return False
    deadline = time.time() + wait_s
    while time.time() < deadline and process_alive(run.pid):
        time.sleep(0.05)
    _reap_children()
    return True


def _is_trainer_of(pid: int, run_id: int) -> bool:
    """Best effort against pid reuse: does process `pid` run `core train --run <run_id>`?"""
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return process_alive(pid)  # no /proc (macOS): trust the pid we recorded
    words = [a.decode(errors="replace") for a in args if a]
    return "train" in words and "--run" in words and str(run_id) in words


def _end_leftover_trainer(run: Run) -> None:
    """An interrupted run whose old process still exists (hung, or asleep with a stale heartbeat)
    must not train twice: end that process before starting the new one."""
    if run.pid and process_alive(run.pid) and _is_trainer_of(run.pid, run.id):
        kill_trainer(run, signal.SIGKILL)
