"""Model registry: shapes, the tutorial MLP's exact layout, patch whitening."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from core.train.models import MODELS, ConvGroupNet, build_model


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_maps_a_normalised_batch_to_ten_logits(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    out = model(torch.randn(4, 3, 32, 32))
    assert out.shape == (4, 10) and out.dtype == torch.float32 and torch.isfinite(out).all()
    spec = MODELS[name]
    assert spec.name == name and spec.title and spec.description


def test_registry_holds_the_tutorial_mlp_and_the_two_cnns():
    assert list(MODELS)[0] == "tutorial_mlp"
    assert {"tutorial_mlp", "cpu_cnn", "gpu_cnn"} <= set(MODELS)


def test_unknown_model_name_lists_the_choices():
    with pytest.raises(ValueError, match="unknown model 'lenet'.*tutorial_mlp.*cpu_cnn.*gpu_cnn"):
        build_model("lenet")


def test_tutorial_mlp_is_the_tutorial_net_layer_by_layer():
    model = build_model("tutorial_mlp")
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    assert shapes == {"fc1.weight": (1000, 3072), "fc1.bias": (1000,), "fc2.weight": (500, 1000),
                      "fc2.bias": (500,), "fc3.weight": (10, 500), "fc3.bias": (10,)}
    # A numpy replay that flattens in (C, H, W) order gives the same logits.
    x = torch.randn(3, 3, 32, 32)
    w = {k: v.detach().double().numpy() for k, v in model.state_dict().items()}
    a = x.double().numpy().reshape(3, -1)
    a = np.maximum(a @ w["fc1.weight"].T + w["fc1.bias"], 0)
    a = np.maximum(a @ w["fc2.weight"].T + w["fc2.bias"], 0)
    logits = a @ w["fc3.weight"].T + w["fc3.bias"]
    np.testing.assert_allclose(model(x).detach().double().numpy(), logits, rtol=1e-4, atol=1e-5)


def test_builders_give_fresh_models_that_follow_the_global_seed():
    torch.manual_seed(1)
    a = build_model("cpu_cnn")
    torch.manual_seed(1)
    b = build_model("cpu_cnn")
    assert a is not b
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)


@pytest.mark.parametrize("name", ["cpu_cnn", "gpu_cnn"])
def test_conv_nets_use_batch_norm_gelu_and_max_pooling(name):
    kinds = {type(m).__name__ for m in build_model(name).modules()}
    assert {"BatchNorm", "GELU", "MaxPool2d"} <= kinds
    assert isinstance(build_model(name), ConvGroupNet)


def test_patch_whitening_decorrelates_two_by_two_patches():
    torch.manual_seed(0)
    # Correlated images: smooth noise, so neighbouring pixels and channels move together.
    base = torch.randn(256, 1, 8, 8)
    images = torch.nn.functional.interpolate(base, size=32, mode="bilinear").repeat(1, 3, 1, 1)
    images = images + 0.1 * torch.randn(256, 3, 32, 32)
    model = build_model("cpu_cnn")
    model.init_whitening(images, eps=1e-6)
    with torch.no_grad():
        out = torch.nn.functional.conv2d(images, model.whiten.weight[:12])     # the 12 positive filters
    feats = out.permute(0, 2, 3, 1).reshape(-1, 12).double()
    cov = torch.cov(feats.T)
    torch.testing.assert_close(cov, torch.eye(12, dtype=torch.float64), atol=0.05, rtol=0)
    assert torch.equal(model.whiten.weight[12:], -model.whiten.weight[:12])
    assert torch.count_nonzero(model.whiten.bias) == 0
