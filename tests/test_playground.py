"""The playground's core: hand-written SGD against torch.optim.SGD, toy data, the surface, the trainer."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from core import playground as pg
from core.numpy_net import ACTIVATIONS, Layer, Network, tutorial_network

TORCH_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


def torch_twin(net: Network, loss: str) -> tuple[nn.Sequential, list[nn.Linear]]:
    """The same float64 model in torch.nn. For cross-entropy it ends at the logit (BCEWithLogitsLoss
    applies the sigmoid), which is the same function as a sigmoid output with BCELoss."""
    modules, linears = [], []
    for k, layer in enumerate(net.layers):
        lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weights))
            if layer.bias is not None:
                lin.bias.copy_(torch.from_numpy(layer.bias))
        modules.append(lin)
        linears.append(lin)
        last = k == len(net.layers) - 1
        if not (last and loss == "bce"):
            modules.append(TORCH_ACTIVATIONS[layer.activation]())
    return nn.Sequential(*modules), linears


def torch_loss(loss: str):
    return nn.MSELoss() if loss == "mse" else nn.BCEWithLogitsLoss()


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


# ---- SGD: torch as the oracle -----------------------------------------------------------------------

@pytest.mark.parametrize("loss", list(pg.LOSSES))
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias, l2", [(True, 0.01), (False, 0.0)])
def test_twenty_sgd_steps_equal_torch_optim_sgd_in_float64(loss, activation, bias, l2):
    data = pg.make_data(pg.DataSpec("xor", n=40, noise=0.2, train_fraction=0.75, seed=3))
    arch = pg.Architecture((3, 3), (activation, activation), bias, pg.OUTPUT_ACTIVATION[loss])
    params = pg.Parameters.initial(arch, seed=5)
    rng = np.random.default_rng(11)
    for b in params.biases:  # non-zero biases, so their gradients are tested from a general point
        b[:] = rng.normal(0.0, 0.5, b.shape)
    net = pg.build_network(arch, params)
    settings = pg.SGDSettings(loss=loss, lr=0.01, batch_size=7, l2=l2)  # 30 points: a short last batch
    model, linears = torch_twin(net, loss)
    groups = [{"params": [lin.weight for lin in linears], "weight_decay": l2}]  # L2 on the weights only
    if bias:
        groups.append({"params": [lin.bias for lin in linears], "weight_decay": 0.0})
    opt = torch.optim.SGD(groups, lr=settings.lr)
    criterion = torch_loss(loss)

    batches = pg.Batches(len(data.train), seed=9)
    for _ in range(20):
        idx = batches.next(settings.batch_size)
        x, y = data.train.x[idx], data.train.y[idx]
        ours = pg.sgd_step(net, x, y, settings)
        opt.zero_grad()
        theirs = criterion(model(torch.from_numpy(x)), torch.from_numpy(pg.targets(loss, y)))
        theirs.backward()
        opt.step()
        assert ours == pytest.approx(theirs.item(), abs=1e-10)
    assert batches.progress == 4.0  # 20 steps of 7, 7, 7, 7, 2 points: four epochs, each reshuffled
    for k, lin in enumerate(linears):
        assert max_abs(params.weights[k], lin.weight.detach().numpy()) <= 1e-10
        if bias:
            assert max_abs(params.biases[k], lin.bias.detach().numpy()) <= 1e-10
    start = pg.Parameters.initial(arch, seed=5)
    assert max(max_abs(w, w0) for w, w0 in zip(params.weights, start.weights)) > 1e-3  # it did move


@pytest.mark.parametrize("loss", list(pg.LOSSES))
def test_trainer_takes_the_same_steps_as_sgd_step_on_its_batches(loss):
    data = pg.make_data(pg.DataSpec("circle", n=60, noise=0.1, seed=2))
    arch = pg.Architecture((4,), ("relu",), True, pg.OUTPUT_ACTIVATION[loss])
    settings = pg.SGDSettings(loss=loss, lr=0.1, batch_size=8, l2=0.001)
    a, b = pg.Parameters.initial(arch, 0), pg.Parameters.initial(arch, 0)
    trainer = pg.Trainer(data, seed=4)
    record = trainer.train(pg.build_network(arch, a), settings, steps=12)
    net_b, batches = pg.build_network(arch, b), pg.Batches(len(data.train), seed=4)
    for _ in range(12):
        idx = batches.next(settings.batch_size)
        pg.sgd_step(net_b, data.train.x[idx], data.train.y[idx], settings)
    for wa, wb in zip(a.weights + a.biases, b.weights + b.biases):
        np.testing.assert_array_equal(wa, wb)
    assert record.step == trainer.steps == 12 and trainer.history == [record]
    assert len(data.train) == 30 and record.epoch == 3.0  # batches of 8, 8, 8 and 6: 3 epochs
    assert (record.test_loss, record.test_accuracy) == pg.evaluate(net_b, loss, data.test)


@pytest.mark.parametrize("loss", list(pg.LOSSES))
def test_loss_values_equal_torch_losses(loss):
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, (25, 1))
    labels = rng.integers(0, 2, 25)
    a = z if loss == "mse" else 1 / (1 + np.exp(-z))
    value, grad, at = pg.loss_and_gradient(loss, z, a, pg.targets(loss, labels))
    zt = torch.tensor(z, requires_grad=True)
    expected = torch_loss(loss)(zt, torch.from_numpy(pg.targets(loss, labels)))
    expected.backward()
    assert value == pytest.approx(expected.item(), abs=1e-12)
    assert max_abs(grad, zt.grad.numpy()) <= 1e-12  # for MSE with a linear output d/da is d/dz
    assert at == ("a" if loss == "mse" else "z")


def test_cross_entropy_gradient_stays_finite_where_the_sigmoid_saturates():
    net = Network([Layer([[40.0, 40.0]], [0.0], "sigmoid")])  # z = 400: the sigmoid is exactly 1.0
    x, wrong = np.array([[5.0, 5.0]]), np.array([0])
    settings = pg.SGDSettings(loss="bce", lr=0.01)
    loss = pg.sgd_step(net, x, wrong, settings)
    assert loss == pytest.approx(400.0)  # -log(1 - p) written as softplus(z): no log(0)
    np.testing.assert_allclose(net.layers[0].weights, [[40.0 - 0.05, 40.0 - 0.05]])  # dL/dz = p - t = 1


def test_a_step_that_would_blow_up_is_refused_and_changes_nothing():
    data = pg.make_data(pg.DataSpec("blobs", n=40, seed=1))
    arch = pg.Architecture((4,), ("linear",), True)
    params = pg.Parameters.initial(arch, 0)
    net, settings = pg.build_network(arch, params), pg.SGDSettings(lr=1000.0)
    with pytest.raises(pg.TrainingDiverged, match="learning rate 1000,.*too large"):
        for _ in range(10):  # each step multiplies the weights by about a thousand, until they overflow
            before = params.copy()
            pg.sgd_step(net, data.train.x, data.train.y, settings)
    for now, then in zip(params.weights + params.biases, before.weights + before.biases):
        np.testing.assert_array_equal(now, then)


def test_cross_entropy_needs_a_sigmoid_output():
    with pytest.raises(ValueError, match="needs a sigmoid output; the output layer is linear"):
        pg.sgd_step(tutorial_network(), np.ones((2, 2)), np.array([0, 1]), pg.SGDSettings(loss="bce"))


def test_l2_alone_shrinks_every_weight_by_lr_times_l2_and_leaves_biases():
    arch = pg.Architecture((2,), ("tanh",), True)
    params = pg.Parameters.initial(arch, 0)
    params.biases[0][:] = [0.3, -0.2]
    net, before = pg.build_network(arch, params), params.copy()
    # a point on which the output is exactly its target: the data gradient is 0, only L2 acts
    net.layers[-1].weights[:] = 0.0
    net.layers[-1].bias[:] = 1.0
    pg.sgd_step(net, np.array([[1.0, 2.0]]), np.array([1]), pg.SGDSettings(lr=0.1, l2=0.5))
    np.testing.assert_allclose(params.weights[0], before.weights[0] * (1 - 0.1 * 0.5), rtol=1e-15)
    np.testing.assert_array_equal(params.biases[0], [0.3, -0.2])


# ---- learning: what the page promises a learner ---------------------------------------------------

def test_a_2_4_1_tanh_net_with_biases_learns_xor():
    data = pg.make_data(pg.DataSpec("xor", n=200, noise=0.1, seed=0))
    arch = pg.Architecture((4,), ("tanh",), True)
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    trainer = pg.Trainer(data, seed=0)
    record = trainer.train(net, pg.SGDSettings(lr=0.03, batch_size=10), steps=600)
    assert record.test_accuracy >= 0.9 and record.train_accuracy >= 0.9


def test_without_biases_a_tanh_net_cannot_learn_xor_because_it_is_odd():
    """tanh(-z) = -tanh(z), so without biases f(-x) = -f(x); XOR's class is the same at x and -x."""
    data = pg.make_data(pg.DataSpec("xor", n=200, noise=0.0, seed=0))
    arch = pg.Architecture((8, 8), ("tanh", "tanh"), False)
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    record = pg.Trainer(data, seed=0).train(net, pg.SGDSettings(lr=0.03), steps=600)
    x = data.test.x
    np.testing.assert_allclose(net(-x), -net(x), atol=1e-12)
    assert record.train_accuracy <= 0.75


