"""Train one stored run: the glue between the run store and core.train.engine.fit.

    result = run_stored(store, run_id, resume=False, progress=True)

What it does, in order:
  1. when resuming, picks the checkpoint to continue from (checkpoints.find_resume_point: last.pt,
     or the newest other one that loads). When none does, the run is left as it was (status,
     device, times, attempts; a requeued run goes back to `interrupted`) with a message naming
     the files and the choices, and NoUsableCheckpointError is raised: nothing is marked running;
  2. marks the run `running` with this process's pid and the device it trains on (and, after a
     fallback, a message saying which checkpoint it resumed from and why);
  3. loads the dataset named by the config (synthetic or CIFAR-10, core.data.dataset_root);
  4. calls engine.fit with callbacks (_Callbacks): on_start stores the engine's plan (steps per
     epoch, total steps); on_step / on_epoch buffer metrics and write them to the store in small
     batched transactions (about once a second, and at every epoch end) together with a
     heartbeat; should_stop reads the run's stop flag (at most every 0.5 s);
  5. marks the run completed / stopped / diverged with its final metrics. A problem of the
     machine (a checkpoint that could not be written: full disk, no permission, read-only disk)
     ends it `interrupted`, resumable, with the cause and the fix; any other exception marks it
     `failed` with the message (missing data: the data layer's message). Either is re-raised
     (environment problems as a CheckpointError or EnvironmentProblem: one line, no traceback).

Metric names in the store: on_step's keys as they are (`train_loss`, `train_acc`, one row per
reported step) and on_epoch's keys prefixed with `epoch_` (`epoch_train_loss`, `epoch_train_acc`,
`epoch_test_loss`, `epoch_test_acc`, `epoch_images_per_sec`, `epoch_elapsed_s`, `epoch_lr`, one
row per epoch at the step where that epoch ended). Resuming first drops rows logged after the
checkpoint's step, so the resumed run's rows continue without gaps or duplicates.

Prediction history: each epoch's test predictions go to `<run>/history.npz` (core.train.history,
written atomically); resuming first drops the epochs after the checkpoint's epoch, like the rows.

Controls (core.train.control): pending `events` rows are read with the stop flag (at most every
0.5 s) and handed to the engine, which applies them between steps; each is then recorded with
its step (mark_event_applied), a changed length updates the stored plan (total steps), and the
new learning rate is logged as an `lr` row at that step (plus one at step 0 of a fresh run).
Resuming hands the applied ones back to the engine, which replays them at their steps.

SIGTERM (and a first Ctrl+C) asks for a clean stop: the step ends, last.pt is saved, `stopped`.
"""
from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from core import data
from core.atomic_file import file_problem
from core.train.checkpoints import (CheckpointError, CheckpointWriteError, NoUsableCheckpointError, ResumePoint,
                                    find_resume_point)
from core.train.control import Control
from core.train import distributed
from core.train.config import ConfigError, TrainConfig
from core.train.device import DeviceError, describe_device
from core.train.distributed import World
from core.runs.queue import ThreadShare
from core.runs.progress import phase_row
from core.runs.store import Run, RunError, RunStateError, RunStore

if TYPE_CHECKING:
    from core.train.engine import AppliedControl, Plan

STEP_METRICS = ("train_loss", "train_acc")
EPOCH_PREFIX = "epoch_"
FLUSH_EVERY_S = 0.5         # metric rows reach the store twice a second: with the page's 1.5 s redraw,
                            # charts grow at least every 2 s (one small transaction each, about 1 ms)
REPORT_EVERY_S = 1.0        # a loss report at least every second (every log_every steps when that is
                            # sooner): the live charts grow at least every 2 s however slow the steps
STOP_CHECK_EVERY_S = 0.5    # the stop flag is read at most this often
HEARTBEAT_EVERY_S = 2.0     # a side thread proves the process is alive even in a long epoch

EpochListener = Callable[[int, int, dict[str, float]], None]


class EnvironmentProblem(RunError):
    """Training stopped because of the machine (a full disk, a folder it may not write); the run
    was left `interrupted` and the message says what to fix before Resume."""


