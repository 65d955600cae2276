"""Predict the class of an image a user uploads.

``image_from_bytes(data)``: bytes -> PIL (PNG or JPEG only; at most ``MAX_UPLOAD_BYTES`` bytes and
``MAX_UPLOAD_PIXELS`` pixels, checked from the header before decoding; a JPEG decoded at a reduced scale) -> EXIF orientation applied
-> transparency composited on white -> RGB -> centre square crop -> resized to 32x32 with Pillow's
BICUBIC filter (Pillow widens the filter when shrinking, so this is anti-aliased) -> uint8 (32, 32, 3).

``predict_image(model, data)`` then runs that image through the same inference as the test split
(``core.evaluate.predictions.infer_logits``: the training normalisation, the run's TTA) and returns
its top-k classes. Problems with the file raise UploadError (a ValueError) with a message meant for the user,
in English (str) or another language (its text(lang)).
"""
from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
from torch import nn

from core.evaluate.metrics import top_k
from core.evaluate.predictions import LoadedModel, as_loaded, infer_logits
from core.i18n import DEFAULT_LANGUAGE, core_text

MAX_UPLOAD_BYTES = 5 * 1024 * 1024        # 5 MB as Streamlit counts them (maxUploadSize 5 in .streamlit/config.toml)
# The model sees 32x32 pixels, so nothing needs more than a phone photo: 4096 x 3072 (12.6 MP). A
# PNG is decoded whole (about 4 bytes a pixel, a few copies); a JPEG at a reduced size (see below).
MAX_UPLOAD_PIXELS = 4096 * 3072
DRAFT_SIZE = 256                          # JPEGs are decoded at the smallest 1/2^k scale still >= this
UPLOAD_FORMATS = ("PNG", "JPEG")
UPLOAD_EXTENSIONS = ("png", "jpg", "jpeg")  # file names an upload widget should accept
IMAGE_SIZE = 32
RESAMPLE_FILTER = "BICUBIC"               # PIL.Image.Resampling member used for the 32x32 resize


def limit_text(max_bytes: int = MAX_UPLOAD_BYTES, lang: str = DEFAULT_LANGUAGE) -> str:
    """'5 MB (5,242,880 bytes)': the size limit as the page and the messages state it."""
    return core_text("evaluate.upload.limit", "{mb:g} MB ({size:,} bytes)", lang, mb=max_bytes / 2**20,
                     size=max_bytes)


def limits_text(lang: str = DEFAULT_LANGUAGE) -> str:
    """Everything an upload must satisfy, in one line for the page."""
    return core_text("evaluate.upload.limits",
                     "PNG or JPEG, at most {limit} and {mp:.1f} megapixels ({w}x{h}); the model sees a 32x32 "
                     "centre crop.", lang, limit=limit_text(lang=lang), mp=MAX_UPLOAD_PIXELS / 1e6, w=4096, h=3072)


# what can be wrong with an upload: UploadError.kind, its message's key "evaluate.upload.<kind>"
UPLOAD_ERROR_KINDS = ("empty", "too_big", "not_image", "bomb", "unreadable", "too_many_pixels", "undecodable")


class UploadError(ValueError):
    """A file that cannot be used, with a message meant for the user: its English (str(error)) and,
    through `text(lang)`, any language (the template's key is "evaluate.upload.<kind>")."""

    def __init__(self, kind: str, template: str, **values):
        self.kind, self.template, self.values = kind, template, values
        super().__init__(template.format(**values))

    def text(self, lang: str = DEFAULT_LANGUAGE) -> str:
        return core_text(f"evaluate.upload.{self.kind}", self.template, lang, **self.values)


@dataclass(frozen=True)
class UploadPrediction:
    image: np.ndarray                        # uint8 (32, 32, 3): exactly what the model saw
    original_size: tuple[int, int]           # (width, height) of the upload
    format: str                              # "PNG" or "JPEG"
    probs: np.ndarray                        # float32 (C,)
    top: list[tuple[int, str, float]]        # (class id, name, probability), most probable first


def image_from_bytes(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES,
                     max_pixels: int = MAX_UPLOAD_PIXELS) -> tuple[np.ndarray, tuple[int, int], str]:
    """Decode an uploaded PNG/JPEG into the 32x32 RGB uint8 image the model sees (see module docstring).

    Returns (image, (width, height) of the upload, format).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if data is None or len(data) == 0:
        raise UploadError("empty", "The file is empty. Upload a PNG or JPEG image.")
    if len(data) > max_bytes:
        raise UploadError("too_big", "The file is {size:,} bytes; images up to {mb:g} MB ({limit:,} bytes) are "
                          "accepted.", size=len(data), mb=max_bytes / 2**20, limit=max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=list(UPLOAD_FORMATS))
        except UnidentifiedImageError:
            raise UploadError("not_image", "This file is not a PNG or JPEG image.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise UploadError("bomb", "The image has too many pixels; at most {mp:.1f} megapixels are accepted.",
                              mp=max_pixels / 1e6) from None
        except Exception as exc:  # truncated headers and the like
            raise UploadError("unreadable", "The image could not be read ({why}).", why=exc) from None
        width, height = img.size
        fmt = img.format or "?"
        if width * height > max_pixels:
            raise UploadError("too_many_pixels", "The image is {w}x{h} pixels ({mp:.1f} megapixels); at most "
                              "{most:.1f} megapixels are accepted (the model sees 32x32).",
                              w=width, h=height, mp=width * height / 1e6, most=max_pixels / 1e6)
        try:
            if fmt == "JPEG":  # let the decoder scale down by 1/2, 1/4 or 1/8: far less memory and time
                img.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            img = img.convert("RGB")
        except Exception as exc:  # truncated or corrupt pixel data
            raise UploadError("undecodable", "The image could not be decoded ({why}).", why=exc) from None
    w, h = img.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    img = img.crop((left, top, left + side, top + side))
    img = img.resize((IMAGE_SIZE, IMAGE_SIZE), getattr(Image.Resampling, RESAMPLE_FILTER))
    return np.asarray(img, dtype=np.uint8).copy(), (width, height), fmt


def predict_image(model_or_checkpoint: LoadedModel | nn.Module | str | os.PathLike, data: bytes, *,
                  classes: Iterable[str] | None = None, k: int = 3,
                  device: torch.device | str | None = None) -> UploadPrediction:
    """Top-k classes for an uploaded PNG/JPEG (default classes: CIFAR-10's); ValueError for bad files."""
    image, size, fmt = image_from_bytes(data)
    loaded = as_loaded(model_or_checkpoint, device)
    if classes is None:
        from core.data import CLASSES as classes
    classes = tuple(classes)
    logits = infer_logits(loaded, image[None], batch_size=1)
    probs = torch.softmax(torch.from_numpy(logits), dim=1)[0].numpy()
    return UploadPrediction(image, size, fmt, probs, top_k(probs, classes, k))
