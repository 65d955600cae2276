"""CIFAR-10's own "python version" folder format: read, write, and a decoded cache.

A folder `cifar-10-batches-py/` holds the pickled batches `data_batch_1..5`, `test_batch` and
`batches.meta`. The official archive was pickled by Python 2 (bytes keys such as b'data'); copies
written by Python 3 have str keys. Both load. Unpickling allows plain containers and numpy arrays
only, so a batch file cannot run code.

Decoding is done once; the arrays are then kept as plain `.npy` files beside the batches
(`cifar-10-batches-py/.cache/decoded-<fingerprint>/`), or under `~/.cache/cifarlab/` when that
folder is read-only, and reused while the batch files keep their size and modification time.
Cached arrays are memory-mapped copy-on-write: writable, private to the process, read on first touch.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core.data.dataset import ChecksumWarning, DataCorruptError, DataError, Dataset, Split

log = logging.getLogger(__name__)

BATCHES_DIR = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES: tuple[str, ...] = ("test_batch",)
META_FILE = "batches.meta"
ALL_FILES: tuple[str, ...] = (*TRAIN_FILES, *TEST_FILES, META_FILE)
IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3

CACHE_VERSION = 1
CACHE_DIRNAME = ".cache"


def missing_files(batch_dir: Path) -> list[str]:
    return [name for name in ALL_FILES if not (batch_dir / name).is_file()]


PICKLE_PROTO = 0x80   # first byte of a pickle written with protocol 2 or later
PICKLE_STOP = b"."    # last byte of every complete pickle


def damage(path: Path) -> str | None:
    """Why a batch file cannot be whole, from its size and first and last bytes (reads 2 bytes), or None.

    Catches truncated and overwritten files cheaply; a file that passes can still fail to decode.
    """
    try:
        size = path.stat().st_size
        minimum = 64 if path.name == META_FILE else IMAGE_BYTES
        if size < minimum:
            return f"only {size} bytes"
        with open(path, "rb") as fh:
            first = fh.read(1)
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if first[0] != PICKLE_PROTO:
        return "not a pickled batch file"
    if last != PICKLE_STOP:
        return "truncated (it does not end like a complete batch file)"
    return None


# --------------------------------------------------------------------------- reading batches

_ALLOWED_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file cannot run code."""

    def find_class(self, module: str, name: str):
        if name == "_reconstruct" and module in ("numpy.core.multiarray", "numpy._core.multiarray"):
            from numpy._core.multiarray import _reconstruct  # the Python 2 archive names numpy.core

            return _reconstruct
        found = _ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return found


def _str_keys(obj: dict) -> dict:
    return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _unpickle(path: Path) -> dict:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataCorruptError(f"Could not read `{path}`: {exc.strerror or exc}.") from None
    try:
        obj = _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # truncated, garbage, or foreign objects: all mean "damaged file"
        raise DataCorruptError(
            f"`{path}` is damaged or truncated ({type(exc).__name__}: {exc}); "
            "delete the folder and download CIFAR-10 again."
        ) from None
    if not isinstance(obj, dict):
        raise DataCorruptError(f"`{path}` is not a CIFAR-10 batch file (it holds a {type(obj).__name__}).")
    return _str_keys(obj)


def _read_meta(path: Path) -> tuple[str, ...]:
    meta = _unpickle(path)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or not names:
        raise DataCorruptError(f"`{path}` has no 'label_names' list.")
    classes = tuple(n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names)
    return classes


