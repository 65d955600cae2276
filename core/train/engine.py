"""The training engine: the tutorial's loop, made fast, observable, stoppable and resumable.

    result = fit(cfg, dataset, run_dir, on_start=..., on_step=..., on_epoch=..., should_stop=..., resume=False)

The PyTorch "Training a Classifier" tutorial in five parts, and where each lives here:

    1. Load and normalise CIFAR-10     core.data (decode once) + core.data.images (normalise on the device)
    2. Define a network                core.train.models.build_model(cfg.model)
    3. Define a loss and an optimiser  make_optimizer() and the CrossEntropyLoss (_Trainer set-up)
    4. Train the network               _Trainer.train_one_epoch: zero grads, forward, loss, backward, step
    5. Test the network                evaluate(), after every epoch (_Trainer.end_of_epoch), on the test split

fit() reads top to bottom: set up (parts 1-3), restore from the newest good checkpoint when
resuming, then (_train) per epoch train_one_epoch (finished / stopped / diverged) and end_of_epoch
(train metrics, test, report, checkpoints). Where the run stands is a small TrainingState; checkpoint_payload() saves it.

Reporting (no printing; only tqdm bars on stderr when progress=True):

    on_start(Plan)                                           once, before training: steps_per_epoch,
                                                            total_steps, epochs, train_images,
                                                            test_images, device, precision
    on_step(step, epoch, {"train_loss", "train_acc"})       every cfg.log_every optimiser steps,
                                                            means since the previous report; with
                                                            report_every_s, also sooner when that
                                                            many seconds passed (one process only)
    on_epoch(epoch, step, {"train_loss", "train_acc", "test_loss", "test_acc",
                           "images_per_sec", "elapsed_s", "lr"})   after each epoch
    should_stop() -> bool                                    checked after every step
    controls() -> [Control]; on_control(AppliedControl)      after every step: changes of the learning
                                                            rate / epochs / stop at epoch end
                                                            (core.train.control); `replay` re-applies
                                                            earlier ones at their steps on resume
    on_predictions(epoch, test_logits, test_labels)          after each epoch's test, before on_epoch:
                                                            the logits (N, 10) on the device, for
                                                            core.train.history (prediction history)
    on_phase("training" | "testing" | "saving", step, epoch) when fit starts each part of an epoch

`step` counts optimiser steps since the run began (1-based at the first report); `epoch` is the
1-based number of the epoch in progress (on_step) or just finished (on_epoch). Accuracies are
fractions in [0, 1]. On a GPU nothing forces a device-to-host sync per step: loss and correct
counts accumulate as device tensors and are read only at report time (each `.item()` is marked).

Arithmetic: cfg.precision (resolve_precision): bf16 autocast for training steps on CUDA and on
CPUs with native bf16, float32 otherwise; evaluation is float32 on a CPU. Conv nets use
channels_last memory on CPU and CUDA; cfg.compile wraps the model in torch.compile on CUDA.

Checkpoints (core.train.checkpoints, loadable with weights_only=True): run_dir/last.pt at each epoch
end and on stop (the one it replaces stays as previous.pt until the run completes), run_dir/best.pt,
a file of its own, whenever validation accuracy improves (cfg.val_images > 0: a stratified
split held out of the training images); without a split there is no best.pt (no "best" without
a split to choose on: last.pt is the model). resume=True continues from last.pt exactly:
same batches, same augmentation, same learning rates, same total step count; when last.pt cannot
be read, from the newest checkpoint that can (checkpoints.find_resume_point). A checkpoint the
machine refuses to write (full disk, no permission) raises CheckpointWriteError saying what Resume
will continue from; the files already there are untouched. Temporary files a kill left behind are
removed when fit starts and when it ends.

Data parallel (fit(world=...), core.train.distributed): every torchrun process runs fit with the
same config; batch_size stays the global batch, each rank trains on its slice of it under
DistributedDataParallel, reports and evaluations are summed or gathered over the ranks, stop and
control decisions come from rank 0 every few steps, and only rank 0 writes checkpoints. Without
a world nothing of this runs (the one-process path is unchanged).
"""
from __future__ import annotations

import copy
import math
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from core.data.images import normalize
from core.train import batches as batch_path
from core.train.checkpoints import (PREVIOUS, CheckpointWriteError, ResumePoint, checkpoint_bytes,
                                    find_resume_point, remove_temporary_checkpoints, write_checkpoint)
from core.data.split import validation_split
from core.train.config import ConfigError, TrainConfig
from core.train.control import Control
from core.train.device import resolve_device
from core.train import distributed
from core.train.distributed import World
from core.train.models import build_model

StepCallback = Callable[[int, int, dict[str, float]], None]
EpochCallback = Callable[[int, int, dict[str, float]], None]
PredictionsCallback = Callable[[int, torch.Tensor, torch.Tensor], None]   # (epoch, test logits, test labels)

EVAL_BATCH_SIZE = 1000
WHITEN_SAMPLE = 5000          # training images used to set the patch-whitening stem


@dataclass
class FitResult:
    status: str               # "completed" | "stopped" | "diverged"
    message: str
    epoch: int                # epochs completed
    step: int                 # optimiser steps taken
    best_test_acc: float | None
    final: dict[str, float] = field(default_factory=dict)   # the last epoch's metrics


