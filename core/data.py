"""CIFAR-10 on disk: find, download, verify, decode and cache it; the synthetic demo set; normalisation.

The only format read is CIFAR-10's own "python version": a folder `cifar-10-batches-py/` holding the
pickled batches `data_batch_1..5`, `test_batch` and `batches.meta`. The official archive was pickled
by Python 2 (bytes keys such as b'data'); copies written by Python 3 have str keys. Both load.

Decoding is done once; the arrays are then kept as plain `.npy` files beside the batches
(`cifar-10-batches-py/.cache/decoded-<fingerprint>/`), or under `~/.cache/cifarlab/` when that
folder is read-only, and reused while the batch files keep their size and modification time.
Cached arrays are memory-mapped copy-on-write: writable, private to the process, read on first touch.

No Streamlit here: errors are `DataError`s whose message is written for the user.
"""
from __future__ import annotations

import hashlib
import http.client
import io
import json
import logging
import os
import pickle
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from core import settings

log = logging.getLogger(__name__)

CLASSES: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)
MEAN: tuple[float, float, float] = (0.4914, 0.4822, 0.4465)
STD: tuple[float, float, float] = (0.2470, 0.2435, 0.2616)

BATCHES_DIR = "cifar-10-batches-py"
TRAIN_FILES: tuple[str, ...] = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES: tuple[str, ...] = ("test_batch",)
META_FILE = "batches.meta"
ALL_FILES: tuple[str, ...] = (*TRAIN_FILES, *TEST_FILES, META_FILE)
IMAGE_SHAPE = (32, 32, 3)
IMAGE_BYTES = 32 * 32 * 3

# The official archive and its files (the same values as torchvision.datasets.CIFAR10).
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"  # read at call time: tests point it at loopback
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_BYTES = 170_498_071
OFFICIAL_MD5: dict[str, str] = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
DOWNLOAD_TIMEOUT_S = 30

CACHE_VERSION = 1
CACHE_DIRNAME = ".cache"

OFFLINE_REASON = "downloads are off: CIFARLAB_OFFLINE=1"

Progress = Callable[[int, int], None]


class DataError(Exception):
    """A problem with the data whose message is meant for the user (no traceback needed)."""


class DataMissingError(DataError):
    """CIFAR-10 is not there: names the folder looked in, what was tried and the two ways out."""


class DataCorruptError(DataError):
    """A batch file (or a download) is damaged: names the file."""


class ChecksumWarning(UserWarning):
    """The batch files differ from the official CIFAR-10 files (loaded anyway)."""


@dataclass(frozen=True, eq=False)
class Split:
    images: np.ndarray  # uint8 (N, 32, 32, 3), HWC, RGB
    labels: np.ndarray  # int64 (N,)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True, eq=False)
class Dataset:
    train: Split
    test: Split
    classes: tuple[str, ...]
    root: Path
    synthetic: bool
    note: str = ""  # e.g. that the checksums differ from the official files

    @property
    def kind(self) -> str:
        return "synthetic" if self.synthetic else "cifar10"

    @property
    def label(self) -> str:
        return "Synthetic demo set" if self.synthetic else "CIFAR-10"

    def split(self, name: str) -> Split:
        if name not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {name!r}")
        return self.train if name == "train" else self.test


@dataclass(frozen=True)
class DataStatus:
    present: bool
    root: Path
    message: str


# --------------------------------------------------------------------------- finding the files

def _root(root: str | os.PathLike | None, default: Callable[[], Path]) -> Path:
    return default() if root is None else Path(root).expanduser().resolve()


def _missing_files(batch_dir: Path) -> list[str]:
    return [name for name in ALL_FILES if not (batch_dir / name).is_file()]


def cifar10_status(root: str | os.PathLike | None = None) -> DataStatus:
    """Whether CIFAR-10's batch files are in `root/cifar-10-batches-py/` (cheap: nothing is read)."""
    root = _root(root, settings.data_root)
    batch_dir = root / BATCHES_DIR
    missing = _missing_files(batch_dir)
    if not missing:
        return DataStatus(True, root, f"CIFAR-10 found in {batch_dir}")
    if not batch_dir.is_dir():
        return DataStatus(False, root, f"CIFAR-10 not found: {batch_dir} does not exist")
    return DataStatus(False, root, f"CIFAR-10 incomplete in {batch_dir}: missing {', '.join(missing)}")


