"""Independent reference computations the tests compare core against (test-only helpers)."""
from __future__ import annotations

import numpy as np

# Written out again on purpose: an oracle must not import the constants it checks.
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)


def normalize_np(images_uint8_nhwc: np.ndarray) -> np.ndarray:
    """uint8 (N, 32, 32, 3) -> float32 (N, 3, 32, 32), per channel (x / 255 - MEAN) / STD, in numpy."""
    x = np.asarray(images_uint8_nhwc)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {x.shape}")
    x = x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    mean = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std)


def denormalize_np(x_nchw: np.ndarray) -> np.ndarray:
    """The inverse of normalize_np: float (N, 3, H, W) -> float32 (N, H, W, 3) in [0, 1]."""
    x = np.asarray(x_nchw, dtype=np.float32)
    mean = np.asarray(CIFAR_MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR_STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(np.clip(x * std + mean, 0.0, 1.0).transpose(0, 2, 3, 1))
