"""Where the model looks: a saliency map (32x32, in [0, 1]) for one image and one class.

Conv nets (core.train.models.ConvGroupNet): **Grad-CAM** (Selvaraju et al., 2017). With A_k the
k-th channel of a conv group's output (h x w) and y_c the class's logit,

    alpha_k = mean over the h x w positions of d y_c / d A_k          (one weight per channel)
    cam     = ReLU( sum_k alpha_k * A_k )                             (h x w)

``layer="last"`` uses the last conv group (3x3 positions for cpu_cnn: coarse but the most
class-specific). ``layer="finer"`` uses the group before it (7x7) with Grad-CAM's finer variant,
**LayerCAM** (Jiang et al., 2021): cam = ReLU( sum_k ReLU(d y_c / d A_k) * A_k ), position by
position (channel-averaged weights are too blunt at that depth: measured, they pointed at the
background of the synthetic shapes). The grid is then resampled to 32x32 by linear interpolation
between the centres of the input regions its cells cover (cell j of a group after g halvings
covers 2^g stem positions; the 2x2 whitening stem shifts them by half a pixel), clamped at the
edges, and divided by its maximum. Plain bilinear resizing would misplace the map: the floor in
each 2x pooling drops the last row and column, so cpu_cnn's 3x3 cells cover pixels 0-24 only.

The MLP (no spatial layers): **gradient x input**, |sum over colour channels of x * d y_c / d x|
on the normalised image, optionally averaged over noisy copies (**SmoothGrad**, Smilkov et al.,
2017: `smooth` copies with Gaussian noise of `noise` times the input's range).

All with torch autograd on the model in eval mode (batch norm uses its running statistics); the
model's weights and their .grad are never touched, so a model shared between sessions is safe.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.data.images import normalize, to_nchw

LAYERS = {"last": "Grad-CAM, last conv group", "finer": "LayerCAM, the conv group before (finer)"}


@dataclass(frozen=True)
class SaliencyMap:
    heat: np.ndarray          # float32 (32, 32) in [0, 1] (all 0 when nothing raises the class)
    target: int               # the class explained
    method: str               # "grad-cam" | "layercam" | "gradient x input" | "smoothgrad"
    layer: str | None         # Grad-CAM: "last" | "finer"
    score: float              # the class's logit
    grid: tuple[int, int]     # resolution the map was computed at before upsampling


def is_conv_net(model: nn.Module) -> bool:
    return hasattr(model, "groups") and isinstance(getattr(model, "groups"), nn.Sequential)


def _input(model: nn.Module, image: np.ndarray) -> torch.Tensor:
    device = next(model.parameters()).device
    return normalize(to_nchw(np.asarray(image, dtype=np.uint8)[None], device)).float()


def _unit(heat: torch.Tensor) -> np.ndarray:
    heat = heat.detach().float().cpu()
    top = float(heat.max())
    return (heat / top if top > 0 else torch.zeros_like(heat)).numpy().astype(np.float32)


def _group_index(model: nn.Module, layer: str) -> int:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    n = len(model.groups)
    return n - 1 if layer == "last" or n < 2 else n - 2


def _group(model: nn.Module, layer: str) -> nn.Module:
    return model.groups[_group_index(model, layer)]


def resample_matrix(cells: int, stride: float, offset: float, size: int = 32) -> torch.Tensor:
    """(size, cells): linear interpolation from a grid whose cell j is centred on input coordinate
    (j + 0.5) * stride + offset (pixel p's centre is p + 0.5), clamped beyond the first and last cell."""
    p = torch.arange(size, dtype=torch.float64) + 0.5
    u = ((p - offset) / stride - 0.5).clamp(0, cells - 1)
    lo = u.floor().long().clamp(max=cells - 1)
    hi = (lo + 1).clamp(max=cells - 1)
    w = u - lo
    m = torch.zeros(size, cells, dtype=torch.float64)
    rows = torch.arange(size)
    m[rows, lo] += 1 - w
    m[rows, hi] += w
    return m


def upsample(model: nn.Module, layer: str, cam: torch.Tensor, size: int = 32) -> torch.Tensor:
    """A conv group's (h, w) map on the input's pixel grid (see the module docstring)."""
    stride = 2 ** (_group_index(model, layer) + 1)
    k = getattr(model, "whiten_kernel", 0) or 0
    offset = (k - 1) / 2 if k else 0.0
    rows = resample_matrix(cam.shape[0], stride, offset, size)
    cols = resample_matrix(cam.shape[1], stride, offset, size)
    return rows @ cam.double().cpu() @ cols.T


def grad_cam_parts(model: nn.Module, x: torch.Tensor, targets: list[int], layer: str = "last"):
    """(activations (K, h, w), gradients (T, K, h, w), logits (C,)) for one normalised input (1, 3, 32, 32)."""
    module = _group(model, layer)
    seen: list[torch.Tensor] = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out))
    try:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)      # so every activation below takes part in autograd
            logits = model(x)[0].float()
            act = seen[0]
            grads = [torch.autograd.grad(logits[t], act, retain_graph=True)[0][0] for t in targets]
    finally:
        handle.remove()
    return act[0].detach(), torch.stack(grads).detach(), logits.detach()


