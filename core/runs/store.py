"""The run store: every training run, its status and its metrics, on SQLite in WAL mode.

    store = RunStore()                          # settings.runs_dir(), or RunStore("/some/folder")
    run = store.create_run(cfg, name="baseline")        # status "queued", folder root/<id>/config.json
    store.mark_running(run.id, pid=os.getpid(), device="cpu (2 threads)")
    store.log_metrics(run.id, [(step, epoch, "train_loss", 1.23), ...])   # upsert, one transaction
    store.mark_finished(run.id, "completed", best_test_acc=0.61, final_test_acc=0.60)
    frame = store.metrics(run.id, since_id=last_seen)   # only rows added since the last read

Layout on disk::

    root/runs.sqlite          runs + metrics + events (WAL: a trainer process writes while pages read;
                              events = controls of a running run: request_control, then the
                              trainer's mark_event_applied with the step)
    root/<id>/config.json     the run's TrainConfig (TrainConfig.from_json reads it back)
    root/<id>/run.json        name, status, times, device, accuracies (rewritten on each status change)
    root/<id>/last.pt         engine checkpoint: every epoch and on stop (resume starts here)
    root/<id>/previous.pt     the last.pt before it, until the run completes (resume's fallback)
    root/<id>/best.pt         with a validation split only: the epoch with the best validation accuracy
    root/<id>/train.log       the trainer's output when it runs in the background

Concurrency: each call opens its own short-lived connection (never shared between threads or
processes), with `busy_timeout` set, and writes in one short transaction. A reader never blocks
the trainer and the trainer never blocks a reader (WAL).

Statuses and the transitions the store accepts (anything else raises RunStateError)::

    queued      -> running | stopped | failed | interrupted
    running     -> completed | stopped | failed | diverged | interrupted
    stopped     -> queued | running                     (resume)
    interrupted -> queued | running                     (resume)
                   | completed | stopped | failed | diverged   (its process was alive after all)
    completed, failed, diverged: final

The queue: `queued` covers a run waiting in line for a slot (`queue_pos` set; its `place` is 1, 2,
... in line) and one taken out of the line whose trainer is starting (claim_next, one BEGIN
IMMEDIATE transaction; see core.runs.jobs for who claims). A slot is held by a `running` run or
a claimed `queued` one; CIFARLAB_MAX_ACTIVE_RUNS slots exist. Each claimed run records the device
it holds (`devices`: 'cuda:1', 'cpu', 'mps') and, on the CPU, its share of the threads.

Reads never write. A run whose status says `queued`/`running` but whose process is gone (dead
pid, or a heartbeat older than STALE_AFTER_S) is marked `interrupted` by one explicit call,
`reconcile()`, which the dashboard makes when it starts and before it lists runs, the CLI before
it lists or resumes, and `create_run`/`requeue` before they count active runs. It can be resumed.
A run waiting in line has no process by design and is never marked interrupted; reconcile() then
starts waiting runs while slots are free (QUEUE_STARTERS).
"""
from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import pandas as pd

from core import settings
from core.data.dataset import kind_label
from core.train.config import ConfigError, TrainConfig

