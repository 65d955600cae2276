"""One batch through the tutorial's nine training steps, with every number a learner may ask about.

    model, optimizer, criterion, cfg = walkthrough_model(cfg)            # a fresh model from a config
    model, optimizer, criterion, cfg = walkthrough_model(checkpoint=path) # or a run's checkpoint
    images, labels, index = pick_batch(dataset.train, batch_size=16, batch=0, seed=0)
    walk = walk_batch(model, optimizer, criterion, images, labels)       # one real training step
    walk.scaled / walk.normalized / walk.flat / walk.layers / walk.logits / walk.probs / walk.losses
    walk.grads / walk.weight / walk.loss_after
    mean, std = channel_stats(dataset.train.images)    # why Normalize's constants are what they are
    counts = epoch_counts(len(dataset.train), batch_size=16)   # 50,000 / 16 -> 3,125 steps per epoch

`walk_batch` is exactly the step the engine takes (the same normalisation, model, loss and optimiser,
in float32), written out so that each intermediate is kept: the uint8 images, ToTensor's ÷255, the
per-channel Normalize, the model's input (the 3,072-long vector for the MLP, in C, H, W order),
every layer's output (forward hooks on the model's leaf modules), the logits, softmax, the loss
(−ln p of the true class per image, and the batch mean), every parameter's gradient and the change
the optimiser made (with one weight's update recomputed by hand from the optimiser's rule: lr x gradient
for SGD, lr x m-hat / (sqrt(v-hat) + eps) for Adam), and the same batch's loss after the step. It changes
the model and the optimiser it is given (as a training step does); pass copies to keep the originals.

STEPS are the tutorial's nine steps in its own order, with its own Chinese names and code lines.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.data.dataset import Split
from core.data.images import MEAN, STD, normalize, normalize_pixels, to_nchw
from core.train.checkpoints import load_checkpoint
from core.train.config import TrainConfig
from core.train.engine import WHITEN_SAMPLE, factor_at, make_optimizer
from core.train.models import build_model


@dataclass(frozen=True)
class TutorialStep:
    number: int
    title: str        # plain English
    chinese: str      # the tutorial's own words (its "完整步骤" list)
    code: str         # the tutorial's line(s) for this step, as it wrote them (its typos fixed)


STEPS: tuple[TutorialStep, ...] = (
    TutorialStep(1, "The epoch loop: go through the whole training set, again and again",
                 "大for循环-epochs,用于管理一套数据循环训练几遍", "for epoch in range(num_epochs):"),
    TutorialStep(2, "The step loop: take the next batch from the data loader",
                 "小for循环-step,用于以batchsize为单位,从dataloader中调取数据", "for data in tqdm(trainloader):"),
    TutorialStep(3, "Clear the optimiser's gradients", "清空优化器的梯度", "optimizer.zero_grad()"),
    TutorialStep(4, "Read the images and labels, and reshape them",
                 "读入data和label,并进行形状变换(可做可不做)",
                 "transform = transforms.Compose([\n"      # short lines: whole beside the page's text
                 "  transforms.ToTensor(),\n"
                 "  transforms.Normalize(\n"
                 "    (0.49140, 0.48216, 0.44653),\n"
                 "    (0.24703, 0.24349, 0.26159))])\n"
                 "inputs, labels = data\n"
                 "inputs.view(-1, 32*32*3)"),
    TutorialStep(5, "Run the model's forward pass", "运行模型前向传播过程",
                 "outputs = net(inputs.view(-1, 32*32*3))"),
    TutorialStep(6, "Turn the model's outputs into predictions", "基于模型输出生成最终结果",
                 "_, preds = torch.max(outputs, 1)"),
    TutorialStep(7, "Compute the loss", "计算损失", "loss = criteria(outputs, labels)"),
    TutorialStep(8, "Compute the gradients from the loss", "基于损失计算梯度", "loss.backward()"),
    TutorialStep(9, "Update the weights from the gradients", "基于梯度更新参数", "optimizer.step()"),
)


@dataclass(frozen=True)
class LayerOutput:
    name: str              # the module's name in the model, e.g. "fc1" or "layers.0.conv1"
    kind: str              # its class, e.g. "Linear", "ReLU", "Conv2d"
    shape: tuple[int, ...]  # for the whole batch
    first: np.ndarray      # the first image's output, flattened (float32)
    mean: float
    minimum: float
    maximum: float
    zero_share: float      # share of exact zeros (a ReLU's switched-off units)


@dataclass(frozen=True)
class ParamStep:
    name: str
    shape: tuple[int, ...]
    count: int
    lr: float
    grad_norm: float       # L2 norm of the gradient
    grad_max: float        # largest |gradient|
    change_norm: float     # L2 norm of (new - old)
    change_max: float      # largest |new - old|
    weight_norm: float     # L2 norm before the step


@dataclass(frozen=True)
class OneWeight:
    """One weight's update written out: the one with the largest gradient in the first weight matrix.

    `rule_change` is the change the optimiser's rule predicts from the numbers kept here (see
    `update_rule`); it equals `after - before` up to float32 rounding, which a test checks.
    """
    name: str
    index: tuple[int, ...]
    before: float
    grad: float
    after: float
    lr: float
    optimizer: str
    exp_avg: float | None = None       # Adam's running mean of the gradient, after the step
    exp_avg_sq: float | None = None    # and of its square
    step: int | None = None
    weight_decay: float = 0.0
    betas: tuple[float, float] | None = None   # Adam's (beta1, beta2)
    eps: float | None = None                   # Adam's epsilon
    momentum: float = 0.0                      # SGD's momentum
    nesterov: bool = False
    momentum_buffer: float | None = None       # SGD's running sum of steps, after the step
    rule_change: float = float("nan")

    @property
    def change(self) -> float:
        return self.after - self.before

    @property
    def adam(self) -> bool:
        return self.exp_avg is not None

    @property
    def m_hat(self) -> float | None:
        """Adam's bias-corrected mean of the gradient: m / (1 - beta1^t)."""
        return None if not self.adam else self.exp_avg / (1 - self.betas[0] ** self.step)

    @property
    def v_hat(self) -> float | None:
        """Adam's bias-corrected mean of the squared gradient: v / (1 - beta2^t)."""
        return None if not self.adam else self.exp_avg_sq / (1 - self.betas[1] ** self.step)


