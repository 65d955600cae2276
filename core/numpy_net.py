"""A small feed-forward network written by hand in numpy, forward and backward.

The network is a stack of fully connected layers. Layer ``l`` computes

    z_l = a_{l-1} @ W_l.T + b_l        (weighted sums; W_l has shape (out, in) like torch's nn.Linear)
    a_l = f_l(z_l)                     (activations)

with ``a_0 = x``. ``Network.forward`` keeps every ``z`` and ``a`` (the *trace*) so a learner can see
each step, and ``Network.backward`` walks the trace backwards with the chain rule. As in micrograd,
each activation's local derivative sits right beside its forward rule (``_RULES``).

The tutorial network (2 inputs, two hidden layers of two tanh units, one linear output, no biases)
is ``tutorial_network()``; fed ``TUTORIAL_INPUT`` it outputs 2.8920827.

No Streamlit here: the dashboard page only calls these functions and draws the results. The
sentences that explain a network to a learner (``why_no_effect``, ``NeuronState.explain``, the labels
of ``parameter_gradients`` and the comments of ``tutorial_code``) take a ``lang`` and come from the
catalogues (core.i18n, keys under ``numpy.core``); everything else here is numbers and identifiers.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from core.i18n import t

ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")

# name -> (forward rule f(z), local derivative df/dz written with z and a = f(z)).
# The derivative is expressed through a where that is cheaper, exactly as micrograd's tanh does.
_Rule = tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]
_RULES: dict[str, _Rule] = {
    # tanh squashes any number into (-1, 1); its slope 1 - tanh² is 1 at 0 and vanishes far out.
    "tanh": (np.tanh, lambda z, a: 1.0 - a * a),
    # relu passes positive sums and blocks negative ones; slope 1 or 0 (0 at z = 0, like torch).
    "relu": (lambda z: np.maximum(z, 0), lambda z, a: (z > 0).astype(z.dtype)),
    # sigmoid squashes into (0, 1); written through tanh so that large |z| never overflows exp.
    "sigmoid": (lambda z: 0.5 * (1.0 + np.tanh(0.5 * z)), lambda z, a: a * (1.0 - a)),
    # linear leaves the weighted sum as it is; slope 1.
    "linear": (lambda z: z, lambda z, a: np.ones_like(z)),
}
assert tuple(_RULES) == ACTIVATIONS

TUTORIAL_INPUT = np.array([3.0, 5.0])


def _as_float_array(value, what: str) -> np.ndarray:
    """An ndarray of a floating dtype (float32 stays float32, integers become float64), no copy if possible."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged nested lists and the like
        raise ValueError(f"{what} is not a rectangular array of numbers ({exc})") from None
    if arr.dtype.kind in "biu":
        arr = arr.astype(np.float64)
    elif arr.dtype.kind != "f":
        raise ValueError(f"{what} must hold real numbers; got dtype {arr.dtype}")
    return arr


def _check_finite(arr: np.ndarray, what: str) -> None:
    if np.isfinite(arr).all():
        return
    bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
    value = arr[bad]
    kind = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    count = int((~np.isfinite(arr)).sum())
    where = f"[{', '.join(map(str, bad))}]" if bad else ""
    raise ValueError(f"{what} contains {kind} at index {where} ({count} non-finite value(s) in all); "
                     "every number must be finite")


