"""Where a stored run stands: epoch, step, measured speed, elapsed time, time left, what it does now.

    prog = progress(run, frame)        # frame: the run's metric rows (RunStore.metrics), all or merged
    prog.text()   # "Training · epoch 2/10 · step 450/1250 · 2,950 images/s · elapsed 1m 5s ·
                  #  epoch ends in ~0m 12s · run ends in ~2m 30s"

Everything comes from what the trainer wrote, nothing is guessed:
  - speed: steps per second between consecutive step reports of the same epoch and attempt (an
    epoch's test, a checkpoint or a restart between two reports is not training time), over the
    last RATE_WINDOW reports; before two reports exist, the last epoch's own images/s;
  - phase: the trainer's `phase_*` rows (core.runs.worker logs one when fit enters a phase:
    starting, training, testing, saving), the newest one wins;
  - the end of an epoch (test, validation, checkpoint) takes as long as it took last time:
    the time from the epoch's `phase_testing` row to the next `phase_training` row;
  - elapsed: the run's training seconds at its last heartbeat (earlier attempts included) plus the
    time since.
Time left for the epoch = its remaining steps / speed + one epoch end; for the run = all remaining
steps / speed + the epoch ends still to come. Unknown parts stay None rather than guessed.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from core.runs.store import Run
from core.text import format_duration

PHASES = ("starting", "training", "testing", "saving")
PHASE_PREFIX = "phase_"                 # metric rows phase_<name>, value 1, at the step it began
PHASE_TEXT = {"starting": "Starting (loading the images, building the model)", "training": "Training",
              "testing": "Testing (evaluating the epoch's model)", "saving": "Saving a checkpoint"}
STATUS_TEXT = {"queued": "Waiting to start", "completed": "Completed", "stopped": "Stopped",
               "failed": "Failed", "diverged": "Diverged", "interrupted": "Interrupted"}
RATE_WINDOW = 20                        # step reports the speed is measured over


def phase_row(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"unknown phase {phase!r}; one of {', '.join(PHASES)}")
    return PHASE_PREFIX + phase


@dataclass(frozen=True)
class Progress:
    status: str
    phase: str | None               # one of PHASES while the run is active and the trainer said so
    epoch: int                      # the epoch in progress (1-based), or the last one
    epochs: int
    step: int
    total_steps: int | None
    steps_per_epoch: int | None
    fraction: float                 # of the run's steps
    steps_per_sec: float | None
    images_per_sec: float | None
    elapsed_s: float | None         # training time of the run so far (all attempts)
    epoch_eta_s: float | None       # until the epoch in progress has been tested and saved
    run_eta_s: float | None         # until the run ends
    epoch_end_s: float | None       # how long the last epoch's test + checkpoint took (measured)

    @property
    def eta_s(self) -> float | None:
        return self.run_eta_s

    def doing(self) -> str:
        """What the run is doing now, in words."""
        if self.status == "running" and self.phase:
            return PHASE_TEXT[self.phase]
        if self.status == "running":
            return "Running"
        return STATUS_TEXT.get(self.status, self.status)

    def text(self) -> str:
        parts = [self.doing(), f"epoch {self.epoch}/{self.epochs}",
                 f"step {self.step}" + (f"/{self.total_steps}" if self.total_steps else "")]
        if self.images_per_sec:
            parts.append(f"{self.images_per_sec:,.0f} images/s")
        if self.elapsed_s is not None:
            parts.append(f"elapsed {format_duration(self.elapsed_s)}")
        untimed = " + testing" if self.epoch_end_s is None else ""   # no epoch end measured yet
        if self.epoch_eta_s is not None and self.epochs > 1 and self.run_eta_s != self.epoch_eta_s:
            parts.append(f"epoch ends in ~{format_duration(self.epoch_eta_s)}{untimed}")
        if self.run_eta_s is not None:
            parts.append(f"run ends in ~{format_duration(self.run_eta_s)}{untimed}")
        return " · ".join(parts)


def current_phase(frame: pd.DataFrame) -> tuple[str | None, float | None]:
    """The newest phase row: (phase, unix time it began), or (None, None)."""
    rows = frame[frame["name"].str.startswith(PHASE_PREFIX)]
    if rows.empty:
        return None, None
    last = rows.sort_values(["time", "id"]).iloc[-1]   # the newest; of two at the same time, the later row
    return str(last["name"])[len(PHASE_PREFIX):], float(last["time"])


def epoch_end_seconds(frame: pd.DataFrame) -> float | None:
    """How long the newest complete epoch end took: from its phase_testing row to the next
    phase_training row at the same step (None before one has been seen)."""
    testing = frame[frame["name"] == phase_row("testing")]
    training = frame[frame["name"] == phase_row("training")].set_index("step")["time"]
    for _, row in testing.sort_values("step", ascending=False).iterrows():
        if row["step"] in training.index:
            return max(float(training.loc[row["step"]]) - float(row["time"]), 0.0)
    return None


def training_rate(frame: pd.DataFrame) -> float | None:
    """Optimiser steps per second over the last RATE_WINDOW step reports, counting only gaps
    between two reports of the same epoch with no phase change (a test, a checkpoint, a restart)
    between them."""
    reports = frame[frame["name"] == "train_loss"].sort_values("step").tail(RATE_WINDOW + 1)
    if len(reports) < 2:
        return None
    changes = frame.loc[frame["name"].str.startswith(PHASE_PREFIX), "time"].to_numpy()
    steps, times, epochs = (reports[c].to_numpy() for c in ("step", "time", "epoch"))
    ds = dt = 0.0
    for i in range(1, len(reports)):
        gap_start, gap_end = times[i - 1], times[i]
        if epochs[i] != epochs[i - 1] or gap_end <= gap_start or steps[i] <= steps[i - 1]:
            continue
        if ((changes > gap_start) & (changes < gap_end)).any():
            continue
        ds += steps[i] - steps[i - 1]
        dt += gap_end - gap_start
    return ds / dt if dt > 0 and ds > 0 else None


def run_epochs(run: Run) -> int:
    """The run's length now: its config's epochs, or what a control made of them (the stored plan)."""
    if run.total_steps and run.steps_per_epoch:
        return max(run.total_steps // run.steps_per_epoch, 1)
    return run.config.epochs


def progress(run: Run, frame: pd.DataFrame, *, now: float | None = None) -> Progress:
    """Where `run` stands, from its metric rows (`frame`) and its stored record."""
    now = time.time() if now is None else now
    epochs, per_epoch, total = run_epochs(run), run.steps_per_epoch, run.total_steps
    steps = frame[frame["name"].isin(["train_loss", "epoch_train_loss"]) | frame["name"].str.startswith(PHASE_PREFIX)]
    step = int(steps["step"].max()) if len(steps) else int(run.final_metrics.get("step", 0) or 0)
    tested = frame.loc[frame["name"] == "epoch_test_acc", "epoch"]
    epochs_done = int(tested.max()) if len(tested) else 0
    active = run.is_active
    phase, phase_since = current_phase(frame) if active else (None, None)
    if per_epoch:
        epoch = step // per_epoch + (step % per_epoch > 0)
        if phase in ("starting", "training") and step % per_epoch == 0:   # the next epoch, before its first step
            epoch += 1
    else:
        epoch = epochs_done
    epoch = max(min(epoch, epochs), 1)
    fraction = 1.0 if run.status == "completed" else (min(step / total, 1.0) if total else 0.0)

    steps_per_sec = training_rate(frame)
    last_epoch_speed = frame.loc[frame["name"] == "epoch_images_per_sec", "value"]
    if steps_per_sec:
        images_per_sec = steps_per_sec * run.config.batch_size
    elif len(last_epoch_speed):
        images_per_sec = float(last_epoch_speed.iloc[-1])
        steps_per_sec = images_per_sec / run.config.batch_size
    else:
        images_per_sec = None

    if active and run.heartbeat_at:
        elapsed = run.train_seconds + max(now - run.heartbeat_at, 0.0)
    else:
        elapsed = run.train_seconds or None

    end_s = epoch_end_seconds(frame)
    epoch_eta = run_eta = None
    if active and per_epoch and total and steps_per_sec:
        remaining = max(total - step, 0) / steps_per_sec
        later_ends = max(epochs - epoch, 0) * (end_s or 0.0)
        if phase in ("testing", "saving"):   # the epoch's training is over: what is left of its end
            epoch_eta = None if end_s is None else max(end_s - (now - (phase_since or now)), 0.0)
            run_eta = remaining + later_ends + (epoch_eta or 0.0)
        else:
            epoch_eta = max(per_epoch * epoch - step, 0) / steps_per_sec + (end_s or 0.0)
            run_eta = remaining + later_ends + (end_s or 0.0)
    return Progress(run.status, phase, epoch, epochs, step, total, per_epoch, fraction, steps_per_sec,
                    images_per_sec, elapsed, epoch_eta, run_eta, end_s)
