"""One batch through the nine steps (core.train.walkthrough) against a plain torch step written the
tutorial's way: torchvision's ToTensor + Normalize on PIL images, view(-1, 3072), CrossEntropyLoss,
loss.backward(), a plain (unfused) torch.optim.Adam / SGD."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torchvision import transforms

from core.data.images import MEAN, STD
from core.train.config import PRESETS, TrainConfig
from core.train.walkthrough import (STEPS, channel_arithmetic, channel_stats, epoch_counts, flat_index, pick_batch,
                                    update_rule, walk_batch, walkthrough_model)

TUTORIAL_NORMALIZE = transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616))


def tutorial_inputs(images: np.ndarray) -> torch.Tensor:
    pipeline = transforms.Compose([transforms.ToTensor(), TUTORIAL_NORMALIZE])
    return torch.stack([pipeline(Image.fromarray(im)) for im in images])


def plain_step(model: nn.Module, optimizer: torch.optim.Optimizer, images, labels, flatten: bool):
    inputs = tutorial_inputs(images)
    x = inputs.view(-1, 32 * 32 * 3) if flatten else inputs
    labels = torch.as_tensor(labels)
    optimizer.zero_grad()
    outputs = model(x)
    loss = nn.CrossEntropyLoss()(outputs, labels)
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer.step()
    with torch.no_grad():
        after = float(nn.CrossEntropyLoss()(model(x), labels))
    return inputs, x, outputs.detach(), loss.item(), grads, after


def plain_optimizer(cfg: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """The optimiser as the tutorial would write it: one group, torch's default (unfused) kernels."""
    kwargs = dict(lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), momentum=cfg.momentum, nesterov=True, **kwargs)
    adam = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    return adam(model.parameters(), betas=(cfg.momentum, 0.999), **kwargs)


@pytest.mark.parametrize("cfg", [
    TrainConfig(),                                                          # the tutorial: MLP, Adam 1e-4
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, seed=3),
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3, seed=3),
    TrainConfig(optimizer="adamw", lr=2e-3, weight_decay=0.05, seed=4),
    TrainConfig(model="cpu_cnn", optimizer="adam", lr=1e-3, seed=1),
], ids=["tutorial-adam", "mlp-sgd", "mlp-sgd-decay", "mlp-adamw", "cnn-adam"])
def test_one_batch_equals_a_plain_torch_step(synthetic_dataset, cfg):
    images, labels, index = pick_batch(synthetic_dataset.train, batch_size=16, batch=2, seed=5)
    model, optimizer, criterion, cfg = walkthrough_model(cfg, train_images=synthetic_dataset.train.images)
    twin = copy.deepcopy(model)
    plain_opt = plain_optimizer(cfg, twin)
    walk = walk_batch(model, optimizer, criterion, images, labels, synthetic_dataset.classes)
    inputs, x, outputs, loss, grads, after = plain_step(twin, plain_opt, images, labels, walk.flattens)

    assert walk.flattens == (cfg.model == "tutorial_mlp")
    np.testing.assert_array_equal(walk.raw, synthetic_dataset.train.images[index])
    np.testing.assert_allclose(walk.scaled, transforms.ToTensor()(Image.fromarray(images[0]))[None].numpy()
                               if len(images) == 1 else np.stack([transforms.ToTensor()(Image.fromarray(i)).numpy()
                                                                 for i in images]), atol=1e-7)
    np.testing.assert_allclose(walk.normalized, inputs.numpy(), atol=1e-6)
    np.testing.assert_allclose(walk.model_input, x.numpy(), atol=1e-6)
    np.testing.assert_allclose(walk.logits, outputs.numpy(), atol=1e-5)
    np.testing.assert_allclose(walk.probs, torch.softmax(outputs, 1).numpy(), atol=1e-6)
    assert walk.loss == pytest.approx(loss, abs=1e-6)
    assert walk.mean_neg_log_p == pytest.approx(loss, abs=1e-6)        # no label smoothing: the same number
    np.testing.assert_array_equal(walk.predicted, outputs.argmax(1).numpy())
    for row in walk.grads:
        assert row.grad_norm == pytest.approx(float(grads[row.name].norm()), rel=1e-5, abs=1e-9)
    for name, value in twin.state_dict().items():
        # walk_batch steps the model it is given, as a training step does
        np.testing.assert_allclose(model.state_dict()[name].numpy(), value.numpy(), atol=2e-6, err_msg=name)
    assert walk.loss_after == pytest.approx(after, abs=1e-5)
    assert walk.loss_after < walk.loss                                    # one step on a batch lowers its loss
    assert walk.param_count == sum(p.numel() for p in twin.parameters() if p.requires_grad)
    assert [r.name for r in walk.grads] == list(grads)
    # the weight written out on the page: its rule's change is what the plain step did to it
    one = walk.weight
    plain_after = float(twin.state_dict()[one.name][one.index])
    assert one.after == pytest.approx(plain_after, abs=2e-6)
    assert one.rule_change == pytest.approx(plain_after - one.before, rel=2e-3, abs=1e-8)


