"""The training engine: the tutorial's loop, made fast, observable, stoppable and resumable.

    result = fit(cfg, dataset, run_dir, on_step=..., on_epoch=..., should_stop=..., resume=False)

The PyTorch "Training a Classifier" tutorial in five parts, and where each lives here:

    1. Load and normalise CIFAR-10     core.data (decode once) + core.batches (normalise on the device)
    2. Define a network                core.models.build_model(cfg.model)
    3. Define a loss and an optimiser  make_optimizer() and the CrossEntropyLoss in fit()
    4. Train the network               the loop in fit(): zero grads, forward, loss, backward, step
    5. Test the network                evaluate(), after every epoch, on the test split

Reporting (no printing; only tqdm bars on stderr when progress=True):

    on_step(step, epoch, {"train_loss", "train_acc"})       every cfg.log_every optimiser steps,
                                                            means since the previous report
    on_epoch(epoch, step, {"train_loss", "train_acc", "test_loss", "test_acc",
                           "images_per_sec", "elapsed_s", "lr"})   after each epoch
    should_stop() -> bool                                    checked after every step

`step` counts optimiser steps since the run began (1-based at the first report); `epoch` is the
1-based number of the epoch in progress (on_step) or just finished (on_epoch). Accuracies are
fractions in [0, 1]. On a GPU nothing forces a device-to-host sync per step: loss and correct
counts accumulate as device tensors and are read only at report time (each `.item()` is marked).

Arithmetic: cfg.precision (resolve_precision): bf16 autocast for training steps on CUDA and on
CPUs with native bf16, float32 otherwise; evaluation is float32 on a CPU. Conv nets use
channels_last memory on CPU and CUDA; cfg.compile wraps the model in torch.compile on CUDA.

Checkpoints (core.checkpoints, loadable with weights_only=True): run_dir/last.pt at each epoch
end and on stop, run_dir/best.pt whenever test accuracy improves. resume=True continues from
last.pt exactly: same batches, same augmentation, same learning rates, same total step count.
"""
from __future__ import annotations

import copy
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.data.images import normalize
from core.train import batches as batch_path
from core.train.checkpoints import load_checkpoint, save_checkpoint
from core.train.config import TrainConfig
from core.train.device import resolve_device
from core.train.models import build_model

StepCallback = Callable[[int, int, dict[str, float]], None]
EpochCallback = Callable[[int, int, dict[str, float]], None]

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
    """Multiplier of cfg.lr for optimiser step `step` (0-based) of `total_steps` (see core.config)."""
    t = step / max(total_steps, 1)
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


def _publish_best(last_path: Path, best_path: Path, data: dict[str, Any]) -> None:
    """best.pt = the last.pt just written: a hard link renamed into place (no second write),
    or a full save where the file system has no hard links."""
    tmp = best_path.with_name(f".{best_path.name}.link.tmp")
    try:
        tmp.unlink(missing_ok=True)
        os.link(last_path, tmp)
        os.replace(tmp, best_path)
    except OSError:
        tmp.unlink(missing_ok=True)
        save_checkpoint(best_path, data)


# ---- fit ----------------------------------------------------------------------------------