class _MetricWriter:
    """Buffers metric rows and writes them (plus a heartbeat) in one transaction per flush."""

    def __init__(self, store: RunStore, run_id: int, train_seconds_before: float, best_test_acc: float | None):
        self.store, self.run_id = store, run_id
        self.best_test_acc = best_test_acc
        self.rows: list[tuple[int, int, str, float, float]] = []
        self.last_flush = time.monotonic()
        self.session_start = time.monotonic()
        self.train_seconds_before = train_seconds_before
        self.lock = threading.Lock()

    def train_seconds(self) -> float:
        return self.train_seconds_before + time.monotonic() - self.session_start

    def add(self, rows: list[tuple[int, int, str, float, float]], *, force: bool = False) -> None:
        with self.lock:
            self.rows.extend(rows)
        if force or time.monotonic() - self.last_flush >= FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            rows, self.rows = self.rows, []
        if rows:
            self.store.log_metrics(self.run_id, rows)
        self.store.heartbeat(self.run_id, train_seconds=self.train_seconds(), best_test_acc=self.best_test_acc)
        self.last_flush = time.monotonic()


class _Heartbeat(threading.Thread):
    def __init__(self, writer: _MetricWriter):
        super().__init__(name="cifarlab-heartbeat", daemon=True)
        self.writer = writer
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_EVERY_S):
            try:
                self.writer.store.heartbeat(self.writer.run_id, train_seconds=self.writer.train_seconds())
            except Exception:  # a busy database must not kill training; the next beat retries
                pass

    def stop(self) -> None:
        """No more beats: called before the final status is written, so that a late beat cannot
        revive the run it just ended (heartbeat() revives an `interrupted` run of this pid)."""
        self.done.set()
        if self.is_alive():
            self.join(timeout=5)


class _StopSignals:
    """SIGTERM / first SIGINT -> clean stop; a second SIGINT -> KeyboardInterrupt."""

    def __init__(self) -> None:
        self.requested = False
        self.previous: dict[int, object] = {}

    def __enter__(self) -> "_StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


