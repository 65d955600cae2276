"""The one home of image layout and normalisation (the tutorial's ToTensor + Normalize).

Images are stored as uint8 (N, 32, 32, 3), height-width-channel, RGB (what the batch files
decode to and what a page shows). Models take normalised float32 (N, 3, 32, 32):

    x = normalize(to_nchw(images, device))      # (x / 255 - MEAN) / STD per channel
    pixels = to_nhwc(denormalize(x))            # back to [0, 1] for display

MEAN and STD are CIFAR-10's per-channel statistics of the training images (not ImageNet's,
which the original tutorial wrongly used to un-normalise its pictures).
"""
from __future__ import annotations

import numpy as np
import torch

MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

_CONSTANTS: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _mean_std(device: torch.device, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    key = (str(device), dtype)
    if key not in _CONSTANTS:
        mean = torch.tensor(MEAN, dtype=dtype, device=device).view(1, 3, 1, 1)
        std = torch.tensor(STD, dtype=dtype, device=device).view(1, 3, 1, 1)
        _CONSTANTS[key] = (mean, std)
    return _CONSTANTS[key]


def to_nchw(images: np.ndarray | torch.Tensor, device: torch.device | str | None = None) -> torch.Tensor:
    """uint8 (N, H, W, 3) numpy array or tensor -> contiguous uint8 (N, 3, H, W) tensor on `device`."""
    x = torch.from_numpy(np.ascontiguousarray(images)) if isinstance(images, np.ndarray) else images
    if x.dtype != torch.uint8 or x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected uint8 images of shape (N, H, W, 3); got {x.dtype} {tuple(x.shape)}")
    if device is not None:
        x = x.to(device)
    return x.permute(0, 3, 1, 2).contiguous()


def to_nhwc(x: torch.Tensor) -> np.ndarray:
    """A (N, 3, H, W) tensor -> a (N, H, W, 3) numpy array on the CPU, for display."""
    return x.detach().permute(0, 2, 3, 1).contiguous().cpu().numpy()


def normalize(x: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW in [0, 255] -> float32, per channel (x / 255 - MEAN) / STD.

    The same operations in the same order as torchvision's ToTensor() then Normalize(MEAN, STD),
    so the results agree bit for bit on CPU.
    """
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize expects uint8 images, got {x.dtype}")
    mean, std = _mean_std(x.device, torch.float32)
    return x.to(torch.float32).div(255).sub(mean).div(std)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """Inverse of `normalize` for display: float NCHW -> float32 in [0, 1] (x * STD + MEAN)."""
    mean, std = _mean_std(x.device, torch.float32)
    return x.to(torch.float32).mul(std).add(mean).clamp(0, 1)


def normalize_pixels(x: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1] (NCHW, any float dtype) -> the normalised values a model reads: (x - MEAN) / STD."""
    mean, std = _mean_std(x.device, x.dtype)
    return (x - mean) / std


def weights_per_pixel(weights_nchw: torch.Tensor | np.ndarray) -> np.ndarray:
    """A layer's weights on the normalised image (N, 3, H, W) -> what multiplies each [0, 1] pixel, as
    (N, H, W, 3) float32: w . (p - MEAN) / STD = (w / STD) . p + a constant, so w / STD per channel."""
    w = torch.as_tensor(np.asarray(weights_nchw) if isinstance(weights_nchw, np.ndarray) else weights_nchw)
    _, std = _mean_std(torch.device("cpu"), torch.float32)
    return to_nhwc(w.detach().float().cpu() / std)
