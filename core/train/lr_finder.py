"""The learning-rate finder: a short test run with an exponentially rising rate.

    result = find_lr(cfg, dataset, progress=lambda step, total, lr, loss: ...)
    result.suggestion        # a learning rate for cfg (None when the curve has no clear descent)

It builds cfg's model and optimiser as a run would (same seed, precision, augmentation, batches),
then takes at most MAX_STEPS optimiser steps with the rate rising exponentially from START_LR to
END_LR, recording each step's training loss. It stops early once the loss explodes (the smoothed
loss above EXPLODE_FACTOR times its lowest value, or not finite). Nothing is stored: no run, no
checkpoint; the caller keeps the result (the page writes it to a file, see write_result).

Smoothing: an exponential moving average of the loss with bias correction (beta = BETA), as
fastai's and pytorch-lr-finder's finders do. Suggestion rule (SUGGESTION_RULE): the rate where the
smoothed loss falls fastest against log(lr), i.e. the most negative slope d(smoothed loss) /
d(log10 lr), searched after the first SKIP_START points and up to the lowest smoothed loss (never
in the last SKIP_END points): the start barely moves, and past the minimum the loss is rising, so
a fall there is a recovery from a spike, not a good rate.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from core.atomic_file import atomic_write_bytes
from core.train import batches as batch_path
from core.train.config import TrainConfig
from core.train.device import resolve_device
from core.train.engine import _autocast, make_optimizer, resolve_precision, uses_channels_last
from core.train.models import build_model

START_LR, END_LR = 1e-7, 10.0
MAX_STEPS = 300
BETA = 0.98                # loss smoothing
EXPLODE_FACTOR = 4.0       # stop once the smoothed loss exceeds this multiple of its minimum
SKIP_START, SKIP_END = 10, 5
MIN_FALL = 0.01            # no suggestion unless the smoothed loss fell by 1% somewhere
# English, as the command line prints it; other languages translate it under core.lr_finder.rule.
SUGGESTION_RULE = ("the rate where the smoothed loss falls fastest (steepest negative slope against "
                   "log10 of the rate) before its lowest point")

Progress = Callable[[int, int, float, float], None]   # (step, max steps, lr, smoothed loss)


@dataclass
class FinderResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)        # each step's training loss
    smoothed: list[float] = field(default_factory=list)
    suggestion: float | None = None
    ended: str = ""                                          # "exploded" | "end of range"
    seconds: float = 0.0
    rule: str = SUGGESTION_RULE

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lr_at(step: int, steps: int, start: float = START_LR, end: float = END_LR) -> float:
    """The rate of step `step` (0-based) of `steps`: start * (end / start) ** (step / (steps - 1))."""
    return start * (end / start) ** (step / max(steps - 1, 1))


def smooth(losses: list[float], beta: float = BETA) -> list[float]:
    """Bias-corrected exponential moving average."""
    out, avg = [], 0.0
    for i, loss in enumerate(losses, start=1):
        avg = beta * avg + (1 - beta) * loss
        out.append(avg / (1 - beta ** i))
    return out


def suggest(lrs: list[float], smoothed: list[float]) -> float | None:
    """SUGGESTION_RULE applied to a finder's curve; None when there are too few points or the loss
    never falls."""
    # Only up to the lowest smoothed loss: past it the loss is rising (a fall after a spike there
    # would look steep but is a recovery, not a good rate).
    lo = SKIP_START
    hi = min(len(lrs) - SKIP_END, int(np.nanargmin(np.asarray(smoothed, dtype=float))) + 1) if smoothed else 0
    if hi - lo < 3:
        return None
    x, y = np.log10(np.asarray(lrs[lo:hi])), np.asarray(smoothed[lo:hi])
    if not np.all(np.isfinite(y)) or y.min() > y[0] * (1 - MIN_FALL):
        return None              # the loss never fell clearly
    slope = np.gradient(y, x)
    best = int(np.argmin(slope))
    return float(lrs[lo + best]) if slope[best] < 0 else None


def find_lr(cfg: TrainConfig, dataset, *, max_steps: int = MAX_STEPS, start_lr: float = START_LR,
            end_lr: float = END_LR, progress: Progress | None = None,
            should_stop: Callable[[], bool] | None = None) -> FinderResult:
    """Run the finder for `cfg` (its model, optimiser, batch size, augmentation) on `dataset`'s
    training images (cfg.train_subset applies; a validation split is not held out: the finder
    measures training loss only)."""
    started = time.perf_counter()
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    images, labels = dataset.train.images, dataset.train.labels
    if cfg.train_subset is not None:
        images, labels = images[:cfg.train_subset], labels[:cfg.train_subset]
    x_all, y_all = batch_path.to_device(images, labels, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model).to(device)
    channels_last = uses_channels_last(model, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if cfg.whiten_init and hasattr(model, "init_whitening"):
        from core.data.images import normalize
        model.init_whitening(normalize(x_all[:5000]))
    model.train()
    optimizer = make_optimizer(cfg, model)
    ratios = [group["lr"] / cfg.lr for group in optimizer.param_groups]   # e.g. biases at bias_lr_scale
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    batches = batch_path.BatchIterator(
        x_all, y_all, cfg.batch_size, shuffle=True, drop_last=len(y_all) >= cfg.batch_size, augment=cfg.augment,
        crop_padding=cfg.crop_padding, generator=torch.Generator().manual_seed(cfg.seed),
        channels_last=channels_last, alternate_flip=cfg.alternate_flip, flip_seed=cfg.seed)

    result = FinderResult()
    best = math.inf
    epoch = 0
    while len(result.losses) < max_steps and not result.ended:
        for xb, yb in batches.epoch(epoch_index=epoch):
            step = len(result.losses)
            lr = lr_at(step, max_steps, start_lr, end_lr)
            for group, ratio in zip(optimizer.param_groups, ratios):
                group["lr"] = lr * ratio
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, precision):
                loss = criterion(model(xb).float(), yb)
            loss.backward()
            optimizer.step()
            value = loss.item()   # .item(): sync point every step (a short job that needs each loss)
            result.lrs.append(lr)
            result.losses.append(value)
            result.smoothed = smooth(result.losses)
            now = result.smoothed[-1]
            best = min(best, now)
            if progress is not None:
                progress(step + 1, max_steps, lr, now)
            if not math.isfinite(value) or now > EXPLODE_FACTOR * best:
                result.ended = "exploded"
                break
            if len(result.losses) >= max_steps:
                result.ended = "end of range"
                break
            if should_stop is not None and should_stop():
                result.ended = "stopped"
                break
        epoch += 1
    result.suggestion = suggest(result.lrs, result.smoothed)
    result.seconds = time.perf_counter() - started
    return result


# ---- the result file (a background finder's only output) ------------------------------------

def write_result(path: str | Path, state: dict[str, Any]) -> None:
    """The finder's state as JSON, replaced in one rename (a reader never sees half a file)."""
    atomic_write_bytes(path, json.dumps(state, allow_nan=False, default=_finite).encode())


