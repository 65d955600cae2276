"""Test data for the core.evaluate tests (plain builders; each test file wraps them in its fixtures).

    predictions_from_probs  Predictions from probabilities alone (hand-built cases)
    random_split            a reproducible random uint8 "test split"
    write_checkpoint        a freshly initialised model saved as a checkpoint
    reference_logits        logits by an independent path: tests/reference.normalize_np + a forward pass
    trained_mlp             a tutorial MLP after a few Adam steps
    encoded                 a PIL image encoded as PNG/JPEG/... bytes
"""
from __future__ import annotations

import io
from typing import Iterable

import numpy as np
import torch
from PIL import Image

from core.evaluate.predictions import Predictions
from core.train.checkpoints import save_checkpoint
from core.train.models import build_model
from reference import normalize_np


def predictions_from_probs(labels, probs, classes: Iterable[str]) -> Predictions:
    """predicted = argmax, loss = -log p(true class), computed in numpy from the probabilities."""
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    predicted = probs.argmax(1).astype(np.int64)
    p_true = probs[np.arange(len(labels)), labels]
    loss = -np.log(np.clip(p_true, np.finfo(np.float32).tiny, None)).astype(np.float32)
    return Predictions(labels, predicted, probs, loss, tuple(classes))


def random_split(n: int = 300, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return images, labels


def write_checkpoint(path, model_name="tutorial_mlp", seed=0, **config) -> torch.nn.Module:
    """A freshly initialised model saved as a checkpoint (torch_version as a plain str, which
    weights_only loading accepts)."""
    torch.manual_seed(seed)
    model = build_model(model_name)
    save_checkpoint(path, {"model": model_name, "model_state": model.state_dict(), "config": config,
                           "epoch": 1, "step": 1, "torch_version": str(torch.__version__)})
    return model.eval()


def reference_logits(model, images_uint8_nhwc, tta=False) -> np.ndarray:
    """An independent path: tests/reference.normalize_np (numpy) and a plain forward pass."""
    with torch.no_grad():
        x = torch.from_numpy(normalize_np(images_uint8_nhwc))
        logits = model(x)
        if tta:
            logits = (logits + model(x.flip(3))) / 2
    return logits.numpy()


def trained_mlp(images: np.ndarray, labels: np.ndarray, steps: int = 20) -> torch.nn.Module:
    """A tutorial MLP after a few Adam steps, so its logits are those of a model that learnt something."""
    torch.manual_seed(0)
    model = build_model("tutorial_mlp")
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.from_numpy(normalize_np(images))
    y = torch.from_numpy(labels)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval()


def encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()
