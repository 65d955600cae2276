"""Changes to a running run: what can be asked, how it is checked, how it reads.

    value = check_control("lr_factor", 0.5)          # ConfigError(field, message) when invalid
    Control("lr", 1e-3)                              # handed to engine.fit by its `controls` source
    describe("epochs", 12)  -> "epochs → 12"
    changed_settings(cfg, events) -> {"lr": [(step, value), ...], "epochs": [...]}

A control is a request row in the run store (core.runs.store, table `events`): the page or
`python -m core control` writes it, the trainer applies it between two optimiser steps and records
the step it was applied after. Resuming replays the applied ones at their steps, so a resumed run
follows the same learning rates and length as the run it continues.

Kinds and their effect (core.train.engine._Trainer.apply_control):

    lr_factor X         multiply the learning rate by X (the schedule's shape continues)
    lr X                set the learning rate (the schedule's peak) to X: the same as a factor
                        X / the current peak
    epochs N            make the run N epochs long. The schedule's remaining part is stretched or
                        squeezed from the current step on, so the rate changes smoothly; N below
                        the epoch in progress becomes that epoch
    stop_at_epoch_end   finish the epoch in progress (test, checkpoints), then stop (resumable)

No torch here: the store and the CLI check requests without importing it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from core.train.config import ConfigError, TrainConfig, field_spec

KINDS = ("lr_factor", "lr", "epochs", "stop_at_epoch_end")
MAX_LR_FACTOR = 1000.0


@dataclass(frozen=True)
class Control:
    """One change for the engine: `kind` (one of KINDS), `value` (None for stop_at_epoch_end),
    the store's event id, and for a replay the step it was applied after."""
    kind: str
    value: float | None = None
    id: int | None = None
    step: int | None = None


def check_control(kind: str, value: Any = None) -> float | int | None:
    """`value` as a control of `kind` takes it; ConfigError naming the setting when invalid (the
    same checks and messages as TrainConfig's own fields)."""
    if kind not in KINDS:
        raise ConfigError("control", f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if kind == "stop_at_epoch_end":
        if value not in (None, 1, 1.0, True):
            raise ConfigError("stop_at_epoch_end", f"takes no value, got {value!r}")
        return None
    if kind in ("lr", "epochs"):
        if kind == "epochs" and isinstance(value, float) and value.is_integer():
            value = int(value)
        return field_spec(kind).check(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError("lr_factor", f"must be a finite number, got {value!r}")
    if not 0 < value <= MAX_LR_FACTOR:
        raise ConfigError("lr_factor", f"must be > 0 and at most {MAX_LR_FACTOR:g}, got {value:g}")
    return float(value)


def describe(kind: str, value: float | None) -> str:
    """A control in a few words: 'lr × 0.5', 'lr → 0.001', 'epochs → 12', 'stop at epoch end'."""
    if kind == "lr_factor":
        return f"lr × {value:g}"
    if kind == "lr":
        return f"lr → {value:g}"
    if kind == "epochs":
        return f"epochs → {int(value)}"
    return "stop at epoch end"


def changed_settings(cfg: TrainConfig, applied: Iterable[Any]) -> dict[str, list[tuple[int, float]]]:
    """How applied controls (objects with kind, value, step, in order) changed `cfg`'s lr and
    epochs: {"lr": [(step, new peak lr), ...], "epochs": [(step, new epochs), ...]}; a setting that
    never changed is absent. Epoch changes are listed as asked (the engine may raise a value below
    the epoch in progress; its note says so)."""
    out: dict[str, list[tuple[int, float]]] = {}
    lr = cfg.lr
    for event in applied:
        if event.step is None:
            continue
        if event.kind == "lr_factor":
            lr = lr * event.value
            out.setdefault("lr", []).append((event.step, lr))
        elif event.kind == "lr":
            lr = float(event.value)
            out.setdefault("lr", []).append((event.step, lr))
        elif event.kind == "epochs":
            out.setdefault("epochs", []).append((event.step, int(event.value)))
    return out