def test_a_2_2_net_cannot_fit_the_spirals_and_an_8_8_net_can():
    data = pg.make_data(pg.DataSpec("spiral", n=200, noise=0.0, seed=0))
    accuracy = {}
    for hidden in ((2, 2), (8, 8)):
        arch = pg.Architecture(hidden, ("tanh", "tanh"), True)
        net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
        accuracy[hidden] = pg.Trainer(data, seed=0).train(net, pg.SGDSettings(lr=0.1), steps=6000).train_accuracy
    assert accuracy[(2, 2)] < 0.8 < 0.9 < accuracy[(8, 8)], accuracy


# ---- toy data ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(pg.DATASETS))
def test_every_data_set_has_the_asked_size_both_classes_and_a_split(kind):
    data = pg.make_data(pg.DataSpec(kind, n=101, noise=0.2, train_fraction=0.3, seed=4))
    assert (len(data.train), len(data.test)) == (30, 71)
    for part in (data.train, data.test):
        assert part.x.shape == (len(part), 2) and part.x.dtype == np.float64
        assert part.y.dtype == np.int64 and set(np.unique(part.y)) <= {0, 1}
    y = np.concatenate([data.train.y, data.test.y])
    assert 0.3 <= y.mean() <= 0.7  # both classes, roughly balanced
    x = np.concatenate([data.train.x, data.test.x])
    assert np.abs(x).max() < pg.EXTENT + 1.5  # the data lies in the plane the page shows (noise aside)