def _missing_message(root: Path, download: str) -> str:
    batch_dir = root / BATCHES_DIR
    missing = _missing_files(batch_dir)
    if not batch_dir.is_dir():
        where = f"CIFAR-10 was not found: looked in `{batch_dir}`, which does not exist."
    else:
        names = ", ".join(f"`{m}`" for m in missing)
        where = f"CIFAR-10 is incomplete: looked in `{batch_dir}`, which lacks {names}."
    return (
        f"{where}\n\n"
        f"Download: {download}.\n\n"
        "Two ways out:\n"
        "- set CIFAR10_ROOT to a folder that holds `cifar-10-batches-py/` (CIFAR-10's python version), or\n"
        "- use the synthetic demo set: choose \"Synthetic demo set\" in the sidebar, or pass `--demo` on the CLI."
    )


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


def _md5(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _checksum_mismatches(batch_dir: Path) -> list[str]:
    return [name for name in ALL_FILES if _md5(batch_dir / name) != OFFICIAL_MD5[name]]


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


# --------------------------------------------------------------------------- loading

_WARNED_ROOTS: set[Path] = set()


def _checksum_note(mismatched: list[str]) -> str:
    if not mismatched:
        return ""
    which = "None of the files" if len(mismatched) == len(ALL_FILES) else f"Some files ({', '.join(mismatched)})"
    return (f"{which} match the official CIFAR-10 checksums: this is another copy "
            "(e.g. a re-encoded development split); loaded anyway.")


def _load_folder(root: Path, *, synthetic: bool) -> Dataset:
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
        mismatched = [] if synthetic else _checksum_mismatches(batch_dir)
        info = {"fingerprint": fingerprint, "classes": list(classes), "checksum_mismatches": mismatched}
        if _fingerprint(batch_dir) == fingerprint:  # unchanged while we read it
            for base in cache_dirs(root):
                if _write_cache(base, entry_name, train, test, info):
                    break
    note = "" if synthetic else _checksum_note(info.get("checksum_mismatches", []))
    if note and root not in _WARNED_ROOTS:
        _WARNED_ROOTS.add(root)
        warnings.warn(f"CIFAR-10 in {batch_dir}: {note}", ChecksumWarning, stacklevel=3)
    return Dataset(train=train, test=test, classes=classes, root=root, synthetic=synthetic, note=note)


def load_cifar10(root: str | os.PathLike | None = None, *, download: bool = True,
                 progress: Progress | None = None) -> Dataset:
    """CIFAR-10 from `root/cifar-10-batches-py/`, downloading it first when missing and allowed."""
    root = _root(root, settings.data_root)
    if _missing_files(root / BATCHES_DIR):
        if settings.offline():
            raise DataMissingError(_missing_message(root, OFFLINE_REASON))
        if not download:
            raise DataMissingError(_missing_message(
                root, f"not tried here (this loader does not download); the dashboard's \"Download CIFAR-10\" "
                f"button fetches it from {CIFAR10_URL}"))
        download_cifar10(root, progress=progress)
    return _load_folder(root, synthetic=False)


def load_synthetic(root: str | os.PathLike | None = None) -> Dataset:
    """The synthetic demo set from `root` (default CIFARLAB_SYNTHETIC_ROOT), drawn and written first if missing."""
    from core import synthetic

    root = _root(root, settings.synthetic_root)
    if not synthetic.is_current(root):
        synthetic.write_synthetic(root)
    return _load_folder(root, synthetic=True)


def load_dataset(kind: str, root: str | os.PathLike | None = None) -> Dataset:
    """"cifar10" (never downloads) or "synthetic"."""
    if kind == "cifar10":
        return load_cifar10(root, download=False)
    if kind == "synthetic":
        return load_synthetic(root)
    raise ValueError(f"dataset kind must be 'cifar10' or 'synthetic', got {kind!r}")


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


# --------------------------------------------------------------------------- downloading

def download_cifar10(root: str | os.PathLike | None = None, *, progress: Progress | None = None,
                     url: str | None = None) -> Path:
    """Fetch the official archive into `root`, check its MD5, unpack `cifar-10-batches-py/` (unless it is there).

    `progress(done_bytes, total_bytes)` is called as the bytes arrive; a tqdm bar shows in the
    terminal too. Returns the batch folder. Offline or unreachable: DataMissingError.
    """
    root = _root(root, settings.data_root)
    url = url or CIFAR10_URL
    if not _missing_files(root / BATCHES_DIR):
        return root / BATCHES_DIR  # already there: nothing to fetch
    if settings.offline():
        raise DataMissingError(_missing_message(root, OFFLINE_REASON))
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataMissingError(_missing_message(root, f"cannot create `{root}`: {exc.strerror or exc}")) from None
    part = root / (ARCHIVE_NAME + ".part")
    try:
        _fetch(url, part, progress)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise DataMissingError(_missing_message(root, f"downloading {url} failed: {reason}")) from None
    got = _md5(part)
    if got != ARCHIVE_MD5:
        part.unlink(missing_ok=True)
        raise DataCorruptError(
            f"The file downloaded from {url} is damaged: MD5 {got}, the official `{ARCHIVE_NAME}` has "
            f"{ARCHIVE_MD5}. It was deleted; try again."
        )
    _extract(part, root)
    part.unlink(missing_ok=True)
    batch_dir = root / BATCHES_DIR
    bad = _checksum_mismatches(batch_dir)
    if bad:
        raise DataCorruptError(f"Unpacked files in `{batch_dir}` fail their official checksums: {', '.join(bad)}.")
    return batch_dir


def _fetch(url: str, dest: Path, progress: Progress | None) -> None:
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": "cifarlab"})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response, open(dest, "wb") as fh:
        total = int(response.headers.get("Content-Length") or ARCHIVE_BYTES)
        done = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc="CIFAR-10", file=sys.stderr) as bar:
            if progress:
                progress(0, total)
            while chunk := response.read(1 << 18):
                fh.write(chunk)
                done += len(chunk)
                bar.update(len(chunk))
                if progress:
                    progress(done, total)


