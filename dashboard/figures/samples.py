"""Pictures for the "Sample images" page: plain functions of arrays, no Streamlit.

The grid is one PIL image built here: every 32x32 picture is enlarged by an integer factor with
nearest-neighbour repetition (sharp square pixels, no blur) and captioned underneath with its class
name in a real font, shrunk or shortened to fit its tile. Shown at its natural size (PNG), the browser
does not resample it. Captions with Chinese characters ("cat (猫)") are drawn with a CJK font when the
machine has one (Noto Sans CJK, as fonts-noto-cjk installs it), else the Chinese part is left out
rather than drawn as empty boxes.

Also here: one image as the network reads it (after Normalize, and its three colour planes in the
order view(-1, 3072) lays them out), and what a preset's training augmentation does, in words.
Words come from the catalogues (core/i18n, keys samples.fig.*) in the language passed as `lang`.
"""
from __future__ import annotations

import importlib.util
import re
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image, ImageDraw, ImageFont

from core.i18n import t
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


# Where fonts-noto-cjk (Debian, Ubuntu), Fedora's and Arch's packages, macOS and Windows keep a Chinese font;
# (path, index in the collection): index 2 of Noto Sans CJK is its Simplified Chinese face.
CJK_FONTS = (("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
             ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
             ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
             ("/System/Library/Fonts/PingFang.ttc", 0), ("C:/Windows/Fonts/msyh.ttc", 0))
_CJK = re.compile(r"[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef]")
_BRACKETED_CJK = re.compile(r"\s*\([^)]*[\u2e80-\u9fff\uf900-\ufaff\uff00-\uffef][^)]*\)")


@lru_cache(maxsize=1)
def cjk_font_path() -> tuple[str, int] | None:
    """A font file with Chinese characters, or None when this machine has none."""
    return next(((path, index) for path, index in CJK_FONTS if Path(path).is_file()), None)


@lru_cache(maxsize=32)
def font(size: int, cjk: bool = False) -> ImageFont.ImageFont:
    """DejaVu Sans (shipped with matplotlib) at `size` pixels, or a CJK font when `cjk` and one is
    installed; Pillow's own scalable font otherwise."""
    if cjk and cjk_font_path():
        path, index = cjk_font_path()
        return ImageFont.truetype(path, size, index=index)
    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def drawable(text: str) -> str:
    """`text` as the grid can draw it: unchanged, or without its Chinese part when no CJK font is
    installed ('cat (猫)' -> 'cat')."""
    if not _CJK.search(text) or cjk_font_path():
        return text
    return _CJK.sub("", _BRACKETED_CJK.sub("", text)).strip() or text


def fit_caption(text: str, width: int, size: int = CAPTION_SIZE) -> tuple[str, ImageFont.ImageFont]:
    """The caption and font that fit in `width` pixels: a smaller font first, then a shortened text."""
    text = drawable(text)
    cjk = bool(_CJK.search(text))
    for s in range(size, MIN_CAPTION_SIZE - 1, -1):
        f = font(s, cjk)
        if f.getlength(text) <= width:
            return text, f
    f = font(MIN_CAPTION_SIZE, cjk)
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
                      highlight: Sequence[str] | None = None, synthetic: bool = False, lang: str = "en",
                      names: Sequence[str] | None = None) -> go.Figure:
    """How many images each class has in a split; classes not in `highlight` are greyed out.
    `names` are the classes as the page shows them (default: the class ids)."""
    chosen = set(highlight or classes)
    colours = [PRIMARY if c in chosen else MUTED for c in classes]
    total = int(np.sum(counts))
    fig = go.Figure(go.Bar(
        x=list(names or classes), y=[int(c) for c in counts], marker_color=colours,
        hovertemplate=t("samples.fig.balance_hover", lang) + "<extra></extra>", name=t("samples.fig.images", lang)))
    title = t("samples.fig.balance_title_synthetic" if synthetic else "samples.fig.balance_title", lang,
              total=total, split=t(f"samples.split.{split}_short", lang))
    fig.update_layout(
        title=dict(text=title, font=dict(size=14)),
        xaxis=dict(title=t("samples.fig.balance_x", lang), tickangle=-35),
        yaxis=dict(title=t("samples.fig.balance_y", lang), rangemode="tozero"),
        height=300, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, bargap=0.25)
    return fig