@dataclass
class BatchWalk:
    classes: tuple[str, ...]
    labels: np.ndarray          # (N,) int64
    raw: np.ndarray             # (N, 32, 32, 3) uint8, as stored (H, W, C)
    scaled: np.ndarray          # (N, 3, 32, 32) float32: ToTensor, i.e. raw / 255 in C, H, W order
    normalized: np.ndarray      # (N, 3, 32, 32) float32: (scaled - MEAN) / STD per channel
    model_input: np.ndarray     # what the model's first layer reads: (N, 3072) for the MLP, else the grid
    layers: list[LayerOutput]
    logits: np.ndarray          # (N, 10)
    probs: np.ndarray           # (N, 10) softmax
    predicted: np.ndarray       # (N,)
    losses: np.ndarray          # (N,) -ln p(true class)
    loss: float                 # the criterion's value: the batch mean (plus label smoothing, if any)
    label_smoothing: float
    grads_before: float         # total |gradient| left over before zero_grad (0 for a fresh model)
    grads: list[ParamStep]
    weight: OneWeight | None
    loss_after: float           # the same batch's loss after the step (same mode as the step)
    losses_after: np.ndarray
    optimizer: str
    param_count: int
    flattens: bool              # the model flattens the image into one vector (the MLP)

    @property
    def mean_neg_log_p(self) -> float:
        return float(self.losses.mean())


@dataclass(frozen=True)
class EpochCounts:
    """How the tutorial's two loops split a training set: a DataLoader with batch_size and (its default)
    drop_last=False, so the last batch of an epoch holds what is left over."""
    images: int
    batch_size: int
    steps_per_epoch: int   # batches per epoch = optimiser steps per epoch
    last_batch: int        # images in the epoch's last batch (batch_size when it divides evenly)
    epochs: int
    total_steps: int


