"""The hand-written numpy network: the tutorial's number, torch as the oracle, finite differences, errors."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from core import numpy_net
from core.numpy_net import (
    ACTIVATIONS,
    TUTORIAL_INPUT,
    Layer,
    Network,
    neuron_steps,
    parameter_gradients,
    tutorial_network,
)

TORCH_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "sigmoid": nn.Sigmoid, "linear": nn.Identity}


# ---- helpers --------------------------------------------------------------------------------------

def random_network(rng: np.random.Generator, sizes: list[int], activations: list[str], bias: bool,
                   scale: float = 1.0) -> Network:
    layers = []
    for n_in, n_out, act in zip(sizes[:-1], sizes[1:], activations):
        w = rng.normal(0.0, scale, (n_out, n_in))
        b = rng.normal(0.0, scale, n_out) if bias else None
        layers.append(Layer(w, b, act))
    return Network(layers)


def torch_twin(net: Network) -> nn.Sequential:
    """The same network built from torch.nn modules (float64), weights copied in."""
    modules = []
    for layer in net.layers:
        lin = nn.Linear(layer.in_features, layer.out_features, bias=layer.bias is not None, dtype=torch.float64)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(layer.weights))
            if layer.bias is not None:
                lin.bias.copy_(torch.from_numpy(layer.bias))
        modules += [lin, TORCH_ACTIVATIONS[layer.activation]()]
    return nn.Sequential(*modules)


def random_case(seed: int):
    """A random depth, widths, activations, bias choice and input shape (vector or batch)."""
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 5))
    sizes = [int(s) for s in rng.integers(1, 8, depth + 1)]
    activations = [ACTIVATIONS[(seed + i) % len(ACTIVATIONS)] for i in range(depth)]  # every activation, every position
    net = random_network(rng, sizes, activations, bias=bool(seed % 3), scale=float(rng.uniform(0.3, 2.0)))
    batch = seed % 2 == 0
    x = rng.normal(0, 2, (int(rng.integers(1, 9)), sizes[0]) if batch else (sizes[0],))
    return rng, net, x


def max_abs(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0


# ---- the tutorial ---------------------------------------------------------------------------------

def test_tutorial_network_outputs_2_8920827():
    out = tutorial_network().forward(TUTORIAL_INPUT).value
    assert out == pytest.approx(2.8920827, abs=1e-6)


def test_tutorial_network_has_the_tutorial_weights_in_out_in_convention():
    net = tutorial_network()
    np.testing.assert_array_equal(net.layers[0].weights, [[2, 4], [4, -5]])
    np.testing.assert_array_equal(net.layers[1].weights, [[-1, 1], [2, 2]])
    np.testing.assert_array_equal(net.layers[2].weights, [[-3, 7]])
    assert [lay.activation for lay in net.layers] == ["tanh", "tanh", "linear"]
    assert all(lay.bias is None for lay in net.layers)


def test_forward_trace_keeps_every_weighted_sum_and_activation_of_the_tutorial():
    trace = tutorial_network().forward(TUTORIAL_INPUT)
    np.testing.assert_array_equal(trace.input, [3.0, 5.0])
    np.testing.assert_array_equal(trace.layers[0].z, [26.0, -13.0])
    np.testing.assert_allclose(trace.layers[0].a, np.tanh([26.0, -13.0]), rtol=0, atol=1e-15)
    h2 = np.tanh(np.array([[-1, 1], [2, 2]]) @ np.tanh([26.0, -13.0]))
    np.testing.assert_allclose(trace.layers[1].a, h2, rtol=0, atol=1e-15)
    assert trace.output.shape == (1,)
    assert trace.output[0] == pytest.approx(-3 * h2[0] + 7 * h2[1], abs=1e-15)


def test_neuron_steps_fill_in_the_numbers_like_the_tutorial():
    steps = neuron_steps(tutorial_network(), TUTORIAL_INPUT)
    assert [s.name for s in steps] == ["h1,1", "h1,2", "h2,1", "h2,2", "out"]
    assert steps[0].formula == "h1,1 = tanh(3·2 + 5·4) = tanh(26) = 1.000000"
    assert steps[1].formula == "h1,2 = tanh(3·4 + 5·(-5)) = tanh(-13) = -1.000000"
    assert steps[2].formula == "h2,1 = tanh(1.000000·(-1) + (-1.000000)·1) = tanh(-2.000000) = -0.964028"
    assert steps[-1].formula == "out = (-0.964028)·(-3) + 0.000000·7 = 2.892083"
    assert steps[-1].a == pytest.approx(2.8920827, abs=1e-6)


def test_neuron_steps_show_bias_and_activation_name():
    net = Network([Layer([[0.5, -0.25]], [1.5], "sigmoid")])
    (step,) = neuron_steps(net, [1.0, 2.0])
    assert step.formula == "out = sigmoid(1·0.5 + 2·(-0.25) + 1.5) = sigmoid(1.5) = 0.817574"


def test_parameter_gradients_label_every_weight_and_bias_with_its_gradient():
    net = Network([Layer([[2.0, 4.0], [4.0, -5.0]], [0.1, -0.2], "tanh"), Layer([[-3.0, 7.0]], None, "linear")])
    rows = parameter_gradients(net, TUTORIAL_INPUT)
    grads = net.backward(TUTORIAL_INPUT)
    assert [r.label for r in rows] == ["x1 → h1,1", "x2 → h1,1", "bias of h1,1", "x1 → h1,2", "x2 → h1,2",
                                       "bias of h1,2", "h1,1 → out", "h1,2 → out"]
    for r in rows:
        expected = (grads.weights if r.kind == "weight" else grads.biases)[r.layer - 1][r.index]
        assert r.grad == expected


# ---- torch as the oracle ----------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(80))
def test_forward_and_gradients_match_torch_float64(seed):
    rng, net, x = random_case(seed)
    model = torch_twin(net)
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)

    # forward, layer by layer: every z and a of the trace
    trace = net.forward(x)
    h = xt
    for i, lt in enumerate(trace.layers):
        z = model[2 * i](h)
        h = model[2 * i + 1](z)
        assert max_abs(lt.z, z.detach().numpy()) <= 1e-10
        assert max_abs(lt.a, h.detach().numpy()) <= 1e-10
    assert trace.output.shape == tuple(h.shape)

    # backward: upstream gradient 1 for a single output, a random vector otherwise
    upstream = None if net.out_features == 1 else rng.normal(size=h.shape)
    h.backward(torch.ones_like(h) if upstream is None else torch.from_numpy(upstream))
    grads = net.backward(x, upstream)
    for i, layer in enumerate(net.layers):
        assert grads.weights[i].shape == layer.weights.shape
        assert max_abs(grads.weights[i], model[2 * i].weight.grad.numpy()) <= 1e-10
        if layer.bias is None:
            assert grads.biases[i] is None
        else:
            assert max_abs(grads.biases[i], model[2 * i].bias.grad.numpy()) <= 1e-10
    assert grads.input.shape == x.shape
    assert max_abs(grads.input, xt.grad.numpy()) <= 1e-10


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_torch_on_a_batch(activation):
    rng = np.random.default_rng(7)
    net = random_network(rng, [5, 6, 4, 1], [activation] * 3, bias=True, scale=1.5)
    x = rng.normal(0, 3, (32, 5))
    model = torch_twin(net)
    xt = torch.tensor(x, requires_grad=True)
    out = model(xt)
    out.sum().backward()
    grads = net.backward(x)
    assert max_abs(grads.trace.output, out.detach().numpy()) <= 1e-10
    assert max_abs(grads.input, xt.grad.numpy()) <= 1e-10
    for i in range(3):
        assert max_abs(grads.weights[i], model[2 * i].weight.grad.numpy()) <= 1e-10
        assert max_abs(grads.biases[i], model[2 * i].bias.grad.numpy()) <= 1e-10


def test_tutorial_gradients_match_torch():
    net = tutorial_network()
    model = torch_twin(net)
    xt = torch.tensor(TUTORIAL_INPUT, requires_grad=True)
    out = model(xt)
    out.backward()
    grads = net.backward(TUTORIAL_INPUT)
    assert out.item() == pytest.approx(grads.trace.value, abs=1e-12)
    for i in range(3):
        assert max_abs(grads.weights[i], model[2 * i].weight.grad.numpy()) <= 1e-10


def test_batch_forward_equals_one_sample_at_a_time():
    rng = np.random.default_rng(3)
    net = random_network(rng, [4, 8, 8, 3], ["relu", "tanh", "linear"], bias=True)
    x = rng.normal(size=(50, 4))
    batch = net.forward(x).output
    rows = np.stack([net.forward(row).output for row in x])
    assert max_abs(batch, rows) <= 1e-12
    assert max_abs(net(x), batch) == 0.0


def test_replaying_a_cifar_sized_relu_mlp_matches_torch_in_float32():
    """The shape evaluation replays: 3072-1000-500-10 ReLU, float32 weights and images stay float32."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3072, 1000), nn.ReLU(), nn.Linear(1000, 500), nn.ReLU(), nn.Linear(500, 10))
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    net = Network([Layer(sd["0.weight"], sd["0.bias"], "relu"), Layer(sd["2.weight"], sd["2.bias"], "relu"),
                   Layer(sd["4.weight"], sd["4.bias"], "linear")])
    x = torch.randn(256, 3072)
    with torch.no_grad():
        expected = model(x).numpy()
    got = net(x.numpy())
    assert got.dtype == np.float32
    assert got.shape == (256, 10)
    assert max_abs(got, expected) <= 1e-4


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_from_the_output_weighted_sum_skips_the_output_slope_like_torch(activation):
    """at="z": the upstream gradient is d/dz of the output layer, as a loss on the logit gives it."""
    rng = np.random.default_rng(5)
    net = random_network(rng, [3, 4, 2], [activation, "sigmoid"], bias=True, scale=1.5)
    x, upstream = rng.normal(0, 2, (9, 3)), rng.normal(size=(9, 2))
    model = torch_twin(net)[:-1]  # up to the output layer's weighted sum, without its sigmoid
    xt = torch.tensor(x, requires_grad=True)
    model(xt).backward(torch.from_numpy(upstream))
    grads = net.backward(x, upstream, at="z")
    for i in range(2):
        assert max_abs(grads.weights[i], model[2 * i].weight.grad.numpy()) <= 1e-10
        assert max_abs(grads.biases[i], model[2 * i].bias.grad.numpy()) <= 1e-10
    assert max_abs(grads.input, xt.grad.numpy()) <= 1e-10
    np.testing.assert_array_equal(grads.z[-1], upstream)