STATUSES = ("queued", "running", "completed", "stopped", "failed", "diverged", "interrupted")
ACTIVE_STATUSES = frozenset({"queued", "running"})
RESUMABLE_STATUSES = frozenset({"stopped", "interrupted"})
FINAL_STATUSES = frozenset({"completed", "failed", "diverged"})
TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "stopped", "failed", "interrupted"}),
    "running": frozenset({"completed", "stopped", "failed", "diverged", "interrupted"}),
    "stopped": frozenset({"queued", "running"}),
    "interrupted": frozenset({"queued", "running", "completed", "stopped", "failed", "diverged"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "diverged": frozenset(),
}
# What reconcile() calls when runs wait in the queue: core.runs.jobs.start_queued, registered when
# the core.runs package is imported (the store itself starts no process and imports no launcher).
QUEUE_STARTERS: list[Callable[["RunStore"], Any]] = []
STALE_AFTER_S = 30.0      # a running run without a heartbeat for this long is interrupted
QUEUED_GRACE_S = 120.0    # a queued run with no process at all for this long is interrupted
DB_NAME = "runs.sqlite"
METRIC_COLUMNS = ["id", "run_id", "step", "epoch", "name", "value", "time"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL,
    config          TEXT NOT NULL,              -- TrainConfig.to_json()
    preset          TEXT,
    status          TEXT NOT NULL,
    dataset         TEXT NOT NULL,              -- 'cifar10' | 'synthetic'
    device          TEXT,
    pid             INTEGER,
    created_at      REAL NOT NULL,              -- unix seconds
    started_at      REAL,                       -- first time it trained
    finished_at     REAL,
    heartbeat_at    REAL,
    message         TEXT,
    best_test_acc   REAL,
    final_test_acc  REAL,
    final_metrics   TEXT,                       -- JSON dict
    stop_requested  INTEGER NOT NULL DEFAULT 0,
    train_seconds   REAL NOT NULL DEFAULT 0,    -- time spent training, summed over resumes
    attempts        INTEGER NOT NULL DEFAULT 0, -- how many times a trainer process took it up
    steps_per_epoch INTEGER,                    -- known once the trainer has loaded the data
    total_steps     INTEGER
);
CREATE TABLE IF NOT EXISTS sweeps (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    preset      TEXT,
    axes        TEXT NOT NULL,                  -- JSON [[setting, [values...]], ...] (one or two)
    created_at  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS metrics (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id  INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step    INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    name    TEXT NOT NULL,
    value   REAL,
    time    REAL NOT NULL,
    UNIQUE (run_id, name, step)
);
CREATE INDEX IF NOT EXISTS metrics_by_run ON metrics (run_id, id);
CREATE TABLE IF NOT EXISTS events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    kind          TEXT NOT NULL,              -- core.train.control.KINDS
    value         REAL,                       -- NULL for stop_at_epoch_end
    requested_at  REAL NOT NULL,              -- unix seconds (page or CLI)
    step          INTEGER,                    -- applied after this optimiser step (NULL: pending)
    epoch         INTEGER,                    -- the epoch in progress then
    applied_at    REAL,
    note          TEXT                        -- what the trainer said (e.g. an epoch count raised)
);
CREATE INDEX IF NOT EXISTS events_by_run ON events (run_id, id);
"""
# Columns added after the first release: (name, SQL type). Opening an older store adds them.
ADDED_COLUMNS = (
    ("queue_pos", "REAL"),        # place-in-line key while the run waits for a slot (NULL: not waiting)
    ("claimed_at", "REAL"),       # when a launcher took it out of the line (its trainer is starting)
    ("devices", "TEXT"),          # the device it holds: 'cuda:1', 'cpu', 'mps' (core.runs.queue)
    ("threads", "INTEGER"),       # its share of the CPU's threads (CPU runs; re-split as runs come and go)
    ("sweep_id", "INTEGER"),      # the sweep it belongs to (sweeps.id), NULL for a single run
)
EVENT_COLUMNS = ("id", "run_id", "kind", "value", "requested_at", "step", "epoch", "applied_at", "note")


class RunError(Exception):
    """A run-store problem worth telling the user about (no traceback needed)."""


class RunNotFoundError(RunError, KeyError):
    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "run not found"


class RunStateError(RunError):
    """The run is in a status that does not allow what was asked (e.g. completed -> running)."""


class RunStoreError(RunError):
    """The store itself cannot be used as asked: a damaged database file, or a read-only folder."""


class RunUnreadableError(RunError):
    """One stored run cannot be read (e.g. its settings are invalid); the others still can."""


@dataclass(frozen=True)
class UnreadableRun:
    """A stored run that cannot be read, listed with why."""
    id: int
    name: str
    status: str
    reason: str

    @property
    def label(self) -> str:
        return f"#{self.id} {self.name}"


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    status: str
    config: TrainConfig
    preset: str | None
    dataset: str
    device: str | None
    pid: int | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    message: str | None
    best_test_acc: float | None
    final_test_acc: float | None
    final_metrics: dict[str, Any] = field(default_factory=dict)
    stop_requested: bool = False
    train_seconds: float = 0.0
    attempts: int = 0
    steps_per_epoch: int | None = None
    total_steps: int | None = None
    dir: Path = Path()
    unknown_settings: dict[str, Any] = field(default_factory=dict)  # written by a newer version: kept, unused
    devices: str | None = None      # the device it holds or held: 'cuda:1', 'cpu', 'mps'
    threads: int | None = None      # its share of the CPU threads (CPU runs)
    sweep_id: int | None = None
    place: int | None = None        # 1, 2, ...: its place in the queue while it waits for a slot
    claimed_at: float | None = None

    @property
    def notes(self) -> tuple[str, ...]:
        """Things worth telling about this run's record."""
        if not self.unknown_settings:
            return ()
        names = ", ".join(sorted(self.unknown_settings))
        return (f"settings from a newer version of CIFAR Lab are kept but not used here: {names}",)

    @property
    def label(self) -> str:
        """'#3 baseline', the way the UI and error messages name a run."""
        return f"#{self.id} {self.name}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def waiting(self) -> bool:
        """Queued and waiting in line for a free slot (no trainer yet)."""
        return self.status == "queued" and self.place is not None

    @property
    def device_text(self) -> str:
        """The device it holds, for tables: 'cuda:1 (NVIDIA H200)', 'cpu (1 thread)' while CPU runs
        share the cores, else what its trainer reported ('cpu (2 threads)')."""
        if self.devices and self.devices.startswith("cuda:"):
            name = (self.device or "").removeprefix("cuda").strip()
            return f"{self.devices} {name}".strip()
        if self.devices == "cpu" and self.threads and self.status in ("queued", "running"):
            return f"cpu ({self.threads} thread{'s' if self.threads != 1 else ''})"
        return self.device or self.devices or "–"

    @property
    def status_text(self) -> str:
        """'queued (2nd in line)' for a waiting run, else the status."""
        return f"queued ({ordinal(self.place)} in line)" if self.waiting else self.status

    @property
    def can_resume(self) -> bool:
        return self.status in RESUMABLE_STATUSES

    @property
    def dataset_label(self) -> str:
        return kind_label(self.dataset, short=True)


@dataclass(frozen=True)
class Sweep:
    """Runs of one preset over every combination of one or two settings' values."""
    id: int
    name: str
    preset: str | None
    axes: tuple[tuple[str, tuple[Any, ...]], ...]   # ((setting, (value, ...)), ...)
    created_at: float

    @property
    def label(self) -> str:
        return f"sweep #{self.id} {self.name}"


@dataclass(frozen=True)
class RunEvent:
    """A control of a run (core.train.control): requested, then applied by its trainer at a step."""
    id: int
    run_id: int
    kind: str
    value: float | None
    requested_at: float
    step: int | None = None
    epoch: int | None = None
    applied_at: float | None = None
    note: str | None = None

    @property
    def pending(self) -> bool:
        return self.applied_at is None

    @property
    def text(self) -> str:
        """'lr × 0.5' (see core.train.control.describe)."""
        from core.train.control import describe
        return describe(self.kind, self.value)


def process_alive(pid: int | None) -> bool:
    """Is process `pid` still running? Reaps it first when it is our own finished child."""
    if not pid or pid <= 0:
        return False
    try:
        done_pid, _ = os.waitpid(pid, os.WNOHANG)
        if done_pid == pid:
            return False  # our child, finished: reaped just now
    except ChildProcessError:
        pass  # not our child (or already reaped): ask the kernel below
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, belongs to someone else
    try:  # a zombie answers kill(0) but is not running anything
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}:
            return False
    except (OSError, IndexError):
        pass
    return True