class _Callbacks:
    """engine.fit's callbacks for one stored run: the plan, metric rows, the stop flag."""

    def __init__(self, store: RunStore, run_id: int, writer: _MetricWriter, signals: _StopSignals,
                 listener: EpochListener | None = None):
        self.store, self.run_id = store, run_id
        self.writer, self.signals, self.listener = writer, signals, listener
        self.stop_checked_at = 0.0
        self.stop_flag = False
        self.controls_checked_at = 0.0
        self.handed: set[int] = set()      # event ids given to the engine
        self.first_lr: float | None = None  # a fresh run logs its starting rate at step 0
        self.best_val_acc: float | None = None  # with a validation split (set from the rows on resume)
        self.threads: ThreadShare | None = None  # the run's share of the CPU threads (core.runs.queue)

    def on_phase(self, phase: str, step: int, epoch: int) -> None:
        """What the trainer starts doing (core.runs.progress.PHASES): a `phase_<name>` row at that
        step, written at once, so a page can say "testing" while the test runs."""
        self.writer.add([(step, epoch, phase_row(phase), 1.0, time.time())], force=True)

    def on_start(self, plan: Plan) -> None:
        """The engine's own step counts (engine.Plan) go to the store for progress bars."""
        self.store.set_plan(self.run_id, steps_per_epoch=plan.steps_per_epoch, total_steps=plan.total_steps)
        if self.first_lr is not None:
            self.writer.add([(0, 1, "lr", self.first_lr, time.time())])

    def controls(self) -> list:
        """New controls from the store (read at most every STOP_CHECK_EVERY_S), each handed once."""
        from core.train.control import Control

        now = time.monotonic()
        if now - self.controls_checked_at < STOP_CHECK_EVERY_S:
            return []
        self.controls_checked_at = now
        new = [e for e in self.store.events(self.run_id, pending=True) if e.id not in self.handed]
        self.handed.update(e.id for e in new)
        return [Control(e.kind, e.value, id=e.id) for e in new]

    def on_control(self, applied: AppliedControl) -> None:
        """Record where the engine applied a control; the new rate as an `lr` row; the new length."""
        self.store.mark_event_applied(applied.control.id, step=applied.step, epoch=applied.epoch,
                                      note=applied.note)
        self.writer.add([(applied.step, applied.epoch, "lr", applied.lr, time.time())], force=True)
        if applied.control.kind == "epochs":
            run = self.store.get(self.run_id)
            self.store.set_plan(self.run_id, steps_per_epoch=run.steps_per_epoch or 0,
                                total_steps=applied.total_steps)

    def should_stop(self) -> bool:
        """A signal stops at once; the store's stop flag is read at most every STOP_CHECK_EVERY_S."""
        if self.signals.requested:
            return True
        now = time.monotonic()
        if now - self.stop_checked_at >= STOP_CHECK_EVERY_S:
            self.stop_checked_at = now
            self.stop_flag = self.store.stop_requested(self.run_id)
            if self.threads is not None:
                self.threads.poll()  # another CPU run started or ended: follow the new split
        return self.stop_flag

    def on_step(self, step: int, epoch: int, metrics: dict[str, float]) -> None:
        now = time.time()  # when the step was reported, not when the row is written
        self.writer.add([(step, epoch, name, value, now) for name, value in metrics.items()])

    def on_epoch(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        now = time.time()
        writer = self.writer
        test_acc, val_acc = metrics.get("test_acc"), metrics.get("val_acc")
        # A validation split picks best.pt: the run's best is best.pt's test accuracy. Without one
        # there is no best (the last checkpoint is the model; final_test_acc says how good).
        if val_acc is not None and (self.best_val_acc is None or val_acc > self.best_val_acc):
            self.best_val_acc, writer.best_test_acc = val_acc, test_acc
        writer.add([(step, epoch, EPOCH_PREFIX + name, value, now) for name, value in metrics.items()], force=True)
        if self.listener is not None:
            self.listener(epoch, step, metrics)


def run_stored(store: RunStore, run_id: int, *, resume: bool = False, progress: bool = False,
               on_epoch: EpochListener | None = None, world: World | None = None):
    """Train stored run `run_id` in this process; returns engine.FitResult.

    `resume=True` continues from the run's newest checkpoint that loads (from scratch when there
    is none yet). `on_epoch` is an extra listener (the CLI prints the tutorial's lines with it).
    `world`: this process is rank 0 of a data-parallel run (train_distributed): it alone talks to
    the store and hands the other ranks what they need to start (follow_stored).
    """
    from core.train import engine  # torch is imported here, not when the store is used
    from core.train.history import HistoryRecorder

    run = store.get(run_id)
    if not resume and run.status != "queued":
        hint = "; pass --resume to continue it" if run.can_resume else ""
        raise RunStateError(f"run {run.label!r} is {run.status}, not queued{hint}")
    if resume and run.status not in ("queued", "stopped", "interrupted"):
        raise RunStateError(f"run {run.label!r} is {run.status}; only a stopped or interrupted run can be resumed")
    cfg = run.config
    try:
        device = describe_device(cfg.device) if world is None else distributed.describe(world)
    except ValueError as exc:  # a device this machine lacks (DeviceError)
        store.mark_running(run_id, pid=os.getpid(), device=cfg.device)
        store.mark_finished(run_id, "failed", str(exc))
        raise
    point = _resume_point(store, run) if resume else None
    # Rows logged after the checkpoint are dropped before the run shows as running again,
    # so a page that starts reading this attempt never sees them.
    store.truncate_metrics(run_id, after_step=point.step if point is not None else -1)
    history = HistoryRecorder(store.run_dir(run_id), keep_through=point.epoch if point is not None else 0)
    note = point.note if point is not None else None
    store.mark_running(run_id, pid=os.getpid(), device=device, message=note)
    writer = _MetricWriter(store, run_id, run.train_seconds if point is not None else 0.0,
                           run.best_test_acc if point is not None and cfg.val_images else None)
    beat = _Heartbeat(writer)
    beat.start()
    try:
        with _StopSignals() as signals:
            writer.add([(point.step if point else 0, point.epoch + 1 if point else 1, phase_row("starting"), 1.0,
                         time.time())], force=True)   # loading the images, building the model
            dataset = data.load_dataset(cfg.dataset)  # read from data.dataset_root(cfg.dataset)
            calls = _Callbacks(store, run_id, writer, signals, on_epoch)
            calls.threads = ThreadShare(store, run_id)
            if world is None:   # a data-parallel run's threads are split at launch (distributed.start)
                calls.threads.poll()
            if point is None:
                calls.first_lr = cfg.lr * engine.lr_factor(cfg, 0, 1)
            elif cfg.val_images:
                val = store.metrics(run_id).query("name == 'epoch_val_acc'")["value"]
                calls.best_val_acc = float(val.max()) if len(val) else None
            replay = [Control(e.kind, e.value, id=e.id, step=e.step)
                      for e in store.events(run_id, pending=False)] if resume else []
            if world is not None:   # the other ranks start from what rank 0 read in the store
                calls.threads = None  # a data-parallel CPU run's threads are split at launch (launch_env)
                distributed.broadcast(world, {"config": cfg.to_json(), "replay": replay,
                                              "checkpoint": point.path.name if point is not None else None})
                distributed.all_ok(world, None)
            result = engine.fit(cfg, dataset, store.run_dir(run_id), on_start=calls.on_start,
                                on_step=calls.on_step, on_epoch=calls.on_epoch, should_stop=calls.should_stop,
                                resume=point is not None, resume_from=point, progress=progress,
                                on_predictions=history.record, controls=calls.controls,
                                on_control=calls.on_control, replay=replay, on_phase=calls.on_phase,
                                world=world, report_every_s=REPORT_EVERY_S)
        writer.flush()
        beat.stop()
        final = dict(result.final or {})
        message = f"{result.message} ({note})" if note else result.message
        store.mark_finished(run_id, result.status, message, best_test_acc=result.best_test_acc,
                            final_test_acc=final.get("test_acc"),
                            final_metrics={**final, "epoch": result.epoch, "step": result.step,
                                           "train_seconds": writer.train_seconds()})
        start_next(store)
        return result
    except KeyboardInterrupt:
        _finish_after_error(store, run_id, writer, beat, "interrupted",
                            "Interrupted by Ctrl+C; resume continues from the last checkpoint.")
        raise
    except BaseException as exc:
        problem = environment_problem(exc, store.run_dir(run_id))
        if problem is None:
            message = str(exc) if isinstance(exc, data.DataError) else f"{type(exc).__name__}: {exc}"
            _finish_after_error(store, run_id, writer, beat, "failed", message)
            raise
        _finish_after_error(store, run_id, writer, beat, "interrupted", problem)
        if isinstance(exc, (CheckpointError, RunError)):
            raise
        raise EnvironmentProblem(problem) from exc
    finally:
        beat.stop()


def _resume_point(store: RunStore, run: Run) -> ResumePoint | None:
    """The checkpoint to resume `run` from (None: there is none yet, start from the beginning).

    When there are checkpoints but none can be resumed from, the stored run stays as it was,
    except for its message (and a run requeued for this attempt goes back to `interrupted`, so
    it is not left waiting for a process that gave up), and NoUsableCheckpointError is raised.
    """
    try:
        return find_resume_point(store.run_dir(run.id), model=run.config.model)
    except NoUsableCheckpointError as exc:
        message = (f"Cannot resume: {exc} Nothing was changed: the run is kept as it was. To train these "
                   f"settings again, create a new run with them; or delete this run.")
        try:
            if store.get(run.id).status == "queued":
                store.set_status(run.id, "interrupted", message)
            else:
                store.set_message(run.id, message)
        except RunError:
            pass  # the message matters less than the error below
        raise NoUsableCheckpointError(message, exc.folder, exc.tried) from exc


def environment_problem(exc: BaseException, run_dir: Path) -> str | None:
    """The message for a run stopped by the machine rather than by its own code (a checkpoint
    or another file that could not be written, a run database on a full or read-only disk), with
    the cause and the fix; None for anything else."""
    if isinstance(exc, CheckpointWriteError):
        return str(exc)
    lost = distributed.lost_rank_message(exc)   # data parallel: another process ended or hung
    if lost is not None:
        return f"Training stopped: {lost}. Resume continues from the last checkpoint (with any number of processes)."
    then = "then Resume: the run continues from its last good checkpoint"
    if isinstance(exc, OSError):
        where = Path(exc.filename) if isinstance(exc.filename, (str, os.PathLike)) else run_dir
        problem = file_problem(exc, where.parent if where != run_dir else run_dir)
        # A full disk is one wherever it is; "not writable" only describes our own folders (a
        # data file this user may not *read* raises EACCES too, and is not this kind of problem).
        ours = where == run_dir or run_dir.parent in where.parents
        if problem is None or (problem.kind != "full" and not ours):
            return None
        return f"Training stopped: {problem.cause}. {problem.fix}, {then}."
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "disk is full" in text:
            return (f"Training stopped: the run database could not be written ({exc}); the disk holding "
                    f"{run_dir.parent} may be full. Free some space there, {then}.")
        if "readonly" in text or "read-only" in text:
            return (f"Training stopped: the run database could not be written ({exc}). Make "
                    f"{run_dir.parent} and its runs.sqlite writable, {then}.")
    return None


def _finish_after_error(store: RunStore, run_id: int, writer: _MetricWriter, beat: _Heartbeat,
                        status: str, message: str) -> None:
    try:
        writer.flush()
    except Exception:
        pass
    beat.stop()
    try:
        store.mark_finished(run_id, status, message)
    except Exception:
        pass  # the original error matters more than a failure to record it
    start_next(store)


def start_next(store: RunStore) -> None:
    """This run's slot is free: start the next runs waiting in the queue (core.runs.jobs.
    start_queued), so the queue moves on with no page open. Never raises: the run's own end
    matters more."""
    from core.runs import jobs  # jobs starts trainers like this one: imported when needed

    try:
        jobs.start_queued(store)
    except Exception:
        pass


# ---- data-parallel runs (torchrun) ------------------------------------------------------------

def train_distributed(store: RunStore | None, runs_dir: str | os.PathLike, run_id: int, *, resume: bool = False,
                      progress: bool = False, on_epoch: EpochListener | None = None,
                      config: TrainConfig | None = None):
    """One of torchrun's processes for stored run `run_id` (core.train.distributed): joins the
    process group, then rank 0 (`store` given) trains it with run_stored and the others follow.

    Ranks other than 0 never open the run store (runs.sqlite is used from one machine only):
    they read the run's config.json (`config`, or from the run folder) for the device, and take
    the rest from rank 0. A machine that cannot hold its processes (too few GPUs, a batch that
    does not split) fails the run with the reason before anything trains.
    """
    run_dir = Path(runs_dir) / str(int(run_id))     # RunStore.run_dir's layout
    if config is None:
        config = store.get(run_id).config if store is not None else TrainConfig.from_json(
            (run_dir / "config.json").read_text())
    size = int(os.environ["WORLD_SIZE"])
    try:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", size))
        distributed.check_processes(size, config.device, config.batch_size, per_machine=local)
        world = distributed.start(config.device)
    except (ConfigError, DeviceError) as exc:
        if store is not None:   # rank 0 records why (the others fail the same way)
            _fail_before_training(store, run_id, config.device, f"{exc}")
        raise
    try:
        if store is not None:
            # torchrun sends SIGTERM to every process as soon as one fails: outside training (where
            # it means a clean stop) it must not kill rank 0 before the run's end is recorded.
            if threading.current_thread() is threading.main_thread():
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            return run_stored(store, run_id, resume=resume, progress=progress, on_epoch=on_epoch, world=world)
        return follow_stored(world, run_dir)
    finally:
        distributed.finish()


def follow_stored(world: World, run_dir: Path):
    """A data-parallel run's rank > 0: the config, resume point and replayed controls come from
    rank 0; stop requests and controls from its broadcasts during training. Its SIGINT and
    SIGTERM are ignored: rank 0 (which torchrun signals too) decides when every rank stops; a
    rank 0 that is gone ends this one through the process group (RankLostError), or torchrun
    kills it."""
    from core.train import engine
    from core.train.checkpoints import load_checkpoint

    for sig in (signal.SIGINT, signal.SIGTERM):
        if threading.current_thread() is threading.main_thread():
            signal.signal(sig, signal.SIG_IGN)
    start = distributed.broadcast(world)
    cfg = TrainConfig.from_json(start["config"])
    error, dataset, point = None, None, None
    try:
        dataset = data.load_dataset(cfg.dataset)
        if start["checkpoint"]:
            path = run_dir / start["checkpoint"]
            payload = load_checkpoint(path)
            point = ResumePoint(path, int(payload["step"]), int(payload["epoch"]), _payload=payload)
    except Exception as exc:   # its own machine's problem (data missing there, unshared folder)
        error = str(exc)
    distributed.all_ok(world, error)
    return engine.fit(cfg, dataset, run_dir, resume=point is not None, resume_from=point,
                      replay=start["replay"], world=world)


def _fail_before_training(store: RunStore, run_id: int, device: str, message: str) -> None:
    try:
        store.mark_running(run_id, pid=os.getpid(), device=device)
        store.mark_finished(run_id, "failed", message)
    except RunError:
        pass   # the run is not ours to end (another trainer holds it)
