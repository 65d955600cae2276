"""Train one stored run: the glue between the run store and core.engine.fit.

    result = run_stored(store, run_id, resume=False, progress=True)

What it does, in order:
  1. marks the run `running` with this process's pid and the device it trains on;
  2. loads the dataset named by the config (synthetic or CIFAR-10, roots from core.settings);
  3. calls engine.fit with callbacks that buffer metrics and write them to the store in small
     batched transactions (about once a second, and at every epoch end) together with a
     heartbeat, and a should_stop that reads the run's stop flag (at most every 0.5 s);
  4. marks the run completed / stopped / diverged with its final metrics. Any exception marks it
     `failed` with the message (missing data: the data layer's message) and is re-raised.

Metric names in the store: on_step's keys as they are (`train_loss`, `train_acc`, one row per
reported step) and on_epoch's keys prefixed with `epoch_` (`epoch_train_loss`, `epoch_train_acc`,
`epoch_test_loss`, `epoch_test_acc`, `epoch_images_per_sec`, `epoch_elapsed_s`, `epoch_lr`, one
row per epoch at the step where that epoch ended). Resuming first drops rows logged after the
checkpoint's step, so the resumed run's rows continue without gaps or duplicates.

SIGTERM (and a first Ctrl+C) asks for a clean stop: the step ends, last.pt is saved, `stopped`.
"""
from __future__ import annotations

import os
import signal
import threading
import time
from typing import Callable

from core import data, settings
from core.train.checkpoints import CheckpointError, load_checkpoint
from core.train.device import describe_device
from core.runs.store import RunStateError, RunStore

STEP_METRICS = ("train_loss", "train_acc")
EPOCH_PREFIX = "epoch_"
FLUSH_EVERY_S = 1.0         # metric rows reach the store about once a second
STOP_CHECK_EVERY_S = 0.5    # the stop flag is read at most this often
HEARTBEAT_EVERY_S = 2.0     # a side thread proves the process is alive even in a long epoch

EpochListener = Callable[[int, int, dict[str, float]], None]


def steps_per_epoch(n_train: int, batch_size: int) -> int:
    """Optimiser steps in one epoch, as core.engine counts them (drops a short last batch)."""
    return max(n_train // batch_size, 1) if n_train >= batch_size else 1


def dataset_root(kind: str):
    return settings.synthetic_root() if kind == "synthetic" else settings.data_root()


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


def run_stored(store: RunStore, run_id: int, *, resume: bool = False, progress: bool = False,
               on_epoch: EpochListener | None = None):
    """Train stored run `run_id` in this process; returns engine.FitResult.

    `resume=True` continues from the run's last.pt (from scratch when there is none yet).
    `on_epoch` is an extra listener (the CLI prints the tutorial's lines with it).
    """
    from core.train import engine  # torch is imported here, not when the store is used

    run = store.get(run_id)
    if not resume and run.status != "queued":
        hint = "; pass --resume to continue it" if run.can_resume else ""
        raise RunStateError(f"run {run.label!r} is {run.status}, not queued{hint}")
    if resume and run.status not in ("queued", "stopped", "interrupted"):
        raise RunStateError(f"run {run.label!r} is {run.status}; only a stopped or interrupted run can be resumed")
    cfg = run.config
    try:
        device = describe_device(cfg.device)
        # Rows logged after the checkpoint are dropped before the run shows as running again,
        # so a page that starts reading this attempt never sees them.
        last = store.checkpoint_path(run_id, "last")
        if resume and last is not None:
            try:
                resume_step = int(load_checkpoint(last)["step"])
            except (CheckpointError, KeyError) as exc:
                raise CheckpointError(f"cannot resume run #{run_id}: {exc}") from exc
        else:
            resume, resume_step = False, -1  # (re)starting from scratch: no stale rows
    except (ValueError, CheckpointError) as exc:
        store.mark_running(run_id, pid=os.getpid(), device=cfg.device)
        store.mark_finished(run_id, "failed", str(exc))
        raise
    store.truncate_metrics(run_id, after_step=resume_step)
    store.mark_running(run_id, pid=os.getpid(), device=device)
    writer = _MetricWriter(store, run_id, run.train_seconds if resume else 0.0,
                           run.best_test_acc if resume else None)
    beat = _Heartbeat(writer)
    beat.start()
    try:
        with _StopSignals() as signals:
            dataset = data.load_dataset(cfg.dataset, dataset_root(cfg.dataset))
            n_train = min(len(dataset.train.labels), cfg.train_subset or len(dataset.train.labels))
            per_epoch = steps_per_epoch(n_train, cfg.batch_size)
            store.set_plan(run_id, steps_per_epoch=per_epoch, total_steps=per_epoch * cfg.epochs)
            checked = {"at": 0.0, "stop": False}

            def should_stop() -> bool:
                if signals.requested:
                    return True
                now = time.monotonic()
                if now - checked["at"] >= STOP_CHECK_EVERY_S:
                    checked["at"] = now
                    checked["stop"] = store.stop_requested(run_id)
                return checked["stop"]

            def on_step(step: int, epoch: int, metrics: dict[str, float]) -> None:
                now = time.time()  # when the step was reported, not when the row is written
                writer.add([(step, epoch, name, value, now) for name, value in metrics.items()])

            def on_epoch_end(epoch: int, step: int, metrics: dict[str, float]) -> None:
                now = time.time()
                test_acc = metrics.get("test_acc")
                if test_acc is not None and (writer.best_test_acc is None or test_acc > writer.best_test_acc):
                    writer.best_test_acc = test_acc
                writer.add([(step, epoch, EPOCH_PREFIX + name, value, now) for name, value in metrics.items()],
                           force=True)
                if on_epoch is not None:
                    on_epoch(epoch, step, metrics)

            result = engine.fit(cfg, dataset, store.run_dir(run_id), on_step=on_step, on_epoch=on_epoch_end,
                                should_stop=should_stop, resume=resume, progress=progress)
        writer.flush()
        final = dict(result.final or {})
        store.mark_finished(run_id, result.status, result.message, best_test_acc=result.best_test_acc,
                            final_test_acc=final.get("test_acc"),
                            final_metrics={**final, "epoch": result.epoch, "step": result.step,
                                           "train_seconds": writer.train_seconds()})
        return result
    except KeyboardInterrupt:
        _finish_after_error(store, run_id, writer, "interrupted",
                            "Interrupted by Ctrl+C; resume continues from the last checkpoint.")
        raise
    except BaseException as exc:
        message = str(exc) if isinstance(exc, data.DataError) else f"{type(exc).__name__}: {exc}"
        _finish_after_error(store, run_id, writer, "failed", message)
        raise
    finally:
        beat.done.set()
        beat.join(timeout=5)


def _finish_after_error(store: RunStore, run_id: int, writer: _MetricWriter, status: str, message: str) -> None:
    try:
        writer.flush()
    except Exception:
        pass
    try:
        store.mark_finished(run_id, status, message)
    except Exception:
        pass  # the original error matters more than a failure to record it
