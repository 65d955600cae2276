"""Evaluate a checkpoint on the test split: predictions, per-class numbers, confusion, mistakes.

Everything the Evaluation page shows comes from here (no Streamlit in this module).

Predictions
    ``predictions_for_checkpoint(path, images, labels, classes, which="best")`` runs the checkpoint's
    model over the test split in batches (``eval()`` mode, ``torch.inference_mode``, best device:
    cuda, then mps, then cpu) and returns a ``Predictions``:
    predicted class, softmax probabilities and per-image cross-entropy loss. The result is cached in
    the run's folder as ``<run>/eval/<which>-<checkpoint_key>.npz`` (written to a temporary file and
    renamed). ``core.checkpoints.checkpoint_key`` changes whenever the checkpoint file is replaced,
    and the cache also records a fingerprint of the test split, so a new checkpoint (or a different
    test split) is never served stale numbers; older cache files for the same checkpoint are removed.

Input pipeline (identical to training)
    Inference goes through ``core.engine.infer``, the function training uses for its test
    accuracy: uint8 HWC RGB -> NCHW -> ``core.data.images.normalize`` ((x / 255 - MEAN) / STD per
    channel, float32) -> the model in eval mode (the tutorial MLP flattens NCHW in C, H, W order);
    with the run's ``tta`` the logits of the image and its mirror image are averaged.

Numbers (``summarize``)
    confusion matrix: counts, rows = true class, columns = predicted class.
    per-class accuracy of class c = recall of c = confusion[c, c] / (images whose true class is c).
    precision of c = confusion[c, c] / (images predicted as c).
    F1 = 2 * precision * recall / (precision + recall).
    Conventions for empty denominators (documented, tested): a class that was never predicted has
    precision 0; a class with no test images has recall (= accuracy) 0; F1 is 0 when precision +
    recall is 0. A row of the row-normalised matrix with no images is all zeros.
    most-confused pairs: off-diagonal cells with a non-zero count, largest count first (ties: true
    class, then predicted class, in class order).

Misclassified queries (``misclassified``)
    filter by true class and/or predicted class; sort by the confidence in the wrong answer (the
    probability of the predicted class) or by the loss, largest first (ties: lower index first);
    page through with offset/limit.

Numpy replay (``numpy_replay``)
    an MLP checkpoint's fc1/fc2/fc3 weights are loaded into ``core.numpy_net`` and run on the same
    normalised inputs; the report gives the fraction of identical predicted classes and the largest
    absolute difference of logits against PyTorch in the same precision.

Uploads (``predict_image``)
    bytes -> PIL (PNG or JPEG only; at most ``MAX_UPLOAD_BYTES`` bytes and ``MAX_UPLOAD_PIXELS``
    pixels, checked from the header before decoding) -> EXIF orientation applied -> transparency
    composited on white -> RGB -> centre square crop -> resized to 32x32 with Pillow's BICUBIC filter
    (Pillow widens the filter when shrinking, so this is anti-aliased) -> the training normalisation.
    Problems raise ValueError with a message meant for the user.
"""
from __future__ import annotations

import copy
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import nn

from core.atomic_file import atomic_write
from core.data.images import normalize, to_nchw
from core.train.checkpoints import CheckpointError, checkpoint_key, load_checkpoint
from core.train.device import resolve_device

CACHE_FORMAT = 1
CACHE_DIRNAME = "eval"
SORT_KEYS = ("confidence", "loss")
MAX_UPLOAD_BYTES = 5 * 1024 * 1024        # 5 MB, the same as .streamlit/config.toml's maxUploadSize
MAX_UPLOAD_PIXELS = 40_000_000            # width * height; a 12 MP phone photo is fine, bombs are not
UPLOAD_FORMATS = ("PNG", "JPEG")
IMAGE_SIZE = 32
RESAMPLE_FILTER = "BICUBIC"               # PIL.Image.Resampling member used for the 32x32 resize