@dataclass
class Layer:
    """One fully connected layer: weights (out, in), optional bias (out,), an activation name."""

    weights: np.ndarray
    bias: np.ndarray | None = None
    activation: str = "tanh"

    def __post_init__(self) -> None:
        self.validate()

    @property
    def in_features(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weights.shape[0])

    def validate(self, name: str = "layer") -> None:
        """Convert to float arrays and check shapes, values and the activation; ValueError says what is wrong."""
        self.weights = _as_float_array(self.weights, f"{name} weights")
        if self.weights.ndim != 2 or 0 in self.weights.shape:
            raise ValueError(f"{name} weights must be a non-empty 2-D matrix of shape (out, in); "
                             f"got shape {self.weights.shape}")
        _check_finite(self.weights, f"{name} weights")
        if self.bias is not None:
            self.bias = _as_float_array(self.bias, f"{name} bias")
            if self.bias.shape != (self.out_features,):
                raise ValueError(f"{name} bias must have shape ({self.out_features},) to match weights of "
                                 f"shape {self.weights.shape} ({self.out_features} outputs); "
                                 f"got shape {self.bias.shape}")
            _check_finite(self.bias, f"{name} bias")
        if self.activation not in _RULES:
            raise ValueError(f"{name} has unknown activation {self.activation!r}; "
                             f"choose one of {', '.join(ACTIVATIONS)}")

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (N, in) -> (z, a), both (N, out)."""
        z = x @ self.weights.T
        if self.bias is not None:
            z = z + self.bias
        return z, _RULES[self.activation][0](z)

    def backward(self, x: np.ndarray, z: np.ndarray, a: np.ndarray, grad_a: np.ndarray, *, at: str = "a"):
        """Chain rule through a = f(x @ W.T + b): from d/da to d/dW, d/db and d/dx (all summed over N).

        With ``at="z"`` the incoming gradient is already d/dz (the activation's slope was applied by the caller).
        """
        grad_z = grad_a * _RULES[self.activation][1](z, a) if at == "a" else grad_a
        grad_w = grad_z.T @ x  # d z_j / d W_ji = x_i
        grad_b = grad_z.sum(axis=0) if self.bias is not None else None  # d z_j / d b_j = 1
        grad_x = grad_z @ self.weights  # d z_j / d x_i = W_ji
        return grad_z, grad_w, grad_b, grad_x


@dataclass
class LayerTrace:
    z: np.ndarray  # weighted sums, (out,) or (N, out)
    a: np.ndarray  # activations f(z), same shape


@dataclass
class Trace:
    """Everything a forward pass computed: the input, each layer's z and a, and the output."""

    input: np.ndarray
    layers: list[LayerTrace]

    @property
    def output(self) -> np.ndarray:
        return self.layers[-1].a

    @property
    def value(self) -> float:
        """The output as a plain float (only for one sample through a single-output network)."""
        if self.output.size != 1:
            raise ValueError(f"value needs one sample and one output; the output has shape {self.output.shape}")
        return float(self.output.reshape(()))


@dataclass
class Gradients:
    """d output / d every parameter and the input, with the forward trace they came from.

    ``weights[i]`` and ``biases[i]`` have the shapes of layer i's weights and bias (None without a bias);
    ``z[i]`` is d output / d z of layer i; ``input`` has the shape of x. For a batch the parameter
    gradients are summed over the samples (what torch's ``backward`` on the summed output gives),
    while ``input`` and ``z`` stay per sample.
    """

    weights: list[np.ndarray]
    biases: list[np.ndarray | None]
    input: np.ndarray
    z: list[np.ndarray]
    trace: Trace = field(repr=False)


class Network:
    """A stack of ``Layer``s; ``forward`` keeps the whole trace, ``backward`` gives every gradient."""

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)
        self.validate()

    def __repr__(self) -> str:
        sizes = "-".join(str(n) for n in [self.in_features] + [lay.out_features for lay in self.layers])
        return f"Network({sizes}, {[lay.activation for lay in self.layers]})"

    @property
    def in_features(self) -> int:
        return self.layers[0].in_features

    @property
    def out_features(self) -> int:
        return self.layers[-1].out_features

    def parameters(self) -> list[np.ndarray]:
        """Every weight matrix and bias vector, layer by layer (weights before bias)."""
        return [p for lay in self.layers for p in (lay.weights, lay.bias) if p is not None]

    def validate(self) -> None:
        if not self.layers:
            raise ValueError("a network needs at least one layer; got an empty list")
        for i, layer in enumerate(self.layers, start=1):
            if not isinstance(layer, Layer):
                raise ValueError(f"layer {i} must be a Layer; got {type(layer).__name__}")
            layer.validate(f"layer {i}")
            if i > 1:
                prev = self.layers[i - 2]
                if layer.in_features != prev.out_features:
                    raise ValueError(
                        f"layer {i} weights have shape {layer.weights.shape}, so they expect "
                        f"{layer.in_features} inputs, but layer {i - 1} gives {prev.out_features} outputs; "
                        f"expected shape ({layer.out_features}, {prev.out_features})")

    def _prepare_input(self, x) -> tuple[np.ndarray, bool]:
        """x as a float (N, in) batch, and whether it was a single vector."""
        x = _as_float_array(x, "input")
        first = self.layers[0]
        if x.ndim not in (1, 2):
            raise ValueError(f"input must be a vector of shape ({first.in_features},) or a batch of shape "
                             f"(N, {first.in_features}); got shape {x.shape}")
        if x.shape[-1] != first.in_features:
            expected = f"({first.in_features},)" if x.ndim == 1 else f"(N, {first.in_features})"
            raise ValueError(f"input has shape {x.shape} but layer 1 (weights {first.weights.shape}) "
                             f"expects {first.in_features} values per sample; expected shape {expected}")
        _check_finite(x, "input")
        return (x[None, :], True) if x.ndim == 1 else (x, False)

    def forward(self, x) -> Trace:
        """Run x of shape (in,) or (N, in); the trace keeps x's leading shape."""
        self.validate()
        x2, single = self._prepare_input(x)
        steps, a = [], x2
        for layer in self.layers:
            z, a = layer.forward(a)
            steps.append(LayerTrace(z, a))
        if single:
            steps = [LayerTrace(s.z[0], s.a[0]) for s in steps]
        return Trace(input=x2[0] if single else x2, layers=steps)

    def __call__(self, x) -> np.ndarray:
        """Only the output (N, out) or (out,), dropping the intermediate arrays as it goes."""
        self.validate()
        a, single = self._prepare_input(x)
        for layer in self.layers:
            a = layer.forward(a)[1]
        return a[0] if single else a

    def backward(self, x, grad_output=None, *, trace: Trace | None = None, at: str = "a") -> Gradients:
        """Gradients of the output with respect to every weight, bias and the input.

        For a single-output network ``grad_output`` may be left out: it is 1, so the gradients are
        d output / d parameter. For several outputs pass the upstream gradient (for example
        d loss / d output) of shape (out,) or, for a batch, (N, out); the result is then the gradient
        of ``sum(output * grad_output)``, i.e. the chain rule continued from that upstream gradient.

        Training uses two more options. ``trace``: the forward pass of this same x, already computed
        (the loss needs the output first), so it is not run twice. ``at="z"``: ``grad_output`` is
        d loss / d z of the output layer (its weighted sum) rather than d loss / d output, so the output
        activation's slope is not applied again. Binary cross-entropy on a sigmoid output needs this:
        its d loss / d z is simply (p - target), which stays finite where the sigmoid saturates and
        d loss / d p = (p - target) / (p (1 - p)) would divide by zero.
        """
        if at not in ("a", "z"):
            raise ValueError(f"at must be 'a' (grad_output is d/d output) or 'z' (d/d the output layer's "
                             f"weighted sum); got {at!r}")
        if trace is None:
            trace = self.forward(x)
        else:
            self.validate()
            if np.shape(trace.input) != np.shape(x):
                raise ValueError(f"the trace is of an input of shape {np.shape(trace.input)}, but x has shape "
                                 f"{np.shape(x)}; pass the trace of this same x")
        single = trace.input.ndim == 1
        x2 = trace.input[None, :] if single else trace.input
        steps = [LayerTrace(s.z[None, :], s.a[None, :]) for s in trace.layers] if single else trace.layers
        grad = self._upstream(grad_output, steps[-1].a, single)
        n = len(self.layers)
        gw: list = [None] * n
        gb: list = [None] * n
        gz: list = [None] * n
        for i in reversed(range(n)):
            prev_a = steps[i - 1].a if i > 0 else x2
            gz[i], gw[i], gb[i], grad = self.layers[i].backward(prev_a, steps[i].z, steps[i].a, grad,
                                                                at=at if i == n - 1 else "a")
        if single:
            gz, grad = [g[0] for g in gz], grad[0]
        return Gradients(weights=gw, biases=gb, input=grad, z=gz, trace=trace)

    def _upstream(self, grad_output, output: np.ndarray, single: bool) -> np.ndarray:
        n_out, out_shape = self.out_features, output.shape
        if grad_output is None:
            if n_out != 1:
                raise ValueError(f"the network has {n_out} outputs, so backward needs grad_output (the upstream "
                                 f"gradient, e.g. d loss / d output) of shape ({n_out},) or (N, {n_out})")
            return np.ones_like(output)
        g = _as_float_array(grad_output, "grad_output")
        if g.ndim == 1 and g.shape == (n_out,):
            g = np.broadcast_to(g, out_shape)
        elif g.shape != out_shape or single:
            expected = f"({n_out},)" if single else f"({n_out},) or {out_shape}"
            raise ValueError(f"grad_output has shape {g.shape}; expected {expected} to match the output")
        _check_finite(g, "grad_output")
        return g


