"""What the model has learned: first-layer weights as pictures, each class's favourite input, and
the activation maps of one image (no Streamlit).

Pictures of weights. A first-layer unit (an MLP's fc1 row, a conv net's stem filter) computes
w . x + b on the *normalised* image x = (p - MEAN) / STD, p the pixel values in [0, 1]. Per pixel
that is (w / STD) * p plus a constant, so ``w / STD`` (per colour channel) is what the unit
multiplies each [0, 1] pixel by: the "pixel-space weights" drawn here. Each picture is scaled on
its own, symmetrically: grey is 0, the largest |weight| of that unit is full colour or black
(0.5 + 0.5 * v / max|v|). A red patch means "more red here raises this unit", a cyan one (red
channel below grey) "more red here lowers it".

The MLP (``first_layer_units``): the 1,000 rows of fc1, as 32x32 pictures, with two orderings:
    norm[i]      ||fc1.weight[i]||_2 (normalised-space weights): how strongly unit i responds at all;
    drive[c, i]  (fc3.weight @ fc2.weight)[c, i]: the product path from hidden unit i to class c's
                 logit through the later layers' weights, as if every fc2 unit were active (the ReLU
                 switches some off for a given image, so it is an approximation). Positive: unit i
                 firing raises class c.

Class patterns (``class_patterns``, any model): for each class c, gradient ascent on its logit,
starting from a uniform grey image (every pixel 0.5), in the normalised space the model sees:
    x <- clip( x + step * g / rms(g) ),   g = d logit_c / d x,  rms(g) = sqrt(mean(g^2))
for `steps` steps, where clip keeps every pixel inside what a real image can be ((0 - MEAN) / STD to
(1 - MEAN) / STD per channel, i.e. pixels in [0, 1]). Dividing by rms(g) makes every step move the
pixels by `step` on average whatever the gradient's scale. No other regulariser. The pattern kept is
the step with the highest score (for the piecewise-linear MLP nearly always the last; a conv net's
max-pools can make a fixed step overshoot), so it never scores below the grey start.

Conv nets (core.train.models.ConvGroupNet):
    ``first_layer_filters``: the stem conv's weight, exactly. With the patch-whitening stem
    (``whiten_init``) these are *not learned*: ConvGroupNet.init_whitening sets them once, before
    training, to the eigenvectors of the 2x2 patch covariance of training images, each divided by
    sqrt(eigenvalue + eps), followed by their negations, and freezes them. So filter i's squared norm
    gives back its eigenvalue: variance_i = 1 / ||f_i||^2 - eps, the variance of the training
    patches along that direction (largest first).
    ``activation_maps``: one image through the model in eval mode; forward hooks on the stem's
    activation and on each conv group keep every channel's map; channels are ranked by their mean
    activation over the map (the most active first).

Everything runs with the model in eval mode and torch autograd only: weights and their .grad are
never touched, so a model shared between sessions stays as it is.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from core.data.images import denormalize, normalize, normalize_pixels, to_nchw, to_nhwc, weights_per_pixel
from core.evaluate.saliency import is_conv_net

__all__ = [
    "ASCENT_STEP", "ASCENT_STEPS", "ActivationGroup", "Activations", "ClassPatterns", "StemFilters", "UnitPictures",
    "activation_maps", "class_patterns", "first_layer_filters", "first_layer_units", "is_conv_net",
    "signed_picture", "unit_order", "whitening_eps",
]

ASCENT_STEPS = 40
ASCENT_STEP = 0.05        # rms change of the normalised pixels per step (~1.2% of the pixel range)
GREY = 0.5                # the starting image: every pixel at half brightness

UNIT_ORDERS = {"norm": "weight size (norm)", "drive": "how much the unit drives a class"}


def _model(model_or_loaded) -> nn.Module:
    return getattr(model_or_loaded, "model", model_or_loaded)


def signed_picture(values: np.ndarray, channel_axis: int = -1) -> np.ndarray:
    """float32 in [0, 1]: 0.5 + 0.5 * v / max|v|, one scale per picture (axis 0 indexes pictures);
    all grey for a picture of zeros."""
    v = np.asarray(values, np.float32)
    top = np.abs(v).reshape(len(v), -1).max(1).reshape((-1,) + (1,) * (v.ndim - 1))
    safe = np.where(top > 0, top, 1.0)
    return (0.5 + 0.5 * v / safe).astype(np.float32)


# --------------------------------------------------------------------------------------------
# The MLP's first layer
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UnitPictures:
    weights: np.ndarray        # float32 (units, 3, 32, 32): fc1's rows as the model uses them (normalised space)
    pixel_weights: np.ndarray  # float32 (units, 32, 32, 3): weights / STD per channel (what multiplies a pixel)
    pictures: np.ndarray       # float32 (units, 32, 32, 3) in [0, 1]: signed_picture(pixel_weights)
    norms: np.ndarray          # float32 (units,): ||fc1.weight[i]||
    drive: np.ndarray          # float32 (classes, units): fc3.weight @ fc2.weight

    @property
    def units(self) -> int:
        return len(self.norms)


def _linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def first_layer_units(model_or_loaded) -> UnitPictures:
    """The first linear layer's rows as 32x32 colour pictures, with their norms and class drives."""
    model = _model(model_or_loaded)
    linears = _linears(model)
    if is_conv_net(model) or not linears or linears[0].in_features != 3 * 32 * 32:
        raise ValueError(f"{type(model).__name__} has no fully connected first layer on 3x32x32 pixels")
    with torch.no_grad():
        w = linears[0].weight.detach().float().cpu()                      # (units, 3072)
        drive = linears[1].weight.detach().float().cpu() if len(linears) > 1 else torch.eye(w.shape[0])
        for layer in linears[2:]:                                         # the product path, ReLU ignored
            drive = layer.weight.detach().float().cpu() @ drive
    rows = w.numpy().reshape(-1, 3, 32, 32)                               # flatten order is C, H, W
    pixel = weights_per_pixel(rows)
    return UnitPictures(rows.copy(), np.ascontiguousarray(pixel, np.float32), signed_picture(pixel),
                        np.linalg.norm(w.numpy(), axis=1).astype(np.float32), drive.numpy().astype(np.float32))


