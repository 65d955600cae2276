"""core.evaluate.upload: predictions on uploaded images, and clear messages for bad files."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from PIL import Image

from core.data import CLASSES
from core.evaluate import upload
from core.train.models import build_model
from evaluate_fixtures import encoded, reference_logits


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    return build_model("tutorial_mlp").eval()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_predict_image_on_png_and_jpeg(mlp, fmt):
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    data = encoded(Image.fromarray(pixels), fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    result = upload.predict_image(mlp, data, k=3)
    assert result.format == fmt and result.original_size == (64, 48)
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert result.probs.sum() == pytest.approx(1.0, abs=1e-5)
    assert len(result.top) == 3
    assert [p for *_, p in result.top] == sorted((p for *_, p in result.top), reverse=True)
    assert result.top[0][1] == CLASSES[int(result.probs.argmax())]
    # the same 32x32 image through the reference path gives the same probabilities
    ref = torch.softmax(torch.from_numpy(reference_logits(mlp, result.image[None])), 1)[0].numpy()
    np.testing.assert_allclose(result.probs, ref, atol=1e-6)


def test_upload_preprocessing_crops_the_centre_square_and_keeps_colours():
    img = Image.new("RGB", (300, 100), (0, 0, 255))       # blue bands left and right
    img.paste((200, 30, 10), (100, 0, 200, 100))           # a red centre square
    small, size, fmt = upload.image_from_bytes(encoded(img, "PNG"))
    assert size == (300, 100) and fmt == "PNG"
    assert (small == np.array([200, 30, 10], np.uint8)).all()


def test_transparent_pixels_become_white():
    img = Image.new("RGBA", (40, 40), (0, 0, 0, 0))
    small, _, _ = upload.image_from_bytes(encoded(img, "PNG"))
    assert (small == 255).all()


def test_predict_image_rejects_empty_bytes(mlp):
    with pytest.raises(ValueError, match="empty"):
        upload.predict_image(mlp, b"")


def test_predict_image_rejects_a_text_file(mlp):
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        upload.predict_image(mlp, b"class,label\ncat,3\n" * 20)


def test_predict_image_rejects_other_image_formats(mlp):
    with pytest.raises(ValueError, match="not a PNG or JPEG"):
        upload.predict_image(mlp, encoded(Image.new("RGB", (8, 8)), "GIF"))


def test_predict_image_rejects_a_huge_image_before_decoding_it(mlp):
    # 8000 x 8000 = 64 megapixels; one bit per pixel, so the PNG itself is small
    data = encoded(Image.new("1", (8000, 8000)), "PNG")
    assert len(data) < upload.MAX_UPLOAD_BYTES
    with pytest.raises(ValueError, match="megapixels"):
        upload.predict_image(mlp, data)


def test_predict_image_rejects_a_huge_file(mlp):
    data = encoded(Image.new("RGB", (16, 16)), "PNG") + os.urandom(upload.MAX_UPLOAD_BYTES)
    with pytest.raises(ValueError, match="MB"):
        upload.predict_image(mlp, data)


def test_predict_image_rejects_a_truncated_file(mlp):
    data = encoded(Image.fromarray(np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)), "PNG")
    with pytest.raises(ValueError, match="could not be"):
        upload.predict_image(mlp, data[: len(data) // 2])


def test_the_probes_6300_pixel_png_is_refused_before_decoding(mlp):
    """A 6300 x 6300 PNG (a few hundred KB) cost the server about 580 MB under the old 40 MP limit."""
    data = encoded(Image.new("RGB", (6300, 6300), (200, 30, 30)), "PNG")
    assert len(data) < upload.MAX_UPLOAD_BYTES
    with pytest.raises(ValueError, match=r"6300x6300 pixels \(39.7 megapixels\); at most 12.6 megapixels"):
        upload.predict_image(mlp, data)


def _peak_rss_mb(code: str) -> float:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(code) + textwrap.dedent("""
        import resource
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def test_a_large_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    """The largest JPEG allowed decodes in far less memory than its full pixels would take."""
    path = tmp_path / "big.jpg"
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (96, 128, 3), dtype=np.uint8)
    Image.fromarray(small).resize((4096, 3072)).save(path, "JPEG", quality=80)
    assert path.stat().st_size < upload.MAX_UPLOAD_BYTES
    setup = f"import numpy, PIL.Image\nfrom core.evaluate import upload\ndata = open({str(path)!r}, 'rb').read()\n"
    baseline = _peak_rss_mb(setup)
    decoded = _peak_rss_mb(setup + "image, size, fmt = upload.image_from_bytes(data)\n"
                           "assert image.shape == (32, 32, 3) and size == (4096, 3072) and fmt == 'JPEG'\n")
    full = 4096 * 3072 * 3 / 2**20  # 36 MB for one full-size RGB copy
    assert decoded - baseline < full / 2, (baseline, decoded)


def test_the_size_limit_is_one_number_in_the_browser_the_server_and_the_messages():
    import tomllib
    from pathlib import Path

    config = tomllib.loads((Path(__file__).resolve().parent.parent / ".streamlit" / "config.toml").read_text())
    assert config["server"]["maxUploadSize"] * 2**20 == upload.MAX_UPLOAD_BYTES  # Streamlit counts MB as 2^20
    assert "5 MB (5,242,880 bytes)" in upload.limits_text()
    with pytest.raises(ValueError, match=r"images up to 5 MB \(5,242,880 bytes\) are accepted"):
        upload.image_from_bytes(b"\x89PNG" + b"\0" * upload.MAX_UPLOAD_BYTES)