@pytest.mark.parametrize("kind", list(pg.DATASETS))
def test_the_same_seed_gives_the_same_points_and_another_seed_other_points(kind):
    spec = pg.DataSpec(kind, n=80, noise=0.1, seed=7)
    a, b = pg.make_data(spec), pg.make_data(spec)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.test.y, b.test.y)
    c = pg.make_data(pg.DataSpec(kind, n=80, noise=0.1, seed=8))
    assert not np.array_equal(a.train.x, c.train.x)


def test_the_classes_are_where_each_data_set_says():
    xor = pg.make_data(pg.DataSpec("xor", n=200, noise=0.0))
    for p in (xor.train, xor.test):
        np.testing.assert_array_equal(p.y, (p.x[:, 0] * p.x[:, 1] > 0).astype(int))
        assert np.abs(p.x).min() >= 0.3  # a gap along the axes
    circle = pg.make_data(pg.DataSpec("circle", n=200, noise=0.0)).train
    r = np.hypot(circle.x[:, 0], circle.x[:, 1])
    assert r[circle.y == 1].max() <= 2.0 < 3.5 <= r[circle.y == 0].min()
    spiral = pg.make_data(pg.DataSpec("spiral", n=200, noise=0.0)).train
    assert np.hypot(spiral.x[:, 0], spiral.x[:, 1]).max() <= pg.RADIUS
    blobs = pg.make_data(pg.DataSpec("blobs", n=200, noise=0.0)).train
    assert blobs.x[blobs.y == 1].mean(axis=0) == pytest.approx([2.5, 2.5], abs=0.4)
    assert blobs.x[blobs.y == 0].mean(axis=0) == pytest.approx([-2.5, -2.5], abs=0.4)


def test_noise_moves_the_points():
    clean = pg.make_data(pg.DataSpec("spiral", n=100, noise=0.0, seed=1))
    noisy = pg.make_data(pg.DataSpec("spiral", n=100, noise=0.3, seed=1))
    moved = np.abs(clean.train.x - noisy.train.x)
    assert 0.2 < moved.mean() < 2.0


@pytest.mark.parametrize("bad, message", [
    (dict(kind="moons"), "unknown data set 'moons'"), (dict(n=2), "n must be between"),
    (dict(noise=0.9), "noise must be between 0 and 0.5"), (dict(train_fraction=1.0), "strictly between 0 and 1"),
])
def test_a_bad_data_spec_says_what_is_wrong(bad, message):
    with pytest.raises(ValueError, match=message):
        pg.DataSpec(**bad)


# ---- minibatches ------------------------------------------------------------------------------------

def test_batches_visit_every_point_once_per_epoch_with_a_short_last_batch():
    batches = pg.Batches(10, seed=0)
    epoch1 = [batches.next(4) for _ in range(3)]
    assert [len(b) for b in epoch1] == [4, 4, 2]
    assert sorted(np.concatenate(epoch1)) == list(range(10))
    assert batches.epoch == 0 and batches.progress == 1.0
    epoch2 = np.concatenate([batches.next(5), batches.next(5)])
    assert batches.epoch == 1 and sorted(epoch2) == list(range(10))
    assert not np.array_equal(np.concatenate(epoch1), epoch2)  # reshuffled
    again = pg.Batches(10, seed=0)
    np.testing.assert_array_equal(again.next(4), epoch1[0])


# ---- architecture and parameters ------------------------------------------------------------------