def tutorial_network() -> Network:
    """2 inputs -> 2 tanh -> 2 tanh -> 1 linear output, no biases; the tutorial's weights."""
    return Network([
        Layer(np.array([[2.0, 4.0], [4.0, -5.0]]), None, "tanh"),
        Layer(np.array([[-1.0, 1.0], [2.0, 2.0]]), None, "tanh"),
        Layer(np.array([[-3.0, 7.0]]), None, "linear"),
    ])


# ---- helpers for explaining a small network step by step ------------------------------------------

def neuron_names(network: Network) -> list[list[str]]:
    """Names per column: inputs x1, x2…; hidden neurons h1,1 (layer 1, neuron 1)…; outputs out or out1…"""
    names = [[f"x{i + 1}" for i in range(network.in_features)]]
    for l, layer in enumerate(network.layers[:-1], start=1):
        names.append([f"h{l},{j + 1}" for j in range(layer.out_features)])
    n_out = network.out_features
    names.append(["out"] if n_out == 1 else [f"out{j + 1}" for j in range(n_out)])
    return names


def format_number(v: float) -> str:
    """Short form for numbers that are exact at 6 decimals (3, -5, 0.25), else 6 decimals (1.000000)."""
    v = float(v)
    text = f"{v:.6f}"
    if float(text) == v:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _operand(v: float, exact: bool = True) -> str:
    text = format_number(v) if exact else f"{float(v):.6f}"
    return f"({text})" if text.startswith("-") else text