def unit_order(units: UnitPictures, by: str = "norm", target: int | None = None) -> np.ndarray:
    """Unit indices, largest first: by norm, or by drive to class `target` (most positive first)."""
    if by == "norm":
        key = units.norms
    elif by == "drive":
        if target is None:
            raise ValueError("ordering by drive needs a target class")
        key = units.drive[int(target)]
    else:
        raise ValueError(f"by must be one of {', '.join(UNIT_ORDERS)}, got {by!r}")
    return np.argsort(-key, kind="stable")


# --------------------------------------------------------------------------------------------
# Each class's favourite input (any model)
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassPatterns:
    pictures: np.ndarray   # float32 (classes, 32, 32, 3), pixels in [0, 1]: the best step's image
    inputs: np.ndarray     # float32 (classes, 3, 32, 32): the same in the model's normalised space
    scores: np.ndarray     # float32 (steps + 1, classes): each class's logit on its own image, step by step
    best_step: np.ndarray  # int64 (classes,): the step whose image is kept (the highest score; the earliest on ties)
    probs: np.ndarray      # float32 (classes,): softmax probability of the class on its pattern
    steps: int
    step: float

    @property
    def best_scores(self) -> np.ndarray:
        """float32 (classes,): each class's score on its pattern."""
        return self.scores[self.best_step, np.arange(self.scores.shape[1])]