def epoch_counts(images: int, *, batch_size: int, epochs: int = 10) -> EpochCounts:
    """Steps per epoch and in all for `images` training images in batches of `batch_size` (the
    tutorial: 50,000 images, batch 16 -> 3,125 steps per epoch, 31,250 in 10 epochs)."""
    if images < 1 or batch_size < 1 or epochs < 1:
        raise ValueError("images, batch_size and epochs must be at least 1")
    steps = -(-images // batch_size)
    return EpochCounts(images, batch_size, steps, images - (steps - 1) * batch_size, epochs, steps * epochs)


def channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and standard deviation of uint8 (N, H, W, 3) images after ToTensor's ÷255:
    what Normalize's constants are (MEAN and STD are these numbers for CIFAR-10's training images).
    Exact in float64, from a histogram of the 256 values, so 50,000 images take a fraction of a second."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3); got {images.dtype} {images.shape}")
    values = np.arange(256, dtype=np.float64) / 255
    means, stds = np.empty(3), np.empty(3)
    for c in range(3):
        counts = np.bincount(images[..., c].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        means[c] = counts @ values / total
        stds[c] = np.sqrt(counts @ (values - means[c]) ** 2 / total)
    return means, stds


def channel_arithmetic(raw_pixel: np.ndarray) -> list[tuple[str, int, float, float, float, float]]:
    """One pixel through ToTensor and Normalize, per channel: (channel, uint8, ÷255, mean, std, result)."""
    rows = []
    for c, name in enumerate(("red", "green", "blue")):
        v = int(raw_pixel[c])
        scaled = np.float32(v) / np.float32(255)
        rows.append((name, v, float(scaled), MEAN[c], STD[c],
                     float((scaled - np.float32(MEAN[c])) / np.float32(STD[c]))))
    return rows


def flat_index(c: int, h: int, w: int, size: int = 32) -> int:
    """Where pixel (h, w) of channel c lands in the tutorial's view(-1, 3*32*32): C, H, W order."""
    return c * size * size + h * size + w


def pick_batch(split: Split, *, batch_size: int, batch: int = 0, seed: int = 0
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `batch`-th batch of a shuffled pass over `split` (a DataLoader with shuffle=True and this
    seed): its uint8 images, labels and their indices in the split."""
    n = len(split.labels)
    if not 1 <= batch_size <= n:
        raise ValueError(f"batch_size must be between 1 and the split's {n:,} images, got {batch_size}")
    per_pass = n // batch_size
    if not 0 <= batch < per_pass:
        raise ValueError(f"batch must be between 0 and {per_pass - 1}, got {batch}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    index = order[batch * batch_size:(batch + 1) * batch_size]
    return np.asarray(split.images[index]), np.asarray(split.labels[index], dtype=np.int64), index


def walkthrough_model(cfg: TrainConfig | None = None, *, checkpoint: str | Path | None = None,
                      train_images: np.ndarray | None = None
                      ) -> tuple[nn.Module, torch.optim.Optimizer, nn.Module, TrainConfig]:
    """The model, optimiser and loss a run uses, on the CPU in float32: fresh from `cfg` (its seed
    initialises the weights; a conv net's whitening stem is fitted to `train_images` as training
    does, when the config asks for it; the learning rate is the schedule's for the first step, e.g.
    0.1 x lr at the start of a warm-up), or the weights and optimiser state of a checkpoint (whose
    learning rates are those the schedule set for its next step)."""
    if checkpoint is not None:
        payload = load_checkpoint(checkpoint)
        cfg = TrainConfig.from_dict(payload["config"])
        model = build_model(payload["model"])
        model.load_state_dict(payload.get("train_state", payload["model_state"]))
        optimizer = make_optimizer(cfg, model)
        if "optimizer_state" in payload:   # Adam's moments, and the rate the schedule had reached
            optimizer.load_state_dict(payload["optimizer_state"])
    else:
        cfg = cfg or TrainConfig()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            model = build_model(cfg.model)
        if cfg.whiten_init and hasattr(model, "init_whitening") and train_images is not None:
            model.init_whitening(normalize(to_nchw(np.asarray(train_images[:WHITEN_SAMPLE]))))
        optimizer = make_optimizer(cfg, model)
        for group in optimizer.param_groups:        # as the engine's LambdaLR scheduler does for step 0
            group["lr"] *= factor_at(cfg, 0.0)
    return model, optimizer, nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing), cfg


def _summary(name: str, kind: str, out: torch.Tensor) -> LayerOutput:
    x = out.detach().float()
    return LayerOutput(name, kind, tuple(x.shape), x[0].flatten().numpy().copy(),
                       float(x.mean()), float(x.min()), float(x.max()), float((x == 0).float().mean()))


def _leaves(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(name, m) for name, m in model.named_modules() if name and not list(m.children())]


def walk_batch(model: nn.Module, optimizer: torch.optim.Optimizer, criterion: nn.Module,
               images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | list[str] = ()) -> BatchWalk:
    """One training step on this batch, every intermediate kept (see the module docstring)."""
    device = torch.device("cpu")
    model.to(device).train()
    labels_t = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
    raw_nchw = to_nchw(np.asarray(images), device)
    scaled = raw_nchw.float() / 255                        # ToTensor
    normalized = normalize_pixels(scaled)                  # Normalize (core.data.images: the one home of MEAN, STD)
    flattens = isinstance(next(iter(model.children()), None), nn.Linear)
    model_input = normalized.reshape(len(normalized), -1) if flattens else normalized

    # step 3: whatever gradients are left from the last step, then cleared
    grads_before = sum(float(p.grad.abs().sum()) for p in model.parameters() if p.grad is not None)
    optimizer.zero_grad()

    # step 5: forward, keeping every leaf module's output (and ReLU applied as a function in the MLP)
    seen: list[tuple[str, str, torch.Tensor]] = []
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.append(
        (name, type(mod).__name__, out.detach()))) for name, m in _leaves(model)]
    try:
        logits = model(model_input)
    finally:
        for h in hooks:
            h.remove()
    outputs: list[LayerOutput] = []
    for k, (name, kind, out) in enumerate(seen):
        outputs.append(_summary(name, kind, out))
        # The tutorial MLP applies ReLU as a function (F.relu) after each hidden Linear: show that step too.
        if flattens and kind == "Linear" and k < len(seen) - 1:
            outputs.append(_summary(f"relu({name})", "ReLU", torch.relu(out)))

    # steps 6-7: predictions and the loss
    probs = torch.softmax(logits.detach(), dim=1)
    losses = -torch.log_softmax(logits.detach(), dim=1).gather(1, labels_t[:, None])[:, 0]
    loss = criterion(logits, labels_t)

    # step 8: gradients
    loss.backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    before = {n: p.detach().clone() for n, p in params}

    # step 9: the update
    optimizer.step()
    lr_of = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    steps = []
    for n, p in params:
        g = p.grad.detach()
        change = p.detach() - before[n]
        steps.append(ParamStep(n, tuple(p.shape), p.numel(), float(lr_of.get(id(p), float("nan"))),
                               float(g.norm()), float(g.abs().max()), float(change.norm()),
                               float(change.abs().max()), float(before[n].norm())))
    weight = _one_weight(optimizer, params, before, lr_of)

    # the same batch, after the step, in the same (training) mode
    with torch.no_grad():
        after_logits = model(model_input)
        losses_after = -torch.log_softmax(after_logits, dim=1).gather(1, labels_t[:, None])[:, 0]
        loss_after = float(criterion(after_logits, labels_t))

    return BatchWalk(
        classes=tuple(classes), labels=labels_t.numpy(), raw=np.asarray(images), scaled=scaled.numpy(),
        normalized=normalized.numpy(), model_input=model_input.detach().numpy(), layers=outputs,
        logits=logits.detach().numpy(), probs=probs.numpy(), predicted=probs.argmax(1).numpy(),
        losses=losses.numpy(), loss=float(loss.detach()), label_smoothing=float(getattr(criterion, "label_smoothing", 0.0)),
        grads_before=grads_before, grads=steps, weight=weight, loss_after=loss_after, losses_after=losses_after.numpy(),
        optimizer=type(optimizer).__name__, param_count=sum(p.numel() for _, p in params), flattens=flattens,
    )


def update_rule(one: OneWeight) -> float:
    """The change the optimiser's rule makes to one weight, from the numbers `one` keeps (its state
    after the step), as torch.optim computes it:

    - SGD: d = g + wd·w (weight decay), buf = momentum·buf + d (buf = d at the first step), and the
      step is −lr·(d + momentum·buf) with Nesterov momentum, −lr·buf without; plain SGD: −lr·g.
    - Adam: m and v already hold the decayed gradient; the step is −lr·m̂ ÷ (√v̂ + eps), with
      m̂ = m ÷ (1 − β1^t) and v̂ = v ÷ (1 − β2^t).
    - AdamW: the same, plus the decoupled decay −lr·wd·w.
    """
    if one.adam:
        change = -one.lr * one.m_hat / (np.sqrt(one.v_hat) + one.eps)
        return change - one.lr * one.weight_decay * one.before if one.optimizer == "AdamW" else change
    d = one.grad + one.weight_decay * one.before
    if not one.momentum:
        return -one.lr * d
    return -one.lr * (d + one.momentum * one.momentum_buffer if one.nesterov else one.momentum_buffer)


def _one_weight(optimizer, params, before, lr_of) -> OneWeight | None:
    first = next(((n, p) for n, p in params if p.ndim > 1), None)
    if first is None:
        return None
    n, p = first
    flat = int(p.grad.abs().flatten().argmax())
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(p.shape)))
    state = optimizer.state.get(p, {})
    group = next(g for g in optimizer.param_groups if any(q is p for q in g["params"]))

    def get(key: str) -> float | None:
        return float(state[key].flatten()[flat]) if state.get(key) is not None else None

    step = state.get("step")
    one = OneWeight(n, index, float(before[n].flatten()[flat]), float(p.grad.flatten()[flat]),
                    float(p.detach().flatten()[flat]), float(lr_of[id(p)]), type(optimizer).__name__,
                    get("exp_avg"), get("exp_avg_sq"), int(step) if step is not None else None,
                    weight_decay=float(group.get("weight_decay", 0.0)),
                    betas=tuple(float(b) for b in group["betas"]) if "betas" in group else None,
                    eps=float(group["eps"]) if "eps" in group else None,
                    momentum=float(group.get("momentum", 0.0)), nesterov=bool(group.get("nesterov", False)),
                    momentum_buffer=get("momentum_buffer"))
    return replace(one, rule_change=float(update_rule(one)))

