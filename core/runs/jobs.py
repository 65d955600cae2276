"""Start, stop and resume training runs as their own OS processes.

A run trains in `python -m core train --run <id> --runs-dir <dir>` (the same command a user could
type), started detached (its own session), so it keeps going when a browser tab closes or the
Streamlit script reruns. The process writes everything to the run store; pages only read it.

    run = start_run(store, cfg, name="baseline")   # JobError when too many runs are active
    request_stop(store, run.id)                    # trainer finishes its step, saves last.pt, 'stopped'
    resume_run(store, run.id)                      # same run, from last.pt: steps and charts continue
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
from core.runs.store import Run, RunError, RunStateError, RunStore, process_alive

class JobError(RunError):
    """A run could not be started, stopped or resumed; the message says why and what to do."""


def trainer_command(store: RunStore, run_id: int, *, resume: bool = False) -> list[str]:
    cmd = [sys.executable, "-m", "core", "train", "--run", str(run_id), "--runs-dir", str(store.root)]
    return cmd + (["--resume"] if resume else [])


def trainer_env() -> dict[str, str]:
    """The environment of a trainer process: ours, with every folder setting as the absolute path
    this process resolved (settings.child_env), and unbuffered output for a live train.log."""
    env = settings.child_env()
    env["PYTHONUNBUFFERED"] = "1"
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
            cwd=store.run_dir(run.id), env=trainer_env(), stdin=subprocess.DEVNULL,
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


def start_run(store: RunStore, config: TrainConfig | dict[str, Any], name: str | None = None) -> Run:
    """Validate `config`, store a new run and start its trainer process in the background."""
    _reap_children()
    if not isinstance(config, TrainConfig):
        config = TrainConfig.from_dict(dict(config))  # ConfigError names the bad field
    try:
        run = store.create_run(config, name, max_active=settings.max_active_runs())
    except RunStateError as exc:
        raise JobError(str(exc)) from None
    return _start_trainer(store, run, resume=False)


def request_stop(store: RunStore, run_id: int) -> Run:
    """Ask a queued or running run to stop: the trainer ends its current step, saves last.pt and
    marks the run 'stopped'. Returns at once (poll the store to see the status change)."""
    try:
        return store.request_stop(run_id)
    except RunStateError as exc:
        raise JobError(str(exc)) from None


def resume_run(store: RunStore, run_id: int) -> Run:
    """Continue a stopped or interrupted run in a new background process, from its last
    checkpoint: the same run id, its steps and charts carrying on where they ended."""
    _reap_children()
    store.reconcile()
    run = store.get(run_id)
    if not run.can_resume:
        raise JobError(f"run {run.label!r} is {run.status}; only a stopped or interrupted run can be resumed")
    _end_leftover_trainer(run)
    try:
        store.requeue(run.id, max_active=settings.max_active_runs())
    except RunStateError as exc:
        raise JobError(str(exc)) from None
    return _start_trainer(store, run, resume=True)


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
