"""Test data for the core.evaluate tests and the Evaluation page's tests (plain builders and helpers;
each test file wraps them in its fixtures).

core.evaluate:
    predictions_from_probs  Predictions from probabilities alone (hand-built cases)
    random_split            a reproducible random uint8 "test split"
    write_checkpoint        a freshly initialised model saved as a checkpoint
    reference_logits        logits by an independent path: tests/reference.normalize_np + a forward pass
    trained_mlp             a tutorial MLP after a few Adam steps
    encoded, png            a PIL image encoded as PNG/JPEG/... bytes; a plain-colour PNG
The Evaluation page (AppTest and browser tests):
    train_run               a stored run trained in this process by core.engine.fit, optionally with its
                            prediction history (as the worker records it)
    history_config          the 3-epoch synthetic MLP run the look-inside tests train
    PAGE, TIMEOUT, page_constants, open_page, arr, chart, metric   the page under AppTest
    thumbnails              the captions of the misclassified browser's thumbnails (not the page's other pictures)
"""
from __future__ import annotations

import base64
import io
import json
import os
import re
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image

from core import data
from core.evaluate.predictions import Predictions
from core.runs.store import Run, RunStore
from core.train import engine
from core.train.checkpoints import save_checkpoint
from core.train.config import TrainConfig
from core.train.history import HistoryRecorder
from core.train.models import build_model
from reference import normalize_np

REPO = Path(__file__).resolve().parent.parent
PAGE = str(REPO / "dashboard" / "views" / "evaluation.py")
TIMEOUT = 180  # a first visit evaluates the test split; the machine is shared


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


def png(size=(40, 30), color=(200, 30, 10)) -> bytes:
    return encoded(Image.new("RGB", size, color), "PNG")


# --------------------------------------------------------------------------------------------
# The Evaluation page's tests
# --------------------------------------------------------------------------------------------
def train_run(store: RunStore, dataset: data.Dataset, cfg: TrainConfig, name: str, *, history: bool = False) -> Run:
    """Create a run and train it in this process with core.engine.fit, as the trainer process would;
    `history`: record the prediction history after each epoch (the worker's HistoryRecorder)."""
    run = store.create_run(cfg, name=name)
    store.mark_running(run.id, pid=os.getpid(), device="cpu")
    folder = store.run_dir(run.id)
    result = engine.fit(cfg, dataset, folder, on_predictions=HistoryRecorder(folder).record if history else None)
    store.mark_finished(run.id, result.status, result.message, best_test_acc=result.best_test_acc,
                        final_test_acc=result.final.get("test_acc"), final_metrics=result.final)
    return store.get(run.id)


def history_config(**changes) -> TrainConfig:
    """The look-inside tests' run: the tutorial MLP, 3 epochs on 1,000 synthetic training images, full test split."""
    return TrainConfig.smoke(train_subset=1000, test_subset=None, epochs=3, batch_size=64, lr=1e-3).replace(**changes)


def page_constants() -> dict:
    """The page's session-state keys (dashboard.evaluation.keys) and the browser's page size."""
    from dashboard.evaluation import browser, keys

    out = {name: value for name, value in vars(keys).items() if name.isupper()}
    out["PAGE_SIZE"] = browser.PAGE_SIZE
    return out


def open_page(**state):
    """The Evaluation page run once in AppTest with `state` seeded; fails on an exception."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=TIMEOUT)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def arr(value) -> np.ndarray:
    """A figure's array as numpy: plain JSON lists, or plotly's typed arrays {dtype, bdata, shape}."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        if shape:
            out = out.reshape([int(n) for n in str(shape).split(",")])
        return out
    return np.asarray(value)


def chart(at, key: str) -> dict:
    """The plotly figure (as JSON) of the chart with widget key `key`."""
    for el in at.get("plotly_chart"):
        if key in el.proto.id:
            return json.loads(el.proto.spec)
    raise AssertionError(f"no chart with key {key!r}; ids: {[el.proto.id for el in at.get('plotly_chart')]}")


def metric(at, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


_THUMBNAIL = re.compile(r"[^\n]+ →  \n\*\*[^\n]+\*\* · \d+%")


def thumbnails(at) -> list[str]:
    """Captions of the misclassified browser's thumbnails ("true →  \n**predicted** · 97%"), in page order."""
    return [c for img in at.image for c in img.captions if _THUMBNAIL.fullmatch(c)]