def _read_batch(path: Path, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(path)
    data, labels = batch.get("data"), batch.get("labels")
    if not isinstance(data, np.ndarray) or labels is None:
        raise DataCorruptError(f"`{path}` lacks the 'data' array or the 'labels' list.")
    labels = np.asarray(labels, dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != IMAGE_BYTES:
        raise DataCorruptError(
            f"`{path}` holds data of shape {data.shape} ({data.dtype}), expected N x {IMAGE_BYTES} uint8."
        )
    if labels.shape != (data.shape[0],):
        raise DataCorruptError(f"`{path}` has {data.shape[0]} images but {labels.size} labels.")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataCorruptError(f"`{path}` has labels outside 0..{num_classes - 1}.")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # R, G, B planes -> HWC
    return images, labels


def _read_split(batch_dir: Path, names: Iterable[str], num_classes: int) -> Split:
    parts = [_read_batch(batch_dir / name, num_classes) for name in names]
    images = np.ascontiguousarray(np.concatenate([p[0] for p in parts]))
    labels = np.concatenate([p[1] for p in parts])
    return Split(images, labels)


def file_md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- the decoded cache

def _fingerprint(batch_dir: Path) -> str:
    """Size and modification time of every batch file: changes when any of them is replaced."""
    parts = []
    for name in ALL_FILES:
        st = (batch_dir / name).stat()
        parts.append([name, st.st_size, st.st_mtime_ns])
    return json.dumps({"version": CACHE_VERSION, "files": parts}, sort_keys=True)


def _home_cache_dir(batch_dir: Path) -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = hashlib.sha256(str(batch_dir).encode()).hexdigest()[:16]
    return base / "cifarlab" / key


def cache_dirs(root: str | os.PathLike) -> list[Path]:
    """Where the decoded cache of `root` is kept, in order: beside the batches, then per user.

    Each holds one `decoded-<fingerprint>/` folder of plain `.npy` files, mapped copy-on-write when read.
    """
    batch_dir = Path(root).expanduser().resolve() / BATCHES_DIR
    return [batch_dir / CACHE_DIRNAME, _home_cache_dir(batch_dir)]


def _entry_name(fingerprint: str) -> str:
    return "decoded-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


_CACHED_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def _read_cache(entry: Path, fingerprint: str) -> tuple[Split, Split, tuple[str, ...], dict] | None:
    try:
        info = json.loads((entry / "info.json").read_text())
        if info.get("fingerprint") != fingerprint:
            return None
        # Copy-on-write maps: returns at once, pages come from the OS page cache on first touch (shared
        # by every process loading the same root), and writes stay private to this process.
        arrays = {name: np.asarray(np.load(entry / f"{name}.npy", mmap_mode="c", allow_pickle=False))
                  for name in _CACHED_ARRAYS}
    except FileNotFoundError:
        return None
    except Exception as exc:  # a torn or foreign cache is only a cache miss
        log.info("ignoring unreadable cache %s: %s", entry, exc)
        return None
    train = Split(arrays["train_images"], arrays["train_labels"])
    test = Split(arrays["test_images"], arrays["test_labels"])
    ok = (
        train.images.dtype == np.uint8 and test.images.dtype == np.uint8
        and train.images.shape[1:] == IMAGE_SHAPE and test.images.shape[1:] == IMAGE_SHAPE
        and train.labels.dtype == np.int64 and test.labels.dtype == np.int64
        and len(train.labels) == len(train.images) and len(test.labels) == len(test.images)
    )
    return (train, test, tuple(info["classes"]), info) if ok else None


def _write_cache(base: Path, entry_name: str, train: Split, test: Split, info: dict) -> bool:
    """Write a complete entry under a temporary name, then rename it into place (readers never see half)."""
    try:
        base.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".writing-", dir=base))
        try:
            arrays = {"train_images": train.images, "train_labels": train.labels,
                      "test_images": test.images, "test_labels": test.labels}
            for name, array in arrays.items():
                np.save(tmp / f"{name}.npy", array, allow_pickle=False)
            (tmp / "info.json").write_text(json.dumps(info))
            tmp.chmod(0o755)  # mkdtemp makes it private; the batches beside it are readable by all
            entry = base / entry_name
            if entry.exists():  # a damaged entry (we only write after a miss): move it out of the way
                os.replace(entry, Path(tempfile.mkdtemp(prefix=".old-", dir=base)) / "x")
            os.replace(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as exc:
        log.info("could not write the decoded cache to %s: %s", base, exc)
        return False
    for old in base.iterdir():  # entries for earlier versions of the files, and leftovers
        if old.name != entry_name and (old.name.startswith(("decoded-", ".old-"))):
            shutil.rmtree(old, ignore_errors=True)
    return True



_WARNED_ROOTS: set[Path] = set()


def load_folder(root: Path, *, synthetic: bool,
                check: Callable[[Path], list[str]] | None = None,
                note_for: Callable[[list[str]], str] | None = None) -> Dataset:
    """The dataset in `root/cifar-10-batches-py/`, from the decoded cache when it is current.

    `check(batch_dir)` (run on a cache miss only) lists files that fail a checksum;
    `note_for(mismatched)` turns them into the note the Dataset carries, warned about once per root.
    """
    batch_dir = root / BATCHES_DIR
    fingerprint = _fingerprint(batch_dir)
    entry_name = _entry_name(fingerprint)
    cached = None
    for base in cache_dirs(root):
        cached = _read_cache(base / entry_name, fingerprint)
        if cached is not None:
            break
    if cached is not None:
        train, test, classes, info = cached
    else:
        classes = _read_meta(batch_dir / META_FILE)
        train = _read_split(batch_dir, TRAIN_FILES, len(classes))
        test = _read_split(batch_dir, TEST_FILES, len(classes))
        mismatched = check(batch_dir) if check else []
        info = {"fingerprint": fingerprint, "classes": list(classes), "checksum_mismatches": mismatched}
        if _fingerprint(batch_dir) == fingerprint:  # unchanged while we read it
            for base in cache_dirs(root):
                if _write_cache(base, entry_name, train, test, info):
                    break
    note = note_for(info.get("checksum_mismatches", [])) if note_for else ""
    if note and root not in _WARNED_ROOTS:
        _WARNED_ROOTS.add(root)
        warnings.warn(f"CIFAR-10 in {batch_dir}: {note}", ChecksumWarning, stacklevel=3)
    return Dataset(train=train, test=test, classes=classes, root=root, synthetic=synthetic, note=note)



# --------------------------------------------------------------------------- writing batches

def write_batch_folder(root: str | os.PathLike, train: Split, test: Split, classes: Iterable[str],
                       *, batches: int = 5, extra_meta: dict | None = None) -> Path:
    """Write `root/cifar-10-batches-py/` in CIFAR-10's python layout (str keys, as Python 3 pickles).

    Written into a temporary folder and renamed into place, so a reader never sees half a set.
    """
    root = Path(root).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    classes = list(classes)
    tmp = Path(tempfile.mkdtemp(prefix=f".{BATCHES_DIR}-", dir=root))
    try:
        chunks = np.array_split(np.arange(len(train)), batches)
        for i, (name, idx) in enumerate(zip(TRAIN_FILES, chunks)):
            _write_batch(tmp / name, train.images[idx], train.labels[idx], f"training batch {i + 1} of {batches}")
        _write_batch(tmp / TEST_FILES[0], test.images, test.labels, "testing batch 1 of 1")
        meta = {"num_cases_per_batch": len(chunks[0]), "label_names": classes, "num_vis": IMAGE_BYTES}
        meta.update(extra_meta or {})
        with open(tmp / META_FILE, "wb") as fh:
            pickle.dump(meta, fh, protocol=4)
        dst = root / BATCHES_DIR
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{BATCHES_DIR}-old-", dir=root))
            os.replace(dst, old / BATCHES_DIR)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(tmp, dst)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dst


def _write_batch(path: Path, images: np.ndarray, labels: np.ndarray, batch_label: str) -> None:
    flat = np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(labels), IMAGE_BYTES)
    with open(path, "wb") as fh:
        pickle.dump({"batch_label": batch_label, "labels": [int(y) for y in labels], "data": flat,
                     "filenames": [f"{i:05d}.png" for i in range(len(labels))]}, fh, protocol=4)


def read_meta(root: str | os.PathLike) -> dict:
    """`batches.meta` of `root` as a dict with str keys ({} when it is missing or unreadable)."""
    try:
        return _unpickle(Path(root) / BATCHES_DIR / META_FILE)
    except DataError:
        return {}