# ---- pieces -------------------------------------------------------------------------------

def lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Multiplier of cfg.lr for optimiser step `step` (0-based) of `total_steps` (see core.train.config)."""
    return factor_at(cfg, step / max(total_steps, 1))


def factor_at(cfg: TrainConfig, t: float) -> float:
    """Multiplier of cfg.lr at progress `t` (0 at the first step, 1 at the end of the run)."""
    warm = cfg.warmup
    if warm > 0 and t < warm:
        return 0.1 + 0.9 * t / warm
    if cfg.schedule == "constant":
        return 1.0
    u = (t - warm) / max(1.0 - warm, 1e-12)            # progress through the decay, 0 -> 1
    if cfg.schedule in ("onecycle", "linear_decay"):
        return max(0.0, 1.0 - u)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(u, 1.0)))
    raise ValueError(f"unknown schedule {cfg.schedule!r}")


def make_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """Tutorial part 3: the optimiser. Biases and norm shifts get lr * cfg.bias_lr_scale."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    weights = [p for p in trainable if p.ndim > 1]
    biases = [p for p in trainable if p.ndim <= 1]
    if cfg.bias_lr_scale == 1.0:
        weights, biases = trainable, []          # one group: one fused kernel call per step
    groups = [{"params": weights, "lr": cfg.lr, "weight_decay": cfg.weight_decay}]
    if biases:
        scale = cfg.bias_lr_scale
        # Same decay per step (lr * weight_decay) for the faster-moving biases.
        groups.append({"params": biases, "lr": cfg.lr * scale, "weight_decay": cfg.weight_decay / scale})
    # fused=True: one pass over each weight per step (about 3x faster than the default on CPU).
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True, fused=True)
    kwargs: dict[str, Any] = {"lr": cfg.lr, "betas": (cfg.momentum, 0.999), "fused": True}
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, **kwargs)
    return torch.optim.AdamW(groups, **kwargs)


def uses_channels_last(model: nn.Module, device: torch.device) -> bool:
    """channels_last (NHWC) memory for conv nets: faster on CUDA, and measured ~1.4x faster on CPU
    (oneDNN) for cpu_cnn."""
    return device.type in ("cuda", "cpu") and any(isinstance(m, nn.Conv2d) for m in model.modules())