def grad_cam_from_parts(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """Grad-CAM (h, w) from a group's activations (K, h, w) and the class's gradients (K, h, w)."""
    alpha = grad.mean(dim=(1, 2))                                    # (K,)
    return F.relu((alpha[:, None, None] * act).sum(0))


def layer_cam_from_parts(act: torch.Tensor, grad: torch.Tensor) -> torch.Tensor:
    """LayerCAM (h, w): positive gradients times activations, position by position."""
    return F.relu((F.relu(grad) * act).sum(0))


def _gradient_x_input(model: nn.Module, x: torch.Tensor, targets: list[int], smooth: int, noise: float,
                      seed: int) -> tuple[list[torch.Tensor], torch.Tensor]:
    with torch.enable_grad():
        if smooth > 0:
            gen = torch.Generator(device="cpu").manual_seed(seed)
            sigma = noise * float(x.max() - x.min())
            eps = torch.randn((smooth, *x.shape[1:]), generator=gen).to(x.device) * sigma
            batch = (x + eps).detach().requires_grad_(True)
        else:
            batch = x.detach().requires_grad_(True)
        out = model(batch).float()
        maps = []
        for t in targets:
            (g,) = torch.autograd.grad(out[:, t].sum(), batch, retain_graph=True)
            maps.append((g * batch).sum(1).abs().mean(0).detach())      # (32, 32)
        logits = model(x).float()[0].detach() if smooth > 0 else out[0].detach()
    return maps, logits


def saliency_maps(model: nn.Module, image: np.ndarray, targets: list[int], *, layer: str = "last",
                  smooth: int = 0, noise: float = 0.15, seed: int = 0) -> list[SaliencyMap]:
    """One map per target class for a uint8 (32, 32, 3) image, in one forward pass."""
    model.eval()
    x = _input(model, image)
    targets = [int(t) for t in targets]
    if is_conv_net(model):
        act, grads, logits = grad_cam_parts(model, x, targets, layer)
        cam, method = (grad_cam_from_parts, "grad-cam") if layer == "last" else (layer_cam_from_parts, "layercam")
        return [SaliencyMap(_unit(upsample(model, layer, cam(act, g))), t, method, layer, float(logits[t]),
                            tuple(act.shape[1:])) for t, g in zip(targets, grads)]
    maps, logits = _gradient_x_input(model, x, targets, smooth, noise, seed)
    method = "smoothgrad" if smooth > 0 else "gradient x input"
    return [SaliencyMap(_unit(m), t, method, None, float(logits[t]), (32, 32)) for t, m in zip(targets, maps)]


def saliency(model: nn.Module, image: np.ndarray, target: int, **kw) -> SaliencyMap:
    """The map of one class (see saliency_maps)."""
    return saliency_maps(model, image, [target], **kw)[0]


def overlay(image: np.ndarray, heat: np.ndarray, opacity: float = 0.5, scale: int = 8) -> np.ndarray:
    """The image enlarged `scale` times (no smoothing) with the map over it in a red-yellow scale;
    uint8 (32*scale, 32*scale, 3). opacity 0: the image alone; 1: the map alone."""
    img = np.asarray(image, dtype=np.float32) / 255.0
    h = np.clip(np.asarray(heat, dtype=np.float32), 0, 1)
    colour = np.stack([np.clip(1.6 * h, 0, 1), np.clip(1.6 * h - 0.6, 0, 1), np.clip(4 * h - 3.4, 0, 1)], -1)
    a = float(np.clip(opacity, 0, 1))
    mixed = (1 - a) * img + a * colour
    mixed = np.repeat(np.repeat(mixed, scale, 0), scale, 1)
    return np.rint(mixed * 255).astype(np.uint8)


HOW_TO_READ = (
    "Bright pixels are those whose change would move this class's score the most. That is what the score is "
    "sensitive to, not what the model \"sees\" or why it decided: two classes can light up the same place. "
    "Conv nets: Grad-CAM weights each channel of a conv group by how much it raises the class and adds the "
    "channels up; the last group sees a 3x3 grid, so the map is blurry. The MLP: gradient x input, pixel by pixel.")
