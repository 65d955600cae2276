"""The feature map (core.evaluate.features): penultimate features, PCA against numpy, the cache."""
from __future__ import annotations

import numpy as np
import torch

from core.evaluate import features
from evaluate_fixtures import random_split, reference_logits, write_checkpoint


def test_pca_matches_numpy_svd():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12)) @ rng.normal(size=(12, 12)) + 3.0
    proj = features.pca_2d(x.astype(np.float32))
    centred = x - x.mean(0)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    expect = centred @ vt[:2].T
    for k in range(2):   # the same direction up to its sign (fixed by the largest entry)
        sign = np.sign(vt[k][np.abs(vt[k]).argmax()])
        assert np.allclose(proj.coords[:, k], sign * expect[:, k], atol=1e-3)
    assert np.allclose(proj.explained, s[:2] ** 2 / (s ** 2).sum(), atol=1e-6)
    assert proj.dims == 12


def test_penultimate_features_are_the_last_linear_layers_input(tmp_path):
    images, _ = random_split(50)
    model = write_checkpoint(tmp_path / "best.pt", "tutorial_mlp")
    feats = features.penultimate_features(model, images)
    assert feats.shape == (50, 500)
    head = model.fc3
    logits = feats @ head.weight.detach().numpy().T + head.bias.detach().numpy()
    assert np.allclose(logits, reference_logits(model, images), atol=1e-4)
    conv = write_checkpoint(tmp_path / "conv.pt", "cpu_cnn")
    assert features.penultimate_features(conv, images).shape == (50, 128)


def test_the_map_is_cached_per_checkpoint_version(tmp_path):
    images, labels = random_split(80)
    write_checkpoint(tmp_path / "best.pt", "tutorial_mlp")
    first = features.projection_for_checkpoint(tmp_path / "best.pt", images, labels, which="best", device="cpu")
    again = features.projection_for_checkpoint(tmp_path / "best.pt", images, labels, which="best", device="cpu")
    assert first.source == "computed" and again.source == "cache"
    assert np.array_equal(first.coords, again.coords)
    torch.manual_seed(5)
    write_checkpoint(tmp_path / "best.pt", "tutorial_mlp", seed=5)      # a new version of the file
    third = features.projection_for_checkpoint(tmp_path / "best.pt", images, labels, which="best", device="cpu")
    assert third.source == "computed"
    assert len(list((tmp_path / "eval").glob("pca-best-*.npz"))) == 1


def test_pca_matches_numpy_svd_with_fewer_images_than_features_and_on_wide_relu_features():
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=(40, 120)),                                            # N < D: the SVD of X
              np.maximum(rng.normal(size=(2000, 500)) @ rng.normal(size=(500, 500)) * 0.1, 0)):   # X^T X
        proj = features.pca_2d(x.astype(np.float32))
        centred = x.astype(np.float32).astype(np.float64)
        centred -= centred.mean(0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        for k in range(2):
            sign = np.sign(vt[k][np.abs(vt[k]).argmax()])
            scale = np.abs(centred @ vt[k]).max()
            assert np.allclose(proj.coords[:, k], sign * centred @ vt[k], atol=1e-4 * scale)
        assert np.allclose(proj.explained, s[:2] ** 2 / (s ** 2).sum(), atol=1e-6)