def _extract(archive: Path, root: Path) -> None:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(BATCHES_DIR + "/") and m.isfile()]
            tar.extractall(root, members=members, filter="data")
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise DataCorruptError(f"Could not unpack `{archive}`: {exc}.") from None


# --------------------------------------------------------------------------- normalisation

def _is_torch(x) -> bool:
    return type(x).__module__.startswith("torch")


def normalize(images_uint8_nhwc):
    """uint8 (N, 32, 32, 3) -> float32 (N, 3, 32, 32) with CIFAR-10's per-channel MEAN and STD.

    Takes a numpy array (returns numpy) or a torch tensor (returns a tensor on its device).
    """
    if _is_torch(images_uint8_nhwc):
        x = images_uint8_nhwc.permute(0, 3, 1, 2).float().div(255.0)
        mean = x.new_tensor(MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(STD).view(1, 3, 1, 1)
        return (x - mean) / std
    x = np.asarray(images_uint8_nhwc)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise ValueError(f"expected images of shape (N, H, W, 3), got {x.shape}")
    x = x.astype(np.float32).transpose(0, 3, 1, 2) / np.float32(255.0)
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray((x - mean) / std)


def denormalize(x_nchw):
    """The exact inverse of `normalize` for display: float (N, 3, H, W) -> float32 (N, H, W, 3) in [0, 1]."""
    if _is_torch(x_nchw):
        x = x_nchw.detach().float()
        mean = x.new_tensor(MEAN).view(1, 3, 1, 1)
        std = x.new_tensor(STD).view(1, 3, 1, 1)
        return (x * std + mean).clamp(0.0, 1.0).permute(0, 2, 3, 1).cpu().numpy()
    x = np.asarray(x_nchw, dtype=np.float32)
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"expected a batch of shape (N, 3, H, W), got {x.shape}")
    mean = np.asarray(MEAN, np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(STD, np.float32).reshape(1, 3, 1, 1)
    return np.ascontiguousarray(np.clip(x * std + mean, 0.0, 1.0).transpose(0, 2, 3, 1))


def to_uint8(x_nchw) -> np.ndarray:
    """Normalised images back to displayable uint8 (N, H, W, 3) pixels."""
    return np.rint(denormalize(x_nchw) * 255.0).astype(np.uint8)
