"""A checkpoint's predictions on a test split: load the model, run inference, cache the result.

``predictions_for_checkpoint(path, images, labels, classes, which="best")`` runs the checkpoint's
model over the split in batches and returns a ``Predictions``: predicted class, softmax
probabilities and per-image cross-entropy loss.

Input pipeline (identical to training)
    Inference goes through ``core.train.engine.infer``, the function training uses for its test
    accuracy: uint8 HWC RGB -> ``core.data.images.to_nchw`` -> ``core.data.images.normalize``
    ((x / 255 - MEAN) / STD per channel, float32) -> the model in eval mode under
    ``torch.inference_mode`` (the tutorial MLP flattens NCHW in C, H, W order); with the run's
    ``tta`` the logits of the image and its mirror image are averaged. The model runs on the best
    device (cuda, then mps, then cpu) unless one is given.

Cache
    The result is cached in the run's folder as ``<run>/eval/<which>-<checkpoint_key>.npz`` (written
    to a temporary file and renamed). ``core.train.checkpoints.checkpoint_key`` changes whenever the
    checkpoint file is replaced, and the cache also records a fingerprint of the test split, so a new
    checkpoint (or a different test split) is never served stale numbers; older cache files for the
    same checkpoint are removed. A torn, foreign or older cache file is recomputed.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from core.atomic_file import atomic_write
from core.data.images import to_nchw
from core.train.checkpoints import CheckpointError, checkpoint_key, load_checkpoint
from core.train.device import resolve_device

CACHE_FORMAT = 1
CACHE_DIRNAME = "eval"


# --------------------------------------------------------------------------------------------
# Loading a model from a checkpoint
# --------------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A model in eval mode on `device`, with what the checkpoint says about it."""

    model: nn.Module
    name: str                 # registry name, e.g. "tutorial_mlp"
    config: dict[str, Any]    # TrainConfig.to_dict() of the run that wrote it
    epoch: int | None
    key: str | None           # checkpoint_key of the file it was read from (None: not from a file)
    device: torch.device

    @property
    def tta(self) -> bool:
        return bool(self.config.get("tta", False))