def test_backward_reuses_a_given_trace_of_the_same_input():
    rng = np.random.default_rng(2)
    net = random_network(rng, [2, 3, 1], ["tanh", "linear"], bias=True)
    x = rng.normal(size=(6, 2))
    trace = net.forward(x)
    again, fresh = net.backward(x, trace=trace), net.backward(x)
    assert again.trace is trace
    for a, b in zip(again.weights + again.biases, fresh.weights + fresh.biases):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"the trace is of an input of shape \(6, 2\), but x has shape \(2,\)"):
        net.backward(x[0], trace=trace)
    with pytest.raises(ValueError, match=r"at must be 'a' .* or 'z'"):
        net.backward(x, at="logit")


# ---- finite differences ---------------------------------------------------------------------------

@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("bias", [False, True])
def test_gradients_match_central_finite_differences(activation, bias):
    for seed in range(100):  # the first draw with every weighted sum away from relu's kink at 0
        rng = np.random.default_rng(seed)
        net = random_network(rng, [3, 4, 3, 1], [activation, activation, "linear"], bias=bias)
        x = rng.normal(size=3)
        if min(np.abs(lt.z).min() for lt in net.forward(x).layers) > 1e-3:
            break
    else:
        pytest.fail("no draw kept every weighted sum away from 0")
    grads = net.backward(x)
    eps = 1e-6

    def numeric(arr: np.ndarray, idx) -> float:
        old = arr[idx]
        arr[idx] = old + eps
        up = net.forward(x).value
        arr[idx] = old - eps
        down = net.forward(x).value
        arr[idx] = old
        return (up - down) / (2 * eps)

    for i, layer in enumerate(net.layers):
        for idx in np.ndindex(layer.weights.shape):
            assert grads.weights[i][idx] == pytest.approx(numeric(layer.weights, idx), rel=1e-5, abs=1e-7)
        if bias:
            for idx in np.ndindex(layer.bias.shape):
                assert grads.biases[i][idx] == pytest.approx(numeric(layer.bias, idx), rel=1e-5, abs=1e-7)
    for idx in np.ndindex(x.shape):
        assert grads.input[idx] == pytest.approx(numeric(x, idx), rel=1e-5, abs=1e-7)


