"""Pictures for the "Sample images" page: plain functions of arrays, no Streamlit.

The grid is one PIL image built here: every 32x32 picture is enlarged by an integer factor with
nearest-neighbour repetition (sharp square pixels, no blur) and captioned underneath with its class
name in a real font, shrunk or shortened to fit its tile. Shown at its natural size (PNG), the browser
does not resample it.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from dashboard.figures import pixelated

PRIMARY = "#2563eb"
MUTED = "#cbd5e1"
TEXT = (31, 41, 55)
TITLE_TEXT = (55, 65, 81)
BACKGROUND = (255, 255, 255)
SYNTHETIC_ACCENT = (180, 83, 9)
GAP = 8  # pixels between tiles
CAPTION_SIZE = 14  # preferred caption font size in pixels
MIN_CAPTION_SIZE = 10
TITLE_SIZE = 16


@lru_cache(maxsize=16)
def font(size: int) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib) at `size` pixels; Pillow's own scalable font otherwise."""
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def fit_caption(text: str, width: int, size: int = CAPTION_SIZE) -> tuple[str, ImageFont.ImageFont]:
    """The caption and font that fit in `width` pixels: a smaller font first, then a shortened text."""
    for s in range(size, MIN_CAPTION_SIZE - 1, -1):
        f = font(s)
        if f.getlength(text) <= width:
            return text, f
    f = font(MIN_CAPTION_SIZE)
    while len(text) > 1 and f.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…", f


def grid_layout(n: int, columns: int, scale: int, *, title: bool, size: int = 32) -> dict[str, int]:
    """Where things go, in pixels, in a grid of n captioned size x size tiles enlarged `scale` times."""
    tile = size * scale
    caption_h = CAPTION_SIZE + 10
    title_h = TITLE_SIZE + 14 if title else 0
    rows = max(1, -(-n // columns))
    cols = max(1, min(columns, n))
    return {"tile": tile, "caption_h": caption_h, "title_h": title_h, "rows": rows, "columns": cols,
            "width": GAP + cols * (tile + GAP), "height": title_h + GAP + rows * (tile + caption_h + GAP)}


def columns_to_fit(width: int, scale: int, size: int = 32, *, minimum: int = 2) -> int:
    """How many tiles of `size` pixels enlarged `scale` times fit side by side in `width` pixels."""
    return max(minimum, (width - GAP) // (size * scale + GAP))


def image_grid(images: np.ndarray, captions: Sequence[str], *, columns: int = 10, scale: int = 3,
               title: str | None = None, accent: bool = False) -> Image.Image:
    """One RGB picture: the images (uint8 (N, 32, 32, 3)) in a grid, each captioned underneath.

    `title` is written above the grid (in an orange accent when `accent`, e.g. for synthetic data).
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if len(captions) != len(images):
        raise ValueError(f"{len(images)} images but {len(captions)} captions")
    if scale < 1:
        raise ValueError(f"scale must be at least 1, got {scale}")
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square, got {images.shape[1]}x{images.shape[2]}")
    lay = grid_layout(len(images), columns, scale, title=bool(title), size=images.shape[1])
    tile_h = tile_w = lay["tile"]
    canvas = Image.new("RGB", (lay["width"], lay["height"]), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    if title:
        text, f = fit_caption(title, lay["width"] - 2 * GAP, TITLE_SIZE)
        draw.text((GAP, GAP), text, fill=SYNTHETIC_ACCENT if accent else TITLE_TEXT, font=f)
    for i, (img, caption) in enumerate(zip(images, captions)):
        r, c = divmod(i, lay["columns"])
        x = GAP + c * (tile_w + GAP)
        y = lay["title_h"] + GAP + r * (tile_h + lay["caption_h"] + GAP)
        canvas.paste(Image.fromarray(pixelated(img, scale)), (x, y))
        text, f = fit_caption(caption, tile_w)
        ascent = f.getmetrics()[0]  # one baseline for every caption, whatever its letters
        draw.text((x + tile_w / 2, y + tile_h + 2 + ascent), text, fill=TEXT, font=f, anchor="ms")
    return canvas


def class_balance_bar(classes: Sequence[str], counts: Sequence[int], *, split: str,
                      highlight: Sequence[str] | None = None, synthetic: bool = False) -> go.Figure:
    """How many images each class has in a split; classes not in `highlight` are greyed out."""
    chosen = set(highlight or classes)
    colours = [PRIMARY if c in chosen else MUTED for c in classes]
    total = int(np.sum(counts))
    fig = go.Figure(go.Bar(
        x=list(classes), y=[int(c) for c in counts], marker_color=colours,
        hovertemplate="%{x}: %{y:,} images<extra></extra>", name="images"))
    what = "synthetic " if synthetic else ""
    fig.update_layout(
        title=dict(text=f"Class balance: {total:,} {what}{split} images", font=dict(size=14)),
        xaxis=dict(title="Class", tickangle=-35), yaxis=dict(title="Images", rangemode="tozero"),
        height=300, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, bargap=0.25)
    return fig


def sample_indices(labels: np.ndarray, n: int, seed: int, classes: Sequence[int] | None = None) -> np.ndarray:
    """n image indices drawn without replacement from those whose label is in `classes` (all if empty)."""
    labels = np.asarray(labels)
    pool = np.flatnonzero(np.isin(labels, list(classes))) if classes else np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return rng.choice(pool, size=min(n, len(pool)), replace=False) if len(pool) else pool


def augmented(images_uint8_nhwc: np.ndarray, seed: int, *, padding: int = 4) -> np.ndarray:
    """The images as training sees them with augmentation on (core.train.batches.augment: a random shift
    of up to `padding` pixels with reflect padding, 0 for none, and a random horizontal flip),
    reproducible from `seed`; uint8 (N, 32, 32, 3)."""
    import torch

    from core.data.images import to_nchw, to_nhwc
    from core.train.batches import augment

    out = augment(to_nchw(images_uint8_nhwc), torch.Generator().manual_seed(int(seed)), padding=int(padding))
    return to_nhwc(out)


def augmentation_text(padding: int) -> str:
    """What a preset's augmentation does, in words (flip only when it shifts by 0 pixels)."""
    if padding:
        return f"a random shift of up to {padding} pixels (reflect padding) and a random horizontal flip"
    return "a random horizontal flip (no shift)"