def read_result(path: str | Path) -> dict[str, Any] | None:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _finite(value):
    raise TypeError(f"not JSON: {value!r}")


def run_to_file(cfg: TrainConfig, dataset, path: str | Path, *, max_steps: int = MAX_STEPS) -> FinderResult:
    """find_lr, writing {"status": "running", "step", "max_steps"} as it goes (about twice a second),
    then {"status": "done", **FinderResult} (or "failed" with the message)."""
    last = [0.0]

    def progress(step: int, total: int, lr: float, loss: float) -> None:
        if time.monotonic() - last[0] >= 0.5:
            last[0] = time.monotonic()
            write_result(path, {"status": "running", "step": step, "max_steps": total, "lr": lr,
                                "loss": loss if math.isfinite(loss) else None})

    write_result(path, {"status": "running", "step": 0, "max_steps": max_steps})
    try:
        result = find_lr(cfg, dataset, max_steps=max_steps, progress=progress)
    except Exception as exc:
        write_result(path, {"status": "failed", "message": f"{type(exc).__name__}: {exc}"})
        raise
    data = result.to_dict()
    for name in ("losses", "smoothed"):
        data[name] = [v if math.isfinite(v) else None for v in data[name]]
    write_result(path, {"status": "done", "max_steps": max_steps, **data})
    return result