# ---- errors say what is wrong -----------------------------------------------------------------------

def test_mismatched_layer_sizes_name_the_layer_and_both_shapes():
    with pytest.raises(ValueError, match=r"layer 2 weights have shape \(1, 3\).*expect 3 inputs.*layer 1 "
                                         r"gives 2 outputs.*expected shape \(1, 2\)"):
        Network([Layer(np.ones((2, 2))), Layer(np.ones((1, 3)), activation="linear")])


def test_wrong_input_length_says_expected_and_got():
    with pytest.raises(ValueError, match=r"input has shape \(3,\).*layer 1.*expects 2 values.*expected shape \(2,\)"):
        tutorial_network().forward([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"input has shape \(4, 5\).*expected shape \(N, 2\)"):
        tutorial_network().forward(np.zeros((4, 5)))


def test_input_with_too_many_dimensions_is_refused():
    with pytest.raises(ValueError, match=r"vector of shape \(2,\) or a batch of shape \(N, 2\); got shape \(1, 1, 2\)"):
        tutorial_network().forward(np.zeros((1, 1, 2)))


def test_bias_of_wrong_length_is_refused_with_both_shapes():
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\).*weights of shape \(2, 3\).*got shape \(3,\)"):
        Layer(np.ones((2, 3)), np.zeros(3), "tanh")


