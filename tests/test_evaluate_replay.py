"""core.evaluate.replay: an MLP checkpoint replayed in core.numpy_net agrees with PyTorch."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from core.evaluate import replay
from core.train.checkpoints import save_checkpoint
from core.train.models import build_model
from evaluate_fixtures import random_split, trained_mlp as train_mlp
from reference import normalize_np


@pytest.fixture(scope="module")
def test_split():
    return random_split()


@pytest.fixture(scope="module")
def trained_mlp(test_split):
    """A tutorial MLP after a few Adam steps, so its logits are those of a model that learnt something."""
    return train_mlp(*test_split)


def test_numpy_replay_float32_agrees_with_torch(trained_mlp, test_split):
    images, labels = test_split
    report = replay.numpy_replay(trained_mlp, images, labels, dtype=np.float32)
    assert report.n == len(images) and report.dtype == "float32"
    assert report.agreement == 1.0
    assert report.max_abs_logit_diff < 1e-4
    assert report.torch_accuracy == report.numpy_accuracy > 0.5  # it memorised part of these images


def test_numpy_replay_float64_agrees_with_torch(trained_mlp, test_split, tmp_path):
    images, labels = test_split
    save_checkpoint(tmp_path / "best.pt", {"model": "tutorial_mlp", "model_state": trained_mlp.state_dict(),
                                           "config": {}, "torch_version": str(torch.__version__)})
    report = replay.numpy_replay(tmp_path / "best.pt", images, labels, dtype=np.float64)
    assert report.agreement == 1.0
    assert report.max_abs_logit_diff < 1e-9
    # the replay does not change the model it was given
    assert next(trained_mlp.parameters()).dtype == torch.float32


def test_numpy_replay_flattens_in_channel_height_width_order(trained_mlp, test_split):
    images, _ = test_split
    net = replay.numpy_network_from_mlp(trained_mlp, np.float64)
    x = normalize_np(images[:5]).astype(np.float64)
    by_hand = net(x.reshape(5, -1))  # (N, C, H, W) -> (N, C*H*W)
    hwc = net(x.transpose(0, 2, 3, 1).reshape(5, -1))  # the wrong order gives other logits
    with torch.no_grad():
        expected = copy.deepcopy(trained_mlp).double()(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(by_hand, expected, atol=1e-9)
    assert np.abs(hwc - expected).max() > 1e-3


def test_only_the_mlp_can_be_replayed(test_split):
    with pytest.raises(ValueError, match="tutorial MLP"):
        replay.numpy_replay(build_model("cpu_cnn"), test_split[0][:4])