def test_build_network_shares_the_parameter_arrays_and_keeps_biases_while_off():
    params = pg.tutorial_parameters()
    params.biases[0][:] = [0.5, -0.5]
    off = pg.build_network(pg.Architecture(bias=False), params)
    assert off.forward([3.0, 5.0]).value == pytest.approx(2.8920827, abs=1e-7)
    assert all(lay.bias is None for lay in off.layers)
    assert off.layers[0].weights is params.weights[0]
    on = pg.build_network(pg.Architecture(bias=True), params)
    np.testing.assert_array_equal(on.layers[0].bias, [0.5, -0.5])


def test_initial_parameters_are_seeded_and_scaled_by_fan_in():
    arch = pg.Architecture((8, 8), ("relu", "tanh"), True)
    a, b, c = (pg.Parameters.initial(arch, s) for s in (3, 3, 4))
    assert a.sizes == arch.sizes == (2, 8, 8, 1)
    np.testing.assert_array_equal(a.weights[1], b.weights[1])
    assert not np.array_equal(a.weights[1], c.weights[1])
    assert all((bias == 0).all() for bias in a.biases)
    assert 0.2 < a.weights[1].std() < 0.55  # 1/sqrt(8) = 0.35


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden=(), activations=()), "1 to 3 hidden layers"),
    (dict(hidden=(2, 9), activations=("tanh", "tanh")), "1 to 8 neurons"),
    (dict(hidden=(2,), activations=("tanh", "relu")), "one activation per hidden layer"),
    (dict(hidden=(2,), activations=("gelu",)), "unknown activation 'gelu'"),
])
def test_a_bad_architecture_says_what_is_wrong(kwargs, message):
    with pytest.raises(ValueError, match=message):
        pg.Architecture(**kwargs)


def test_parameters_of_another_shape_are_refused():
    with pytest.raises(ValueError, match="parameters are for a 2-2-2-1 network, the architecture is 2-4-1"):
        pg.build_network(pg.Architecture((4,), ("tanh",)), pg.tutorial_parameters())


# ---- the surface ------------------------------------------------------------------------------------

@pytest.mark.parametrize("bias", [False, True])
def test_surface_equals_the_network_at_each_grid_point(bias):
    arch = pg.Architecture((5, 3), ("tanh", "relu"), bias, "sigmoid")
    params = pg.Parameters.initial(arch, 1)
    params.biases[0][:] = 0.7
    net = pg.build_network(arch, params)
    s = pg.surface(net, extent=6.0, resolution=101)
    assert s.z.shape == (101, 101) and s.xs[0] == -6.0 and s.xs[-1] == 6.0
    for i, j in [(0, 0), (0, 100), (100, 0), (50, 50), (13, 77), (88, 4)]:
        assert s.z[i, j] == pytest.approx(net.forward([s.xs[j], s.ys[i]]).value, abs=1e-12)
    rows = np.stack([net.forward(np.column_stack([s.xs, np.full(101, y)])).output[:, 0] for y in s.ys])
    assert max_abs(s.z, rows) <= 1e-12


def test_tutorial_surface_passes_through_the_tutorial_output():
    s = pg.surface(tutorial_network(), extent=6.0, resolution=121)  # a grid with 3 and 5 on it
    assert s.z[np.argmin(np.abs(s.ys - 5.0)), np.argmin(np.abs(s.xs - 3.0))] == pytest.approx(2.8920827, abs=1e-7)


def test_the_surface_is_one_vectorised_forward_pass_over_the_whole_grid(monkeypatch):
    # (its time, 20 ms at most for a 2-8-8-1 net on 101 x 101 points, is measured by bench.numpy_playground)
    arch = pg.Architecture((8, 8), ("tanh", "tanh"), True)
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    calls = []
    original = Network.__call__
    monkeypatch.setattr(Network, "__call__", lambda self, x: calls.append(np.shape(x)) or original(self, x))
    s = pg.surface(net, resolution=101)
    assert calls == [(101 * 101, 2)] and s.z.shape == (101, 101)


# ---- history ----------------------------------------------------------------------------------------

def test_history_is_thinned_but_keeps_the_newest_rows():
    data = pg.make_data(pg.DataSpec("blobs", n=20))
    arch = pg.Architecture((1,), ("tanh",))
    net = pg.build_network(arch, pg.Parameters.initial(arch, 0))
    trainer = pg.Trainer(data, max_history=20)
    for _ in range(30):
        trainer.train(net, pg.SGDSettings(batch_size=5), steps=1)
    steps = [r.step for r in trainer.history]
    assert len(steps) <= 20 and steps[-10:] == list(range(21, 31)) and steps == sorted(steps)
    trainer.record(net, "mse")  # measuring again at the same step replaces the row
    assert [r.step for r in trainer.history] == steps
