"""Named models: modules and their builders, nothing about training.

Every model takes a normalised float batch of shape (N, 3, 32, 32) (see core.data.images.normalize)
and returns logits of shape (N, 10).

    MODELS["tutorial_mlp"]   the PyTorch tutorial's fully connected net, 3072-1000-500-10, ReLU
    MODELS["cpu_cnn"]        a small conv net (16/64/128 channels) sized for minutes on two CPU cores
    MODELS["gpu_cnn"]        an airbench94-style conv net (batch norm, GELU, max-pool groups)

    build_model(name) -> nn.Module
    parameter_count(name) -> int             # counted on a built model
    MODELS[name].text("description", lang)   # title, description (plain words), details (jargon)

The conv nets share one family (`ConvGroupNet`): an optional 2x2 "patch whitening" conv, then
groups of conv -> max-pool -> batch norm -> GELU -> conv -> batch norm -> GELU, a global max
pool and a linear classifier. `ConvGroupNet.init_whitening(images)` sets the first conv's
filters from the eigenvectors of the training images' 2x2 patch covariance (the engine calls it
once before training when the config asks for it).
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
import torch.nn.functional as F

from core import i18n

NUM_CLASSES = 10


class TutorialMLP(nn.Module):
    """The tutorial's `Net`: flatten (C, H, W order) -> 1000 -> 500 -> 10 with ReLU.

    Attribute names fc1/fc2/fc3 are part of the contract: core.evaluate replays these weights
    in numpy (core.numpy_net), layer by layer.
    """

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3 * 32 * 32, 1000)
        self.fc2 = nn.Linear(1000, 500)
        self.fc3 = nn.Linear(500, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (N, 3, 32, 32) -> (N, 3072), channel-major like the tutorial
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BatchNorm(nn.BatchNorm2d):
    """Batch norm whose scale stays 1 (only the shift is learnt), as in airbench."""

    def __init__(self, num_features: int, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.weight.requires_grad_(False)


class Conv(nn.Conv2d):
    """3x3 'same' conv without bias; starts close to an identity on its first input channels."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding="same", bias=False):
        super().__init__(in_channels, out_channels, kernel_size=kernel_size, padding=padding, bias=bias)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        if self.bias is not None:
            self.bias.data.zero_()
        w = self.weight.data
        # Dirac init on the first min(in, out) channels: the net starts as a near pass-through,
        # which makes very high learning rates stable (airbench's trick).
        k = self.kernel_size[0]
        if k % 2 == 1:
            n = min(self.in_channels, self.out_channels)
            torch.nn.init.dirac_(w[:n])


class ConvGroup(nn.Module):
    """conv -> max-pool 2 -> BN -> GELU -> conv -> BN -> GELU (spatial size halves)."""

    def __init__(self, channels_in: int, channels_out: int, bn_momentum: float):
        super().__init__()
        self.conv1 = Conv(channels_in, channels_out)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, momentum=bn_momentum)
        self.conv2 = Conv(channels_out, channels_out)
        self.norm2 = BatchNorm(channels_out, momentum=bn_momentum)
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        return self.activ(self.norm2(self.conv2(x)))


class ConvGroupNet(nn.Module):
    """Patch-whitening stem (optional), conv groups, global max pool, scaled linear head."""

    def __init__(self, widths: tuple[int, ...], *, whiten_kernel: int = 2, bn_momentum: float = 0.4,
                 head_scale: float = 1 / 9):
        super().__init__()
        self.whiten_kernel = whiten_kernel
        if whiten_kernel:
            # 2 * 3 * k * k filters: each whitened patch direction and its negation.
            self.whiten = nn.Conv2d(3, 2 * 3 * whiten_kernel**2, whiten_kernel, padding=0, bias=True)
            stem_out = self.whiten.out_channels
        else:
            self.whiten = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
            stem_out = widths[0]
        self.stem_activ = nn.GELU()
        groups, c_in = [], stem_out
        for w in widths:
            groups.append(ConvGroup(c_in, w, bn_momentum))
            c_in = w
        self.groups = nn.Sequential(*groups)
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(c_in, NUM_CLASSES, bias=False)
        self.head_scale = head_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_activ(self.whiten(x))
        x = self.groups(x)
        x = self.pool(x).flatten(1)
        return self.head(x) * self.head_scale

    @torch.no_grad()
    def init_whitening(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        """Set the stem's filters to whiten 2x2 patches of `images` (normalised float NCHW).

        Filters are the eigenvectors of the patch covariance divided by sqrt(eigenvalue + eps),
        followed by their negations (so GELU keeps both signs). Bias is zeroed. The filters are
        frozen afterwards (requires_grad False), as in airbench.
        """
        if not self.whiten_kernel:
            return
        k = self.whiten_kernel
        x = images.to(self.whiten.weight.device, torch.float32)
        c = x.shape[1]
        patches = x.unfold(2, k, 1).unfold(3, k, 1)                 # N, C, H', W', k, k
        patches = patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * k * k)
        n = patches.shape[0]
        mean = (patches.sum(0, dtype=torch.float64) / n).cpu()
        second = (patches.T @ patches).double().cpu() / n             # 12 x 12: solve it on the CPU
        cov = second - torch.outer(mean, mean)
        eigenvalues, eigenvectors = torch.linalg.eigh(cov)            # ascending
        eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.T.flip(0)
        filters = (eigenvectors / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]).view(-1, c, k, k)
        self.whiten.weight.copy_(torch.cat([filters, -filters]).float().to(self.whiten.weight.device))
        self.whiten.bias.zero_()
        self.whiten.weight.requires_grad_(False)   # fixed from now on; the bias still learns


