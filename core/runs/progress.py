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

The words are English here (the command line prints them); `text(lang)` and `doing(lang)` read the
other languages' words from the catalogues (core.i18n.core_text, keys core.progress.*).

What the stored rows say beyond where the run stands, for the charts:
  - planned_lr(cfg, steps_per_epoch, events): the learning rate of every step, from the engine's own
    schedule (core.train.engine.Schedule) with the run's applied controls replayed at their steps
    (the trainer logs the rate only at the start, each epoch's end and each change);
  - seconds_at(frame, steps): seconds of the run's clock when it reached each step (for comparing
    runs per second of training);
  - accuracy_gap(frame): a train-test accuracy gap that keeps growing (overfitting), or None.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import pandas as pd

from core.i18n import core_text
from core.runs.store import Run, RunEvent
from core.text import format_duration
from core.train.config import TrainConfig

PHASES = ("starting", "training", "testing", "saving")
PHASE_PREFIX = "phase_"                 # metric rows phase_<name>, value 1, at the step it began
PHASE_TEXT = {"starting": "Starting (loading the images, building the model)", "training": "Training",
              "testing": "Testing (evaluating the epoch's model)", "saving": "Saving a checkpoint"}
STATUS_TEXT = {"queued": "Waiting to start", "completed": "Completed", "stopped": "Stopped",
               "failed": "Failed", "diverged": "Diverged", "interrupted": "Interrupted"}
RATE_WINDOW = 20                        # step reports the speed is measured over
# The progress line's pieces (core_text keys progress.<name> in other languages).
PIECES = {"running": "Running", "epoch": "epoch {epoch}/{epochs}", "step": "step {step}",
          "step_of": "step {step}/{total}", "speed": "{speed:,.0f} images/s", "elapsed": "elapsed {time}",
          "epoch_eta": "epoch ends in ~{time}", "run_eta": "run ends in ~{time}", "untimed": " + testing"}


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

    def doing(self, lang: str = "en") -> str:
        """What the run is doing now, in words (in `lang`)."""
        if self.status == "running" and self.phase:
            return phase_text(self.phase, lang)
        if self.status == "running":
            return _piece("running", lang)
        return status_text(self.status, lang)

    def text(self, lang: str = "en") -> str:
        """The progress line: what it does, epoch, step, speed, elapsed time and time left (in `lang`)."""
        step = (_piece("step_of", lang, step=self.step, total=self.total_steps) if self.total_steps
                else _piece("step", lang, step=self.step))
        parts = [self.doing(lang), _piece("epoch", lang, epoch=self.epoch, epochs=self.epochs), step]
        if self.images_per_sec:
            parts.append(_piece("speed", lang, speed=self.images_per_sec))
        if self.elapsed_s is not None:
            parts.append(_piece("elapsed", lang, time=format_duration(self.elapsed_s)))
        untimed = _piece("untimed", lang) if self.epoch_end_s is None else ""   # no epoch end measured yet
        if self.epoch_eta_s is not None and self.epochs > 1 and self.run_eta_s != self.epoch_eta_s:
            parts.append(_piece("epoch_eta", lang, time=format_duration(self.epoch_eta_s)) + untimed)
        if self.run_eta_s is not None:
            parts.append(_piece("run_eta", lang, time=format_duration(self.run_eta_s)) + untimed)
        return " · ".join(parts)


def _piece(name: str, lang: str, **values) -> str:
    return core_text(f"progress.{name}", PIECES[name], lang, **values)


def phase_text(phase: str, lang: str = "en") -> str:
    """A phase in words: 'Testing (evaluating the epoch's model)'."""
    return core_text(f"progress.phase.{phase}", PHASE_TEXT[phase], lang)


def status_text(status: str, lang: str = "en") -> str:
    """How a run that is not training stands, in words: 'Completed', 'Waiting to start'."""
    if status not in STATUS_TEXT:
        return status
    return core_text(f"progress.status.{status}", STATUS_TEXT[status], lang)


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


# ---- what the rows say beyond where the run stands (for the charts) --------------------------

LR_POINTS = 400          # planned_lr samples the schedule at about this many steps (plus every corner)
LR_CONTROLS = ("lr_factor", "lr", "epochs")


def _applied(events: Iterable[RunEvent]) -> list[RunEvent]:
    """The controls that changed the schedule, as the trainer applied them (step order)."""
    return sorted((e for e in events if e.step is not None and e.applied_at is not None and e.kind in LR_CONTROLS),
                  key=lambda e: (e.step, e.id))


def _apply(schedule, cfg: TrainConfig, event: RunEvent) -> None:
    """What core.train.engine._Trainer.apply_control does to the schedule, after step event.step."""
    if event.kind == "lr_factor":
        schedule.scale *= float(event.value)
    elif event.kind == "lr":
        schedule.scale = float(event.value) / cfg.lr
    else:   # epochs: never fewer than the epoch under way (the engine raises it so, with a note)
        under_way = max(math.ceil(event.step / schedule.steps_per_epoch), 1)
        schedule.set_epochs(max(int(event.value), under_way), event.step)


