"""Replay a tutorial-MLP checkpoint in the hand-written numpy network and compare it with PyTorch.

``numpy_replay(model_or_checkpoint, images, labels, dtype=np.float32)`` copies the checkpoint's
fc1/fc2/fc3 weights (``MLP_LAYERS``: ReLU after fc1 and fc2, fc3 linear) into a
``core.numpy_net.Network`` and runs both networks on the same input: the uint8 images through
``core.data.images.to_nchw`` and ``normalize`` (float32, as training), then cast to `dtype`, and
flattened in C, H, W order as the MLP's own ``flatten(1)`` does. PyTorch runs a CPU copy of the
model converted to `dtype`, so the comparison isolates the forward pass. The ``ReplayReport`` gives
the fraction of images whose predicted class is identical, the largest absolute difference of
logits, and both accuracies when labels are given.
"""
from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from core.data.images import normalize, to_nchw
from core.evaluate.predictions import LoadedModel, as_loaded
from core.numpy_net import Layer, Network

MLP_LAYERS = (("fc1", "relu"), ("fc2", "relu"), ("fc3", "linear"))


def is_replayable(model: nn.Module) -> bool:
    """True for the tutorial MLP shape: fc1, fc2, fc3 nn.Linear layers with ReLU between them."""
    return all(isinstance(getattr(model, name, None), nn.Linear) for name, _ in MLP_LAYERS)


def numpy_network_from_mlp(model: nn.Module, dtype=np.float32) -> Network:
    """core.numpy_net.Network holding a copy of the MLP's weights in `dtype`."""
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


def numpy_replay(model_or_checkpoint: LoadedModel | nn.Module | str | os.PathLike, images_uint8_nhwc: np.ndarray,
                 labels: np.ndarray | None = None, *, dtype=np.float32, batch_size: int = 500) -> ReplayReport:
    """Run an MLP checkpoint through core.numpy_net and compare with PyTorch in the same precision."""
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    loaded = as_loaded(model_or_checkpoint, "cpu")
    torch_dtype = torch.float32 if dtype == np.float32 else torch.float64
    model = copy.deepcopy(loaded.model).to("cpu", torch_dtype).eval()  # the caller's model stays as it is
    network = numpy_network_from_mlp(model, dtype)
    n = len(images_uint8_nhwc)
    same, max_diff = 0, 0.0
    torch_pred, numpy_pred = [], []
    with torch.inference_mode():
        for start in range(0, n, batch_size):
            x = normalize(to_nchw(images_uint8_nhwc[start:start + batch_size], "cpu")).to(torch_dtype)
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