def test_bias_changed_to_wrong_length_names_the_layer_when_the_network_runs():
    net = tutorial_network()
    net.layers[1].bias = np.zeros(5)
    with pytest.raises(ValueError, match=r"layer 2 bias must have shape \(2,\).*got shape \(5,\)"):
        net.forward(TUTORIAL_INPUT)


def test_weights_that_are_not_a_matrix_are_refused():
    with pytest.raises(ValueError, match=r"weights must be a non-empty 2-D matrix.*got shape \(3,\)"):
        Layer(np.ones(3))


@pytest.mark.parametrize("bad, kind", [(np.nan, "NaN"), (np.inf, r"\+inf"), (-np.inf, "-inf")])
def test_non_finite_input_is_refused_with_its_position(bad, kind):
    x = np.array([[1.0, 2.0], [3.0, bad]])
    with pytest.raises(ValueError, match=rf"input contains {kind} at index \[1, 1\]"):
        tutorial_network().forward(x)


def test_non_finite_weights_and_bias_name_the_layer():
    net = tutorial_network()
    net.layers[2].weights[0, 1] = np.inf
    with pytest.raises(ValueError, match=r"layer 3 weights contains \+inf at index \[0, 1\]"):
        net.forward(TUTORIAL_INPUT)
    with pytest.raises(ValueError, match=r"layer weights contains NaN at index \[1, 0\]"):
        Layer(np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match=r"layer bias contains NaN"):
        Layer(np.ones((1, 2)), np.array([np.nan]))


def test_unknown_activation_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown activation 'softmax'; choose one of tanh, relu, sigmoid, linear"):
        Layer(np.ones((2, 2)), activation="softmax")
    net = tutorial_network()
    net.layers[0].activation = "gelu"
    with pytest.raises(ValueError, match=r"layer 1 has unknown activation 'gelu'"):
        net.forward(TUTORIAL_INPUT)


def test_empty_network_and_non_numbers_are_refused():
    with pytest.raises(ValueError, match="at least one layer"):
        Network([])
    with pytest.raises(ValueError, match=r"input must hold real numbers; got dtype <U1"):
        tutorial_network().forward(["a", "b"])


def test_multi_output_backward_asks_for_an_upstream_gradient_of_the_right_shape():
    net = Network([Layer(np.ones((3, 2)), activation="linear")])
    with pytest.raises(ValueError, match=r"3 outputs, so backward needs grad_output.*shape \(3,\) or \(N, 3\)"):
        net.backward([1.0, 2.0])
    with pytest.raises(ValueError, match=r"grad_output has shape \(2,\); expected \(3,\) or \(4, 3\)"):
        net.backward(np.ones((4, 2)), np.ones(2))
    with pytest.raises(ValueError, match=r"grad_output contains NaN"):
        net.backward([1.0, 2.0], [1.0, np.nan, 0.0])


