"""core.data: loading CIFAR-10's python batches, the decoded cache, damage, missing data, normalisation."""
from __future__ import annotations

import hashlib
import http.server
import os
import pickle
import shutil
import struct
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from core import data

from core.data import cifar10, synthetic
from reference import CIFAR_MEAN, CIFAR_STD, denormalize_np, normalize_np

pytestmark = pytest.mark.filterwarnings("ignore::core.data.ChecksumWarning")  # asserted where it matters

UNREACHABLE_URL = "http://127.0.0.1:9/cifar-10-python.tar.gz"  # loopback discard port: nothing answers


# --------------------------------------------------------------------------- helpers

def tiny_split(n: int, seed: int, num_classes: int = 10) -> data.Split:
    rng = np.random.default_rng(seed)
    return data.Split(rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
                      (np.arange(n) % num_classes).astype(np.int64))


def write_tiny(root: Path, n_train: int = 50, n_test: int = 20, seed: int = 0) -> tuple[data.Split, data.Split]:
    train, test = tiny_split(n_train, seed), tiny_split(n_test, seed + 1)
    data.write_batch_folder(root, train, test, data.CLASSES)
    return train, test


def linked_copy(src_root: Path, dst_root: Path) -> Path:
    """A new root whose batch files are symlinks to src_root's: a fresh root at no copying cost."""
    dst = dst_root / data.BATCHES_DIR
    dst.mkdir(parents=True)
    for name in data.ALL_FILES:
        (dst / name).symlink_to(src_root / data.BATCHES_DIR / name)
    return dst_root


def cache_entry(base: Path) -> Path:
    """The one decoded-<fingerprint>/ folder in a cache folder."""
    (entry,) = [p for p in base.iterdir() if p.name.startswith("decoded-")]
    return entry


def checksum_warnings(record) -> list:
    return [w for w in record if issubclass(w.category, data.ChecksumWarning)]


# A batch pickled as Python 2's cPickle wrote the official archive: str (bytes) keys, numpy.core names.
def _py2_str(b: bytes) -> bytes:
    return (b"U" + bytes([len(b)]) + b) if len(b) < 256 else (b"T" + struct.pack("<i", len(b)) + b)


def _py2_int(v: int) -> bytes:
    if 0 <= v < 256:
        return b"K" + bytes([v])
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)
    return b"J" + struct.pack("<i", v)


def _py2_array(a: np.ndarray) -> bytes:
    dtype = (b"cnumpy\ndtype\n" + _py2_str(b"u1") + b"\x89\x88\x87R(" + _py2_int(3) + _py2_str(b"|") + b"NNN"
             + _py2_int(-1) + _py2_int(-1) + _py2_int(0) + b"tb")
    return (b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n" + _py2_int(0) + b"\x85" + _py2_str(b"b")
            + b"\x87R(" + _py2_int(1) + _py2_int(a.shape[0]) + _py2_int(a.shape[1]) + b"\x86" + dtype + b"\x89"
            + _py2_str(a.tobytes()) + b"tb")


def py2_batch(images: np.ndarray, labels: np.ndarray) -> bytes:
    flat = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), -1)
    return (b"\x80\x02}(" + _py2_str(b"data") + _py2_array(flat) + _py2_str(b"labels") + b"]("
            + b"".join(_py2_int(int(y)) for y in labels) + b"eu.")


def py2_meta(names) -> bytes:
    return (b"\x80\x02}(" + _py2_str(b"label_names") + b"](" + b"".join(_py2_str(n.encode()) for n in names)
            + b"e" + _py2_str(b"num_vis") + _py2_int(3072) + b"u.")


# --------------------------------------------------------------------------- constants