# --------------------------------------------------------------------------------------------
# Input pipeline
# --------------------------------------------------------------------------------------------
def normalize_batch(images_uint8_nhwc: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 (N, 32, 32, 3) RGB -> normalised float32 (N, 3, 32, 32) on `device`, as training does."""
    return normalize(to_nchw(images_uint8_nhwc, torch.device(device)))


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


def _as_loaded(model_or_checkpoint, device=None) -> LoadedModel:
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

    core.engine.infer is what training uses to measure test accuracy (eval mode, inference_mode,
    core.data.images.normalize, the mirror-image average when the run used TTA, bf16 autocast on CUDA),
    so the numbers here are the engine's numbers. Images go to the device one chunk at a time;
    `progress(done, total)` is called after each chunk.
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
    predicted: np.ndarray   # int64 (N,) argmax of probs
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

    @property
    def accuracy(self) -> float:
        return float(self.correct.mean()) if len(self.labels) else 0.0

    @classmethod
    def from_probs(cls, labels, probs, classes: Iterable[str], **kw) -> "Predictions":
        """Build from probabilities alone: predicted = argmax, loss = -log p(true class)."""
        labels = np.asarray(labels, dtype=np.int64)
        probs = np.asarray(probs, dtype=np.float32)
        predicted = probs.argmax(1).astype(np.int64)
        p_true = probs[np.arange(len(labels)), labels]
        loss = -np.log(np.clip(p_true, np.finfo(np.float32).tiny, None)).astype(np.float32)
        return cls(labels, predicted, probs, loss, tuple(classes), **kw)

    @classmethod
    def from_logits(cls, labels, logits: np.ndarray, classes: Iterable[str], **kw) -> "Predictions":
        labels = np.asarray(labels, dtype=np.int64)
        t = torch.from_numpy(np.ascontiguousarray(logits, dtype=np.float32))
        log_probs = torch.log_softmax(t, dim=1)
        probs = log_probs.exp().numpy()
        loss = (-log_probs[torch.arange(len(labels)), torch.from_numpy(labels)]).numpy()
        predicted = t.argmax(1).numpy().astype(np.int64)
        return cls(labels, predicted, probs, loss.astype(np.float32), tuple(classes), **kw)


def split_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """A short hash of a split's pixels and labels (about 30 ms for 10,000 images)."""
    h = hashlib.blake2b(digest_size=12)
    h.update(np.ascontiguousarray(labels).tobytes())
    h.update(np.ascontiguousarray(images).tobytes())
    h.update(repr(images.shape).encode())
    return h.hexdigest()


def cache_path(checkpoint: str | os.PathLike, key: str, which: str | None = None) -> Path:
    checkpoint = Path(checkpoint)
    which = which or checkpoint.stem
    return checkpoint.parent / CACHE_DIRNAME / f"{which}-{key}.npz"


def _write_npz_atomic(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_write(path) as fh:
        np.savez(fh, **arrays)


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
                               use_cache: bool = True, loaded: LoadedModel | None = None,
                               progress: Callable[[int, int], None] | None = None) -> Predictions:
    """Predictions of the checkpoint at `checkpoint` on (images, labels), cached beside it.

    `which` names the checkpoint in the cache file ("best" or "last"; default: the file's stem).
    `loaded` may pass a model already read from this file (used only when its `key` is the file's
    current key). `progress(done, total)` reports inference progress (not called for a cache hit).
    """
    checkpoint = Path(checkpoint)
    classes = tuple(classes)
    labels = np.asarray(labels, dtype=np.int64)
    fingerprint = split_fingerprint(images, labels)
    key = checkpoint_key(checkpoint)
    path = cache_path(checkpoint, key, which)
    if use_cache and path.is_file():
        cached = _read_cache(path, fingerprint, len(labels), classes, key)
        if cached is not None:
            return cached
    if loaded is None or loaded.key != key:
        loaded = load_model(checkpoint, device)
        key = loaded.key
        path = cache_path(checkpoint, key, which)
    logits = infer_logits(loaded, images, batch_size, progress)
    preds = Predictions.from_logits(labels, logits, classes, key=key, source="computed")
    if use_cache:
        _write_npz_atomic(path, {
            "format": np.array(CACHE_FORMAT), "fingerprint": np.array(fingerprint),
            "classes": np.array(classes), "labels": preds.labels, "predicted": preds.predicted,
            "probs": preds.probs, "loss": preds.loss})
        prefix = f"{which or checkpoint.stem}-"
        for old in path.parent.glob(f"{prefix}*.npz"):
            if old != path:
                old.unlink(missing_ok=True)
    return preds


# --------------------------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------------------------
def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """Counts (C, C) int64: rows = true class, columns = predicted class."""
    labels = np.asarray(labels, dtype=np.int64)
    predicted = np.asarray(predicted, dtype=np.int64)
    if labels.shape != predicted.shape:
        raise ValueError(f"labels {labels.shape} and predictions {predicted.shape} differ in shape")
    for name, arr in (("labels", labels), ("predictions", predicted)):
        if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
            raise ValueError(f"{name} must be class ids in 0..{num_classes - 1}")
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def row_normalize(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (fraction of the true class predicted as each class); empty rows: 0."""
    cm = np.asarray(cm, dtype=np.float64)
    totals = cm.sum(1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm), where=totals > 0)


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


@dataclass(frozen=True)
class ConfusedPair:
    true_class: int
    predicted_class: int
    count: int
    fraction: float          # count / images of the true class
    true_name: str
    predicted_name: str


@dataclass(frozen=True)
class Summary:
    """Everything per class, from a confusion matrix (see the module docstring for conventions)."""

    classes: tuple[str, ...]
    confusion: np.ndarray            # int64 (C, C), rows = true, columns = predicted
    total: int
    correct: int
    accuracy: float                  # correct / total (0 for an empty split)
    support: np.ndarray              # int64 (C,) images per true class
    predicted_count: np.ndarray      # int64 (C,) images per predicted class
    precision: np.ndarray            # float64 (C,), 0 where a class was never predicted
    recall: np.ndarray               # float64 (C,), 0 where a class has no images
    f1: np.ndarray                   # float64 (C,), 0 where precision + recall == 0

    @property
    def per_class_accuracy(self) -> np.ndarray:
        """Accuracy on the images of each true class: the same number as recall."""
        return self.recall

    @property
    def confusion_normalized(self) -> np.ndarray:
        return row_normalize(self.confusion)

    def most_confused(self, k: int | None = 10) -> list[ConfusedPair]:
        return most_confused(self.confusion, self.classes, k)

    def table(self) -> list[dict[str, Any]]:
        """One row per class: class, images, predicted, correct, accuracy, precision, recall, f1."""
        return [
            {"class": name, "images": int(self.support[i]), "predicted": int(self.predicted_count[i]),
             "correct": int(self.confusion[i, i]), "accuracy": float(self.recall[i]),
             "precision": float(self.precision[i]), "recall": float(self.recall[i]), "f1": float(self.f1[i])}
            for i, name in enumerate(self.classes)
        ]


def summarize_confusion(cm: np.ndarray, classes: Iterable[str]) -> Summary:
    cm = np.asarray(cm, dtype=np.int64)
    classes = tuple(classes)
    if cm.shape != (len(classes), len(classes)):
        raise ValueError(f"confusion matrix {cm.shape} does not match {len(classes)} classes")
    diag = np.diag(cm)
    support = cm.sum(1)
    predicted_count = cm.sum(0)
    precision = _safe_div(diag, predicted_count)
    recall = _safe_div(diag, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    total = int(cm.sum())
    correct = int(diag.sum())
    return Summary(classes, cm, total, correct, correct / total if total else 0.0, support, predicted_count,
                   precision, recall, f1)


def summarize(labels, predicted, classes: Iterable[str]) -> Summary:
    classes = tuple(classes)
    return summarize_confusion(confusion_matrix(labels, predicted, len(classes)), classes)


def most_confused(cm: np.ndarray, classes: Iterable[str], k: int | None = 10) -> list[ConfusedPair]:
    """Off-diagonal cells with a count > 0, largest count first; ties in (true, predicted) order."""
    cm = np.asarray(cm, dtype=np.int64)
    classes = tuple(classes)
    support = cm.sum(1)
    cells = [(int(cm[t, p]), t, p) for t in range(len(cm)) for p in range(len(cm)) if t != p and cm[t, p] > 0]
    cells.sort(key=lambda c: (-c[0], c[1], c[2]))
    if k is not None:
        cells = cells[:k]
    return [ConfusedPair(t, p, n, n / support[t] if support[t] else 0.0, classes[t], classes[p]) for n, t, p in cells]


# --------------------------------------------------------------------------------------------
# Misclassified queries
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MisclassifiedPage:
    total: int               # misclassified images matching the filters, before paging
    offset: int
    limit: int
    indices: np.ndarray      # int64 indices into the test split
    true_class: np.ndarray   # int64
    predicted_class: np.ndarray
    confidence: np.ndarray   # float32: probability of the (wrong) predicted class
    loss: np.ndarray         # float32

    def __len__(self) -> int:
        return len(self.indices)

    def rows(self, classes: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        out = []
        for i in range(len(self.indices)):
            row = {"index": int(self.indices[i]), "true": int(self.true_class[i]),
                   "predicted": int(self.predicted_class[i]), "confidence": float(self.confidence[i]),
                   "loss": float(self.loss[i])}
            if classes is not None:
                row["true_name"] = classes[row["true"]]
                row["predicted_name"] = classes[row["predicted"]]
            out.append(row)
        return out


def misclassified(preds: Predictions, *, true_class: int | None = None, predicted_class: int | None = None,
                  sort: str = "confidence", offset: int = 0, limit: int = 24) -> MisclassifiedPage:
    """Wrongly classified test images, filtered, sorted (largest first) and paged."""
    n_classes = len(preds.classes)
    for name, value in (("true_class", true_class), ("predicted_class", predicted_class)):
        if value is not None and not 0 <= int(value) < n_classes:
            raise ValueError(f"{name} must be a class id in 0..{n_classes - 1}, got {value}")
    if sort not in SORT_KEYS:
        raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)}, got {sort!r}")
    if offset < 0 or limit < 0:
        raise ValueError(f"offset and limit must be >= 0, got offset={offset}, limit={limit}")
    mask = preds.predicted != preds.labels
    if true_class is not None:
        mask &= preds.labels == int(true_class)
    if predicted_class is not None:
        mask &= preds.predicted == int(predicted_class)
    idx = np.flatnonzero(mask)
    confidence = preds.confidence[idx]
    key = confidence if sort == "confidence" else preds.loss[idx]
    order = np.lexsort((idx, -key.astype(np.float64)))  # primary: key descending; ties: index ascending
    idx = idx[order][offset:offset + limit]
    return MisclassifiedPage(
        total=int(mask.sum()), offset=offset, limit=limit, indices=idx.astype(np.int64),
        true_class=preds.labels[idx], predicted_class=preds.predicted[idx],
        confidence=preds.confidence[idx].astype(np.float32), loss=preds.loss[idx].astype(np.float32))


def top_k(probs_row: np.ndarray, classes: tuple[str, ...], k: int = 3) -> list[tuple[int, str, float]]:
    """The k most probable classes as (class id, name, probability), most probable first."""
    probs_row = np.asarray(probs_row)
    k = max(1, min(k, len(probs_row)))
    order = np.lexsort((np.arange(len(probs_row)), -probs_row.astype(np.float64)))[:k]
    return [(int(i), classes[int(i)], float(probs_row[i])) for i in order]


# --------------------------------------------------------------------------------------------
# Numpy replay of an MLP checkpoint
# --------------------------------------------------------------------------------------------
MLP_LAYERS = (("fc1", "relu"), ("fc2", "relu"), ("fc3", "linear"))


def is_replayable(model: nn.Module) -> bool:
    """True for the tutorial MLP shape: fc1, fc2, fc3 nn.Linear layers with ReLU between them."""
    return all(isinstance(getattr(model, name, None), nn.Linear) for name, _ in MLP_LAYERS)


def numpy_network_from_mlp(model: nn.Module, dtype=np.float32):
    """core.numpy_net.Network holding a copy of the MLP's weights in `dtype`."""
    from core.numpy_net import Layer, Network

    if not is_replayable(model):
        raise ValueError("only the tutorial MLP (fc1/fc2/fc3 linear layers) can be replayed in numpy")
    layers = []
    for name, activation in MLP_LAYERS:
        lin = getattr(model, name)
        w = lin.weight.detach().cpu().numpy().astype(dtype)
        b = None if lin.bias is None else lin.bias.detach().cpu().numpy().astype(dtype)
        layers.append(Layer(weights=w, bias=b, activation=activation))
    return Network(layers)


@dataclass(frozen=True)
class ReplayReport:
    n: int
    dtype: str                 # "float32" or "float64"
    agreement: float           # fraction of images whose predicted class is identical
    max_abs_logit_diff: float
    torch_accuracy: float | None
    numpy_accuracy: float | None


def numpy_replay(model_or_checkpoint, images_uint8_nhwc: np.ndarray, labels: np.ndarray | None = None, *,
                 dtype=np.float32, batch_size: int = 500) -> ReplayReport:
    """Run an MLP checkpoint through core.numpy_net and compare with PyTorch in the same precision.

    Both see the same normalised input (float32 normalisation, then cast to `dtype`); PyTorch runs a
    CPU copy of the model converted to `dtype`, so the comparison isolates the forward pass.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    loaded = _as_loaded(model_or_checkpoint, "cpu")
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    model = copy.deepcopy(loaded.model).to("cpu", torch_dtype).eval()
    network = numpy_network_from_mlp(model, dtype)
    n = len(images_uint8_nhwc)
    same, max_diff = 0, 0.0
    torch_pred, numpy_pred = [], []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = normalize_batch(images_uint8_nhwc[start:start + batch_size], "cpu").to(torch_dtype)
            t_logits = model(x).numpy()
            n_logits = network(x.flatten(1).numpy())  # C, H, W order, as nn.Module's flatten(1)
            max_diff = max(max_diff, float(np.abs(t_logits - n_logits).max()))
            tp, np_ = t_logits.argmax(1), n_logits.argmax(1)
            same += int((tp == np_).sum())
            torch_pred.append(tp)
            numpy_pred.append(np_)
    t_acc = n_acc = None
    if labels is not None and n:
        labels = np.asarray(labels)
        t_acc = float((np.concatenate(torch_pred) == labels).mean())
        n_acc = float((np.concatenate(numpy_pred) == labels).mean())
    return ReplayReport(n, dtype.name, same / n if n else 1.0, max_diff, t_acc, n_acc)


# --------------------------------------------------------------------------------------------
# Uploaded images
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UploadPrediction:
    image: np.ndarray                        # uint8 (32, 32, 3): exactly what the model saw
    original_size: tuple[int, int]           # (width, height) of the upload
    format: str                              # "PNG" or "JPEG"
    probs: np.ndarray                        # float32 (C,)
    top: list[tuple[int, str, float]]        # (class id, name, probability), most probable first


def image_from_bytes(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_pixels: int = MAX_UPLOAD_PIXELS) -> tuple[np.ndarray, tuple[int, int], str]:
    """Decode an uploaded PNG/JPEG into the 32x32 RGB uint8 image the model sees (see module docstring)."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if data is None or len(data) == 0:
        raise ValueError("The file is empty. Upload a PNG or JPEG image.")
    if len(data) > max_bytes:
        raise ValueError(f"The file is {len(data) / 1e6:.1f} MB; images up to {max_bytes / 1e6:.0f} MB are accepted.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(UPLOAD_FORMATS))
        except UnidentifiedImageError:
            raise ValueError("This file is not a PNG or JPEG image.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError(f"The image has too many pixels; at most {max_pixels / 1e6:.0f} megapixels are accepted.") from None
        except Exception as exc:  # truncated headers and the like
            raise ValueError(f"The image could not be read ({exc}).") from None
        width, height = img.size
        fmt = img.format or "?"
        if width * height > max_pixels:
            raise ValueError(f"The image is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); "
                             f"at most {max_pixels / 1e6:.0f} megapixels are accepted.")
        try:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            img = img.convert("RGB")
        except Exception as exc:  # truncated or corrupt pixel data
            raise ValueError(f"The image could not be decoded ({exc}).") from None
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), getattr(Image.Resampling, RESAMPLE_FILTER))
    return np.asarray(img, dtype=np.uint8).copy(), (width, height), fmt


def predict_image(model_or_checkpoint, data: bytes, *, classes: Iterable[str] | None = None, k: int = 3,
                  device: torch.device | str | None = None) -> UploadPrediction:
    """Top-k classes for an uploaded PNG/JPEG; ValueError (user-facing message) for bad files."""
    image, size, fmt = image_from_bytes(data)
    loaded = _as_loaded(model_or_checkpoint, device)
    if classes is None:
        from core.data import CLASSES as classes
    classes = tuple(classes)
    logits = infer_logits(loaded, image[None], batch_size=1)
    probs = torch.softmax(torch.from_numpy(logits), dim=1)[0].numpy()
    return UploadPrediction(image, size, fmt, probs, top_k(probs, classes, k))
