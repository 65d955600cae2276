"""A map of what the model sees: penultimate-layer features of the test split, projected to 2-D.

Features: the input of the model's final linear layer (the 500 hidden units of the MLP's fc2
after ReLU; the 128 / 256 channels after the conv net's global max pool), captured with a forward
pre-hook while the engine's own ``infer`` runs (same normalisation, no TTA).

PCA (``pca_2d``): X (N, D) centred by its column means, in float64. With X = U S V^T, the principal
directions are V's columns. When N >= D (10,000 images, 500 or 128 features) they are taken from
the D x D matrix G = X^T X = V S^2 V^T with ``torch.linalg.svd(G)``, which costs about N D^2 for G
plus a small D x D decomposition, instead of decomposing the N x D matrix itself (measured on 2
cores for the MLP's 10,000 x 500: about 0.2 s against 1 s when quiet, and it avoids the tall SVD
that slowed to 10-30 s with both threads under a load of 11-14). With N < D, ``torch.linalg.svd(X,
full_matrices=False)`` directly. The coordinates are X @ V[:, :2]; each direction's sign is fixed
so that its largest-magnitude entry is positive (the same map on every machine). Explained share
of each direction: S_i^2 / sum S^2 (sum S^2 = trace G = the sum of squares of X).

Cache: ``<run>/eval/pca-<which>-<checkpoint_key>.npz`` (coordinates and explained shares, with the
split's fingerprint), like the predictions cache in core.evaluate.predictions.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from core.atomic_file import atomic_write
from core.data.images import to_nchw
from core.evaluate.predictions import CACHE_DIRNAME, LoadedModel, load_model, split_fingerprint
from core.train.checkpoints import checkpoint_key

PCA_FORMAT = 1


def final_linear(model: nn.Module) -> nn.Linear:
    """The last nn.Linear of the model: its input is the penultimate-layer feature vector."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no linear layer")
    return linears[-1]


def penultimate_features(loaded: LoadedModel | nn.Module, images_uint8_nhwc: np.ndarray, batch_size: int = 500,
                         progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """float32 (N, D): the final linear layer's input for each image."""
    from core.train.engine import infer, uses_channels_last

    model = loaded.model if isinstance(loaded, LoadedModel) else loaded
    device = next(model.parameters()).device
    grabbed: list[torch.Tensor] = []
    handle = final_linear(model).register_forward_pre_hook(lambda _m, args: grabbed.append(args[0].float().cpu()))
    channels_last = uses_channels_last(model, device)
    n = len(images_uint8_nhwc)
    try:
        for start in range(0, n, batch_size):
            x = to_nchw(images_uint8_nhwc[start:start + batch_size], device)
            infer(model, x, tta=False, batch_size=batch_size, channels_last=channels_last)
            if progress is not None:
                progress(min(start + batch_size, n), n)
    finally:
        handle.remove()
    if not grabbed:
        return np.zeros((0, final_linear(model).in_features), np.float32)
    return torch.cat(grabbed).flatten(1).numpy()


@dataclass(frozen=True)
class Projection:
    coords: np.ndarray        # float32 (N, 2)
    explained: np.ndarray     # float64 (2,): share of the total variance along each direction
    dims: int                 # feature dimension before projection
    source: str = "computed"  # or "cache"


def pca_2d(features: np.ndarray) -> Projection:
    """Project (N, D) onto its first two principal directions (see the module docstring)."""
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).double()
    x = x - x.mean(0, keepdim=True)
    if x.shape[0] >= x.shape[1]:
        _, s2, vh = torch.linalg.svd(x.T @ x)                        # G = V S^2 V^T: G's singular values are S^2
        s = s2.clamp_min(0).sqrt()
    else:
        _, s, vh = torch.linalg.svd(x, full_matrices=False)
    v = vh[:2].T.clone()                                             # (D, 2)
    biggest = v.abs().argmax(0)
    signs = torch.sign(v[biggest, torch.arange(v.shape[1])])
    v *= torch.where(signs == 0, torch.ones_like(signs), signs)
    coords = (x @ v).float().numpy()
    total = float(x.pow(2).sum())                                    # = sum S^2
    explained = ((s[:2] ** 2) / total).numpy() if total > 0 else np.zeros(2)
    if coords.shape[1] < 2:                                          # a single feature
        coords = np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))
        explained = np.pad(explained, (0, 2 - len(explained)))
    return Projection(coords.astype(np.float32), np.asarray(explained, np.float64), int(features.shape[1]))


def pca_cache_path(checkpoint: str | os.PathLike, key: str, which: str | None = None) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.parent / CACHE_DIRNAME / f"pca-{which or checkpoint.stem}-{key}.npz"


def projection_for_checkpoint(checkpoint: str | os.PathLike, images: np.ndarray, labels: np.ndarray, *,
                              which: str | None = None, device: torch.device | str | None = None,
                              progress: Callable[[int, int], None] | None = None) -> Projection:
    """The 2-D PCA map of the checkpoint's penultimate features on (images, labels), cached beside it."""
    checkpoint = Path(checkpoint)
    fingerprint = split_fingerprint(images, np.asarray(labels, dtype=np.int64))
    path = pca_cache_path(checkpoint, checkpoint_key(checkpoint), which)
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) == PCA_FORMAT and str(z["fingerprint"]) == fingerprint:
                return Projection(z["coords"].astype(np.float32), z["explained"].astype(np.float64),
                                  int(z["dims"]), "cache")
    except Exception:  # missing, torn or older: compute
        pass
    loaded = load_model(checkpoint, device)
    projection = pca_2d(penultimate_features(loaded, images, progress=progress))
    path = pca_cache_path(checkpoint, loaded.key, which)
    with atomic_write(path) as fh:
        np.savez(fh, format=np.array(PCA_FORMAT), fingerprint=np.array(fingerprint), coords=projection.coords,
                 explained=projection.explained, dims=np.array(projection.dims))
    for old in path.parent.glob(f"pca-{which or checkpoint.stem}-*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
    return projection


HOW_TO_READ = (
    "Each dot is one test image, placed by what the model computes just before its final layer, squeezed "
    "to two dimensions with PCA (the two directions along which those features vary most). Images the "
    "model finds alike sit close together; a class that forms its own cluster is easy for the model. "
    "Crosses are mistakes. Two dimensions keep only part of the picture (the share is in the axis titles), "
    "so classes that overlap here may still be apart in the full feature space.")