class RunStore:
    """Runs, their metrics and their folders under `root` (default: settings.runs_dir())."""

    def __init__(self, root: str | os.PathLike | None = None, *, stale_after_s: float = STALE_AFTER_S):
        self.root = Path(root).expanduser().resolve() if root is not None else settings.runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / DB_NAME
        self.stale_after_s = stale_after_s
        self.read_only: str | None = None   # why writes are refused, when the store can only be read
        try:
            self._initialise()
        except (sqlite3.OperationalError, OSError) as exc:
            self._open_read_only(exc)
        except sqlite3.DatabaseError as exc:
            raise RunStoreError(_damaged_message(self.db_path, exc)) from None

    def _initialise(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RunError(f"could not switch {self.db_path} to WAL mode (got {mode!r})")
            conn.executescript(_SCHEMA)
            _add_missing_columns(conn)
        finally:
            conn.close()

    def _open_read_only(self, exc: BaseException) -> None:
        """The folder or the database cannot be written: reading may still work."""
        reason = getattr(exc, "strerror", None) or str(exc)
        if not self.db_path.is_file():
            raise RunStoreError(f"cannot create the run store in {self.root} ({reason}): make the folder "
                                "writable, or set CIFARLAB_RUNS_DIR to a writable folder") from None
        self.read_only = reason
        try:
            with self._connect() as conn:
                conn.execute("SELECT COUNT(*) FROM runs").fetchone()
        except sqlite3.DatabaseError as err:
            raise RunStoreError(_damaged_message(self.db_path, err)) from None

    def __repr__(self) -> str:
        return f"RunStore({str(self.root)!r})"

    # ---- connections ------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh connection for one call; closed afterwards. Never shared across threads."""
        if self.read_only:
            conn = _connect_read_only(self.db_path)
            _stand_in_for_missing_columns(conn)
        else:
            if not self.db_path.exists():  # the folder was removed while we kept this store
                self._initialise()
            conn = sqlite3.connect(self.db_path, timeout=30.0, isolation_level=None)
        try:
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA synchronous = NORMAL")  # safe with WAL; commits stay cheap
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One short write transaction (BEGIN IMMEDIATE: takes the write lock up front)."""
        if self.read_only:
            raise RunStoreError(f"the run store in {self.root} is read-only ({self.read_only}): listing runs "
                                "works, but starting, stopping, renaming or deleting them needs write access. "
                                "Make the folder writable, or set CIFARLAB_RUNS_DIR to a writable folder.")
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def journal_mode(self) -> str:
        with self._connect() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower()

    # ---- runs ---------------------------------------------------------------------------------
    def run_dir(self, run_id: int) -> Path:
        return self.root / str(int(run_id))

    def checkpoint_path(self, run_id: int, which: str = "last") -> Path | None:
        """The run's `best` or `last` checkpoint file, or None while there is none."""
        if which not in ("best", "last"):
            raise ValueError(f"which must be 'best' or 'last', got {which!r}")
        path = self.run_dir(run_id) / f"{which}.pt"
        return path if path.is_file() else None

    def log_path(self, run_id: int) -> Path:
        return self.run_dir(run_id) / "train.log"

    def create_run(self, config: TrainConfig, name: str | None = None, *,
                   max_active: int | None = None, queue: bool = False, sweep_id: int | None = None) -> Run:
        """Store a new `queued` run and write its folder with config.json.

        queue=False: the caller starts its trainer now (it holds a slot at once); with
        `max_active`, refused (RunStateError) when that many runs are already queued or running.
        queue=True: the run joins the end of the line (`place`); a launcher (core.runs.jobs.
        start_queued, or claim_next(only=run.id) for a caller that trains it itself) takes it out
        when a slot is free. `sweep_id` groups it with the other runs of a sweep.
        """
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        name = _clean_name(name) if name is not None else _default_name(config)
        if max_active is not None:
            self.reconcile(start_queued=False)
        now = time.time()
        with self._write() as conn:
            queue_pos, claimed_at = (_next_queue_pos(conn), None) if queue else (None, now)
            if max_active is not None and not queue:
                _check_capacity(conn, max_active)
            cur = conn.execute(
                "INSERT INTO runs (name, config, preset, status, dataset, created_at, queue_pos, claimed_at, sweep_id) "
                "VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?)",
                (name, config.to_json(), config.preset, config.dataset, now, queue_pos, claimed_at,
                 None if sweep_id is None else int(sweep_id)),
            )
            run_id = int(cur.lastrowid)
        folder = self.run_dir(run_id)
        if folder.exists():  # left over from a store whose database was removed by hand: keep it aside
            folder.rename(folder.with_name(f"{folder.name}.orphaned-{int(now)}"))
        folder.mkdir(parents=True)
        (folder / "config.json").write_text(config.to_json() + "\n")
        run = self.get(run_id)
        self._write_run_json(run)
        return run

    def get(self, run_id: int) -> Run:
        """The run with this id (RunNotFoundError when there is none), as stored."""
        with self._connect() as conn:
            row = conn.execute(f"{_SELECT_RUNS} WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"there is no run #{run_id} in {self.root}")
        return self._to_run(row)

    def list_runs(self) -> list[Run]:
        """Every readable run, newest first, as stored (call reconcile() first for fresh liveness);
        unreadable_runs() lists the others."""
        return [r for r in self._read_all() if isinstance(r, Run)]

    def unreadable_runs(self) -> list[UnreadableRun]:
        """Stored runs that cannot be read, newest first, each with the reason."""
        return [r for r in self._read_all() if isinstance(r, UnreadableRun)]

    def _read_all(self) -> list[Run | UnreadableRun]:
        with self._connect() as conn:
            rows = conn.execute(f"{_SELECT_RUNS} ORDER BY id DESC").fetchall()
        out: list[Run | UnreadableRun] = []
        for row in rows:
            try:
                out.append(self._to_run(row))
            except RunUnreadableError as exc:
                out.append(UnreadableRun(int(row["id"]), str(row["name"]), str(row["status"]), exc.reason))
        return out

    def statuses(self) -> dict[int, str]:
        """{run id: status} for every run: a cheap way to notice changes."""
        with self._connect() as conn:
            return {int(i): s for i, s in conn.execute("SELECT id, status FROM runs ORDER BY id")}

    def reconcile(self, *, start_queued: bool = True) -> list[Run]:
        """Mark every queued or running run whose process is gone as `interrupted` (the one
        place that does); returns the runs it changed. Then, when runs wait in the queue, start
        them while slots are free (core.runs.jobs.start_queued; start_queued=False: only mark),
        so a line left by a crash or a restarted dashboard moves again."""
        with self._connect() as conn:
            rows = conn.execute(f"{_SELECT_RUNS} WHERE status IN ('queued', 'running')").fetchall()
        changed = []
        for row in rows:
            try:
                run = self._to_run(row)
            except RunUnreadableError:
                continue  # listed as unreadable; it cannot be trained here anyway
            reason = self._gone_reason(run)
            if reason is not None and self._mark_interrupted(run, reason):
                changed.append(self.get(run.id))
        if start_queued and not self.read_only and any(r["place"] is not None for r in rows):
            for starter in QUEUE_STARTERS:  # core.runs.jobs.start_queued (registered by core.runs)
                try:
                    starter(self)
                except ValueError:  # a bad CIFARLAB_MAX_ACTIVE_RUNS: the line waits; starting a run says why
                    pass
        return changed

    def set_status(self, run_id: int, status: str, message: str | None = None, **fields: Any) -> Run:
        """Move a run to `status` (validated against TRANSITIONS), updating `fields` too."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
        allowed = {"pid", "device", "started_at", "finished_at", "heartbeat_at", "best_test_acc",
                   "final_test_acc", "final_metrics", "stop_requested", "train_seconds", "attempts"}
        unknown = set(fields) - allowed
        if unknown:
            raise TypeError(f"unknown run field(s): {', '.join(sorted(unknown))}")
        if "final_metrics" in fields and fields["final_metrics"] is not None:
            fields["final_metrics"] = json.dumps(_jsonable(fields["final_metrics"]))
        with self._write() as conn:
            row = conn.execute("SELECT id, name, status FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise RunNotFoundError(f"there is no run #{run_id} in {self.root}")
            current = row["status"]
            if status not in TRANSITIONS[current]:
                raise RunStateError(_transition_message(row["id"], row["name"], current, status))
            sets = {"status": status, "message": message, **fields}
            if status != "queued":
                sets["queue_pos"] = None  # out of the line, whoever took it up
            conn.execute(
                f"UPDATE runs SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
                (*sets.values(), int(run_id)),
            )
        run = self.get(run_id)
        self._write_run_json(run)
        return run

    def mark_running(self, run_id: int, *, pid: int, device: str, message: str | None = None) -> Run:
        """A trainer process took the run up: running, with its pid and device (and `message`, e.g.
        which checkpoint a resume fell back to). A stop asked for while it was queued stays asked
        for (the trainer stops at its first check)."""
        now = time.time()
        run = self.get(run_id)
        return self.set_status(
            run_id, "running", message, pid=pid, device=device, started_at=run.started_at or now,
            finished_at=None, heartbeat_at=now, attempts=run.attempts + 1,
        )

    def mark_finished(self, run_id: int, status: str, message: str | None = None, *,
                      best_test_acc: float | None = None, final_test_acc: float | None = None,
                      final_metrics: dict[str, Any] | None = None) -> Run:
        """End a run (completed, stopped, failed, diverged or interrupted) with its results."""
        fields: dict[str, Any] = {"finished_at": time.time(), "stop_requested": 0}
        if best_test_acc is not None:
            fields["best_test_acc"] = float(best_test_acc)
        if final_test_acc is not None:
            fields["final_test_acc"] = float(final_test_acc)
        if final_metrics is not None:
            fields["final_metrics"] = final_metrics
        return self.set_status(run_id, status, message, **fields)

    def set_message(self, run_id: int, message: str | None) -> Run:
        """Change only the run's message (e.g. why a resume attempt could not start): its status,
        device, times and attempts stay as they were."""
        return self._update_column(run_id, "message", message)

    def set_pid(self, run_id: int, pid: int) -> None:
        """Record the process that will train a queued run (before it reports itself)."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET pid = ?, heartbeat_at = NULL WHERE id = ?", (int(pid), int(run_id)))

    def set_plan(self, run_id: int, *, steps_per_epoch: int, total_steps: int) -> None:
        """How many optimiser steps the run will take (for progress bars and ETAs)."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET steps_per_epoch = ?, total_steps = ? WHERE id = ?",
                         (int(steps_per_epoch), int(total_steps), int(run_id)))

    def heartbeat(self, run_id: int, *, train_seconds: float | None = None,
                  best_test_acc: float | None = None) -> None:
        """The trainer is alive. Revives a run that a reader marked interrupted while this very
        process was busy (e.g. a laptop that slept), so its final status can still be written."""
        now = time.time()
        with self._write() as conn:
            conn.execute("UPDATE runs SET heartbeat_at = ? WHERE id = ?", (now, int(run_id)))
            if train_seconds is not None:
                conn.execute("UPDATE runs SET train_seconds = ? WHERE id = ?", (float(train_seconds), int(run_id)))
            if best_test_acc is not None:  # the best so far, shown while the run trains
                conn.execute("UPDATE runs SET best_test_acc = ? WHERE id = ?", (float(best_test_acc), int(run_id)))
            conn.execute(
                "UPDATE runs SET status = 'running', message = NULL WHERE id = ? AND status = 'interrupted' "
                "AND pid = ?", (int(run_id), os.getpid()),
            )

    def requeue(self, run_id: int, *, max_active: int | None = None, queue: bool = False) -> Run:
        """A stopped or interrupted run goes back to `queued` for a resume. queue=False: the caller
        starts its trainer now; with `max_active`, refused (RunStateError) when that many other runs
        are queued or running, checked in the same transaction. queue=True: it joins the end of
        the line and a launcher claims it (core.runs.jobs.start_queued)."""
        if max_active is not None:
            self.reconcile(start_queued=False)
        with self._write() as conn:
            row = conn.execute("SELECT id, name, status FROM runs WHERE id = ?", (int(run_id),)).fetchone()
            if row is None:
                raise RunNotFoundError(f"there is no run #{run_id} in {self.root}")
            if row["status"] not in RESUMABLE_STATUSES:
                raise RunStateError(f"run '#{row['id']} {row['name']}' is {row['status']}; "
                                    "only a stopped or interrupted run can be resumed")
            if queue:
                conn.execute("UPDATE runs SET status = 'queued', message = 'Waiting to resume', stop_requested = 0, "
                             "queue_pos = ?, claimed_at = NULL, pid = NULL WHERE id = ?",
                             (_next_queue_pos(conn), int(run_id)))
            else:
                if max_active is not None:
                    _check_capacity(conn, max_active, exclude=int(run_id))
                conn.execute("UPDATE runs SET status = 'queued', message = 'Resuming…', stop_requested = 0, "
                             "queue_pos = NULL, claimed_at = ? WHERE id = ?", (time.time(), int(run_id)))
        run = self.get(run_id)
        self._write_run_json(run)
        return run

    # ---- the queue ----------------------------------------------------------------------------
    def claim_next(self, max_active: int, pick_device: Callable[[Run, list[str]], str | None], *,
                   only: int | None = None) -> Run | None:
        """Take the first waiting run out of the line when fewer than `max_active` runs hold a slot
        and `pick_device(run, devices held by the others)` gives it a device ('cuda:1', 'cpu'; None:
        none free, it keeps waiting). One BEGIN IMMEDIATE transaction, so two launchers (a
        finishing trainer and a page) never claim the same run or overfill the slots. Returns
        the claimed run (status still `queued`, no place, `devices` set), or None. only=ID: claim
        that run, and only when it is first in line (a CLI that trains it in its own process)."""
        with self._write() as conn:
            if _slots_held(conn) >= max_active:
                return None
            row = conn.execute(f"{_SELECT_RUNS} WHERE status = 'queued' AND queue_pos IS NOT NULL "
                               "ORDER BY queue_pos LIMIT 1").fetchone()
            if row is None or (only is not None and row["id"] != int(only)):
                return None
            try:
                run = self._to_run(row)
            except RunUnreadableError as exc:  # cannot be trained here: out of the line, failed
                conn.execute("UPDATE runs SET status = 'failed', message = ?, queue_pos = NULL WHERE id = ?",
                             (f"could not start: {exc.reason}", row["id"]))
                return None
            held = [r[0] for r in conn.execute(f"SELECT devices FROM runs WHERE {_HOLDS_SLOT} AND devices IS NOT NULL")]
            device = pick_device(run, held)
            if device is None:
                return None
            conn.execute("UPDATE runs SET queue_pos = NULL, claimed_at = ?, devices = ?, pid = NULL, "
                         "heartbeat_at = NULL WHERE id = ?", (time.time(), device, run.id))
        return self.get(run.id)

    def waiting_runs(self) -> list[Run]:
        """The runs waiting for a slot, first in line first."""
        with self._connect() as conn:
            rows = conn.execute(f"{_SELECT_RUNS} WHERE status = 'queued' AND queue_pos IS NOT NULL "
                                "ORDER BY queue_pos").fetchall()
        return [self._to_run(r) for r in rows]

    def slot_holders(self) -> list[Run]:
        """The runs holding a slot: running, or claimed with their trainer starting."""
        with self._connect() as conn:
            rows = conn.execute(f"{_SELECT_RUNS} WHERE {_HOLDS_SLOT} ORDER BY id").fetchall()
        return [self._to_run(r) for r in rows]

    def _waiting_row(self, conn: sqlite3.Connection, run_id: int, action: str) -> sqlite3.Row:
        """The run's row, inside a write transaction; RunNotFoundError, or RunStateError naming `action`
        when the run is not waiting in the queue."""
        row = conn.execute(f"{_SELECT_RUNS} WHERE id = ?", (int(run_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"there is no run #{run_id} in {self.root}")
        if row["place"] is None:
            raise RunStateError(f"run #{row['id']} '{row['name']}' is {row['status']}, not waiting in the "
                                f"queue; only a waiting run can be {action}")
        return row

    def cancel(self, run_id: int) -> Run:
        """Take a waiting run out of the line: `stopped`, nothing trained (Resume puts it back at
        the end of the line; Delete removes it). RunStateError when it is not waiting."""
        with self._write() as conn:
            self._waiting_row(conn, run_id, "cancelled (Stop ends a training one)")
            conn.execute("UPDATE runs SET status = 'stopped', queue_pos = NULL, finished_at = ?, message = ? "
                         "WHERE id = ?", (time.time(), "Cancelled while waiting in the queue; Resume puts it "
                                          "back in line, Delete removes it.", int(run_id)))
        run = self.get(run_id)
        self._write_run_json(run)
        return run

    def move_up(self, run_id: int, *, to_front: bool = False) -> Run:
        """Move a waiting run one place up the line (or to the front): it swaps places with the
        run ahead of it. RunStateError when it is not waiting; first in line stays first."""
        with self._write() as conn:
            row = self._waiting_row(conn, run_id, "moved up")
            ahead = conn.execute("SELECT id, queue_pos FROM runs WHERE status = 'queued' AND queue_pos IS NOT NULL "
                                 "AND queue_pos < ? ORDER BY queue_pos " + ("ASC" if to_front else "DESC")
                                 + " LIMIT 1", (row["queue_pos"],)).fetchone()
            if ahead is not None:
                if to_front:
                    conn.execute("UPDATE runs SET queue_pos = ? WHERE id = ?", (ahead["queue_pos"] - 1.0, row["id"]))
                else:
                    conn.execute("UPDATE runs SET queue_pos = ? WHERE id = ?", (row["queue_pos"], ahead["id"]))
                    conn.execute("UPDATE runs SET queue_pos = ? WHERE id = ?", (ahead["queue_pos"], row["id"]))
        return self.get(run_id)

    def set_threads(self, shares: dict[int, int]) -> None:
        """Each CPU run's share of the threads ({run id: threads}); its trainer applies a change
        between two steps (core.runs.queue.ThreadShare)."""
        if not shares:
            return
        with self._write() as conn:
            conn.executemany("UPDATE runs SET threads = ? WHERE id = ?",
                             [(int(n), int(i)) for i, n in shares.items()])

    def threads(self, run_id: int) -> int | None:
        with self._connect() as conn:
            row = conn.execute("SELECT threads FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    # ---- sweeps ---------------------------------------------------------------------------------
    def create_sweep(self, name: str, preset: str | None, axes: list[tuple[str, list[Any]]]) -> Sweep:
        """A new (empty) sweep: its runs are created with create_run(..., sweep_id=sweep.id)."""
        with self._write() as conn:
            cur = conn.execute("INSERT INTO sweeps (name, preset, axes, created_at) VALUES (?, ?, ?, ?)",
                               (_clean_name(name), preset, json.dumps([[k, list(v)] for k, v in axes]), time.time()))
            sweep_id = int(cur.lastrowid)
        return self.sweep(sweep_id)

    def sweep(self, sweep_id: int) -> Sweep:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM sweeps WHERE id = ?", (int(sweep_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"there is no sweep #{sweep_id} in {self.root}")
        return _to_sweep(row)

    def sweeps(self) -> list[Sweep]:
        """Every sweep, newest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM sweeps ORDER BY id DESC").fetchall()
        return [_to_sweep(r) for r in rows]

    def sweep_runs(self, sweep_id: int) -> list[Run]:
        """The sweep's runs that still exist (deleting one leaves the others), oldest first."""
        with self._connect() as conn:
            rows = conn.execute(f"{_SELECT_RUNS} WHERE sweep_id = ? ORDER BY id", (int(sweep_id),)).fetchall()
        out = []
        for row in rows:
            try:
                out.append(self._to_run(row))
            except RunUnreadableError:
                continue
        return out

    def request_stop(self, run_id: int) -> Run:
        """Ask the trainer to stop after its current step (it checks between steps)."""
        run = self.get(run_id)
        if not run.is_active:
            raise RunStateError(f"run {run.label!r} is {run.status}; only a queued or running run can be stopped")
        with self._write() as conn:
            conn.execute("UPDATE runs SET stop_requested = 1 WHERE id = ?", (int(run_id),))
        return self.get(run_id)

    def stop_requested(self, run_id: int) -> bool:
        with self._connect() as conn:
            row = conn.execute("SELECT stop_requested FROM runs WHERE id = ?", (int(run_id),)).fetchone()
        return bool(row and row[0])

    def rename(self, run_id: int, name: str) -> Run:
        return self._update_column(run_id, "name", _clean_name(name))

    def _update_column(self, run_id: int, column: str, value: Any) -> Run:
        """Set one column of a run that does not take part in status transitions (name, message)."""
        if column not in ("name", "message"):
            raise ValueError(f"not a free-standing run column: {column!r}")
        with self._write() as conn:
            cur = conn.execute(f"UPDATE runs SET {column} = ? WHERE id = ?", (value, int(run_id)))
            if cur.rowcount == 0:
                raise RunNotFoundError(f"there is no run #{run_id} in {self.root}")
        run = self.get(run_id)
        self._write_run_json(run)
        return run

    def delete(self, run_id: int) -> None:
        """Remove the run, its metrics and its folder. Refused while it is queued or running."""
        run = self.get(run_id)
        if run.is_active:
            raise RunStateError(f"run {run.label!r} is still {run.status}; stop it before deleting it")
        with self._write() as conn:
            conn.execute("DELETE FROM metrics WHERE run_id = ?", (run.id,))
            conn.execute("DELETE FROM events WHERE run_id = ?", (run.id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run.id,))
            if run.sweep_id is not None:  # the sweep goes with its last run
                conn.execute("DELETE FROM sweeps WHERE id = ? AND NOT EXISTS (SELECT 1 FROM runs WHERE sweep_id = ?)",
                             (run.sweep_id, run.sweep_id))
        shutil.rmtree(self.run_dir(run.id), ignore_errors=True)

    # ---- controls (events) ----------------------------------------------------------------------
    def request_control(self, run_id: int, kind: str, value: Any = None) -> RunEvent:
        """Ask a queued or running run's trainer for a change (core.train.control): checked here
        (ConfigError naming the setting), applied by the trainer between two steps."""
        from core.train.control import check_control

        value = check_control(kind, value)
        run = self.get(run_id)
        if not run.is_active:
            raise RunStateError(f"run {run.label!r} is {run.status}; only a queued or running run can be changed")
        with self._write() as conn:
            cur = conn.execute("INSERT INTO events (run_id, kind, value, requested_at) VALUES (?, ?, ?, ?)",
                               (int(run_id), kind, None if value is None else float(value), time.time()))
            event_id = int(cur.lastrowid)
        return self.event(event_id)

    def event(self, event_id: int) -> RunEvent:
        with self._connect() as conn:
            row = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE id = ?",
                               (int(event_id),)).fetchone()
        if row is None:
            raise RunNotFoundError(f"there is no event #{event_id} in {self.root}")
        return RunEvent(*tuple(row))

    def events(self, run_id: int, *, pending: bool | None = None) -> list[RunEvent]:
        """The run's controls in the order they were asked (pending=True: only those not applied
        yet; False: only applied ones)."""
        where = {None: "", True: " AND applied_at IS NULL", False: " AND applied_at IS NOT NULL"}[pending]
        with self._connect() as conn:
            rows = conn.execute(f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE run_id = ?{where} "
                                "ORDER BY id", (int(run_id),)).fetchall()
        return [RunEvent(*tuple(r)) for r in rows]

    def mark_event_applied(self, event_id: int, *, step: int, epoch: int, note: str | None = None) -> None:
        """The trainer applied the control after optimiser step `step` (recorded once)."""
        with self._write() as conn:
            conn.execute("UPDATE events SET step = ?, epoch = ?, applied_at = ?, note = ? "
                         "WHERE id = ? AND applied_at IS NULL",
                         (int(step), int(epoch), time.time(), note or None, int(event_id)))

    # ---- metrics ------------------------------------------------------------------------------
    def log_metrics(self, run_id: int, rows: Iterable[tuple]) -> int:
        """Write (step, epoch, name, value[, unix time]) rows in one transaction; returns how many.

        A row for a (name, step) the run already has replaces it and gets a new id, so a resumed
        run never duplicates a row and incremental readers see the replacement as new.
        """
        now = time.time()
        data = [(int(run_id), int(r[0]), int(r[1]), str(r[2]), _finite_or_none(r[3]),
                 float(r[4]) if len(r) > 4 else now) for r in rows]
        if not data:
            return 0
        with self._write() as conn:
            conn.executemany(
                "INSERT OR REPLACE INTO metrics (run_id, step, epoch, name, value, time) VALUES (?, ?, ?, ?, ?, ?)",
                data,
            )
        return len(data)

    def truncate_metrics(self, run_id: int, after_step: int) -> int:
        """Drop rows logged after `after_step` (a resume restarts from its checkpoint's step)."""
        with self._write() as conn:
            cur = conn.execute("DELETE FROM metrics WHERE run_id = ? AND step > ?", (int(run_id), int(after_step)))
            return cur.rowcount

    def metrics(self, run_id: int, since_id: int = 0) -> pd.DataFrame:
        """Metric rows of a run with id > since_id, oldest first, as a DataFrame with columns
        id, run_id, step, epoch, name, value, time. Poll with since_id = the largest id seen;
        a (name, step) that was rewritten comes back with a new id (keep the last one)."""
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT id, run_id, step, epoch, name, value, time FROM metrics "
                "WHERE run_id = ? AND id > ? ORDER BY id", (int(run_id), int(since_id)),
            ).fetchall()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=METRIC_COLUMNS)
        return frame.astype({"id": "int64", "run_id": "int64", "step": "int64", "epoch": "int64",
                             "name": "object", "value": "float64", "time": "float64"})

    # ---- internals ----------------------------------------------------------------------------
    def _to_run(self, row: sqlite3.Row) -> Run:
        try:
            config, unknown = TrainConfig.from_stored(row["config"])
            final_metrics = json.loads(row["final_metrics"]) if row["final_metrics"] else {}
        except (ConfigError, ValueError, TypeError) as exc:
            error = RunUnreadableError(f"run #{row['id']} '{row['name']}' cannot be read: {exc}")
            error.reason = str(exc)
            raise error from None
        return Run(
            id=int(row["id"]), name=row["name"], status=row["status"], config=config, preset=row["preset"],
            dataset=row["dataset"], device=row["device"], pid=row["pid"], created_at=row["created_at"],
            started_at=row["started_at"], finished_at=row["finished_at"], heartbeat_at=row["heartbeat_at"],
            message=row["message"], best_test_acc=row["best_test_acc"], final_test_acc=row["final_test_acc"],
            final_metrics=final_metrics, unknown_settings=unknown,
            stop_requested=bool(row["stop_requested"]), train_seconds=float(row["train_seconds"] or 0.0),
            attempts=int(row["attempts"] or 0), steps_per_epoch=row["steps_per_epoch"],
            total_steps=row["total_steps"], dir=self.run_dir(row["id"]),
            devices=_column(row, "devices"), threads=_column(row, "threads"), sweep_id=_column(row, "sweep_id"),
            place=_column(row, "place"), claimed_at=_column(row, "claimed_at"),
        )

    def _gone_reason(self, run: Run) -> str | None:
        """Why an active run's process is considered gone, or None while it looks alive."""
        now = time.time()
        if run.waiting:
            return None  # in line for a slot: no process yet, by design
        if run.pid:
            if not process_alive(run.pid):
                return f"its training process (pid {run.pid}) is gone"
            if run.status == "running" and run.heartbeat_at and now - run.heartbeat_at > self.stale_after_s:
                return f"no heartbeat for {now - run.heartbeat_at:.0f} s"
            return None
        if now - (run.claimed_at or run.created_at) > QUEUED_GRACE_S and run.status == "queued":
            return "no training process ever took it up"
        if run.status == "running":
            return "no training process is recorded for it"
        return None

    def _mark_interrupted(self, run: Run, reason: str) -> bool:
        message = f"Interrupted: {reason}. Resume continues from the last checkpoint."
        with self._write() as conn:  # only if nothing changed since we read it (no lost update)
            cur = conn.execute(
                "UPDATE runs SET status = 'interrupted', message = ?, finished_at = ?, stop_requested = 0 "
                "WHERE id = ? AND status = ? AND pid IS ? AND heartbeat_at IS ?",
                (message, time.time(), run.id, run.status, run.pid, run.heartbeat_at),
            )
        if cur.rowcount:
            self._write_run_json(self.get(run.id))
        return bool(cur.rowcount)

    def _write_run_json(self, run: Run) -> None:
        folder = self.run_dir(run.id)
        if not folder.is_dir():
            return
        info = {
            "id": run.id, "name": run.name, "status": run.status, "preset": run.preset,
            "dataset": run.dataset, "device": run.device, "created_at": run.created_at,
            "started_at": run.started_at, "finished_at": run.finished_at, "message": run.message,
            "best_test_acc": run.best_test_acc, "final_test_acc": run.final_test_acc,
            "final_metrics": run.final_metrics, "train_seconds": run.train_seconds,
        }
        tmp = folder / ".run.json.tmp"
        try:
            tmp.write_text(json.dumps(_jsonable(info), indent=2) + "\n")
            os.replace(tmp, folder / "run.json")
        except OSError:
            pass  # informational copy only; the database is the source of truth


