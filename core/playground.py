"""A playground for the numpy network: toy data in the plane, the output over the whole plane, and SGD.

Training is nothing more than what ``core.numpy_net`` already does, repeated: a forward pass on a
batch of points, a loss that says how wrong the outputs are, the backward pass for the gradient of
that loss, and a small step of every parameter against its gradient::

    data = make_data(DataSpec("xor", n=200, noise=0.1, train_fraction=0.5, seed=0))
    arch = Architecture(hidden=(4,), activations=("tanh",), bias=True, output="linear")
    net = build_network(arch, Parameters.initial(arch, seed=0))
    trainer = Trainer(data, seed=0)
    record = trainer.train(net, SGDSettings(loss="mse", lr=0.03, batch_size=10), steps=100)
    record.test_accuracy                      # fraction of test points on the right side

``sgd_step`` is the whole optimiser (no torch): its result equals ``torch.optim.SGD`` on the same
float64 model, batch for batch (tests/test_playground.py). ``surface`` evaluates the network on a
grid over the plane in one vectorised call. Parameters live in ``Parameters`` (plain arrays that the
``Network`` built by ``build_network`` shares, so a step updates them in place); a bias vector is kept
even while biases are switched off, so switching them back on finds the old values.

No Streamlit here, and nothing from the CIFAR parts of core: this is a base module.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from core.numpy_net import ACTIVATIONS, Layer, Network, tutorial_network

# ---- toy data in the plane ------------------------------------------------------------------------

DATASETS = {
    "xor": "XOR quadrants",
    "circle": "Two circles",
    "spiral": "Two spirals",
    "blobs": "Two blobs",
}
EXTENT = 6.0  # the plane shown and evaluated is [-EXTENT, EXTENT]²; the points lie within about ±5
RADIUS = 5.0  # how far the toy data reaches from the origin
NOISE_SCALE = 2.5  # noise 0.1 moves each coordinate by a normal amount of standard deviation 0.25
MAX_NOISE = 0.5


@dataclass(frozen=True)
class Points:
    """Points in the plane with a class each: x (N, 2) float64, y (N,) int64 in {0, 1}."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class DataSpec:
    """Which toy set, how many points, how noisy, how much of it trains, and the seed that draws it."""

    kind: str = "xor"
    n: int = 200
    noise: float = 0.1  # 0 .. 0.5; see NOISE_SCALE
    train_fraction: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DATASETS:
            raise ValueError(f"unknown data set {self.kind!r}; choose one of {', '.join(DATASETS)}")
        if not 4 <= self.n <= 10_000:
            raise ValueError(f"n must be between 4 and 10000 points; got {self.n}")
        if not 0.0 <= self.noise <= MAX_NOISE:
            raise ValueError(f"noise must be between 0 and {MAX_NOISE}; got {self.noise}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"train_fraction must be strictly between 0 and 1; got {self.train_fraction}")


@dataclass(frozen=True)
class ToyData:
    spec: DataSpec
    train: Points
    test: Points


def _xor(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.uniform(-RADIUS, RADIUS, (n, 2))
    x += np.where(x >= 0, 0.3, -0.3)  # keep a gap along the axes, where the class flips
    return x, (x[:, 0] * x[:, 1] > 0).astype(np.int64)


def _circle(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    inner = n // 2
    r = np.concatenate([rng.uniform(0.0, 0.4 * RADIUS, inner), rng.uniform(0.7 * RADIUS, RADIUS, n - inner)])
    angle = rng.uniform(0.0, 2 * np.pi, n)
    x = np.column_stack([r * np.sin(angle), r * np.cos(angle)])
    return x, (np.arange(n) < inner).astype(np.int64)  # class 1 inside


def _spiral(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = [], []
    for label, count in ((1, n // 2), (0, n - n // 2)):
        t = np.arange(count) / count
        r, angle = t * RADIUS, 1.75 * t * 2 * np.pi + (0.0 if label else np.pi)
        xs.append(np.column_stack([r * np.sin(angle), r * np.cos(angle)]))
        ys.append(np.full(count, label, dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _blobs(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    y = (np.arange(n) < n // 2).astype(np.int64)
    centres = np.where(y[:, None] == 1, 2.5, -2.5)
    return centres + rng.normal(0.0, 1.0, (n, 2)), y


_MAKERS = {"xor": _xor, "circle": _circle, "spiral": _spiral, "blobs": _blobs}
assert tuple(_MAKERS) == tuple(DATASETS)


def make_points(kind: str, n: int, noise: float, rng: np.random.Generator) -> Points:
    """n points of one toy set, noise added to every coordinate, in a random order."""
    x, y = _MAKERS[kind](n, rng)
    order = rng.permutation(n)  # drawn before the noise: the same seed gives the same points, noisy or not
    if noise:
        x = x + rng.normal(0.0, NOISE_SCALE * noise, x.shape)
    return Points(x[order].astype(np.float64), y[order])


def make_data(spec: DataSpec) -> ToyData:
    """The toy set of ``spec`` split into train and test; the same spec always gives the same points."""
    points = make_points(spec.kind, spec.n, spec.noise, np.random.default_rng(spec.seed))
    n_train = min(max(round(spec.n * spec.train_fraction), 1), spec.n - 1)
    return ToyData(spec, Points(points.x[:n_train], points.y[:n_train]), Points(points.x[n_train:], points.y[n_train:]))


# ---- the network's shape and its numbers ---------------------------------------------------------

MAX_HIDDEN_LAYERS, MAX_UNITS = 3, 8


@dataclass(frozen=True)
class Architecture:
    """2 inputs -> 1 to 3 hidden layers of 1 to 8 neurons, each with its activation -> 1 output."""

    hidden: tuple[int, ...] = (2, 2)
    activations: tuple[str, ...] = ("tanh", "tanh")
    bias: bool = False
    output: str = "linear"

    def __post_init__(self) -> None:
        if not 1 <= len(self.hidden) <= MAX_HIDDEN_LAYERS:
            raise ValueError(f"a network here has 1 to {MAX_HIDDEN_LAYERS} hidden layers; got {len(self.hidden)}")
        if any(not 1 <= int(h) <= MAX_UNITS for h in self.hidden):
            raise ValueError(f"each hidden layer has 1 to {MAX_UNITS} neurons; got {list(self.hidden)}")
        if len(self.activations) != len(self.hidden):
            raise ValueError(f"one activation per hidden layer: {len(self.hidden)} layers but "
                             f"{len(self.activations)} activations")
        for act in (*self.activations, self.output):
            if act not in ACTIVATIONS:
                raise ValueError(f"unknown activation {act!r}; choose one of {', '.join(ACTIVATIONS)}")

    @property
    def sizes(self) -> tuple[int, ...]:
        return (2, *self.hidden, 1)

    @property
    def label(self) -> str:
        return "-".join(map(str, self.sizes))


@dataclass
class Parameters:
    """Every layer's weight matrix (out, in) and bias vector (out,), kept even while biases are off."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    @property
    def sizes(self) -> tuple[int, ...]:
        return (self.weights[0].shape[1], *(w.shape[0] for w in self.weights))

    def copy(self) -> Parameters:
        return Parameters([w.copy() for w in self.weights], [b.copy() for b in self.biases])

    @classmethod
    def initial(cls, arch: Architecture, seed: int) -> Parameters:
        """Random starting weights, normal with standard deviation 1/sqrt(inputs of the neuron), biases 0.

        Different neurons must start different, or they all receive the same gradient and stay copies
        of each other. Dividing by sqrt(inputs) keeps each weighted sum about as large as one input.
        """
        rng = np.random.default_rng([seed, 1])  # a stream of its own: the data's seed draws other numbers
        sizes = arch.sizes
        weights = [rng.normal(0.0, 1.0 / np.sqrt(n_in), (n_out, n_in)) for n_in, n_out in zip(sizes[:-1], sizes[1:])]
        return cls(weights, [np.zeros(n_out) for n_out in sizes[1:]])

    @classmethod
    def from_network(cls, net: Network) -> Parameters:
        return cls([lay.weights.astype(np.float64) for lay in net.layers],
                   [np.zeros(lay.out_features) if lay.bias is None else lay.bias.astype(np.float64)
                    for lay in net.layers])


def tutorial_parameters() -> Parameters:
    """The tutorial's weights (2-2-2-1), biases 0."""
    return Parameters.from_network(tutorial_network())


def build_network(arch: Architecture, params: Parameters) -> Network:
    """A Network that shares params' arrays, so a training step on it updates params in place."""
    if params.sizes != arch.sizes:
        raise ValueError(f"the parameters are for a {'-'.join(map(str, params.sizes))} network, "
                         f"the architecture is {arch.label}")
    acts = (*arch.activations, arch.output)
    return Network([Layer(w, b if arch.bias else None, act) for w, b, act in zip(params.weights, params.biases, acts)])


# ---- losses: how wrong the outputs are, and their gradient ---------------------------------------

LOSSES = {"mse": "Mean squared error", "bce": "Binary cross-entropy"}
# The output activation each loss is used with: MSE compares a plain number with a target of -1 or +1;
# cross-entropy needs a probability, so the output goes through a sigmoid.
OUTPUT_ACTIVATION = {"mse": "linear", "bce": "sigmoid"}
THRESHOLD = {"mse": 0.0, "bce": 0.5}  # an output above this says class 1


def targets(loss: str, labels: np.ndarray) -> np.ndarray:
    """What the output should be, (N, 1): class 1 -> +1 and class 0 -> -1 for MSE; 1 and 0 for cross-entropy."""
    t = np.asarray(labels, dtype=np.float64)[:, None]
    return 2.0 * t - 1.0 if loss == "mse" else t


def loss_and_gradient(loss: str, z: np.ndarray, a: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray, str]:
    """(mean loss over the N points, its gradient, "a" or "z": what the gradient is taken with respect to).

    z and a are the output layer's weighted sums and outputs, (N, 1); t the targets from ``targets``.
    """
    n = len(t)
    if loss == "mse":
        # L = mean((a - t)²)   ->   dL/da = 2 (a - t) / N
        diff = a - t
        return float(np.mean(diff * diff)), 2.0 * diff / n, "a"
    if loss == "bce":
        # p = sigmoid(z); L = -mean(t log p + (1 - t) log(1 - p)) = mean(softplus(z) - t z)
        # ->  dL/dz = (p - t) / N.   softplus(z) = max(z, 0) + log(1 + exp(-|z|)) never overflows.
        value = np.mean(np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z))) - t * z)
        return float(value), (a - t) / n, "z"
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def predict(loss: str, output: np.ndarray) -> np.ndarray:
    """Class 0 or 1 for each output (N, 1) -> (N,)."""
    return (np.asarray(output)[:, 0] > THRESHOLD[loss]).astype(np.int64)


def evaluate(net: Network, loss: str, points: Points) -> tuple[float, float]:
    """(mean loss, accuracy as a fraction) of the network on some points; no L2 term in the loss."""
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights: an infinite loss, shown as such
        trace = net.forward(points.x)
        out = trace.layers[-1]
        value, _, _ = loss_and_gradient(loss, out.z, out.a, targets(loss, points.y))
    return value, float(np.mean(predict(loss, out.a) == points.y))


# ---- plain stochastic gradient descent ------------------------------------------------------------

@dataclass(frozen=True)
class SGDSettings:
    loss: str = "mse"
    lr: float = 0.03  # learning rate: each step moves a parameter by lr × its gradient
    batch_size: int = 10  # points per step
    l2: float = 0.0  # adds l2/2 · Σ w² to the loss (weights only, not biases), i.e. weight decay l2

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; choose one of {', '.join(LOSSES)}")
        if not self.lr > 0:
            raise ValueError(f"the learning rate must be positive; got {self.lr}")
        if self.batch_size < 1:
            raise ValueError(f"the batch size must be at least 1; got {self.batch_size}")
        if self.l2 < 0:
            raise ValueError(f"L2 must be 0 or positive; got {self.l2}")


class TrainingDiverged(ValueError):
    """A step would have made some parameter infinite or NaN; the parameters were left as they were.

    ``lr`` and ``batch_loss`` are kept so that a page can say it in its own language."""

    def __init__(self, lr: float, batch_loss: float):
        super().__init__(
            f"the step would make the weights infinite (learning rate {lr:g}, batch loss {batch_loss:.3g}): "
            "the learning rate is too large for this network; lower it and reset the weights")
        self.lr, self.batch_loss = lr, batch_loss


def sgd_step(net: Network, x: np.ndarray, labels: np.ndarray, settings: SGDSettings) -> float:
    """One step of plain SGD on one batch, in place; returns the batch's loss before the step.

    forward -> loss -> backward (core.numpy_net) -> every parameter p becomes p - lr · dL/dp, where an
    L2 penalty adds l2 · w to each weight's gradient. This is exactly torch.optim.SGD(lr, weight_decay)
    with the weight decay on the weights only.
    """
    if settings.loss == "bce" and net.layers[-1].activation != "sigmoid":
        raise ValueError("binary cross-entropy needs a sigmoid output; the output layer is "
                         f"{net.layers[-1].activation}")
    with np.errstate(over="ignore", invalid="ignore"):  # overflow is caught below and explained
        trace = net.forward(x)
        out = trace.layers[-1]
        value, grad, at = loss_and_gradient(settings.loss, out.z, out.a, targets(settings.loss, labels))
        updates = []
        if np.isfinite(value) and np.isfinite(grad).all():
            grads = net.backward(x, grad, trace=trace, at=at)
            for layer, gw, gb in zip(net.layers, grads.weights, grads.biases):
                if settings.l2:
                    gw = gw + settings.l2 * layer.weights
                updates.append((layer.weights, layer.weights - settings.lr * gw))
                if gb is not None:
                    updates.append((layer.bias, layer.bias - settings.lr * gb))
    if not (np.isfinite(value) and all(np.isfinite(new).all() for _, new in updates)):
        raise TrainingDiverged(settings.lr, value)
    for old, new in updates:
        old[...] = new  # in place: the Parameters this network was built from see the step
    return value


class Batches:
    """Minibatch indices into a training set, reshuffled at every epoch by a seeded generator.

    The last batch of an epoch is shorter when the batch size does not divide the set (like a
    DataLoader with shuffle=True and drop_last=False); the batch size may change between calls.
    """

    def __init__(self, n: int, seed: int):
        if n < 1:
            raise ValueError("a training set needs at least one point")
        self.n = n
        self.rng = np.random.default_rng([seed, 2])
        self.epoch = 0  # epochs completed
        self._order = self.rng.permutation(n)
        self._pos = 0

    @property
    def progress(self) -> float:
        """Epochs so far, fractional: 2.5 is halfway through the third pass over the data."""
        return self.epoch + self._pos / self.n

    def next(self, batch_size: int) -> np.ndarray:
        if self._pos >= self.n:
            self.epoch += 1
            self._order, self._pos = self.rng.permutation(self.n), 0
        idx = self._order[self._pos:self._pos + batch_size]
        self._pos += len(idx)
        return idx


@dataclass(frozen=True)
class Record:
    step: int
    epoch: float
    train_loss: float
    test_loss: float
    train_accuracy: float
    test_accuracy: float


@dataclass
class Trainer:
    """Steps a network on one toy data set with seeded minibatches and keeps the loss/accuracy history."""

    data: ToyData
    seed: int = 0
    steps: int = 0
    history: list[Record] = field(default_factory=list)
    max_history: int = 5000  # rows kept; older ones are thinned out

    def __post_init__(self) -> None:
        self.batches = Batches(len(self.data.train), self.seed)

    def train(self, net: Network, settings: SGDSettings, steps: int = 1) -> Record:
        """``steps`` SGD steps, then one history row measured on all train and test points."""
        train = self.data.train
        for _ in range(steps):
            idx = self.batches.next(settings.batch_size)
            sgd_step(net, train.x[idx], train.y[idx], settings)
            self.steps += 1
        return self.record(net, settings.loss)

    def record(self, net: Network, loss: str) -> Record:
        """Measure the network now and add it to the history (replacing a row of the same step)."""
        train_loss, train_acc = evaluate(net, loss, self.data.train)
        test_loss, test_acc = evaluate(net, loss, self.data.test)
        row = Record(self.steps, self.batches.progress, train_loss, test_loss, train_acc, test_acc)
        if self.history and self.history[-1].step == row.step:
            self.history[-1] = row
        else:
            self.history.append(row)
        if len(self.history) > self.max_history:  # keep the first row, every other old row, the newest half
            half = self.max_history // 2
            self.history = self.history[:-half:2] + self.history[-half:]
        return row


# ---- the output over the whole plane ---------------------------------------------------------------

@dataclass(frozen=True)
class Surface:
    """The network's output on a grid: z[i, j] is the output at (x1, x2) = (xs[j], ys[i])."""

    xs: np.ndarray
    ys: np.ndarray
    z: np.ndarray


def surface(net: Network, extent: float = EXTENT, resolution: int = 101) -> Surface:
    """One vectorised forward pass over resolution² points of [-extent, extent]²."""
    xs = np.linspace(-extent, extent, resolution)
    x1, x2 = np.meshgrid(xs, xs)  # x1 varies along a row, x2 down the rows
    out = net(np.column_stack([x1.ravel(), x2.ravel()]))
    return Surface(xs, xs.copy(), out[:, 0].reshape(resolution, resolution))