@dataclass(frozen=True)
class NeuronStep:
    layer: int  # 1-based
    index: int  # 1-based within the layer
    name: str
    z: float
    a: float
    activation: str
    formula: str


def neuron_steps(network: Network, x) -> list[NeuronStep]:
    """Each neuron's computation with the numbers filled in, in the order the tutorial computes them.

    e.g. ``h1,1 = tanh(3·2 + 5·4) = tanh(26) = 1.000000``; x must be a single vector. Given numbers
    (inputs, weights, biases) and exact sums print short; activations print with 6 decimals.
    """
    trace = network.forward(x)
    if trace.input.ndim != 1:
        raise ValueError(f"neuron_steps explains one sample; got a batch of shape {trace.input.shape}")
    names = neuron_names(network)
    steps, prev = [], trace.input
    for l, (layer, lt) in enumerate(zip(network.layers, trace.layers), start=1):
        for j in range(layer.out_features):
            # given numbers (inputs, weights, biases) print short; computed activations with 6 decimals
            terms = [f"{_operand(prev[i], exact=l == 1)}·{_operand(layer.weights[j, i])}"
                     for i in range(layer.in_features)]
            if layer.bias is not None:
                terms.append(_operand(layer.bias[j]))
            weighted = " + ".join(terms)
            z, a = float(lt.z[j]), float(lt.a[j])
            name = names[l][j]
            if layer.activation == "linear":
                formula = f"{name} = {weighted} = {format_number(z)}"
            else:
                act = layer.activation
                formula = f"{name} = {act}({weighted}) = {act}({format_number(z)}) = {a:.6f}"
            steps.append(NeuronStep(l, j + 1, name, z, a, layer.activation, formula))
        prev = lt.a
    return steps


