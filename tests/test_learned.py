"""What the model has learned (core.evaluate.learned) against independent computations: the MLP's
first-layer pictures and class drives, the gradient-ascent class patterns, a conv net's stem filters
(the whitening eigen-directions) and one image's activation maps computed by hand with torch.nn.functional."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.data.images import MEAN, STD
from core.evaluate import learned
from core.evaluate.predictions import LoadedModel
from core.train.models import build_model
from dashboard.figures import learned as figs
from evaluate_fixtures import random_split, trained_mlp
from reference import normalize_np

STD_NP = np.asarray(STD, np.float32)
MEAN_NP = np.asarray(MEAN, np.float32)


@pytest.fixture(scope="module")
def mlp():
    images, labels = random_split(200, seed=3)
    return trained_mlp(images, labels, steps=30)


def _whitened_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    model = build_model("cpu_cnn")
    images, _ = random_split(64, seed=seed)
    # smooth-ish images, so the patch covariance has a real spread of eigenvalues
    smooth = (images.astype(np.float32) + np.roll(images, 1, 1) + np.roll(images, 1, 2)) / 3
    model.init_whitening(torch.from_numpy(normalize_np(smooth.astype(np.uint8))))
    return model.eval()


# ---- the MLP's first layer ---------------------------------------------------------------------
def test_unit_pictures_are_the_first_layers_rows_reshaped_into_pixel_space(mlp):
    units = learned.first_layer_units(mlp)
    w = mlp.fc1.weight.detach().numpy()
    assert units.pictures.shape == (1000, 32, 32, 3) and units.units == 1000
    for i in (0, 17, 999):
        row = w[i].reshape(3, 32, 32)                       # the model flattens C, H, W
        pixel = row.transpose(1, 2, 0) / STD_NP              # what multiplies a [0, 1] pixel
        np.testing.assert_allclose(units.weights[i], row)
        np.testing.assert_allclose(units.pixel_weights[i], pixel, rtol=1e-6)
        np.testing.assert_allclose(units.pictures[i], 0.5 + 0.5 * pixel / np.abs(pixel).max(), rtol=1e-6)
    np.testing.assert_allclose(units.norms, np.sqrt((w.astype(np.float64) ** 2).sum(1)), rtol=1e-5)
    assert units.pictures.min() >= 0 and units.pictures.max() <= 1


def test_pixel_space_weights_give_the_units_preactivation_on_raw_pixels(mlp):
    units = learned.first_layer_units(mlp)
    images, _ = random_split(4, seed=9)
    pixels = images.astype(np.float64) / 255                                 # (N, 32, 32, 3) in [0, 1]
    with torch.no_grad():
        pre = mlp.fc1(torch.from_numpy(normalize_np(images)).flatten(1)).numpy()
    w = units.pixel_weights.astype(np.float64)                               # (units, 32, 32, 3)
    # w . x = sum (w / STD) p - sum (w / STD) MEAN: the second term is the same for every image
    offset = mlp.fc1.bias.detach().numpy() - (w * MEAN_NP).sum((1, 2, 3))
    by_pixels = np.einsum("nhwc,uhwc->nu", pixels, w) + offset
    np.testing.assert_allclose(by_pixels, pre, atol=1e-3)


def test_drive_is_the_jacobian_of_the_later_layers_without_their_relu(mlp):
    units = learned.first_layer_units(mlp)
    np.testing.assert_allclose(units.drive, mlp.fc3.weight.detach().numpy() @ mlp.fc2.weight.detach().numpy(),
                               rtol=1e-4, atol=1e-7)
    linear_tail = lambda h: mlp.fc3(mlp.fc2(h))                              # noqa: E731
    jac = torch.autograd.functional.jacobian(linear_tail, torch.zeros(1000)).numpy()    # (10, 1000)
    np.testing.assert_allclose(units.drive, jac, rtol=1e-4, atol=1e-6)


def test_units_are_ordered_by_norm_or_by_drive_to_a_class(mlp):
    units = learned.first_layer_units(mlp)
    by_norm = learned.unit_order(units, "norm")
    assert sorted(by_norm.tolist()) == list(range(1000))
    assert np.all(np.diff(units.norms[by_norm]) <= 0)
    cat = learned.unit_order(units, "drive", 3)
    assert np.all(np.diff(units.drive[3, cat]) <= 0)
    assert cat[0] == int(np.argmax(units.drive[3])) and cat[-1] == int(np.argmin(units.drive[3]))
    assert not np.array_equal(cat, learned.unit_order(units, "drive", 5))
    with pytest.raises(ValueError):
        learned.unit_order(units, "drive")
    with pytest.raises(ValueError):
        learned.unit_order(units, "size")


def test_conv_nets_have_no_unit_pictures_and_the_mlp_no_filters(mlp):
    with pytest.raises(ValueError):
        learned.first_layer_units(build_model("cpu_cnn"))
    with pytest.raises(ValueError):
        learned.first_layer_filters(mlp)
    with pytest.raises(ValueError):
        learned.activation_maps(mlp, np.zeros((32, 32, 3), np.uint8))


# ---- class patterns -----------------------------------------------------------------------------
def test_class_patterns_raise_their_class_score_and_stay_valid_images(mlp):
    calls = []
    result = learned.class_patterns(mlp, 10, steps=30, progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i, 30) for i in range(1, 31)]
    assert result.scores.shape == (31, 10) and result.pictures.shape == (10, 32, 32, 3)
    with torch.no_grad():
        grey = torch.from_numpy(((np.full((10, 32, 32, 3), 0.5, np.float32) - MEAN_NP) / STD_NP).transpose(0, 3, 1, 2))
        start = mlp(grey).numpy()
        final = mlp(torch.from_numpy(result.inputs)).numpy()
    np.testing.assert_allclose(result.scores[0], np.diag(start), rtol=1e-5, atol=1e-5)   # began at grey
    np.testing.assert_allclose(result.best_scores, np.diag(final), rtol=1e-4, atol=1e-4)  # the pattern's own score
    np.testing.assert_allclose(result.best_scores, result.scores.max(0))                   # the best step kept
    assert np.all(result.best_scores > result.scores[0] + 1.0)                              # clearly higher
    rises = np.diff(result.scores, axis=0) > -1e-4
    assert rises.mean() >= 0.95                                                             # monotone, nearly
    e = np.exp(final - final.max(1, keepdims=True))
    np.testing.assert_allclose(result.probs, np.diag(e / e.sum(1, keepdims=True)), rtol=1e-4)
    # valid images: the normalised inputs of pixels in [0, 1], and the pictures are those pixels
    lo, hi = (0 - MEAN_NP) / STD_NP, (1 - MEAN_NP) / STD_NP
    x = result.inputs.transpose(0, 2, 3, 1)
    assert np.all(x >= lo - 1e-5) and np.all(x <= hi + 1e-5)
    np.testing.assert_allclose(result.pictures, x * STD_NP + MEAN_NP, atol=1e-5)


def test_long_ascents_reach_the_pixel_range_limits_but_never_cross_them(mlp):
    result = learned.class_patterns(mlp, [2], steps=60, step=0.5)
    assert result.pictures.min() >= 0 and result.pictures.max() <= 1
    at_limit = (result.pictures <= 1e-6) | (result.pictures >= 1 - 1e-6)
    assert at_limit.mean() > 0.2                                       # the clip really engaged


def test_a_class_ascends_the_same_alone_as_in_the_batch(mlp):
    together = learned.class_patterns(mlp, 10, steps=8)
    alone = learned.class_patterns(mlp, [4], steps=8)
    np.testing.assert_allclose(alone.pictures[0], together.pictures[4], atol=1e-5)
    np.testing.assert_allclose(alone.scores[:, 0], together.scores[:, 4], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(alone.best_step, together.best_step[4:5])
    zero = learned.class_patterns(mlp, 3, steps=0)
    np.testing.assert_allclose(zero.pictures, 0.5, atol=1e-6)          # no step: the grey start


def test_class_patterns_leave_the_model_untouched(mlp):
    before = {k: v.clone() for k, v in mlp.state_dict().items()}
    grads = [None if p.grad is None else p.grad.clone() for p in mlp.parameters()]
    learned.class_patterns(mlp, 10, steps=3)
    assert all(torch.equal(before[k], v) for k, v in mlp.state_dict().items())
    for p, g in zip(mlp.parameters(), grads):                 # autograd.grad: .grad is never written
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)


# ---- conv nets: the stem's filters ----------------------------------------------------------------
def test_whitening_filters_are_the_stem_weight_and_give_back_the_patch_eigenvalues():
    torch.manual_seed(0)
    model = build_model("cpu_cnn")
    images, _ = random_split(64, seed=0)
    smooth = ((images.astype(np.float32) + np.roll(images, 1, 1) + np.roll(images, 1, 2)) / 3).astype(np.uint8)
    x = normalize_np(smooth)
    model.init_whitening(torch.from_numpy(x))
    stem = learned.first_layer_filters(model.eval())
    w = model.whiten.weight.detach().numpy()
    np.testing.assert_array_equal(stem.weights, w)
    assert stem.kind == "whitening" and stem.weights.shape == (24, 3, 2, 2)
    pixel = w.transpose(0, 2, 3, 1) / STD_NP
    np.testing.assert_allclose(stem.pictures, 0.5 + 0.5 * pixel / np.abs(pixel).reshape(24, -1).max(1)[:, None, None, None],
                               rtol=1e-6)
    # independent: the 2x2 patch covariance of the same images in numpy, its eigenvalues largest first
    n, c, h, wd = x.shape
    patches = np.stack([x[:, :, i:i + 2, j:j + 2] for i in range(h - 1) for j in range(wd - 1)], 1)
    patches = patches.reshape(-1, c * 4).astype(np.float64)                     # (N * 31 * 31, 12), C-major
    eigenvalues = np.linalg.eigvalsh(np.cov(patches, rowvar=False, bias=True))[::-1]
    np.testing.assert_allclose(stem.variances[:12], eigenvalues, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(stem.variances[12:], stem.variances[:12])      # the negated half


def test_a_stem_that_was_not_whitened_is_called_learned():
    torch.manual_seed(1)
    model = build_model("cpu_cnn").eval()
    stem = learned.first_layer_filters(model)
    assert stem.kind == "learned" and stem.variances is None
    np.testing.assert_array_equal(stem.weights, model.whiten.weight.detach().numpy())
    whitened = _whitened_cnn()
    said_no = LoadedModel(whitened, "cpu_cnn", {"whiten_init": False}, None, None, torch.device("cpu"))
    assert learned.first_layer_filters(said_no).kind == "learned"              # the run's config decides
    said_yes = LoadedModel(whitened, "cpu_cnn", {"whiten_init": True}, None, None, torch.device("cpu"))
    assert learned.first_layer_filters(said_yes).kind == "whitening"


# ---- conv nets: activation maps -----------------------------------------------------------------
def _by_hand(model, x: torch.Tensor) -> list[torch.Tensor]:
    """The stem and each conv group, written out with torch.nn.functional (eval-mode batch norm)."""
    def bn(t, norm):
        return F.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)

    out = [F.gelu(F.conv2d(x, model.whiten.weight, model.whiten.bias))]
    for g in model.groups:
        t = F.conv2d(out[-1], g.conv1.weight, padding=1)
        t = F.gelu(bn(F.max_pool2d(t, 2), g.norm1))
        out.append(F.gelu(bn(F.conv2d(t, g.conv2.weight, padding=1), g.norm2)))
    return out


def test_activation_maps_equal_the_layers_computed_by_hand():
    model = _whitened_cnn(2)
    gen = torch.Generator().manual_seed(0)
    for m in model.modules():                    # batch-norm statistics as after training, not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.3)
            m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=gen) * 0.2)
    images, _ = random_split(2, seed=4)
    result = learned.activation_maps(model, images[1])
    with torch.no_grad():
        x = torch.from_numpy(normalize_np(images[1:2]))
        expected = _by_hand(model, x)
        logits = model(x)[0].numpy()
    assert [g.name for g in result.groups] == ["stem", "group 1", "group 2", "group 3"]
    assert [g.maps.shape for g in result.groups] == [(24, 31, 31), (16, 15, 15), (64, 7, 7), (128, 3, 3)]
    for group, want in zip(result.groups, expected):
        np.testing.assert_allclose(group.maps, want[0].numpy(), rtol=1e-4, atol=1e-5)
        mean = want[0].numpy().mean((1, 2))
        np.testing.assert_allclose(group.mean, mean, rtol=1e-4, atol=1e-6)
        assert np.all(np.diff(group.mean[group.order]) <= 0)                    # most active first
        assert group.top(5).tolist() == group.order[:5].tolist()
    np.testing.assert_allclose(result.logits, logits, rtol=1e-4, atol=1e-5)
    other = learned.activation_maps(model, images[0])
    assert not np.allclose(other.groups[1].maps, result.groups[1].maps)          # another image, other maps


# ---- the pictures ----------------------------------------------------------------------------------
def test_mosaic_places_pictures_in_reading_order():
    pics = np.zeros((5, 2, 2, 3), np.float32)
    for i in range(5):
        pics[i] = i / 4
    out = figs.mosaic(pics, columns=3, scale=2, gap=1)
    assert out.shape == (2 * 5 - 1, 3 * 5 - 1, 3)
    for i in range(5):
        r, c = divmod(i, 3)
        tile = out[r * 5:r * 5 + 4, c * 5:c * 5 + 4]
        assert np.all(tile == round(255 * i / 4))
    assert np.all(out[5:, 10:] == 255)                                          # the empty sixth slot


def test_activation_colours_run_from_dark_blue_to_yellow_on_a_shared_scale():
    maps = np.array([[[0.0, 1.0]], [[2.0, 4.0]]], np.float32)
    tiles, top = figs.activation_tiles(maps, size=4)
    assert top == 4.0 and tiles[0].shape == (2, 4, 3)
    np.testing.assert_array_equal(tiles[0][0, 0], [68, 1, 84])                  # 0: dark blue
    np.testing.assert_array_equal(tiles[1][0, -1], [253, 231, 37])              # the top: yellow
    assert tiles[0][0, -1].sum() < tiles[1][0, 0].sum()                         # 1 darker than 2


def test_the_pattern_kept_is_the_best_step_even_when_a_step_overshoots():
    model = _whitened_cnn(3)                                # untrained: big steps on a max-pool net overshoot
    result = learned.class_patterns(model, 10, steps=12, step=2.0)
    with torch.no_grad():
        scores = model(torch.from_numpy(result.inputs)).numpy()
    np.testing.assert_allclose(np.diag(scores), result.best_scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(result.best_step, result.scores.argmax(0))
    assert np.all(result.best_scores >= result.scores[0])
    assert np.any(np.diff(result.scores, axis=0) < 0)      # the trajectory did fall somewhere: the case exists