def _bounds(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The normalised values of a black, a white and a grey pixel, per channel (1, 3, 1, 1)."""
    return tuple(normalize_pixels(torch.full((1, 3, 1, 1), v, dtype=torch.float32, device=device))
                 for v in (0.0, 1.0, GREY))


def class_patterns(model_or_loaded, classes: Sequence[int] | int = 10, *, steps: int = ASCENT_STEPS,
                   step: float = ASCENT_STEP, progress: Callable[[int, int], None] | None = None) -> ClassPatterns:
    """Gradient ascent on each class's logit from a grey image (see the module docstring).

    `classes`: the class indices, or their number (0..n-1). All classes ascend together as one batch
    (in eval mode each image's logits depend on that image alone). `progress(done, steps)` after each step.
    """
    model = _model(model_or_loaded)
    model.eval()
    targets = torch.arange(classes) if isinstance(classes, int) else torch.as_tensor(list(classes))
    device = next(model.parameters()).device
    lo, hi, grey = _bounds(device)
    x = grey.expand(len(targets), 3, 32, 32).clone()
    rows = torch.arange(len(targets), device=device)
    targets = targets.to(device)
    scores = []
    best_x, best_score, best_logits = x.clone(), None, None
    best_step = torch.zeros(len(targets), dtype=torch.long)
    with torch.enable_grad():
        for i in range(steps + 1):
            x = x.detach().requires_grad_(True)
            logits = model(x).float()
            score = logits[rows, targets]
            scores.append(score.detach().cpu())
            better = torch.ones_like(score, dtype=torch.bool) if best_score is None else score.detach() > best_score
            best_score = torch.where(better, score.detach(), best_score) if best_score is not None else score.detach()
            best_x = torch.where(better[:, None, None, None], x.detach(), best_x)
            best_logits = logits.detach() if best_logits is None else torch.where(better[:, None], logits.detach(),
                                                                                   best_logits)
            best_step[better.cpu()] = i
            if i == steps:
                break
            (g,) = torch.autograd.grad(score.sum(), x)
            rms = g.pow(2).mean(dim=(1, 2, 3), keepdim=True).sqrt()
            with torch.no_grad():
                x = torch.maximum(torch.minimum(x + step * g / rms.clamp_min(1e-12), hi), lo)
            if progress is not None:
                progress(i + 1, steps)
    probs = torch.softmax(best_logits, 1)[rows, targets].cpu()
    inputs = best_x.float().cpu()
    return ClassPatterns(to_nhwc(denormalize(inputs)), inputs.numpy(),
                         torch.stack(scores).numpy(), best_step.numpy(), probs.numpy(), steps, step)


# --------------------------------------------------------------------------------------------
# Conv nets: the stem's filters and one image's activation maps
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StemFilters:
    weights: np.ndarray              # float32 (out, 3, k, k): the stem conv's weight, exactly
    pictures: np.ndarray             # float32 (out, k, k, 3) in [0, 1]: signed_picture(weights / STD)
    kind: str                        # "whitening" (fixed, from the data) | "learned"
    variances: np.ndarray | None     # whitening: variance of the training patches along each filter


def whitening_eps() -> float:
    """The eps ConvGroupNet.init_whitening adds to each eigenvalue (its default, which the engine uses)."""
    from core.train.models import ConvGroupNet

    return float(inspect.signature(ConvGroupNet.init_whitening).parameters["eps"].default)


def _looks_whitened(w: torch.Tensor) -> bool:
    """The whitening stem's shape: the second half negates the first, and the first half's filters are
    mutually orthogonal (scaled eigenvectors). A learned conv is never like that."""
    half = len(w) // 2
    if len(w) % 2 or half == 0:
        return False
    a = w[:half].flatten(1).double()
    if not torch.allclose(w[half:].flatten(1).double(), -a, rtol=1e-5, atol=1e-7):
        return False
    gram = a @ a.T
    off = gram - torch.diag(torch.diag(gram))
    return bool(off.abs().max() <= 1e-4 * torch.diag(gram).abs().max())


def first_layer_filters(model_or_loaded) -> StemFilters:
    """The conv net's first conv layer (the stem) as small colour pictures; which kind it is, and for
    the whitening stem the patch variance along each filter (see the module docstring)."""
    model = _model(model_or_loaded)
    if not is_conv_net(model):
        raise ValueError(f"{type(model).__name__} is not a conv net")
    conv = model.whiten
    w = conv.weight.detach().float().cpu()
    config = getattr(model_or_loaded, "config", None) or {}
    whitening = bool(getattr(model, "whiten_kernel", 0)) and (
        bool(config["whiten_init"]) if "whiten_init" in config else _looks_whitened(w))
    variances = None
    if whitening:
        norms2 = w.flatten(1).double().pow(2).sum(1)
        variances = (1.0 / norms2 - whitening_eps()).clamp_min(0).float().numpy()
    pixel = weights_per_pixel(w)
    return StemFilters(w.numpy().copy(), signed_picture(pixel), "whitening" if whitening else "learned", variances)


@dataclass(frozen=True)
class ActivationGroup:
    name: str              # "stem" | "group 1" | ...
    maps: np.ndarray       # float32 (channels, h, w): every channel's activation
    mean: np.ndarray       # float32 (channels,): mean activation of each channel over its map
    order: np.ndarray      # int64 (channels,): channels, most active (highest mean) first

    def top(self, n: int) -> np.ndarray:
        return self.order[:n]


@dataclass(frozen=True)
class Activations:
    groups: list[ActivationGroup]
    logits: np.ndarray     # float32 (classes,)


def activation_maps(model_or_loaded, image: np.ndarray) -> Activations:
    """The stem's and every conv group's output for one uint8 (32, 32, 3) image, in eval mode."""
    model = _model(model_or_loaded)
    if not is_conv_net(model):
        raise ValueError(f"{type(model).__name__} is not a conv net")
    model.eval()
    device = next(model.parameters()).device
    named = [("stem", model.stem_activ)] + [(f"group {i + 1}", g) for i, g in enumerate(model.groups)]
    seen: dict[str, torch.Tensor] = {}
    handles = [m.register_forward_hook(lambda _m, _i, out, name=name: seen.__setitem__(name, out.detach()))
               for name, m in named]
    try:
        with torch.no_grad():
            x = normalize(to_nchw(np.asarray(image, np.uint8)[None], device)).float()
            logits = model(x)[0].float().cpu().numpy()
    finally:
        for h in handles:
            h.remove()
    groups = []
    for name, _ in named:
        maps = seen[name][0].float().cpu().contiguous().numpy()
        mean = maps.mean(axis=(1, 2))
        groups.append(ActivationGroup(name, maps, mean, np.argsort(-mean, kind="stable")))
    return Activations(groups, logits)


HOW_TO_READ_UNITS = (
    "Each picture is one of the first layer's 1,000 units: the weight it gives every pixel and colour. "
    "Grey is zero; a coloured area means more of that colour there makes the unit fire, its opposite colour "
    "that it makes it fire less. The units that matter most for a class tend to look like blurry templates "
    "of it (a blue sky, a green background); many others look like noise.")
HOW_TO_READ_PATTERNS = (
    "Starting from a plain grey image, the pixels were nudged step by step in the direction that raises one "
    "class's score most, staying within what a real image can be. The result is what the model's score for "
    "that class responds to, not a picture of the object: colours and rough layout, rarely a shape.")
HOW_TO_READ_CONV_PATTERNS = (
    "A conv net's patterns are mostly faint, fine speckle on grey: changes too small to notice can push its "
    "score far up, the weakness that adversarial examples exploit.")
HOW_TO_READ_FILTERS = (
    "A conv net's first layer slides small filters over the image; each picture below is one filter, "
    "enlarged (grey is zero, colours show which colour raises or lowers the filter's output).")
HOW_TO_READ_WHITENING = (
    "These are not learned. Before training, the trainer measured how the 2x2 pixel patches of training "
    "images vary and set each filter to one direction of that variation (an eigenvector of the patch "
    "covariance), scaled so every direction comes out equally strong: patch whitening. The first filters "
    "follow brightness (the most variation), the later ones colour differences and fine edges; the second "
    "half are the same filters negated, so both signs survive the activation. They stayed fixed during "
    "training (only their bias learned); the learned filters come after them and see these 24 channels, "
    "not colours, so they cannot be drawn as colour patches.")
HOW_TO_READ_ACTIVATIONS = (
    "One image passed through the net: each small map is one channel's output after a conv group, bright "
    "where that channel responds. Early groups keep a fine grid and react to edges and colours; later ones "
    "are coarse (a 3x3 grid at the end) and respond to larger parts. Only the most active channels of each "
    "group are shown, on a shared scale per group.")