def test_layer_outputs_are_what_each_layer_computes(synthetic_dataset):
    images, labels, _ = pick_batch(synthetic_dataset.train, batch_size=8, batch=0, seed=0)
    model, optimizer, criterion, _ = walkthrough_model(TrainConfig())
    w = {n: p.detach().clone() for n, p in model.named_parameters()}
    walk = walk_batch(model, optimizer, criterion, images, labels)
    x = torch.as_tensor(walk.model_input)
    h1 = x @ w["fc1.weight"].T + w["fc1.bias"]
    h2 = torch.relu(h1) @ w["fc2.weight"].T + w["fc2.bias"]
    out = torch.relu(h2) @ w["fc3.weight"].T + w["fc3.bias"]
    expected = {"fc1": h1, "relu(fc1)": torch.relu(h1), "fc2": h2, "relu(fc2)": torch.relu(h2), "fc3": out}
    assert [layer.name for layer in walk.layers] == list(expected)
    for layer in walk.layers:
        assert layer.shape == tuple(expected[layer.name].shape)
        np.testing.assert_allclose(layer.first, expected[layer.name][0].numpy(), atol=1e-5)
        assert layer.zero_share == pytest.approx(float((expected[layer.name] == 0).float().mean()), abs=1e-6)
    assert walk.layers[1].zero_share > 0.2 and walk.layers[0].zero_share == 0     # ReLU switches units off


def test_adams_first_step_moves_each_weight_by_about_the_learning_rate(synthetic_dataset):
    images, labels, _ = pick_batch(synthetic_dataset.train, batch_size=16, batch=0, seed=0)
    model, optimizer, criterion, cfg = walkthrough_model(TrainConfig())
    walk = walk_batch(model, optimizer, criterion, images, labels)
    one = walk.weight
    assert one.name == "fc1.weight" and one.step == 1
    # m = (1 - b1) g, v = (1 - b2) g²; bias-corrected m̂ = g, v̂ = g²: the step is lr * g / (|g| + eps)
    assert one.exp_avg == pytest.approx((1 - 0.9) * one.grad, rel=1e-5)
    assert one.exp_avg_sq == pytest.approx((1 - 0.999) * one.grad ** 2, rel=1e-5)
    assert one.before - one.after == pytest.approx(cfg.lr * np.sign(one.grad), rel=1e-3)
    assert abs(one.grad) == pytest.approx(max(r.grad_max for r in walk.grads if r.name == "fc1.weight"))


def test_a_checkpoint_is_walked_with_its_own_weights_and_optimiser_state(synthetic_dataset, tmp_path):
    from core.train.engine import fit

    cfg = TrainConfig.smoke(epochs=1, train_subset=256, batch_size=32)
    fit(cfg, synthetic_dataset, tmp_path)
    payload = torch.load(tmp_path / "last.pt", weights_only=True)
    model, optimizer, _, loaded = walkthrough_model(checkpoint=tmp_path / "last.pt")
    assert loaded == TrainConfig.from_dict(payload["config"])
    for name, value in payload["model_state"].items():
        assert torch.equal(model.state_dict()[name], value)
    assert optimizer.state_dict()["state"][0]["step"] == payload["optimizer_state"]["state"][0]["step"] == 8
    images, labels, _ = pick_batch(synthetic_dataset.train, batch_size=16, batch=0, seed=0)
    walk = walk_batch(model, optimizer, nn.CrossEntropyLoss(), images, labels)
    assert walk.weight.step == 9


def test_the_batch_is_a_seeded_shuffled_slice_and_bad_requests_are_refused(synthetic_dataset):
    split = synthetic_dataset.train
    a = pick_batch(split, batch_size=16, batch=3, seed=7)
    b = pick_batch(split, batch_size=16, batch=3, seed=7)
    c = pick_batch(split, batch_size=16, batch=4, seed=7)
    assert np.array_equal(a[2], b[2]) and not set(a[2]) & set(c[2])
    np.testing.assert_array_equal(a[1], split.labels[a[2]])
    with pytest.raises(ValueError, match="batch_size must be between 1"):
        pick_batch(split, batch_size=0)
    with pytest.raises(ValueError, match="batch must be between 0 and"):
        pick_batch(split, batch_size=16, batch=len(split.labels))


def test_the_arithmetic_shown_for_one_pixel_and_the_flat_index():
    rows = channel_arithmetic(np.array([158, 112, 49], dtype=np.uint8))
    assert [r[0] for r in rows] == ["red", "green", "blue"]
    assert rows[0][2] == pytest.approx(158 / 255) and rows[0][5] == pytest.approx((158 / 255 - 0.4914) / 0.2470, rel=1e-6)
    image = np.random.default_rng(0).integers(0, 256, (3, 32, 32))
    flat = torch.as_tensor(image).view(-1, 32 * 32 * 3)[0]
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 31)]:
        assert flat[flat_index(c, h, w)] == image[c, h, w]


def test_the_nine_steps_follow_the_tutorial():
    assert [s.number for s in STEPS] == list(range(1, 10))
    assert STEPS[2].code == "optimizer.zero_grad()" and STEPS[7].code == "loss.backward()"   # not "backwards"
    assert "view(-1, 32*32*3)" in STEPS[3].code and "形状变换" in STEPS[3].chinese
    assert all(s.chinese and s.title for s in STEPS)