@dataclass(frozen=True)
class ParamGradient:
    layer: int  # 1-based
    kind: str  # "weight" or "bias"
    index: tuple[int, ...]  # (out, in) for a weight, (out,) for a bias; 0-based like the arrays
    label: str  # e.g. "x1 → h1,1" (the weight from x1 into h1,1) or "bias of h1,1"
    value: float
    grad: float


def bias_label(name: str, lang: str = "en") -> str:
    """How a neuron's bias is named on the page: "bias of h1,1"."""
    return t("numpy.core.bias_of", lang, name=name)


def parameter_gradients(network: Network, x, lang: str = "en") -> list[ParamGradient]:
    """d output / d each weight and bias for one sample, in layer order, with readable labels."""
    grads = network.backward(x)
    names = neuron_names(network)
    rows = []
    for l, layer in enumerate(network.layers, start=1):
        for j in range(layer.out_features):
            for i in range(layer.in_features):
                rows.append(ParamGradient(l, "weight", (j, i), f"{names[l - 1][i]} → {names[l][j]}",
                                          float(layer.weights[j, i]), float(grads.weights[l - 1][j, i])))
            if layer.bias is not None:
                rows.append(ParamGradient(l, "bias", (j,), bias_label(names[l][j], lang),
                                          float(layer.bias[j]), float(grads.biases[l - 1][j])))
    return rows


# ---- why a weight may not matter: saturated and switched-off neurons -----------------------------------

SATURATION_SLOPE = 0.01  # a squashing neuron whose slope df/dz is below this is "saturated"


@dataclass(frozen=True)
class NeuronState:
    layer: int   # 1-based
    index: int   # 0-based within the layer
    name: str
    z: float
    slope: float  # df/dz at z: how much of a change in z passes through this neuron
    state: str    # "saturated" (tanh or sigmoid far out), "off" (relu with z <= 0), or "" (passing changes on)

    @property
    def explanation(self) -> str:
        return self.explain()

    def explain(self, lang: str = "en") -> str:
        """Why changes do not pass through this neuron, in a sentence ("" when they do)."""
        if not self.state:
            return ""
        return t(f"numpy.core.{self.state}", lang, name=self.name, z=format_number(self.z),
                 slope=display_number(self.slope))


def neuron_states(network: Network, x) -> list[NeuronState]:
    """Every neuron's slope at one input, and whether it blocks changes (saturated or off)."""
    trace = network.forward(x)
    if trace.input.ndim != 1:
        raise ValueError(f"neuron_states explains one sample; got a batch of shape {trace.input.shape}")
    names = neuron_names(network)
    states = []
    for l, (layer, lt) in enumerate(zip(network.layers, trace.layers), start=1):
        slopes = _RULES[layer.activation][1](lt.z, lt.a)
        for j in range(layer.out_features):
            slope = float(slopes[j])
            if layer.activation in ("tanh", "sigmoid") and slope < SATURATION_SLOPE:
                state = "saturated"
            elif layer.activation == "relu" and slope == 0:
                state = "off"
            else:
                state = ""
            states.append(NeuronState(l, j, names[l][j], float(lt.z[j]), slope, state))
    return states


def display_number(v: float, digits: int = 4) -> str:
    """A computed number for reading: rounded to `digits` decimals, and "0" (not +1.4e-09) when it rounds
    to zero; the exact value belongs in a tooltip."""
    v = float(v)
    if abs(v) < 0.5 * 10 ** -digits:
        return "0"
    return format_number(v) if len(format_number(v).lstrip("-")) <= digits + 2 else f"{v:.{digits}f}"


# ---- the tutorial's numpy code, with this network's numbers -----------------------------------------------

_CODE_ACTIVATIONS = {
    "tanh": "def tanh(x):\n    return (np.exp(x) - np.exp(-x)) / (np.exp(x) + np.exp(-x))",
    "relu": "def relu(x):\n    return np.maximum(x, 0)",
    "sigmoid": "def sigmoid(x):\n    return 1 / (1 + np.exp(-x))",
}