def model_from_payload(payload: dict[str, Any], device: torch.device | str = "cpu", key: str | None = None) -> LoadedModel:
    """The model a checkpoint payload describes, with its weights, in eval mode on `device`."""
    from core.train.models import build_model

    name = payload["model"]
    try:
        model = build_model(name)
        model.load_state_dict(payload["model_state"])
    except (ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint for model {name!r} does not fit the model ({exc})") from exc
    device = torch.device(device)
    model.to(device).eval()
    config = payload.get("config") or {}
    return LoadedModel(model=model, name=name, config=dict(config), epoch=payload.get("epoch"), key=key, device=device)


def load_model(path: str | os.PathLike, device: torch.device | str | None = None) -> LoadedModel:
    """Read a checkpoint file into an eval-mode model on `device` (default: the best device).

    The returned `key` is the checkpoint_key of exactly the file version that was read: the key is
    taken before and after reading, and reading is retried when the file was replaced meanwhile.
    """
    device = resolve_device("auto") if device is None else torch.device(device)
    for _ in range(5):
        before = checkpoint_key(path)
        payload = load_checkpoint(path, map_location="cpu")
        if checkpoint_key(path) == before:
            return model_from_payload(payload, device, key=before)
    raise CheckpointError(f"{path} keeps changing while it is read; try again when training has finished.")


def as_loaded(model_or_checkpoint: LoadedModel | nn.Module | str | os.PathLike,
              device: torch.device | str | None = None) -> LoadedModel:
    """A LoadedModel as it is, a bare nn.Module (put in eval mode, no config), or a checkpoint path."""
    if isinstance(model_or_checkpoint, LoadedModel):
        return model_or_checkpoint
    if isinstance(model_or_checkpoint, nn.Module):
        dev = next(model_or_checkpoint.parameters()).device
        return LoadedModel(model_or_checkpoint.eval(), type(model_or_checkpoint).__name__, {}, None, None, dev)
    return load_model(model_or_checkpoint, device)


# --------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------
def infer_logits(loaded: LoadedModel, images_uint8_nhwc: np.ndarray, batch_size: int = 1000,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Logits (N, classes) float32 for uint8 NHWC images, through the engine's own `infer`.

    core.train.engine.infer is what training uses to measure test accuracy (eval mode,
    inference_mode, core.data.images.normalize, the mirror-image average when the run used TTA,
    bf16 autocast on CUDA), so the numbers here are the engine's numbers. Images go to the device
    one chunk at a time; `progress(done, total)` is called after each chunk.
    """
    from core.train.engine import infer, uses_channels_last

    model, device = loaded.model, loaded.device
    channels_last = uses_channels_last(model, device)  # the same memory layout as training
    n = len(images_uint8_nhwc)
    out = []
    for start in range(0, n, batch_size):
        x = to_nchw(images_uint8_nhwc[start:start + batch_size], device)
        out.append(infer(model, x, tta=loaded.tta, batch_size=batch_size, channels_last=channels_last).cpu())
        if progress is not None:
            progress(min(start + batch_size, n), n)
    if not out:
        return np.zeros((0, 10), np.float32)
    return torch.cat(out).float().numpy()


@dataclass(frozen=True)
class Predictions:
    """Per-image results on a test split (all arrays have N rows, in the split's order)."""

    labels: np.ndarray      # int64 (N,) true class
    predicted: np.ndarray   # int64 (N,) argmax of the logits
    probs: np.ndarray       # float32 (N, C) softmax probabilities
    loss: np.ndarray        # float32 (N,) cross-entropy of the true class
    classes: tuple[str, ...]
    key: str | None = None  # checkpoint_key of the checkpoint these came from
    source: str = "computed"  # "computed" or "cache"

    @property
    def confidence(self) -> np.ndarray:
        """Probability given to the predicted class (N,)."""
        return self.probs[np.arange(len(self.predicted)), self.predicted]

    @property
    def correct(self) -> np.ndarray:
        return self.predicted == self.labels

    @classmethod
    def from_logits(cls, labels, logits: np.ndarray, classes: Iterable[str], **kw) -> "Predictions":
        """predicted = argmax, probs = softmax, loss = -log_softmax at the true class."""
        labels = np.asarray(labels, dtype=np.int64)
        t = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
        log_probs = torch.log_softmax(t, dim=1)
        probs = log_probs.exp().numpy()
        loss = (-log_probs[torch.arange(len(labels)), torch.from_numpy(labels)]).numpy()
        predicted = t.argmax(1).numpy().astype(np.int64)
        return cls(labels, predicted, probs, loss.astype(np.float32), tuple(classes), **kw)


# --------------------------------------------------------------------------------------------
# The per-checkpoint cache
# --------------------------------------------------------------------------------------------
def split_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of a split's pixels and labels (about 30 ms for 10,000 images)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(labels).tobytes())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(repr(images.shape).encode())
    return h.hexdigest()


def cache_path(checkpoint: str | os.PathLike, key: str, which: str | None = None) -> Path:
    """Where the predictions of this version (`key`) of `checkpoint` are cached."""
    checkpoint = Path(checkpoint)
    which = which or checkpoint.stem
    return checkpoint.parent / CACHE_DIRNAME / f"{which}-{key}.npz"


def _write_cache(path: Path, preds: Predictions, fingerprint: str) -> None:
    with atomic_write(path) as fh:
        np.savez(fh, format=np.array(CACHE_FORMAT), fingerprint=np.array(fingerprint),
                 classes=np.array(preds.classes), labels=preds.labels, predicted=preds.predicted,
                 probs=preds.probs, loss=preds.loss)


def _read_cache(path: Path, fingerprint: str, n: int, classes: tuple[str, ...], key: str) -> Predictions | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            if int(z["format"]) != CACHE_FORMAT or str(z["fingerprint"]) != fingerprint:
                return None
            if tuple(str(c) for c in z["classes"]) != classes:
                return None
            preds = Predictions(
                labels=z["labels"].astype(np.int64), predicted=z["predicted"].astype(np.int64),
                probs=z["probs"].astype(np.float32), loss=z["loss"].astype(np.float32),
                classes=classes, key=key, source="cache")
    except Exception:  # torn (BadZipFile, EOFError), foreign or older file: recompute
        return None
    if len(preds.labels) != n:
        return None
    return preds


def predictions_for_checkpoint(checkpoint: str | os.PathLike, images: np.ndarray, labels: np.ndarray,
                               classes: Iterable[str], *, which: str | None = None,
                               device: torch.device | str | None = None, batch_size: int = 1000,
                               progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Predictions of the checkpoint at `checkpoint` on (images, labels), cached beside it.

    `which` names the checkpoint in the cache file ("best" or "last"; default: the file's stem).
    `progress(done, total)` reports inference progress (not called for a cache hit).
    """
    checkpoint = Path(checkpoint)
    classes = tuple(classes)
    labels = np.asarray(labels, dtype=np.int64)
    fingerprint = split_fingerprint(images, labels)
    key = checkpoint_key(checkpoint)
    path = cache_path(checkpoint, key, which)
    if path.is_file():
        cached = _read_cache(path, fingerprint, len(labels), classes, key)
        if cached is not None:
            return cached
    loaded = load_model(checkpoint, device)
    path = cache_path(checkpoint, loaded.key, which)  # the version actually read
    logits = infer_logits(loaded, images, batch_size, progress)
    preds = Predictions.from_logits(labels, logits, classes, key=loaded.key, source="computed")
    _write_cache(path, preds, fingerprint)
    for old in path.parent.glob(f"{which or checkpoint.stem}-*.npz"):
        if old != path:
            old.unlink(missing_ok=True)
    return preds
