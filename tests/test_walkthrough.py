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

from core.train.config import TrainConfig
from core.train.walkthrough import (STEPS, channel_arithmetic, flat_index, pick_batch, walk_batch,
                                    walkthrough_model)

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


@pytest.mark.parametrize("cfg", [
    TrainConfig(),                                                          # the tutorial: MLP, Adam 1e-4
    TrainConfig(optimizer="sgd", lr=0.05, momentum=0.9, seed=3),
    TrainConfig(model="cpu_cnn", optimizer="adam", lr=1e-3, seed=1),
], ids=["tutorial-adam", "mlp-sgd", "cnn-adam"])
def test_one_batch_equals_a_plain_torch_step(synthetic_dataset, cfg):
    images, labels, index = pick_batch(synthetic_dataset.train, batch_size=16, batch=2, seed=5)
    model, optimizer, criterion, cfg = walkthrough_model(cfg, train_images=synthetic_dataset.train.images)
    twin = copy.deepcopy(model)
    plain_opt = (torch.optim.Adam(twin.parameters(), lr=cfg.lr, betas=(cfg.momentum, 0.999)) if cfg.optimizer == "adam"
                 else torch.optim.SGD(twin.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=True))
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