@dataclass(frozen=True)
class ModelSpec:
    """A named model: its title, a plain description, the details (the jargon) and its builder.
    `text(part, lang)` reads the words in another language (catalogue keys core.model.<name>.<part>)."""

    name: str
    title: str
    description: str          # plain words: what the net does with an image, how well it does
    details: str              # the layers, in the field's terms
    builder: Callable[[], nn.Module]

    TEXT_PARTS = ("title", "description", "details")

    def text(self, part: str, lang: str = i18n.DEFAULT_LANGUAGE) -> str:
        """One of TEXT_PARTS in `lang`: MODELS["cpu_cnn"].text("title", "zh")."""
        if part not in self.TEXT_PARTS:
            raise ValueError(f"part must be one of {', '.join(self.TEXT_PARTS)}, got {part!r}")
        return i18n.core_text(f"model.{self.name}.{part}", getattr(self, part), lang)


def _tutorial_mlp() -> nn.Module:
    return TutorialMLP()


def _cpu_cnn() -> nn.Module:
    # Narrow first group: at 31x31 it costs the most per channel. Measured on 2 CPU cores,
    # (16, 64, 128) for 9 epochs matched (32, 64, 128) for 7 in 12% less time.
    return ConvGroupNet((16, 64, 128), whiten_kernel=2, bn_momentum=0.4)


def _gpu_cnn() -> nn.Module:
    return ConvGroupNet((64, 256, 256), whiten_kernel=2, bn_momentum=0.4)


MODELS: dict[str, ModelSpec] = {
    "tutorial_mlp": ModelSpec(
        "tutorial_mlp", "Tutorial MLP",
        "The tutorial's network: the image flattened into one list of 3,072 numbers, each wired to all "
        "1,000 units of the first layer. It cannot tell that neighbouring pixels belong together, and "
        "what it learns about one spot of the image does not carry over to another; it tops out near "
        "55-60% test accuracy.",
        "Fully connected 3072 → 1000 → 500 → 10 with ReLU; the input is flattened in (C, H, W) order.",
        _tutorial_mlp),
    "cpu_cnn": ModelSpec(
        "cpu_cnn", "Small CNN (CPU)",
        "A small convolutional network: little filters slide over the image and look at neighbouring "
        "pixels together, layer after layer (edges, then parts, then objects). Trains to 85%+ in about "
        "five minutes on two CPU cores.",
        "Patch-whitening stem (2x2), three conv groups of 16/64/128 channels (3x3 conv, max pooling, "
        "batch norm, GELU), global max pooling, a linear head.",
        _cpu_cnn),
    "gpu_cnn": ModelSpec(
        "gpu_cnn", "Speed-run CNN (GPU)",
        "The same kind of network, much wider, for a graphics card: airbench94's design, which reaches "
        "about 94% in seconds on a modern GPU; far too slow for a CPU.",
        "airbench94-style: patch-whitening stem, conv groups of 64/256/256 channels (3x3 conv, max "
        "pooling, batch norm, GELU), global max pooling, a linear head.",
        _gpu_cnn),
}


@functools.cache
def parameter_count(name: str) -> int:
    """How many numbers the model learns or holds: sum(p.numel()) over build_model(name)'s
    parameters (frozen ones included), counted on a freshly built model (the caller's random
    state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        return sum(p.numel() for p in build_model(name).parameters())


def build_model(name: str) -> nn.Module:
    """A freshly initialised model by registry name; unknown names raise ValueError."""
    try:
        spec = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}") from None
    return spec.builder()
