"""The synthetic demo set: ten classes of procedurally drawn 32x32 images, for working offline.

Each class is a shape or a texture (see `SYNTHETIC_CLASSES`) drawn in a random colour over a random
background (a colour with a soft gradient and a faint second texture), at a random position, size
and angle, with pixel noise. Nothing about a class is a single colour: the tutorial MLP has to
learn shapes, and gets roughly 50-60% of the test split right after two epochs (about what it gets on
CIFAR-10).

It is written in CIFAR-10's python batch layout (`cifar-10-batches-py/`, `label_names` being the
classes below) and read back through the same loader as CIFAR-10 (`load_synthetic`).
Everything is vectorised numpy with a fixed seed: the same bytes on every machine, in about a second.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from core import settings
from core.data import batch_files
from core.data.dataset import Dataset, Split

SYNTHETIC_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "ring", "cross", "diamond", "stripes", "checker", "dots", "gradient",
)
SEED = 20_240_611
N_TRAIN = 5_000
N_TEST = 1_000
# Bump when the drawing changes: a set on disk with another version is drawn again.
VERSION = 2
GENERATOR = "cifarlab-synthetic"

_SIZE = 32
_C = (np.arange(_SIZE, dtype=np.float32) + 0.5) / (_SIZE / 2) - 1.0  # pixel centres in [-1, 1]
_Y = _C[None, :, None]
_X = _C[None, None, :]
_PIXEL = 2.0 / _SIZE  # one pixel in these units


def _soft(margin: np.ndarray) -> np.ndarray:
    """Signed distance inside a shape (positive inside) -> coverage with a one-pixel soft edge."""
    return np.clip(0.5 + margin / _PIXEL, 0.0, 1.0)


def _col(v: np.ndarray) -> np.ndarray:
    return v.astype(np.float32)[:, None, None]


def _rotated(n: int, rng: np.random.Generator, *, centre: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-image local coordinates (u, v) of shape (n, 32, 32): shifted by a random centre, rotated."""
    cx, cy = _col(rng.uniform(-centre, centre, n)), _col(rng.uniform(-centre, centre, n))
    theta = _col(rng.uniform(-angle, angle, n))
    dx, dy = _X - cx, _Y - cy
    cos, sin = np.cos(theta), np.sin(theta)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _shape_mask(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Coverage in [0, 1] of shape `name` for n images, shape (n, 32, 32)."""
    if name in ("stripes", "checker", "dots", "gradient"):
        u, v = _rotated(n, rng, centre=1.0, angle=np.pi)
    else:
        u, v = _rotated(n, rng, centre=0.15, angle=np.pi / 10)
    r = _col(rng.uniform(0.45, 0.7, n))
    d = np.sqrt(u * u + v * v)
    if name == "circle":
        return _soft(r - d)
    if name == "square":
        return _soft(0.8 * r - np.maximum(np.abs(u), np.abs(v)))
    if name == "diamond":
        return _soft(1.05 * r - (np.abs(u) + np.abs(v)))
    if name == "triangle":  # pointing up; edges at distance r/2 from the centre
        edges = [v, 0.866 * u - 0.5 * v, -0.866 * u - 0.5 * v]
        return _soft(np.min([0.5 * r - e for e in edges], axis=0))
    if name == "ring":
        return _soft(np.minimum(d - 0.55 * r, r - d))
    if name == "cross":
        w = 0.3 * r
        arm1 = np.minimum(w - np.abs(u), r - np.abs(v))
        arm2 = np.minimum(w - np.abs(v), r - np.abs(u))
        return _soft(np.maximum(arm1, arm2))
    # textures cover the whole picture
    period = _col(rng.uniform(0.3, 0.5, n))  # 5 to 8 pixels
    if name == "stripes":
        return np.clip(0.5 + 1.5 * np.sin(2 * np.pi * u / period), 0.0, 1.0)
    if name == "checker":
        return np.clip(0.5 + 2.0 * np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period), 0.0, 1.0)
    if name == "dots":
        fu = u / period - np.floor(u / period) - 0.5
        fv = v / period - np.floor(v / period) - 0.5
        return _soft((0.28 - np.sqrt(fu * fu + fv * fv)) * period)
    if name == "gradient":  # a full ramp from the background colour to the foreground colour
        return np.clip(0.5 + u * _col(rng.uniform(0.5, 0.9, n)), 0.0, 1.0)
    raise ValueError(f"unknown synthetic class {name!r}")


def _colours(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Background and foreground colours (n, 3), far enough apart to see the shape."""
    bg = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    fg = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    close = np.linalg.norm(fg - bg, axis=1) < 0.55
    fg[close] = np.clip(1.0 - bg[close] + rng.normal(0.0, 0.1, (int(close.sum()), 3)), 0.0, 1.0)
    return bg, fg


def _draw(labels: np.ndarray, rng: np.random.Generator, masks: list | None = None) -> np.ndarray:
    """The pictures of `labels`; with a `masks` list, each shape's coverage (n, 32, 32) is appended to it."""
    n = len(labels)
    bg, fg = _colours(n, rng)
    bg2 = rng.uniform(0.0, 1.0, (n, 3)).astype(np.float32)
    # background: its colour fading towards a second one, plus a faint texture of another kind
    ramp, _ = _rotated(n, rng, centre=0.5, angle=np.pi)
    ramp = (np.clip(0.5 + 0.5 * ramp, 0.0, 1.0) * _col(rng.uniform(0.0, 0.35, n)))[..., None]
    picture = bg[:, None, None, :] + ramp * (bg2 - bg)[:, None, None, :]
    mask = np.empty((n, _SIZE, _SIZE), np.float32)
    for k, name in enumerate(SYNTHETIC_CLASSES):
        idx = np.flatnonzero(labels == k)
        if idx.size:
            mask[idx] = _shape_mask(name, idx.size, rng)
    faint = np.empty_like(mask)
    distractor = rng.integers(6, 9, n)  # stripes, checker or dots, at low contrast
    for k in np.unique(distractor):
        idx = np.flatnonzero(distractor == k)
        faint[idx] = _shape_mask(SYNTHETIC_CLASSES[k], idx.size, rng)
    picture += (faint * _col(rng.uniform(0.0, 0.08, n)))[..., None] * np.sign(0.5 - bg)[:, None, None, :]
    if masks is not None:
        masks.append(mask.copy())
    mask = mask[..., None]
    picture += mask * (fg[:, None, None, :] - picture)  # the shape in its colour over the background
    picture += rng.standard_normal(picture.shape, dtype=np.float32) * np.float32(0.06)
    np.clip(picture, 0.0, 1.0, out=picture)
    return np.rint(picture * 255.0).astype(np.uint8)


def draw_with_masks(labels, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Images of the given classes (uint8 (n, 32, 32, 3)) and the coverage of each one's shape
    (float32 (n, 32, 32) in [0, 1]): the object mask the generator knows, e.g. to test that a
    saliency map looks at the shape. Not the demo set's images (another seed, drawn on demand)."""
    labels = np.asarray(labels, dtype=np.int64)
    masks: list[np.ndarray] = []
    images = _draw(labels, np.random.default_rng(seed), masks)
    return images, masks[0]


_CHUNK = 1_000  # images drawn at a time: bounds the memory of the float temporaries


def generate(n_train: int = N_TRAIN, n_test: int = N_TEST, seed: int = SEED) -> tuple[Split, Split]:
    """Draw the demo set: balanced classes in shuffled order, the same for the same arguments."""
    rng = np.random.default_rng(seed)
    splits = []
    for n in (n_train, n_test):
        labels = rng.permutation(np.arange(n) % len(SYNTHETIC_CLASSES)).astype(np.int64)
        images = np.concatenate([_draw(labels[i:i + _CHUNK], rng) for i in range(0, max(n, 1), _CHUNK)])
        splits.append(Split(images[:n], labels))
    return splits[0], splits[1]


def is_current(root: str | os.PathLike) -> bool:
    """Whether `root` holds a complete demo set drawn by this version of the generator."""
    batch_dir = Path(root) / batch_files.BATCHES_DIR
    if any(not (batch_dir / name).is_file() for name in batch_files.ALL_FILES):
        return False
    meta = batch_files.read_meta(root)
    return meta.get("generator") == GENERATOR and meta.get("version") == VERSION


def write_synthetic(root: str | os.PathLike) -> Path:
    """Draw the demo set and write it to `root/cifar-10-batches-py/`; returns that folder."""
    train, test = generate()
    if is_current(root):  # another process drew it meanwhile: keep theirs (a reader may be using it)
        return Path(root).expanduser().resolve() / batch_files.BATCHES_DIR
    return batch_files.write_batch_folder(root, train, test, SYNTHETIC_CLASSES,
                                   extra_meta={"generator": GENERATOR, "version": VERSION, "seed": SEED})


def load_synthetic(root: str | os.PathLike | None = None) -> Dataset:
    """The demo set from `root` (default CIFARLAB_SYNTHETIC_ROOT), drawn and written first if missing."""
    root = settings.synthetic_root() if root is None else Path(root).expanduser().resolve()
    if not is_current(root):
        write_synthetic(root)
    return batch_files.load_folder(root, synthetic=True)