def planned_lr(cfg: TrainConfig, steps_per_epoch: int, events: Iterable[RunEvent] = (), *,
               points: int = LR_POINTS) -> tuple[list[int], list[float]]:
    """The learning rate after each step s (the rate step s + 1 uses; s = 0: the first step's) over
    the whole run, as the engine computes it: its Schedule over steps_per_epoch x epochs steps, with
    each applied control (lr factor, new lr, new length) at its step. Sampled at about `points`
    steps plus the schedule's corners (the end of warm-up, each control, the last step); at a
    control's step both the rate before and after it, so a change shows as a jump.
    Returns (steps, rates)."""
    from core.train.engine import Schedule   # torch: only when a chart asks

    applied = _applied(events)
    final = Schedule(cfg, steps_per_epoch)
    for event in applied:
        _apply(final, cfg, event)
    stride = max(final.total_steps // max(points, 1), 1)
    schedule = Schedule(cfg, steps_per_epoch)
    steps: list[int] = []
    rates: list[float] = []
    start, i = 0, 0
    while True:
        stop = applied[i].step if i < len(applied) else schedule.total_steps
        for step in _sample(schedule, cfg, start, stop, stride):
            steps.append(step)
            rates.append(cfg.lr * schedule.factor(step))
        if i == len(applied):
            return steps, rates
        while i < len(applied) and applied[i].step == stop:   # every change at this step, then go on
            _apply(schedule, cfg, applied[i])
            i += 1
        start = stop


def _sample(schedule, cfg: TrainConfig, start: int, stop: int, stride: int) -> list[int]:
    """Steps start..stop (both included) to evaluate: every `stride`-th and the warm-up's end."""
    corners = {start, stop}
    if schedule.start_t < cfg.warmup < 1.0:   # where the warm-up ends and the rate turns
        span = max(schedule.total_steps - schedule.start_step, 1)
        turn = schedule.start_step + (cfg.warmup - schedule.start_t) * span / (1.0 - schedule.start_t)
        corners.update(s for s in (math.floor(turn), math.ceil(turn)) if start <= s <= stop)
    first = start - start % stride + stride
    return sorted(corners | set(range(first, stop, stride)))


def seconds_at(frame: pd.DataFrame, steps: Iterable[int]) -> np.ndarray:
    """Seconds on the run's clock (its training time, each epoch's test included, earlier attempts
    too) when it had taken each of `steps`: exact at each epoch's end (its `epoch_elapsed_s` row),
    spread evenly over the steps in between; after the last epoch's end at the measured speed
    (training_rate). NaN where unknown (no epoch finished and no speed measured yet)."""
    ends = frame[frame["name"] == "epoch_elapsed_s"].sort_values("step")
    known_steps = np.concatenate([[0.0], ends["step"].to_numpy(dtype=float)])
    known_secs = np.concatenate([[0.0], ends["value"].to_numpy(dtype=float)])
    x = np.asarray(list(steps), dtype=float)
    out = np.interp(x, known_steps, known_secs)
    beyond = x > known_steps[-1]
    if beyond.any():
        rate = training_rate(frame)
        if not rate and len(ends):   # no speed measured yet: the pace of the run so far
            rate = known_steps[-1] / known_secs[-1] if known_secs[-1] > 0 else None
        out[beyond] = known_secs[-1] + (x[beyond] - known_steps[-1]) / rate if rate else np.nan
    return out


@dataclass(frozen=True)
class AccuracyGap:
    """Train accuracy pulling away from test accuracy, in accuracy points (0-1)."""
    since_epoch: int      # the epoch with the smallest gap, where it started to grow
    gap_then: float
    epoch: int            # the newest epoch
    gap_now: float


GAP_MIN = 0.05           # the newest gap is at least 5 accuracy points ...
GAP_GROWTH = 0.03        # ... at least 3 points wider than its smallest, and wider than the epoch before


def accuracy_gap(frame: pd.DataFrame) -> AccuracyGap | None:
    """A growing train-test accuracy gap (the model learns the training images better than it
    generalises: overfitting), or None. Needs three epochs."""
    train = frame[frame["name"] == "epoch_train_acc"].set_index("epoch")["value"]
    test = frame[frame["name"] == "epoch_test_acc"].set_index("epoch")["value"]
    gap = (train - test).dropna().sort_index()
    gap = gap[~gap.index.duplicated(keep="last")]
    if len(gap) < 3:
        return None
    now, before, smallest = float(gap.iloc[-1]), float(gap.iloc[-2]), float(gap.min())
    if now >= GAP_MIN and now >= smallest + GAP_GROWTH and now > before:
        return AccuracyGap(int(gap.idxmin()), smallest, int(gap.index[-1]), now)
    return None