def test_a_fresh_conv_net_gets_its_whitening_stem_fitted_as_training_does(synthetic_dataset):
    from core.data.images import normalize, to_nchw
    from core.train.engine import WHITEN_SAMPLE
    from core.train.models import build_model

    cfg = TrainConfig(model="cpu_cnn", whiten_init=True, seed=2)
    model, *_ = walkthrough_model(cfg, train_images=synthetic_dataset.train.images)
    torch.manual_seed(2)
    expected = build_model("cpu_cnn")
    expected.init_whitening(normalize(to_nchw(synthetic_dataset.train.images[:WHITEN_SAMPLE])))
    for name, value in expected.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name


@pytest.mark.parametrize("cfg", [
    TrainConfig(),
    TrainConfig(optimizer="adamw", lr=2e-3, weight_decay=0.05),
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3),
    PRESETS["cpu_cnn"].config,                       # SGD, biases at 64x lr, label smoothing, warm-up
], ids=["adam", "adamw", "sgd", "cpu-cnn-preset"])
def test_the_update_rule_written_out_gives_the_weights_real_change(synthetic_dataset, cfg):
    images, labels, _ = pick_batch(synthetic_dataset.train, batch_size=16, batch=1, seed=2)
    model, optimizer, criterion, cfg = walkthrough_model(cfg, train_images=synthetic_dataset.train.images)
    one = walk_batch(model, optimizer, criterion, images, labels).weight
    assert one.change != 0
    assert one.rule_change == pytest.approx(one.change, rel=2e-3, abs=1e-9)
    assert update_rule(one) == one.rule_change
    if cfg.optimizer == "sgd":
        assert one.momentum_buffer is not None and one.m_hat is None
    else:
        assert one.m_hat == pytest.approx(one.grad, rel=1e-4)        # the first step: m-hat is the gradient


def test_a_checkpoints_update_rule_uses_its_optimisers_memory(synthetic_dataset, tmp_path):
    from core.train.engine import fit

    fit(TrainConfig.smoke(epochs=1, train_subset=256, batch_size=32), synthetic_dataset, tmp_path)
    model, optimizer, criterion, _ = walkthrough_model(checkpoint=tmp_path / "last.pt")
    images, labels, _ = pick_batch(synthetic_dataset.train, batch_size=16, batch=0, seed=0)
    one = walk_batch(model, optimizer, criterion, images, labels).weight
    assert one.step == 9
    assert one.rule_change == pytest.approx(one.change, rel=2e-3, abs=1e-9)
    assert abs(one.m_hat - one.grad) > 1e-9 * abs(one.grad)   # m-hat now remembers the earlier steps


def test_a_fresh_model_steps_at_the_schedules_first_learning_rate(synthetic_dataset):
    from core.train.engine import lr_factor

    cfg = PRESETS["cpu_cnn"].config                    # one-cycle with warm-up: the first step is at 0.1 x lr
    _, optimizer, _, cfg = walkthrough_model(cfg, train_images=synthetic_dataset.train.images)
    first = lr_factor(cfg, 0, 1000)
    assert first == pytest.approx(0.1)
    lrs = sorted(g["lr"] for g in optimizer.param_groups)
    assert lrs == pytest.approx(sorted([cfg.lr * first, cfg.lr * cfg.bias_lr_scale * first]))
    _, tutorial, _, _ = walkthrough_model(TrainConfig())        # constant: the configured rate
    assert [g["lr"] for g in tutorial.param_groups] == [1e-4]


def test_epoch_counts_are_the_tutorials_loops():
    tutorial = epoch_counts(50_000, batch_size=16)
    assert (tutorial.steps_per_epoch, tutorial.total_steps, tutorial.last_batch) == (3_125, 31_250, 16)
    uneven = epoch_counts(100, batch_size=16, epochs=2)        # a DataLoader keeps the short last batch
    assert (uneven.steps_per_epoch, uneven.last_batch, uneven.total_steps) == (7, 4, 14)
    with pytest.raises(ValueError):
        epoch_counts(0, batch_size=16)


def test_channel_stats_are_the_mean_and_std_of_every_pixel():
    images = np.random.default_rng(1).integers(0, 256, (50, 32, 32, 3), dtype=np.uint8)
    mean, std = channel_stats(images)
    x = images.astype(np.float64) / 255
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), rtol=1e-12)
    with pytest.raises(ValueError):
        channel_stats(images.astype(np.float32))


@pytest.mark.cifar
@pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")  # the development copy
def test_normalizes_constants_are_cifar10s_training_set_statistics(cifar_root):
    """The page's claim: MEAN and STD are each channel's mean and std over CIFAR-10's training images
    (measured here on the development split, a subset of them)."""
    from core import data

    mean, std = channel_stats(data.load_cifar10(cifar_root, download=False).train.images)
    np.testing.assert_allclose(mean, MEAN, atol=0.002)
    np.testing.assert_allclose(std, STD, atol=0.003)