def sample_indices(labels: np.ndarray, n: int, seed: int, classes: Sequence[int] | None = None) -> np.ndarray:
    """n image indices drawn without replacement from those whose label is in `classes` (all if empty)."""
    labels = np.asarray(labels)
    pool = np.flatnonzero(np.isin(labels, list(classes))) if classes else np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return rng.choice(pool, size=min(n, len(pool)), replace=False) if len(pool) else pool


def augmented(images_uint8_nhwc: np.ndarray, seed: int, *, padding: int = 4, alternate_flip: bool = False,
              epoch: int = 0) -> np.ndarray:
    """The images as training sees them with augmentation on (core.train.batches.augment: a random shift
    of up to `padding` pixels with reflect padding, 0 for none, and a horizontal flip), reproducible
    from `seed`; uint8 (N, 32, 32, 3).

    The flip is a coin toss per image and batch, or with `alternate_flip` (as core.train.batches.
    BatchIterator does it) one coin per image for good, mirrored that way in even epochs and the other
    way in odd ones: `epoch` (0-based) says which."""
    import torch

    from core.data.images import to_nchw, to_nhwc
    from core.train.batches import augment

    x = to_nchw(images_uint8_nhwc)
    mirror = None
    if alternate_flip:
        mirror = (torch.rand(len(x), generator=torch.Generator().manual_seed(int(seed) + 1)) < 0.5) ^ bool(epoch % 2)
    out = augment(x, torch.Generator().manual_seed(int(seed)), padding=int(padding), mirror=mirror)
    return to_nhwc(out)


def augmentation_text(padding: int, alternate_flip: bool = False, lang: str = "en", *, short: bool = False) -> str:
    """What a preset's augmentation does, in words: the shift (none at 0 pixels) and the flip (a coin
    toss per image, or every other epoch with alternate flips); `short` for a select's option."""
    form = "samples.augment.short_" if short else "samples.augment."
    flip = t(form + ("flip_alternate" if alternate_flip else "flip_random"), lang)
    if padding:
        return t(form + "shift_and_flip", lang, padding=padding, flip=flip)
    return t(form + "flip_only", lang, flip=flip)


def normalised_views(image_uint8_hwc: np.ndarray, *, spread: float = 2.5) -> tuple[np.ndarray, np.ndarray]:
    """One image after ToTensor + Normalize (core.data.images.normalize), made visible two ways, as uint8
    (H, W, 3): the normalised numbers drawn as if they were pixels (values below 0, i.e. darker than the
    training set's average in that channel, clip to black, as plt.imshow does with a normalised tensor),
    and rescaled so that -spread..+spread spans black..white (mid grey = the channel's average)."""
    from core.data.images import normalize, to_nchw, to_nhwc

    x = normalize(to_nchw(np.asarray(image_uint8_hwc)[None]))
    as_pixels = to_nhwc(x.clamp(0, 1) * 255)[0]
    rescaled = to_nhwc(((x + spread) / (2 * spread)).clamp(0, 1) * 255)[0]
    return (np.round(as_pixels).astype(np.uint8), np.round(rescaled).astype(np.uint8))


def channel_planes(image_uint8_hwc: np.ndarray, *, scale: int = 3) -> Image.Image:
    """One image's red, green and blue planes side by side, each tinted in its colour: the order in
    which ToTensor (C, H, W) and view(-1, 3072) lay the 3,072 numbers out (red 0-1,023, green
    1,024-2,047, blue 2,048-3,071)."""
    image = np.asarray(image_uint8_hwc)
    h, w, _ = image.shape
    tile = h * scale
    canvas = Image.new("RGB", (3 * tile + 2 * GAP, tile), BACKGROUND)
    for c in range(3):
        plane = np.zeros_like(image)
        plane[..., c] = image[..., c]
        canvas.paste(Image.fromarray(pixelated(plane, scale)), (c * (tile + GAP), 0))
    return canvas