def test_official_checksums_are_torchvisions():
    from torchvision.datasets import CIFAR10

    assert data.CIFAR10_URL == CIFAR10.url and data.ARCHIVE_NAME == CIFAR10.filename
    assert data.ARCHIVE_MD5 == CIFAR10.tgz_md5 == "c58f30108f718f92721af3b95e74349a"
    official = dict(CIFAR10.train_list + CIFAR10.test_list)
    official[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    assert data.OFFICIAL_MD5 == official


def test_dataset_kind_and_label():
    split = tiny_split(4, 0)
    real = data.Dataset(split, split, data.CLASSES, Path("."), synthetic=False)
    demo = data.Dataset(split, split, synthetic.SYNTHETIC_CLASSES, Path("."), synthetic=True)
    assert (real.kind, real.label) == ("cifar10", "CIFAR-10")
    assert (demo.kind, demo.label) == ("synthetic", "Synthetic demo set")
    assert real.split("train") is split and len(real.test) == 4
    with pytest.raises(ValueError):
        real.split("valid")


# --------------------------------------------------------------------------- real CIFAR-10 (development split)

@pytest.mark.cifar
def test_load_real_cifar10(cifar_root, tmp_path):
    root = linked_copy(cifar_root, tmp_path / "cifar")  # a root this process has not warned about yet
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        ds = data.load_cifar10(root, download=False)
        again = data.load_cifar10(root, download=False)
    assert ds.train.images.shape == (40_000, 32, 32, 3) and ds.train.images.dtype == np.uint8
    assert ds.test.images.shape == (10_000, 32, 32, 3) and ds.test.images.dtype == np.uint8
    assert ds.train.labels.shape == (40_000,) and ds.train.labels.dtype == np.int64
    assert ds.test.labels.dtype == np.int64
    assert ds.classes == data.CLASSES
    assert ds.train.labels.min() == 0 and ds.train.labels.max() == 9
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10
    assert ds.synthetic is False and ds.kind == "cifar10" and ds.label == "CIFAR-10"
    assert ds.root == root.resolve()
    # the development copy is re-encoded: loaded with ONE warning about checksums, not refused
    found = checksum_warnings(record)
    assert len(found) == 1, [str(w.message) for w in found]
    assert "None of the files match the official CIFAR-10 checksums" in str(found[0].message)
    assert "loaded anyway" in ds.note and again.note == ds.note
    # the pixels are the batch file's R, G, B planes turned into HWC
    with open(cifar_root / data.BATCHES_DIR / "test_batch", "rb") as fh:
        raw = pickle.load(fh, encoding="bytes")
    raw = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    flat = raw["data"]
    np.testing.assert_array_equal(ds.test.images[:5, :, :, 0].reshape(5, -1), flat[:5, :1024])
    np.testing.assert_array_equal(ds.test.images[:5, :, :, 2].reshape(5, -1), flat[:5, 2048:])
    np.testing.assert_array_equal(ds.test.labels, np.asarray(raw["labels"]))


@pytest.mark.cifar
def test_decoded_cache_gives_the_same_arrays_fast(cifar_root, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    root = linked_copy(cifar_root, tmp_path / "cifar")
    t0 = time.perf_counter()
    first = data.load_cifar10(root, download=False)
    t1 = time.perf_counter()
    second = data.load_cifar10(root, download=False)
    t2 = time.perf_counter()
    print(f"\nfull development split: first load (decode + md5 + write cache) {t1 - t0:.2f} s, "
          f"second load (cache) {t2 - t1:.3f} s")
    entry = cache_entry(root / data.BATCHES_DIR / ".cache")
    assert sorted(p.name for p in entry.iterdir()) == [
        "info.json", "test_images.npy", "test_labels.npy", "train_images.npy", "train_labels.npy"]
    for a, b in ((first.train, second.train), (first.test, second.test)):
        assert b.images.dtype == np.uint8 and b.labels.dtype == np.int64
        assert b.images.flags.c_contiguous and b.images.flags.writeable
        np.testing.assert_array_equal(a.images, b.images)
        np.testing.assert_array_equal(a.labels, b.labels)
    assert second.classes == first.classes and second.note == first.note
    # the cached arrays are private to the process that loads them: writing to them changes no file
    second.train.images[:10] = 0
    third = data.load_cifar10(root, download=False)
    np.testing.assert_array_equal(third.train.images[:10], first.train.images[:10])
    t3 = time.perf_counter()
    total = int(third.train.images.sum(dtype=np.uint64)) + int(third.test.images.sum(dtype=np.uint64))
    print(f"reading every cached pixel once: {time.perf_counter() - t3:.3f} s")
    assert total == int(first.train.images.sum(dtype=np.uint64)) + int(first.test.images.sum(dtype=np.uint64))


def test_cache_is_rebuilt_when_a_batch_file_changes(tmp_path):
    root = tmp_path / "tiny"
    write_tiny(root, seed=0)
    first = data.load_cifar10(root, download=False)
    old_entry = cache_entry(data.cache_dirs(root)[0])
    # replace the batches with other images: size stays, contents and mtime change
    train2, test2 = write_tiny(root, seed=10)
    later = time.time() + 5
    for name in data.ALL_FILES:
        os.utime(root / data.BATCHES_DIR / name, (later, later))
    second = data.load_cifar10(root, download=False)
    assert not np.array_equal(first.train.images, second.train.images)
    np.testing.assert_array_equal(second.train.images, train2.images)
    np.testing.assert_array_equal(second.test.images, test2.images)
    new_entry = cache_entry(data.cache_dirs(root)[0])  # the stale entry was replaced, not kept beside
    assert new_entry != old_entry and not old_entry.exists()


def test_a_torn_cache_file_is_only_a_miss(tmp_path):
    root = tmp_path / "tiny"
    train, _ = write_tiny(root)
    data.load_cifar10(root, download=False)
    torn = cache_entry(data.cache_dirs(root)[0]) / "train_images.npy"
    torn.write_bytes(torn.read_bytes()[:1000])
    ds = data.load_cifar10(root, download=False)
    np.testing.assert_array_equal(ds.train.images, train.images)
    again = data.load_cifar10(root, download=False)  # the torn entry was rewritten whole
    np.testing.assert_array_equal(again.train.images, train.images)
    assert torn.stat().st_size > 1000


def test_cache_falls_back_to_the_user_cache_when_the_folder_is_not_writable(tmp_path, monkeypatch):
    home_cache = tmp_path / "home-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(home_cache))
    root = tmp_path / "tiny"
    train, test = write_tiny(root)
    batch_dir = root / data.BATCHES_DIR
    (batch_dir / ".cache").write_text("not a folder")  # the cache beside the batches cannot be made
    if os.geteuid() != 0:  # root ignores permissions; everyone else gets a truly read-only folder too
        batch_dir.chmod(0o555)
    try:
        first = data.load_cifar10(root, download=False)
        beside, fallback = data.cache_dirs(root)
        assert not beside.is_dir()
        assert fallback.is_relative_to(home_cache / "cifarlab")
        cached = cache_entry(fallback) / "train_images.npy"
        # the second load is served from that folder: mark its copy of the images and see the mark
        np.testing.assert_array_equal(np.load(cached), train.images)
        np.save(cached, 255 - train.images)
        second = data.load_cifar10(root, download=False)
    finally:
        batch_dir.chmod(0o755)
    np.testing.assert_array_equal(first.test.images, test.images)
    np.testing.assert_array_equal(second.train.images, 255 - train.images)
    np.testing.assert_array_equal(second.test.images, test.images)


def test_python2_pickles_with_bytes_keys_load(tmp_path):
    """The official archive was pickled by Python 2: keys like b'data' and numpy.core names."""
    batch_dir = tmp_path / "py2" / data.BATCHES_DIR
    batch_dir.mkdir(parents=True)
    splits = {}
    for i, name in enumerate(data.TRAIN_FILES + data.TEST_FILES):
        split = tiny_split(12, i)
        splits[name] = split
        (batch_dir / name).write_bytes(py2_batch(split.images, split.labels))
    (batch_dir / data.META_FILE).write_bytes(py2_meta(data.CLASSES))
    with pytest.warns(data.ChecksumWarning):
        ds = data.load_cifar10(tmp_path / "py2", download=False)
    assert ds.classes == data.CLASSES
    np.testing.assert_array_equal(ds.train.images[:12], splits["data_batch_1"].images)
    np.testing.assert_array_equal(ds.train.labels[12:24], splits["data_batch_2"].labels)
    np.testing.assert_array_equal(ds.test.images, splits["test_batch"].images)


# --------------------------------------------------------------------------- damaged files

def _copy_batches(src_root: Path, dst_root: Path) -> Path:
    dst = dst_root / data.BATCHES_DIR
    dst.mkdir(parents=True)
    for name in data.ALL_FILES:
        shutil.copyfile(src_root / data.BATCHES_DIR / name, dst / name)  # real copies: we damage them
    return dst


def _assert_truncation_named(root: Path, name: str) -> None:
    path = root / data.BATCHES_DIR / name
    with open(path, "r+b") as fh:
        fh.truncate(path.stat().st_size // 2)
    with pytest.raises(data.DataCorruptError) as err:
        data.load_cifar10(root, download=False)
    assert str(path) in str(err.value) and "truncated" in str(err.value)


@pytest.mark.cifar
def test_truncated_real_batch_is_named(cifar_root, tmp_path):
    root = tmp_path / "copy"
    _copy_batches(cifar_root, root)
    _assert_truncation_named(root, "data_batch_3")


def test_truncated_synthetic_batch_is_named(synthetic_dataset, tmp_path):
    root = tmp_path / "copy"
    _copy_batches(synthetic_dataset.root, root)
    _assert_truncation_named(root, "test_batch")


def test_garbage_and_wrong_shapes_are_named(tmp_path):
    root = tmp_path / "tiny"
    write_tiny(root)
    path = root / data.BATCHES_DIR / "data_batch_2"
    path.write_bytes(b"this is not a pickle at all" * 10)
    with pytest.raises(data.DataCorruptError, match="data_batch_2"):
        data.load_cifar10(root, download=False)
    with open(path, "wb") as fh:
        pickle.dump({"data": np.zeros((3, 100), np.uint8), "labels": [0, 1, 2]}, fh)
    with pytest.raises(data.DataCorruptError, match=r"data_batch_2.*shape"):
        data.load_cifar10(root, download=False)
    with open(path, "wb") as fh:
        pickle.dump({"data": np.zeros((3, 3072), np.uint8), "labels": [0, 1, 12]}, fh)
    with pytest.raises(data.DataCorruptError, match=r"data_batch_2.*labels outside"):
        data.load_cifar10(root, download=False)


class _Boom:
    def __reduce__(self):
        return (os.system, ("echo should-never-run",))


def test_a_batch_file_cannot_run_code(tmp_path):
    root = tmp_path / "tiny"
    write_tiny(root)
    path = root / data.BATCHES_DIR / "data_batch_1"
    with open(path, "wb") as fh:
        pickle.dump({"data": _Boom(), "labels": []}, fh)
    with pytest.raises(data.DataCorruptError, match=r"data_batch_1.*unexpected object"):
        data.load_cifar10(root, download=False)


# --------------------------------------------------------------------------- missing data

def _assert_ways_out(message: str) -> None:
    assert "CIFAR10_ROOT" in message and "cifar-10-batches-py/" in message
    assert "synthetic demo set" in message.lower() and "--demo" in message
    assert "Traceback" not in message


def test_missing_and_offline_says_where_what_and_ways_out(tmp_path):
    root = tmp_path / "nowhere"
    status = data.cifar10_status(root)
    assert not status.present and status.root == root.resolve()
    with pytest.raises(data.DataMissingError) as err:
        data.load_cifar10(root)  # download allowed, but CIFARLAB_OFFLINE=1 (conftest)
    message = str(err.value)
    assert str(root / data.BATCHES_DIR) in message
    assert "downloads are off: CIFARLAB_OFFLINE=1" in message
    _assert_ways_out(message)
    assert isinstance(err.value, data.DataError)
    assert not root.exists()  # nothing was created


def test_missing_and_download_fails_names_url_and_error(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFARLAB_OFFLINE")
    monkeypatch.setattr(cifar10, "CIFAR10_URL", UNREACHABLE_URL)
    root = tmp_path / "empty"
    with pytest.raises(data.DataMissingError) as err:
        data.load_cifar10(root, download=True)
    message = str(err.value)
    assert f"downloading {UNREACHABLE_URL} failed" in message
    assert "refused" in message.lower() or "error" in message.lower()
    assert str(root / data.BATCHES_DIR) in message
    _assert_ways_out(message)
    assert not list(root.glob("*.part"))  # no half download left behind


def test_missing_without_download_says_it_was_not_tried(tmp_path, monkeypatch):
    monkeypatch.delenv("CIFARLAB_OFFLINE")
    root = tmp_path / "partial"
    write_tiny(root)
    (root / data.BATCHES_DIR / "data_batch_4").unlink()
    assert data.cifar10_status(root).present is False
    assert "data_batch_4" in data.cifar10_status(root).message
    with pytest.raises(data.DataMissingError) as err:
        data.load_dataset("cifar10", root)  # never downloads
    message = str(err.value)
    assert "`data_batch_4`" in message and "not tried" in message
    _assert_ways_out(message)


def test_status_of_a_present_folder(tmp_path):
    write_tiny(tmp_path / "ok")
    status = data.cifar10_status(tmp_path / "ok")
    assert status.present and "found" in status.message
    assert status.usable and status.damaged == ()


@pytest.mark.parametrize("how, why", [("truncate", "truncated"), ("garbage", "not a pickled batch file"),
                                      ("empty", "only 0 bytes")])
def test_status_catches_damaged_batch_files_without_decoding_them(tmp_path, how, why):
    root = tmp_path / "bad"
    write_tiny(root)
    victim = root / data.BATCHES_DIR / "data_batch_3"
    raw = victim.read_bytes()
    victim.write_bytes({"truncate": raw[: len(raw) // 2], "garbage": b"GIF89a" + raw[6:], "empty": b""}[how])
    status = data.cifar10_status(root)
    assert status.present and not status.usable
    assert status.damaged == ("data_batch_3",)
    assert "`data_batch_3`" in status.message and why in status.message and "download" in status.message
    with pytest.raises(data.DataCorruptError, match="data_batch_3"):  # loading says the same file
        data.load_cifar10(root, download=False)


def test_sidebar_says_when_cifar10_is_damaged(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    write_tiny(tmp_path / "bad")
    victim = tmp_path / "bad" / data.BATCHES_DIR / "test_batch"
    victim.write_bytes(victim.read_bytes()[:-10])
    monkeypatch.setenv("CIFAR10_ROOT", str(tmp_path / "bad"))
    at = AppTest.from_file(str(Path(__file__).resolve().parent.parent / "dashboard" / "app.py"),
                           default_timeout=60).run()
    assert any("— damaged" in c.value for c in at.sidebar.caption)
    assert any("`test_batch` is truncated" in e.value for e in at.sidebar.error)


def test_load_dataset_kinds(tmp_path):
    with pytest.raises(ValueError):
        data.load_dataset("imagenet")
    ds = data.load_dataset("synthetic")  # CIFARLAB_SYNTHETIC_ROOT from conftest
    assert ds.synthetic


class _ArchiveHandler(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        for i in range(0, len(self.body), 100_000):
            self.wfile.write(self.body[i:i + 100_000])

    def log_message(self, *args):
        pass


def test_download_reports_progress_and_rejects_a_wrong_checksum(tmp_path, monkeypatch):
    """A loopback server hands out a file that is not the official archive: progress, then refusal."""
    monkeypatch.delenv("CIFARLAB_OFFLINE")
    body = os.urandom(1_000_000)
    _ArchiveHandler.body = body
    server = http.server.HTTPServer(("127.0.0.1", 0), _ArchiveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen: list[tuple[int, int]] = []
    try:
        url = f"http://127.0.0.1:{server.server_port}/{data.ARCHIVE_NAME}"
        with pytest.raises(data.DataCorruptError) as err:
            data.download_cifar10(tmp_path / "dl", url=url, progress=lambda d, t: seen.append((d, t)))
    finally:
        server.shutdown()
        server.server_close()
    assert seen[0] == (0, len(body)) and seen[-1] == (len(body), len(body))
    assert all(a[0] <= b[0] for a, b in zip(seen, seen[1:]))
    assert hashlib.md5(body).hexdigest() in str(err.value) and data.ARCHIVE_MD5 in str(err.value)
    assert not list((tmp_path / "dl").iterdir())  # the damaged download was removed


def test_download_is_refused_offline(tmp_path):
    with pytest.raises(data.DataMissingError, match="CIFARLAB_OFFLINE=1"):
        data.download_cifar10(tmp_path / "dl")


# --------------------------------------------------------------------------- normalisation

def test_normalize_denormalize_exact_inverse():
    import torch

    from core.data import images

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    x[0] = 0
    x[1] = 255
    z = images.normalize(images.to_nchw(x))
    assert z.dtype == torch.float32 and z.shape == (7, 3, 32, 32)
    # per-channel mean/std: channel c of z is (x/255 - MEAN[c]) / STD[c], as the numpy oracle computes it
    np.testing.assert_allclose(z.numpy(), normalize_np(x), atol=1e-6)
    np.testing.assert_allclose(z[2, 1].numpy(), (x[2, :, :, 1] / 255 - CIFAR_MEAN[1]) / CIFAR_STD[1], atol=1e-5)
    back = images.to_nhwc(images.denormalize(z))
    assert back.dtype == np.float32 and back.shape == x.shape
    np.testing.assert_allclose(back, x / 255.0, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(np.rint(back * 255).astype(np.uint8), x)
    np.testing.assert_allclose(back, denormalize_np(z.numpy()), atol=1e-6)


def test_to_nchw_accepts_tensors_and_refuses_other_layouts():
    import torch

    from core.data import images

    x = torch.randint(0, 256, (3, 32, 32, 3), dtype=torch.uint8)
    assert torch.equal(images.to_nchw(x), images.to_nchw(x.numpy()))
    assert images.to_nchw(x).shape == (3, 3, 32, 32)
    with pytest.raises(ValueError, match="uint8 images of shape"):
        images.to_nchw(x.float())
    with pytest.raises(ValueError, match="uint8 images of shape"):
        images.to_nchw(x.permute(0, 3, 1, 2))


def test_normalisation_constants():
    from core.data import images

    assert images.MEAN == CIFAR_MEAN == (0.4914, 0.4822, 0.4465)
    assert images.STD == CIFAR_STD == (0.2470, 0.2435, 0.2616)