def fit(cfg: TrainConfig, dataset, run_dir, *, on_step: StepCallback | None = None,
        on_epoch: EpochCallback | None = None, should_stop: Callable[[], bool] | None = None,
        resume: bool = False, progress: bool = False) -> FitResult:
    """Train cfg.model on `dataset` (core.data.Dataset) and write checkpoints to `run_dir`."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.precision, device)
    started = time.perf_counter()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True        # pick the fastest conv kernels for fixed shapes

    # Part 1: the data, once, as uint8 tensors on the device.
    train_x, train_y = _subset(dataset.train.images, dataset.train.labels, cfg.train_subset)
    test_x, test_y = _subset(dataset.test.images, dataset.test.labels, cfg.test_subset)
    train_x, train_y = batch_path.to_device(train_x, train_y, device)
    test_x, test_y = batch_path.to_device(test_x, test_y, device)

    # Part 2: the network, initialised from the seed (without disturbing the caller's RNG).
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build_model(cfg.model).to(device)
    channels_last = uses_channels_last(model, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    whitened = cfg.whiten_init and hasattr(model, "init_whitening")
    if whitened:
        model.init_whitening(normalize(train_x[:WHITEN_SAMPLE]))

    # Part 3: loss and optimiser, plus the learning-rate schedule (one multiplier per step).
    criterion = nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    optimizer = make_optimizer(cfg, model)
    batches = batch_path.BatchIterator(
        train_x, train_y, cfg.batch_size, shuffle=True, drop_last=len(train_y) >= cfg.batch_size,
        augment=cfg.augment, crop_padding=cfg.crop_padding,
        generator=torch.Generator().manual_seed(cfg.seed), channels_last=channels_last,
        alternate_flip=cfg.alternate_flip, flip_seed=cfg.seed)
    steps_per_epoch = len(batches)
    total_steps = steps_per_epoch * cfg.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(cfg, s, total_steps))
    average = WeightAverage(model, cfg.ema_decay) if cfg.ema else None
    eval_model = average.model if average else model
    forward = torch.compile(model) if (cfg.compile and device.type == "cuda") else model

    # Where we start: fresh, or exactly where last.pt left off.
    epoch_done, step, step_in_epoch = 0, 0, 0
    best_acc: float | None = None
    metrics: dict[str, float] = {}
    elapsed_before = 0.0
    carried = {"loss_sum": 0.0, "correct": 0.0, "seen": 0}   # a resumed epoch's first part
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"
    if resume and last_path.is_file():
        ckpt = load_checkpoint(last_path, map_location=device)
        if ckpt["model"] != cfg.model:
            raise ValueError(f"{last_path} holds a {ckpt['model']!r} model but the config asks for {cfg.model!r}")
        model.load_state_dict(ckpt.get("train_state", ckpt["model_state"]))
        if average:
            average.model.load_state_dict(ckpt["model_state"])
        optimizer.load_state_dict(ckpt["optimizer_state"])
        scheduler.load_state_dict(ckpt["scheduler_state"])
        batches.set_state(ckpt["rng"]["batches"].cpu())
        torch.set_rng_state(ckpt["rng"]["torch"].cpu())
        if device.type == "cuda" and "cuda" in ckpt["rng"]:
            torch.cuda.set_rng_state(ckpt["rng"]["cuda"].cpu(), device)
        epoch_done, step, step_in_epoch = ckpt["epoch"], ckpt["step"], ckpt["step_in_epoch"]
        best_acc = ckpt.get("best_test_acc")
        metrics = dict(ckpt.get("metrics") or {})
        elapsed_before = float(ckpt.get("elapsed_s", 0.0))
        carried = dict(ckpt.get("epoch_progress") or carried)

    def payload(mid_epoch: bool, epoch_progress: dict | None = None) -> dict[str, Any]:
        data = {
            "model": cfg.model,
            "model_state": eval_model.state_dict(),     # the weights the metrics describe
            "config": cfg.to_dict(),
            "epoch": epoch_done, "step": step, "step_in_epoch": step_in_epoch if mid_epoch else 0,
            "metrics": dict(metrics),
            "optimizer_state": optimizer.state_dict(),
            "scheduler_state": scheduler.state_dict(),
            "rng": _rng_state(batches, mid_epoch, device),
            "best_test_acc": best_acc,
            "elapsed_s": elapsed_before + time.perf_counter() - started,
            "device": str(device),
            "precision": precision,
            # A plain str: torch.__version__ is a TorchVersion, which weights_only loading refuses.
            "torch_version": str(torch.__version__),
            "epoch_progress": epoch_progress or {"loss_sum": 0.0, "correct": 0.0, "seen": 0},
        }
        if average:
            data["train_state"] = model.state_dict()   # the raw weights the optimiser moves
        return data

    def diverged(where: str) -> FitResult:
        return FitResult("diverged", f"Loss became NaN or infinite {where} (step {step}, epoch {epoch_done + 1}). "
                         f"Try a lower learning rate than lr={cfg.lr:g}.", epoch_done, step, best_acc, metrics)

    if epoch_done >= cfg.epochs:
        return FitResult("completed", "Already complete.", epoch_done, step, best_acc, metrics)

    model.train()
    while epoch_done < cfg.epochs:
        epoch = epoch_done + 1
        epoch_start = time.perf_counter()
        if whitened:
            # airbench: the whitening stem's bias learns for the first epochs only. Once it is
            # frozen, nothing below the first conv group needs a gradient (no input-gradient for
            # the largest convolution): cpu_cnn steps measured ~12% faster on 2 CPU cores.
            model.whiten.bias.requires_grad_(epoch <= cfg.whiten_bias_epochs)
        # Running sums live on the device; nothing is read back until a report.
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.int64)
        window_loss = torch.zeros((), device=device)
        window_correct = torch.zeros((), device=device, dtype=torch.int64)
        seen, window_seen = 0, 0
        first_batch = step_in_epoch
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=steps_per_epoch, initial=first_batch, desc=f"epoch {epoch}/{cfg.epochs}",
                       unit="step", leave=False, dynamic_ncols=True)
        for x, y in batches.epoch(start_batch=first_batch, epoch_index=epoch_done):
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
            step += 1
            step_in_epoch += 1
            if average:
                average.update(model, step)

            n = len(y)
            batch_loss = loss.detach() * n
            batch_correct = (logits.detach().argmax(1) == y).sum()
            loss_sum += batch_loss
            correct += batch_correct
            window_loss += batch_loss
            window_correct += batch_correct
            seen += n
            window_seen += n
            if bar is not None:
                bar.update(1)

            if step % cfg.log_every == 0:
                mean_loss = window_loss.item() / window_seen      # .item(): sync point (report)
                mean_acc = window_correct.item() / window_seen    # .item(): sync point (report)
                window_loss.zero_()
                window_correct.zero_()
                window_seen = 0
                if not math.isfinite(mean_loss):
                    if bar is not None:
                        bar.close()
                    return diverged("during training")
                if bar is not None:
                    bar.set_postfix(loss=f"{mean_loss:.3f}", acc=f"{mean_acc:.3f}", refresh=False)
                if on_step is not None:
                    on_step(step, epoch, {"train_loss": mean_loss, "train_acc": mean_acc})

            if should_stop is not None and should_stop():
                if bar is not None:
                    bar.close()
                progress_sums = {"loss_sum": carried["loss_sum"] + loss_sum.item(),   # .item(): sync (stop)
                                 "correct": carried["correct"] + correct.item(),      # .item(): sync (stop)
                                 "seen": carried["seen"] + seen}
                loss_now = progress_sums["loss_sum"] / max(progress_sums["seen"], 1)
                if not math.isfinite(loss_now):
                    return diverged("before the stop")
                save_checkpoint(last_path, payload(mid_epoch=True, epoch_progress=progress_sums))
                return FitResult("stopped", f"Stopped at step {step} (epoch {epoch}, step {step_in_epoch} "
                                 f"of {steps_per_epoch}); resume continues from here.",
                                 epoch_done, step, best_acc, metrics)
        if bar is not None:
            bar.close()

        # End of the epoch: train metrics, part 5 (test), report, checkpoints.
        total_seen = carried["seen"] + seen
        train_loss = (carried["loss_sum"] + loss_sum.item()) / max(total_seen, 1)   # .item(): sync point (epoch)
        train_acc = (carried["correct"] + correct.item()) / max(total_seen, 1)      # .item(): sync point (epoch)
        train_time = time.perf_counter() - epoch_start        # after the sync: all the epoch's work is done
        carried = {"loss_sum": 0.0, "correct": 0.0, "seen": 0}
        if not math.isfinite(train_loss):
            return diverged("during training")
        test = evaluate(eval_model, test_x, test_y, tta=cfg.tta, channels_last=channels_last)
        if not math.isfinite(test["loss"]):
            return diverged("on the test images")
        epoch_done = epoch
        step_in_epoch = 0
        metrics = {
            "train_loss": train_loss, "train_acc": train_acc,
            "test_loss": test["loss"], "test_acc": test["acc"],
            "images_per_sec": seen / max(train_time, 1e-9),
            "elapsed_s": elapsed_before + time.perf_counter() - started,
            "lr": optimizer.param_groups[0]["lr"],
        }
        improved = best_acc is None or test["acc"] > best_acc
        if improved:
            best_acc = test["acc"]
        if on_epoch is not None:
            on_epoch(epoch, step, dict(metrics))
        data = payload(mid_epoch=False)
        save_checkpoint(last_path, data)
        if improved:
            _publish_best(last_path, best_path, data)

    return FitResult("completed", f"Finished {cfg.epochs} epochs ({step} steps); best test accuracy "
                     f"{100 * best_acc:.2f}%.", epoch_done, step, best_acc, metrics)