def cpu_has_native_bf16() -> bool:
    """True when this CPU has bfloat16 matrix instructions (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    try:
        return any(bool(getattr(torch.cpu, name)()) for name in checks if hasattr(torch.cpu, name))
    except Exception:  # private helpers: treat any surprise as "no"
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """"bf16" or "fp32" for a TrainConfig.precision on `device` (auto: bf16 on CUDA and on CPUs
    with native bf16 instructions; fp32 otherwise and on MPS)."""
    if precision == "auto":
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
            return "bf16"
        return "fp32"
    if precision == "bf16" and device.type not in ("cuda", "cpu"):
        return "fp32"
    return precision


def _autocast(device: torch.device, precision: str = "bf16"):
    """bf16 autocast on CUDA, or on the CPU for training steps when precision is bf16."""
    if precision == "bf16" and device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def infer(model: nn.Module, images: torch.Tensor, *, tta: bool = False, batch_size: int = EVAL_BATCH_SIZE,
          channels_last: bool = False) -> torch.Tensor:
    """Logits (float32, on the images' device) for a uint8 NCHW split, in eval mode, no augmentation.

    tta=True averages the logits of each image and its mirror image.
    """
    was_training = model.training
    model.eval()
    out = []
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    try:
        # bf16 on CUDA; float32 on a CPU, so evaluations are exact and reproducible anywhere.
        eval_precision = "bf16" if images.device.type == "cuda" else "fp32"
        with torch.inference_mode(), _autocast(images.device, eval_precision):
            for i in range(0, len(images), batch_size):
                x = normalize(images[i:i + batch_size]).contiguous(memory_format=fmt)
                logits = model(x).float()
                if tta:
                    logits = 0.5 * (logits + model(x.flip(-1)).float())
                out.append(logits)
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, 10, device=images.device)


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, tta: bool = False,
             batch_size: int = EVAL_BATCH_SIZE, channels_last: bool = False) -> dict[str, float]:
    """Tutorial part 5: test loss (summed, then divided by N) and accuracy on a whole split."""
    logits = infer(model, images, tta=tta, batch_size=batch_size, channels_last=channels_last)
    return score_logits(logits, labels)


def score_logits(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Mean cross-entropy and accuracy of a split's logits (what evaluate() reports)."""
    loss_sum = F.cross_entropy(logits, labels, reduction="sum")
    correct = (logits.argmax(1) == labels).sum()
    n = max(len(labels), 1)
    return {"loss": loss_sum.item() / n, "acc": correct.item() / n}  # .item(): sync point (once per evaluation)


class WeightAverage:
    """Exponential moving average of a model's parameters (batch-norm buffers are copied)."""

    def __init__(self, model: nn.Module, decay: float):
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        decay = min(self.decay, (1 + step) / (10 + step))   # short memory at the start
        src = [p for p in model.parameters()]
        dst = [p for p in self.model.parameters()]
        torch._foreach_lerp_(dst, src, 1.0 - decay)
        torch._foreach_copy_(list(self.model.buffers()), list(model.buffers()))


def _subset(images, labels, n: int | None):
    if n is None or n >= len(labels):
        return images, labels
    return images[:n], labels[:n]


def _rng_state(batches: batch_path.BatchIterator, mid_epoch: bool, device: torch.device) -> dict[str, torch.Tensor]:
    state = {
        # Mid-epoch: the state the epoch started from (its order is re-drawn on resume).
        "batches": batches.epoch_state.clone() if mid_epoch else batches.get_state().clone(),
        "torch": torch.get_rng_state(),
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


class Schedule:
    """The learning-rate multiplier of each step: cfg.schedule over the run's steps, times `scale`.

    Controls change it mid-run (core.train.control): a new rate changes `scale`; a new number of
    epochs changes the run's length from step `start_step` on, where the schedule had reached
    progress `start_t`: the rest of the schedule (0 -> 1 in progress) is stretched or squeezed
    over the steps that are left, so the rate never jumps. Unchanged, factor(step) is exactly
    lr_factor(cfg, step, total_steps).
    """

    def __init__(self, cfg: TrainConfig, steps_per_epoch: int):
        self.cfg, self.steps_per_epoch = cfg, steps_per_epoch
        self.epochs = cfg.epochs
        self.total_steps = steps_per_epoch * cfg.epochs
        self.scale = 1.0
        self.start_step, self.start_t = 0, 0.0

    def progress(self, step: int) -> float:
        span = max(self.total_steps - self.start_step, 1)
        return self.start_t + (step - self.start_step) * (1.0 - self.start_t) / span

    def factor(self, step: int) -> float:
        return self.scale * factor_at(self.cfg, self.progress(step))

    def set_epochs(self, epochs: int, step: int) -> None:
        self.start_t, self.start_step = min(self.progress(step), 1.0), step
        self.epochs, self.total_steps = epochs, self.steps_per_epoch * epochs


@dataclass(frozen=True)
class AppliedControl:
    """A control as the engine applied it (given to fit's on_control)."""
    control: Control
    step: int                 # applied after this optimiser step
    epoch: int                # the epoch in progress (1-based)
    lr: float                 # the first parameter group's learning rate from now on
    epochs: int               # the run's length from now on
    total_steps: int
    note: str = ""            # e.g. why an epoch count was raised


# ---- the plan and the training state ------------------------------------------------------

@dataclass(frozen=True)
class Plan:
    """What fit() is about to do, counted by its own batch iterator (given once to on_start)."""
    steps_per_epoch: int      # optimiser steps in one epoch (a short last batch is dropped)
    total_steps: int          # steps_per_epoch * epochs: the length of the learning-rate schedule
    epochs: int
    train_images: int         # after cfg.train_subset
    test_images: int          # after cfg.test_subset
    device: str               # e.g. "cpu" or "cuda:0"
    precision: str            # of the training steps: "bf16" | "fp32"


@dataclass
class EpochSums:
    """Summed training loss, correct predictions and images seen over part of an epoch."""
    loss_sum: float = 0.0
    correct: float = 0.0
    seen: int = 0


@dataclass
class TrainingState:
    """Where a run stands: with the built objects, all that last.pt must remember."""
    epoch_done: int = 0                # epochs completed
    step: int = 0                      # optimiser steps since the run began
    step_in_epoch: int = 0             # steps into the epoch in progress
    best_acc: float | None = None      # best.pt's test accuracy (None without a validation split: no best.pt)
    best_val_acc: float | None = None  # best validation accuracy so far (with a validation split)
    metrics: dict[str, float] = field(default_factory=dict)     # the last finished epoch's
    elapsed_before: float = 0.0        # seconds spent in earlier sessions (resume)
    carried: EpochSums = field(default_factory=EpochSums)       # a resumed epoch's first part


class _EpochRun:
    """One pass through an epoch's batches: its running sums stay on the device until read."""

    def __init__(self, epoch: int, device: torch.device):
        self.epoch = epoch                    # 1-based
        self.started = time.perf_counter()
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), device=device, dtype=torch.int64)
        self.seen = 0
        self.window_loss = torch.zeros((), device=device)   # since the previous on_step report
        self.window_correct = torch.zeros((), device=device, dtype=torch.int64)
        self.window_seen = 0
        self.outcome = "running"              # then "finished" | "stopped" | "diverged"
        # Data parallel: sums over every rank's share (distributed.sum_counts); None: this process only.
        self.reduce: Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, torch.Tensor, int]] | None = None

    def add(self, loss: torch.Tensor, logits: torch.Tensor, y: torch.Tensor) -> None:
        """Count one batch (its detached mean loss and logits): device arithmetic, no sync."""
        n = len(y)
        batch_loss = loss * n
        batch_correct = (logits.argmax(1) == y).sum()
        self.loss_sum += batch_loss
        self.correct += batch_correct
        self.window_loss += batch_loss
        self.window_correct += batch_correct
        self.seen += n
        self.window_seen += n

    def take_window(self) -> tuple[float, float]:
        """Mean loss and accuracy since the previous report; starts the next window."""
        loss, correct, seen = self.window_loss, self.window_correct, self.window_seen
        if self.reduce is not None:
            loss, correct, seen = self.reduce(loss, correct, seen)
        mean_loss = loss.item() / seen      # .item(): sync point (report)
        mean_acc = correct.item() / seen    # .item(): sync point (report)
        self.window_loss.zero_()
        self.window_correct.zero_()
        self.window_seen = 0
        return mean_loss, mean_acc

    def totals(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(loss sum, correct, images seen) of the epoch so far, over every rank's share."""
        if self.reduce is not None:
            return self.reduce(self.loss_sum, self.correct, self.seen)
        return self.loss_sum, self.correct, self.seen

    def end(self, outcome: str) -> "_EpochRun":
        self.outcome = outcome
        return self


# ---- the trainer: set up, restore, train one epoch, end of epoch, checkpoint payload -------

class _Trainer:
    """The objects one fit() call builds (parts 1-3) and the steps it takes with them."""

    def __init__(self, cfg: TrainConfig, dataset, run_dir: Path, *, progress: bool = False,
                 world: World | None = None):
        """Set up: the data on the device, the network, its loss, optimiser and schedule.
        `world`: this process's place in a data-parallel run (core.train.distributed), else None."""
        self.cfg, self.progress, self.world = cfg, progress, world
        self.report_every_s: float | None = None   # fit(report_every_s=...): reports at least this often
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.last_path, self.best_path = run_dir / "last.pt", run_dir / "best.pt"
        self.previous_path = run_dir / PREVIOUS
        self.saved: tuple[int, int] | None = None   # (epoch, step) of the newest good checkpoint on disk
        self.last_is_good = True                    # False after resuming from a fallback: last.pt is damaged
        self.device = device = resolve_device(cfg.device) if world is None else world.device
        self.precision = resolve_precision(cfg.precision, device)
        self.started = time.perf_counter()
        if device.type == "cuda":
            torch.backends.cudnn.benchmark = True        # pick the fastest conv kernels for fixed shapes

        # Part 1: the data, once, as uint8 tensors on the device.
        # A validation split (cfg.val_images) is held out of the training images first (core.data.split).
        train_x, train_y = dataset.train.images, dataset.train.labels
        self.val_x = self.val_y = None
        if cfg.val_images:
            try:
                keep, held = validation_split(train_y, cfg.val_images, cfg.seed)
            except ValueError as exc:
                raise ConfigError("val_images", str(exc).removeprefix("val_images: ")) from None
            self.val_x, self.val_y = batch_path.to_device(train_x[held], train_y[held], device)
            train_x, train_y = train_x[keep], train_y[keep]
        train_x, train_y = _subset(train_x, train_y, cfg.train_subset)
        if len(train_y) < cfg.batch_size:   # the dataset (after the validation split) is smaller than one batch
            raise ConfigError("batch_size", f"must be at most the number of training images ({len(train_y):,}"
                                            f"{' left after the validation split' if cfg.val_images else ''}), "
                                            f"got {cfg.batch_size:,}")
        test_x, test_y = _subset(dataset.test.images, dataset.test.labels, cfg.test_subset)
        train_x, train_y = batch_path.to_device(train_x, train_y, device)
        self.test_x, self.test_y = batch_path.to_device(test_x, test_y, device)

        # Part 2: the network, initialised from the seed (without disturbing the caller's RNG).
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.model).to(device)
        self.channels_last = uses_channels_last(model, device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.whitened = cfg.whiten_init and hasattr(model, "init_whitening")
        if self.whitened:
            model.init_whitening(normalize(train_x[:WHITEN_SAMPLE]))
        self.model = model

        # Part 3: loss and optimiser, plus the learning-rate schedule (one multiplier per step).
        self.criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
        self.optimizer = make_optimizer(cfg, model)
        # Data parallel: this rank's slice of every global batch (distributed.ShardedBatches).
        iterator, more = ((batch_path.BatchIterator, {}) if world is None
                          else (distributed.ShardedBatches, {"world": world}))
        self.batches = iterator(
            train_x, train_y, cfg.batch_size, shuffle=True, drop_last=True, **more,
            augment=cfg.augment, crop_padding=cfg.crop_padding,
            generator=torch.Generator().manual_seed(cfg.seed), channels_last=self.channels_last,
            alternate_flip=cfg.alternate_flip, flip_seed=cfg.seed)
        steps_per_epoch = len(self.batches)
        total_steps = steps_per_epoch * cfg.epochs
        self.schedule = Schedule(cfg, steps_per_epoch)    # controls may change it mid-run
        # A plain lambda: LambdaLR then keeps nothing of it in scheduler_state (checkpoint format).
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: self.schedule.factor(s))
        self.average = WeightAverage(model, cfg.ema_decay) if cfg.ema else None
        self.eval_model = self.average.model if self.average else model
        self.forward = self.wrap(model)

        self.plan = Plan(steps_per_epoch=steps_per_epoch, total_steps=total_steps, epochs=cfg.epochs,
                         train_images=self.batches.num_images, test_images=len(self.test_y),
                         device=str(device), precision=self.precision)
        self.state = TrainingState()
        self.on_predictions: PredictionsCallback | None = None   # set by fit()
        self.on_phase: Callable[[str, int, int], None] | None = None   # set by fit(): what it does now
        # Controls (core.train.control), set by fit(): a source of new ones, its listener, the
        # ones applied in earlier sessions (replayed at their steps), and the ones applied so far.
        self.controls: Callable[[], list[Control]] | None = None
        self.on_control: Callable[[AppliedControl], None] | None = None
        self.replay: list[Control] = []
        self.applied: list[dict[str, Any]] = []
        self.stop_at_epoch_end = False

    def wrap(self, model: nn.Module) -> nn.Module:
        """What training steps call: the model, in DistributedDataParallel when data parallel,
        compiled when cfg.compile on CUDA."""
        if self.world is not None:
            model = distributed.wrap(model, self.world)
        return torch.compile(model) if (self.cfg.compile and self.device.type == "cuda") else model

    def infer_split(self, images: torch.Tensor) -> torch.Tensor:
        """Logits of a whole split (test or validation) by the evaluated model; data parallel:
        each rank infers its share with rank 0's batch-norm statistics, then all shares are gathered."""
        model, tta, cl = self.eval_model, self.cfg.tta, self.channels_last
        if self.world is None:
            return infer(model, images, tta=tta, channels_last=cl)
        distributed.sync_buffers(self.world, model)
        return distributed.gather_logits(
            self.world, lambda part: infer(model, images[part], tta=tta, channels_last=cl), len(images))

    # -- resume ---------------------------------------------------------------------------

    def restore(self, point: ResumePoint) -> None:
        """Continue exactly where the checkpoint left off: weights, optimiser, schedule, RNGs, progress."""
        ckpt = point.take_payload()
        if ckpt["model"] != self.cfg.model:
            raise ValueError(f"{point.path} holds a {ckpt['model']!r} model but the config asks for "
                             f"{self.cfg.model!r}")
        self.model.load_state_dict(ckpt.get("train_state", ckpt["model_state"]))
        if self.average:
            self.average.model.load_state_dict(ckpt["model_state"])
        self.optimizer.load_state_dict(ckpt["optimizer_state"])
        self.scheduler.load_state_dict(ckpt["scheduler_state"])
        self.batches.set_state(ckpt["rng"]["batches"].cpu())
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if self.device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), self.device)
        sums = ckpt.get("epoch_progress")
        self.state = TrainingState(
            epoch_done=ckpt["epoch"], step=ckpt["step"], step_in_epoch=ckpt["step_in_epoch"],
            best_acc=ckpt.get("best_test_acc") if self.val_x is not None else None,   # older runs chose by test
            best_val_acc=ckpt.get("best_val_acc"),
            metrics=dict(ckpt.get("metrics") or {}),
            elapsed_before=float(ckpt.get("elapsed_s", 0.0)),
            carried=EpochSums(sums["loss_sum"], sums["correct"], sums["seen"]) if sums else EpochSums())
        self.saved = (point.epoch, point.step)
        self.last_is_good = point.path == self.last_path

    # -- controls: changes while the run trains ---------------------------------------------

    def apply_control(self, control: Control) -> AppliedControl:
        """Apply one control (core.train.control) between two steps; the new rate applies from
        the next step on."""
        state, schedule, note = self.state, self.schedule, ""
        in_progress = state.epoch_done + (1 if state.step_in_epoch > 0 else 0)
        if control.kind == "lr_factor":
            schedule.scale *= float(control.value)
        elif control.kind == "lr":
            schedule.scale = float(control.value) / self.cfg.lr
        elif control.kind == "epochs":
            epochs = int(control.value)
            if epochs < max(in_progress, 1):
                note = f"raised to {max(in_progress, 1)}: epoch {max(in_progress, 1)} is already under way"
                epochs = max(in_progress, 1)
            schedule.set_epochs(epochs, state.step)
            self.plan = replace(self.plan, epochs=epochs, total_steps=schedule.total_steps)
        elif control.kind == "stop_at_epoch_end":
            self.stop_at_epoch_end = True
        else:
            raise ValueError(f"unknown control {control.kind!r}")
        factor = schedule.factor(self.scheduler.last_epoch)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs):
            group["lr"] = base * factor
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]
        self.applied.append({"kind": control.kind, "value": control.value, "step": state.step})
        return AppliedControl(control, state.step, state.epoch_done + 1, self.optimizer.param_groups[0]["lr"],
                              schedule.epochs, schedule.total_steps, note)

    def take_controls(self) -> None:
        """Between steps: replays due at this step, then new controls (reported to on_control)."""
        step = self.state.step
        while self.replay and self.replay[0].step <= step:
            self.apply_control(self.replay.pop(0))
        if self.controls is not None:
            for control in self.controls():
                applied = self.apply_control(control)
                if self.on_control is not None:
                    self.on_control(applied)

    def replay_until_now(self) -> None:
        """Before training: the controls an earlier session applied up to the restored step (a
        stop at epoch end counts only while its epoch is still to finish)."""
        spe = self.plan.steps_per_epoch
        while self.replay and self.replay[0].step <= self.state.step:
            control = self.replay.pop(0)
            self.apply_control(control)
            if control.kind == "stop_at_epoch_end" and -(-control.step // spe) <= self.state.epoch_done:
                self.stop_at_epoch_end = False

    # -- part 4: training -----------------------------------------------------------------

    def train_one_epoch(self, on_step: StepCallback | None, should_stop: Callable[[], bool] | None) -> _EpochRun:
        """Part 4 over the epoch in progress (its remaining batches after a mid-epoch resume).

        Returns its running sums with outcome "finished", "stopped" (should_stop() said so after a
        step) or "diverged" (a report's mean loss was NaN or infinite).
        """
        cfg, state = self.cfg, self.state
        run = _EpochRun(state.epoch_done + 1, self.device)
        if self.world is not None:
            run.reduce = lambda *sums: distributed.sum_counts(self.world, *sums)
        if self.whitened:
            # airbench: the whitening stem's bias learns for the first epochs only. Once it is
            # frozen, nothing below the first conv group needs a gradient (no input-gradient for
            # the largest convolution): cpu_cnn steps measured ~12% faster on 2 CPU cores.
            learns = run.epoch <= cfg.whiten_bias_epochs
            rewrap = self.world is not None and self.model.whiten.bias.requires_grad != learns
            self.model.whiten.bias.requires_grad_(learns)
            if rewrap:   # DDP syncs the gradients of the parameters that learnt when it was built
                self.forward = self.wrap(self.model)
        model, forward, criterion, average = self.model, self.forward, self.criterion, self.average
        optimizer, scheduler, device, precision = self.optimizer, self.scheduler, self.device, self.precision
        bar = self._progress_bar(run.epoch)
        # Reports at the multiples of log_every, as without report_every_s, until a report comes
        # early (report_every_s passed): the next is then log_every steps after that one.
        every_s, last_report, reported_at = self.report_every_s, state.step - state.step % cfg.log_every, time.monotonic()
        try:
            for x, y in self.batches.epoch(start_batch=state.step_in_epoch, epoch_index=state.epoch_done):
                # Part 4: one training step.
                # 4.1 zero the parameter gradients
                optimizer.zero_grad(set_to_none=True)
                # 4.2 forward: images -> logits
                with _autocast(device, precision):
                    logits = forward(x)
                    # 4.3 loss: how wrong the logits are for the true labels
                    loss = criterion(logits.float(), y)
                # 4.4 backward: gradients of the loss for every weight
                loss.backward()
                # 4.5 step: move every weight a little against its gradient
                optimizer.step()
                scheduler.step()
                state.step += 1
                state.step_in_epoch += 1
                if average is not None:
                    average.update(model, state.step)

                run.add(loss.detach(), logits.detach(), y)
                if bar is not None:
                    bar.update(1)
                due = state.step - last_report >= cfg.log_every
                if due or (every_s is not None and time.monotonic() - reported_at >= every_s):
                    if not self._report(run, on_step, bar):
                        return run.end("diverged")
                    last_report, reported_at = state.step, time.monotonic()
                if self.replay or self.controls is not None:
                    self.take_controls()
                if should_stop is not None and should_stop():
                    return run.end("stopped")
        finally:
            if bar is not None:
                bar.close()
        return run.end("finished")

    def _report(self, run: _EpochRun, on_step: StepCallback | None, bar) -> bool:
        """The report every cfg.log_every steps; False when the window's mean loss is not finite."""
        mean_loss, mean_acc = run.take_window()
        if not math.isfinite(mean_loss):
            return False
        if bar is not None:
            bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{mean_acc:.3f}", refresh=False)
        if on_step is not None:
            on_step(self.state.step, run.epoch, {"train_loss": mean_loss, "train_acc": mean_acc})
        return True

    def _progress_bar(self, epoch: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm
        return tqdm(total=self.plan.steps_per_epoch, initial=self.state.step_in_epoch,
                    desc=f"epoch {epoch}/{self.schedule.epochs}", unit="step", leave=False, dynamic_ncols=True)

    # -- part 5 and the checkpoints ---------------------------------------------------------

    def end_of_epoch(self, run: _EpochRun, on_epoch: EpochCallback | None) -> FitResult | None:
        """Train metrics, part 5 (test), the report, checkpoints. Returns a result only on divergence."""
        state = self.state
        loss_sum, correct, seen = run.totals()                 # data parallel: over every rank
        total_seen = state.carried.seen + seen
        train_loss = (state.carried.loss_sum + loss_sum.item()) / max(total_seen, 1)   # .item(): sync point (epoch)
        train_acc = (state.carried.correct + correct.item()) / max(total_seen, 1)      # .item(): sync point (epoch)
        train_time = time.perf_counter() - run.started        # after the sync: all the epoch's work is done
        state.carried = EpochSums()
        if not math.isfinite(train_loss):
            return self.diverged("during training")
        self.phase("testing", run.epoch)
        # Part 5: test the network on the whole test split.
        logits = self.infer_split(self.test_x)
        test = score_logits(logits, self.test_y)
        if not math.isfinite(test["loss"]):
            return self.diverged("on the test images")
        if self.on_predictions is not None:   # every test image's logits (the worker keeps a history)
            self.on_predictions(run.epoch, logits, self.test_y)
        state.epoch_done = run.epoch
        state.step_in_epoch = 0
        state.metrics = {
            "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test["loss"], "test_acc": test["acc"],
            "images_per_sec": seen / max(train_time, 1e-9),
            "elapsed_s": self.elapsed(),
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        improved = self.score_validation(test["acc"])
        if on_epoch is not None:
            on_epoch(run.epoch, state.step, dict(state.metrics))
        self.phase("saving", run.epoch)
        self.save(self.checkpoint_payload(mid_epoch=False), best=improved)
        return None

    def phase(self, name: str, epoch: int) -> None:
        """Tell on_phase what the trainer starts doing now (training, testing or saving), at which
        step and in which epoch."""
        if self.on_phase is not None:
            self.on_phase(name, self.state.step, epoch)

    def score_validation(self, test_acc: float) -> bool:
        """Whether this epoch's model is the new best.pt: with a validation split, by validation
        accuracy (measured here, added to the metrics; best_acc is then best.pt's test accuracy).
        Without one there is no "best" (choosing by test accuracy would be choosing on the split
        that is reported): no best.pt, last.pt is the model."""
        state = self.state
        if self.val_x is None:
            return False
        else:
            val = score_logits(self.infer_split(self.val_x), self.val_y)
            state.metrics.update(val_loss=val["loss"], val_acc=val["acc"])
            improved = state.best_val_acc is None or val["acc"] > state.best_val_acc
            if improved:
                state.best_val_acc = val["acc"]
        if improved:
            state.best_acc = test_acc
        return improved

    def stop(self, run: _EpochRun) -> FitResult:
        """A clean stop mid-epoch: last.pt with the epoch's sums so far, so resume continues exactly."""
        carried, state = self.state.carried, self.state
        loss_sum, correct, seen = run.totals()                 # data parallel: over every rank
        sums = EpochSums(loss_sum=carried.loss_sum + loss_sum.item(),   # .item(): sync (stop)
                         correct=carried.correct + correct.item(),      # .item(): sync (stop)
                         seen=carried.seen + seen)
        if not math.isfinite(sums.loss_sum / max(sums.seen, 1)):
            return self.diverged("before the stop")
        self.save(self.checkpoint_payload(mid_epoch=True, epoch_progress=sums), best=False)
        return self.result("stopped", f"Stopped at step {state.step} (epoch {run.epoch}, step "
                           f"{state.step_in_epoch} of {self.plan.steps_per_epoch}); resume continues from here.")

    def save(self, payload: dict[str, Any], *, best: bool) -> None:
        """best.pt (when it improved), then last.pt, each its own file of the same bytes; the last.pt
        being replaced stays as previous.pt. CheckpointWriteError, with what Resume will do, when
        the machine refuses: best.pt first, so a failure leaves last.pt at the epoch before and a
        resume redoes this epoch, best.pt included. Data parallel: rank 0 alone writes."""
        if self.world is not None and not self.world.leader:
            self.saved = (payload["epoch"], payload["step"])
            return
        data = checkpoint_bytes(payload)
        newest = self.saved
        try:
            if best:
                write_checkpoint(self.best_path, data)
                newest = newest or (payload["epoch"], payload["step"])   # resume would find this one
            # After resuming from a fallback, last.pt is the damaged file: not worth keeping.
            write_checkpoint(self.last_path, data, previous=self.previous_path if self.last_is_good else None)
        except CheckpointWriteError as exc:
            exc.resume_from = (f"the run continues from its last good checkpoint (epoch {newest[0]}, step {newest[1]})"
                               if newest else "the run starts again from the beginning (no checkpoint was saved yet)")
            raise
        self.saved, self.last_is_good = (payload["epoch"], payload["step"]), True

    def tidy(self, *, finished: bool) -> None:
        """Remove temporary checkpoint files a kill left; a finished run (completed or diverged:
        it will not be resumed) no longer needs previous.pt either. Data parallel: rank 0 alone."""
        if self.world is not None and not self.world.leader:
            return
        remove_temporary_checkpoints(self.run_dir)
        if finished:
            try:
                self.previous_path.unlink(missing_ok=True)
            except OSError:
                pass

    def checkpoint_payload(self, *, mid_epoch: bool, epoch_progress: EpochSums | None = None) -> dict[str, Any]:
        """last.pt's contents (core.train.checkpoints format) for the current state."""
        state = self.state
        data = {
            "model": self.cfg.model,
            "model_state": self.eval_model.state_dict(),     # the weights the metrics describe
            "config": self.cfg.to_dict(),
            "epoch": state.epoch_done, "step": state.step,
            "step_in_epoch": state.step_in_epoch if mid_epoch else 0,
            "metrics": dict(state.metrics),
            "optimizer_state": self.optimizer.state_dict(),
            "scheduler_state": self.scheduler.state_dict(),
            "rng": _rng_state(self.batches, mid_epoch, self.device),
            "best_test_acc": state.best_acc,
            "best_val_acc": state.best_val_acc,
            "elapsed_s": self.elapsed(),
            "device": str(self.device),
            "precision": self.precision,
            # A plain str: torch.__version__ is a TorchVersion, which weights_only loading refuses.
            "torch_version": str(torch.__version__),
            "epoch_progress": asdict(epoch_progress or EpochSums()),
            "controls": [dict(c) for c in self.applied],     # changes since `config` (core.train.control)
            "epochs": self.schedule.epochs,                   # the run's length after them
            "processes": self.world.size if self.world is not None else 1,   # data parallel (information)
        }
        if self.average:
            data["train_state"] = self.model.state_dict()   # the raw weights the optimiser moves
        return data

    # -- results ----------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds of training so far, earlier sessions included."""
        return self.state.elapsed_before + time.perf_counter() - self.started

    def result(self, status: str, message: str) -> FitResult:
        state = self.state
        return FitResult(status, message, state.epoch_done, state.step, state.best_acc, state.metrics)

    def diverged(self, where: str) -> FitResult:
        state = self.state
        return self.result("diverged", f"Loss became NaN or infinite {where} (step {state.step}, epoch "
                           f"{state.epoch_done + 1}). Try a lower learning rate than lr={self.cfg.lr:g}.")


# ---- fit ----------------------------------------------------------------------------------

def fit(cfg: TrainConfig, dataset, run_dir, *, on_step: StepCallback | None = None,
        on_epoch: EpochCallback | None = None, should_stop: Callable[[], bool] | None = None,
        resume: bool = False, progress: bool = False,
        on_start: Callable[[Plan], None] | None = None, resume_from: ResumePoint | None = None,
        on_predictions: PredictionsCallback | None = None,
        controls: Callable[[], list[Control]] | None = None,
        on_control: Callable[[AppliedControl], None] | None = None,
        replay: Sequence[Control] = (),
        on_phase: Callable[[str, int, int], None] | None = None,
        world: World | None = None, report_every_s: float | None = None) -> FitResult:
    """Train cfg.model on `dataset` (core.data.Dataset) and write checkpoints to `run_dir`.

    resume=True continues from `resume_from` (a checkpoints.find_resume_point the caller already
    made), else from the newest checkpoint in run_dir that loads; from the beginning when there
    is none. NoUsableCheckpointError when there are checkpoints but none can be resumed from.

    Controls (core.train.control): `controls()` is asked between steps for new ones, each applied
    at once and reported to `on_control(AppliedControl)`; `replay` holds those an earlier session
    applied (with their steps): the ones up to the restored step are applied before training, the
    others at their steps, so a resumed run follows the same rates and length.

    `on_phase(name, step, epoch)` hears when fit starts "training" an epoch, "testing" it (test and validation
    split) and "saving" its checkpoints (for a progress line saying what the run is doing).

    `report_every_s`: report (on_step) as soon as this many seconds passed since the previous report,
    even before cfg.log_every steps (a live chart that grows at least every few seconds however slow
    the steps are: core.runs.worker); the next report then comes cfg.log_every steps or as many
    seconds later. Ignored in a data-parallel run, whose ranks must report at the same steps.

    `world` (core.train.distributed.start): this process is one rank of a data-parallel run; every
    rank calls fit with the same arguments, only rank 0 with callbacks that talk to the run store
    (its should_stop and controls are asked every distributed.AGREE_EVERY steps and broadcast).
    """
    trainer = _Trainer(cfg, dataset, Path(run_dir), progress=progress, world=world)      # parts 1-3
    trainer.report_every_s = report_every_s if world is None else None
    if world is not None:   # data parallel: rank 0 asks, every rank follows at the same step
        agreed = distributed.Agreement(world, lambda: trainer.state.step, should_stop, controls)
        should_stop, controls = agreed.should_stop, agreed.controls
    trainer.controls, trainer.on_control = controls, on_control
    trainer.replay = sorted(replay, key=lambda c: (c.step, c.id or 0))
    trainer.on_predictions, trainer.on_phase = on_predictions, on_phase
    trainer.tidy(finished=False)                  # what killed writes left behind
    if resume:
        point = resume_from if resume_from is not None else find_resume_point(run_dir, model=cfg.model)
        if point is not None:
            trainer.restore(point)
    trainer.replay_until_now()
    if on_start is not None:
        on_start(trainer.plan)
    result = _train(trainer, on_step, on_epoch, should_stop)
    trainer.tidy(finished=result.status in ("completed", "diverged"))
    return result


def _train(trainer: _Trainer, on_step: StepCallback | None, on_epoch: EpochCallback | None,
           should_stop: Callable[[], bool] | None) -> FitResult:
    """Per epoch: part 4, then part 5 and the checkpoints, until done, stopped or diverged."""
    schedule, state = trainer.schedule, trainer.state
    if state.epoch_done >= schedule.epochs:
        return trainer.result("completed", "Already complete.")

    trainer.model.train()
    while state.epoch_done < schedule.epochs:
        trainer.phase("training", state.epoch_done + 1)
        epoch = trainer.train_one_epoch(on_step, should_stop)                # part 4
        if epoch.outcome == "diverged":
            return trainer.diverged("during training")
        if epoch.outcome == "stopped":
            return trainer.stop(epoch)
        failed = trainer.end_of_epoch(epoch, on_epoch)                       # part 5, checkpoints
        if failed is not None:
            return failed
        if trainer.stop_at_epoch_end and state.epoch_done < schedule.epochs:
            return trainer.result("stopped", f"Stopped at the end of epoch {state.epoch_done} as asked (step "
                                  f"{state.step}); resume continues with epoch {state.epoch_done + 1}.")
    if state.best_val_acc is not None:
        return trainer.result("completed", f"Finished {schedule.epochs} epochs ({state.step} steps); best "
                              f"validation accuracy {100 * state.best_val_acc:.2f}% (best.pt: test accuracy "
                              f"{100 * state.best_acc:.2f}%).")
    return trainer.result("completed", f"Finished {schedule.epochs} epochs ({state.step} steps); test accuracy "
                          f"{100 * state.metrics['test_acc']:.2f}% (no validation split: last.pt is the model).")