def test_core_numpy_net_imports_only_numpy_and_the_catalogues():
    tree = ast.parse(Path(numpy_net.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    # numpy, the standard library, and core.i18n (no project module besides) for the sentences it builds
    assert imported <= {"numpy", "__future__", "dataclasses", "typing", "core.i18n"}, imported


# ---- saturated / off neurons, numbers for reading, the tutorial's code with the current numbers ------

def test_the_tutorials_first_layer_is_saturated_which_is_why_four_weights_do_not_matter():
    net = numpy_net.tutorial_network()
    states = {s.name: s for s in numpy_net.neuron_states(net, numpy_net.TUTORIAL_INPUT)}
    assert states["h1,1"].state == states["h1,2"].state == "saturated"        # z = 26 and z = -13
    assert states["h1,1"].z == 26 and states["h1,2"].z == -13
    assert states["h2,1"].state == states["h2,2"].state == states["out"].state == ""
    flat = [g for g in numpy_net.parameter_gradients(net, numpy_net.TUTORIAL_INPUT) if abs(g.grad) < 1e-6]
    # the four into the saturated first layer, and h2,2 → out, whose incoming value h2,2 = tanh(2e-11) is ≈ 0
    assert sorted(g.label for g in flat) == ["h2,2 → out", "x1 → h1,1", "x1 → h1,2", "x2 → h1,1", "x2 → h1,2"]
    assert "saturated" in states["h1,1"].explanation and "26" in states["h1,1"].explanation


def test_relu_neurons_with_a_negative_sum_are_off_and_pass_no_gradient():
    net = numpy_net.Network([numpy_net.Layer(np.array([[1.0, 0.0], [-1.0, 0.0]]), None, "relu"),
                      numpy_net.Layer(np.array([[2.0, 3.0]]), None, "linear")])
    states = numpy_net.neuron_states(net, np.array([2.0, 1.0]))
    assert [s.state for s in states] == ["", "off", ""]
    grads = {g.label: g.grad for g in numpy_net.parameter_gradients(net, np.array([2.0, 1.0]))}
    assert grads["x1 → h1,2"] == 0 and grads["x1 → h1,1"] != 0


def test_tiny_numbers_read_as_zero():
    assert numpy_net.display_number(1.4e-9) == "0" and numpy_net.display_number(-4e-5) == "0"
    assert numpy_net.display_number(0.25) == "0.25" and numpy_net.display_number(0.123456) == "0.1235"
    assert numpy_net.display_number(-3) == "-3" and numpy_net.display_number(6e-5) == "0.0001"


@pytest.mark.parametrize("seed", range(12))
def test_the_generated_tutorial_code_runs_and_prints_the_networks_output(seed, capsys):
    rng = np.random.default_rng(seed)
    widths = [2, *rng.integers(1, 5, size=rng.integers(1, 4)), int(rng.integers(1, 3))]
    bias = bool(seed % 2)
    layers = [numpy_net.Layer(np.round(rng.normal(0, 1.5, (o, i)), 2), np.round(rng.normal(0, 1, o), 2) if bias else None,
                       "linear" if k == len(widths) - 2 else numpy_net.ACTIVATIONS[int(rng.integers(0, 3))])
              for k, (i, o) in enumerate(zip(widths[:-1], widths[1:]))]
    net = numpy_net.Network(layers)
    x = np.round(rng.normal(0, 2, 2), 2)
    exec(compile(numpy_net.tutorial_code(net, x), "<tutorial code>", "exec"), {})
    printed = [float(v) for v in capsys.readouterr().out.split()]
    np.testing.assert_allclose(printed, net.forward(x).layers[-1].a, rtol=1e-9, atol=1e-12)


def test_the_generated_code_for_the_tutorials_network_is_the_tutorials(capsys):
    code = numpy_net.tutorial_code(numpy_net.tutorial_network(), numpy_net.TUTORIAL_INPUT)
    for line in ("input_data = np.array([3, 5])", "'h11': np.array([2, 4]),", "'out': np.array([-3, 7]),",
                 "hidden_11_value = tanh((input_data * weights['h11']).sum())",
                 "out = (hidden_2_output * weights['out']).sum()"):
        assert line in code
    exec(compile(code, "<tutorial code>", "exec"), {})
    assert capsys.readouterr().out.strip().startswith("2.892082")


def test_why_a_number_has_no_effect_is_said_in_words():
    net = numpy_net.tutorial_network()
    x = numpy_net.TUTORIAL_INPUT
    flat = [g for g in numpy_net.parameter_gradients(net, x) if numpy_net.display_number(g.grad) == "0"]
    reasons = numpy_net.why_no_effect(net, x, flat)
    assert reasons[0].startswith("x1 → h1,1, x2 → h1,1: h1,1 is saturated: z = 26")
    assert reasons[1].startswith("x1 → h1,2, x2 → h1,2: h1,2 is saturated: z = -13")
    assert reasons[2].startswith("h2,2 → out: the value coming in, h2,2 = 0 (exactly 2.04e-11)")
    relu = numpy_net.Network([numpy_net.Layer(np.array([[-1.0, 0.0]]), np.array([0.5]), "relu"),
                              numpy_net.Layer(np.array([[2.0]]), None, "linear")])
    rows = numpy_net.parameter_gradients(relu, np.array([2.0, 1.0]))
    assert [r.grad for r in rows[:3]] == [0, 0, 0]
    (reason,) = numpy_net.why_no_effect(relu, np.array([2.0, 1.0]), rows[:3])
    assert reason.startswith("x1 → h1,1, x2 → h1,1, bias of h1,1: h1,1 is off: relu of z = -1.5")