# Every run column, plus its place in the queue (1, 2, ...) while it waits for a slot.
_SELECT_RUNS = ("SELECT runs.*, CASE WHEN runs.status = 'queued' AND runs.queue_pos IS NOT NULL THEN "
                "(SELECT COUNT(*) FROM runs AS w WHERE w.status = 'queued' AND w.queue_pos IS NOT NULL "
                "AND w.queue_pos <= runs.queue_pos) END AS place FROM runs")
# Runs holding a slot: training, or taken out of the line with their trainer starting.
_HOLDS_SLOT = "(status = 'running' OR (status = 'queued' AND queue_pos IS NULL))"


def _to_sweep(row: sqlite3.Row) -> Sweep:
    axes = tuple((str(k), tuple(v)) for k, v in json.loads(row["axes"]))
    return Sweep(int(row["id"]), row["name"], row["preset"], axes, float(row["created_at"]))


def _add_missing_columns(conn: sqlite3.Connection) -> None:
    """A store written by an older version gets the columns added since (ADDED_COLUMNS)."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            try:
                conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")
            except sqlite3.OperationalError as exc:  # another process added it just now
                if "duplicate column" not in str(exc).lower():
                    raise


def _stand_in_for_missing_columns(conn: sqlite3.Connection) -> None:
    """A read-only store from an older version cannot get ADDED_COLUMNS: a temporary view named `runs`
    (the temp schema is searched before main) shows main.runs with NULL in their place, and an empty
    `sweeps`, so every query reads it as it reads a current store. Nothing is written to the file."""
    have = {row[1] for row in conn.execute("PRAGMA main.table_info(runs)")}
    missing = [name for name, _ in ADDED_COLUMNS if name not in have]
    if have and missing:
        conn.execute("CREATE TEMP VIEW runs AS SELECT *, " + ", ".join(f"NULL AS {n}" for n in missing)
                     + " FROM main.runs")
    tables = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    if "sweeps" not in tables:
        conn.execute("CREATE TEMP TABLE sweeps (id INTEGER PRIMARY KEY, name TEXT, preset TEXT, axes TEXT, "
                     "created_at REAL)")
    if "events" not in tables:
        conn.execute(f"CREATE TEMP TABLE events ({', '.join(EVENT_COLUMNS)})")


def _column(row: sqlite3.Row, name: str) -> Any:
    """A column that a read-only store from an older version may lack."""
    return row[name] if name in row.keys() else None


def ordinal(n: int | None) -> str:
    """1 -> '1st', 2 -> '2nd', 11 -> '11th'."""
    if n is None:
        return "–"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that never writes. A WAL database in a folder we cannot write may lack the
    files SQLite needs to coordinate readers; then it is read as an unchanging file."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0, isolation_level=None)
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        return sqlite3.connect(f"file:{path}?immutable=1", uri=True, timeout=30.0, isolation_level=None)


def _damaged_message(path: Path, exc: BaseException) -> str:
    return (f"{path} is not a SQLite database ({exc}): it is damaged, or another file has its name. "
            f"Move it aside (e.g. rename it to {path.name}.damaged): a new, empty run store is then "
            f"created there, and the run folders beside it (checkpoints, logs) are kept.")


def _clean_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError("a run name must not be empty")
    name = " ".join(name.split())
    if len(name) > 80:
        raise ValueError(f"a run name must be at most 80 characters, got {len(name)}")
    return name


def _default_name(config: TrainConfig) -> str:
    base = config.preset or config.model
    return f"{base} lr {config.lr:g} bs {config.batch_size}"


def _slots_held(conn: sqlite3.Connection) -> int:
    return int(conn.execute(f"SELECT COUNT(*) FROM runs WHERE {_HOLDS_SLOT}").fetchone()[0])


def _next_queue_pos(conn: sqlite3.Connection) -> float:
    """The end of the line."""
    last = conn.execute("SELECT MAX(queue_pos) FROM runs WHERE status = 'queued' AND queue_pos IS NOT NULL").fetchone()[0]
    return float(last or 0.0) + 1.0


def _check_capacity(conn: sqlite3.Connection, max_active: int, exclude: int | None = None) -> None:
    """RunStateError when `max_active` runs (other than `exclude`) are queued or running (waiting
    in line counts too: a run started now must not jump the queue)."""
    active = conn.execute("SELECT id, name FROM runs WHERE status IN ('queued', 'running') AND id IS NOT ? "
                          "ORDER BY id", (exclude,)).fetchall()
    if len(active) >= max_active:
        first = active[0]
        raise RunStateError(f"run #{first['id']} '{first['name']}' is still training; stop it first or set "
                            f"CIFARLAB_MAX_ACTIVE_RUNS to allow more than {len(active)} at a time")


def _transition_message(run_id: int, name: str, current: str, wanted: str) -> str:
    allowed = sorted(TRANSITIONS[current])
    then = f"it can only become {', '.join(allowed)}" if allowed else "that is final"
    return f"run #{run_id} '{name}' is {current} and cannot become {wanted}; {then}"


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if value == value and value not in (float("inf"), float("-inf")) else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if hasattr(value, "item") and callable(value.item):  # numpy / torch scalars
        return _jsonable(value.item())
    if isinstance(value, Path):
        return str(value)
    return value