def _code_number(v: float) -> str:
    return repr(float(v)) if float(v) != int(v) else str(int(v))


def tutorial_code(network: Network, x, lang: str = "en") -> str:
    """The tutorial's numpy forward pass, written for this network and input (any shape, any activations,
    with or without biases): runnable Python that prints the network's output. The comments are in
    `lang` (in Chinese, the tutorial's own)."""

    def comment(key: str, **values) -> str:
        return "# " + t(f"numpy.code.{key}", lang, **values)

    names = neuron_names(network)
    keys = [[f"h{l}{j + 1}" for j in range(len(col))] for l, col in enumerate(names[1:-1], start=1)]
    keys.append(["out"] if network.out_features == 1 else [f"out{j + 1}" for j in range(network.out_features)])
    x = np.asarray(x, dtype=float)
    lines = ["import numpy as np", "", comment("input"), f"input_data = np.array([{', '.join(map(_code_number, x))}])",
             comment("weights"), "weights = {"]
    for layer, layer_keys in zip(network.layers, keys):
        for j, key in enumerate(layer_keys):
            lines.append(f"    '{key}': np.array([{', '.join(map(_code_number, layer.weights[j]))}]),")
            if layer.bias is not None:
                lines.append(f"    '{key}_bias': {_code_number(layer.bias[j])},")
    lines.append("}")
    used = sorted({layer.activation for layer in network.layers} - {"linear"}, key=ACTIVATIONS.index)
    for act in used:
        lines += ["", comment("activation", act=act), _CODE_ACTIVATIONS[act]]
    previous = "input_data"
    for l, (layer, layer_keys) in enumerate(zip(network.layers, keys), start=1):
        last = l == len(network.layers)
        if last:
            head = comment("output", act=layer.activation) if layer.activation != "linear" else comment("output_linear")
        elif layer.activation == "linear":
            head = comment("hidden_linear", l=l)
        else:
            head = comment("hidden", l=l, act=layer.activation)
        lines += ["", head]
        values = []
        for key in layer_keys:
            total = f"({previous} * weights['{key}']).sum()"
            if layer.bias is not None:
                total += f" + weights['{key}_bias']"
            value = key if key.startswith("out") else f"hidden_{key[1:]}_value"
            rhs = total if layer.activation == "linear" else f"{layer.activation}({total})"
            lines.append(f"{value} = {rhs}")
            values.append(value)
        if last:
            lines.append(f"print({', '.join(values)})")
        else:
            previous = f"hidden_{l}_output"
            lines.append(f"{previous} = np.array([{', '.join(values)}])")
    return "\n".join(lines) + "\n"


def why_no_effect(network: Network, x, params: list[ParamGradient], lang: str = "en") -> list[str]:
    """Plain reasons why these parameters (whose gradient is about 0) have no visible effect at input x,
    grouped: the neuron they feed is saturated or off; the value they multiply is about 0; or the
    change is blocked further on, by a saturated or off neuron between them and the output."""
    trace = network.forward(x)
    names = neuron_names(network)
    states = {(s.layer, s.index): s for s in neuron_states(network, x)}
    groups: dict[str, list[str]] = {}
    for p in params:
        l, j = p.layer, p.index[0]
        state = states[(l, j)]
        incoming = None
        if p.kind == "weight":
            i = p.index[1]
            incoming = trace.input[i] if l == 1 else trace.layers[l - 2].a[i]
        if state.state:
            reason = state.explain(lang)
        elif incoming is not None and display_number(incoming) == "0":
            reason = t("numpy.core.zero_input", lang, name=names[l - 1][i], shown=display_number(incoming),
                       exact=f"{float(incoming):.3g}")
        else:
            reason = t("numpy.core.blocked", lang, name=state.name)
        groups.setdefault(reason, []).append(p.label)
    return [t("numpy.core.reason", lang, labels=t("numpy.core.list_sep", lang).join(labels), reason=reason)
            for reason, labels in groups.items()]
