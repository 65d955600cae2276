"""Where the model looks (core.evaluate.saliency), against independent computations and known masks."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data.images import normalize
from core.data.synthetic import draw_with_masks
from core.evaluate import saliency as sal
from core.train.models import build_model

SHAPES = 6   # circle, square, triangle, ring, cross, diamond: the classes with an object mask


def _x(image):
    return normalize(torch.from_numpy(image).permute(2, 0, 1)[None].contiguous())


def test_grad_cam_weights_are_the_spatially_averaged_gradients():
    torch.manual_seed(0)
    model = build_model("cpu_cnn").eval()
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    act, grads, logits = sal.grad_cam_parts(model, _x(image), [3])
    # independently: the last group's output and d logit_3 / d output by a second forward with retain_grad
    x = _x(image)
    stem = model.stem_activ(model.whiten(x))
    out = model.groups[:-1](stem)
    last = model.groups[-1](out)
    last.retain_grad()
    logit = model.head(model.pool(last).flatten(1)) * model.head_scale
    logit[0, 3].backward()
    assert torch.allclose(act, last[0].detach(), atol=1e-5)
    assert torch.allclose(grads[0], last.grad[0], atol=1e-6)
    alpha = last.grad[0].mean((1, 2))
    expect = F.relu((alpha[:, None, None] * last[0].detach()).sum(0))
    assert torch.allclose(sal.grad_cam_from_parts(act, grads[0]), expect, atol=1e-6)
    assert torch.allclose(logits, logit[0].detach(), atol=1e-5)


def test_upsampling_places_each_cell_over_the_pixels_it_covers():
    m = sal.resample_matrix(3, 8, 0.5)
    assert torch.allclose(m.sum(1), torch.ones(32, dtype=torch.float64))
    centre = (np.arange(3) + 0.5) * 8 + 0.5           # pixel coordinates of the cells' centres
    for j, c in enumerate(centre):
        p = int(c - 0.5)                              # the pixel whose centre is nearest
        assert m[p].argmax() == j


def test_gradient_x_input_for_the_mlp_matches_a_direct_computation():
    torch.manual_seed(0)
    model = build_model("tutorial_mlp").eval()
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    got = sal.saliency(model, image, 4)
    x = _x(image).requires_grad_(True)
    model(x)[0, 4].backward()
    expect = (x.grad * x).sum(1)[0].abs()
    expect = (expect / expect.max()).detach().numpy()
    assert got.method == "gradient x input" and np.allclose(got.heat, expect, atol=1e-5)
    smooth = sal.saliency(model, image, 4, smooth=8)
    assert smooth.method == "smoothgrad" and smooth.heat.shape == (32, 32) and smooth.heat.max() == pytest.approx(1)


@pytest.fixture(scope="module")
def shape_net(synthetic_dataset, tmp_path_factory):
    """cpu_cnn trained briefly (2 epochs, 2,400 images) on the synthetic shape classes only."""
    from core.data.dataset import Split
    from core.train import engine
    from core.train.config import TrainConfig
    from core.evaluate.predictions import load_model

    labels = np.arange(2400) % SHAPES
    images, _ = draw_with_masks(labels, seed=11)
    data = dataclasses.replace(synthetic_dataset, train=Split(images, labels.astype(np.int64)),
                               test=Split(images[:300], labels[:300].astype(np.int64)))
    cfg = TrainConfig.smoke(model="cpu_cnn", optimizer="sgd", lr=0.2, momentum=0.9, schedule="onecycle",
                            warmup=0.2, batch_size=128, epochs=2, train_subset=None, test_subset=None,
                            precision="fp32")
    folder = tmp_path_factory.mktemp("shape-net")
    result = engine.fit(cfg, data, folder)
    assert result.final["test_acc"] > 0.8, result   # last.pt, loaded below, is the model (no validation split)
    return load_model(folder / "last.pt", "cpu").model


def _mass_ratio(heat, mask):
    inside = mask > 0.5
    return heat[inside].mean() / max(heat[~inside].mean(), 1e-9)


def test_a_trained_conv_net_looks_at_the_object(shape_net):
    """Mean heat per pixel inside the generator's object mask over that outside it, for the true class.
    Measured (60 held-out images): Grad-CAM on the last group ~1.4 (89% of images above 1), LayerCAM on the
    finer group ~3.9 (all above 1)."""
    labels = np.arange(60) % SHAPES
    images, masks = draw_with_masks(labels, seed=99)
    ratios = {"last": [], "finer": []}
    for image, mask, y in zip(images, masks, labels):
        for layer in ratios:
            ratios[layer].append(_mass_ratio(sal.saliency(shape_net, image, int(y), layer=layer).heat, mask))
    last, finer = np.array(ratios["last"]), np.array(ratios["finer"])
    assert last.mean() > 1.2 and np.mean(last > 1) > 0.75, (last.mean(), np.mean(last > 1))
    assert finer.mean() > 2.0 and np.mean(finer > 1) > 0.9, (finer.mean(), np.mean(finer > 1))


def test_the_map_changes_with_the_target_class(shape_net):
    images, _ = draw_with_masks(np.arange(12) % SHAPES, seed=5)
    diffs = []
    for image in images:
        a, b = sal.saliency_maps(shape_net, image, [0, 3], layer="finer")
        assert a.target == 0 and b.target == 3
        diffs.append(np.abs(a.heat - b.heat).mean())
    assert np.mean(diffs) > 0.05


def test_saliency_leaves_the_model_untouched(shape_net):
    before = {k: v.clone() for k, v in shape_net.state_dict().items()}
    image = draw_with_masks([0], seed=1)[0][0]
    sal.saliency_maps(shape_net, image, [0, 1])
    assert all(p.grad is None for p in shape_net.parameters())
    assert all(torch.equal(before[k], v) for k, v in shape_net.state_dict().items())
