"""CIFAR-10 on disk: find it, download and verify the official archive, load it.

The files are read by core.data.batch_files. A local copy whose checksums differ from the official
archive (for example one rebuilt from JPEGs) loads with a single warning, never a refusal.
"""
from __future__ import annotations

import http.client
import os
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

from core import settings
from core.data.batch_files import ALL_FILES, BATCHES_DIR, damage, file_md5, load_folder, missing_files
from core.data.dataset import DataCorruptError, DataMissingError, DataStatus, Dataset

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

OFFLINE_REASON = "downloads are off: CIFARLAB_OFFLINE=1"

Progress = Callable[[int, int], None]


def _root(root: str | os.PathLike | None) -> Path:
    return settings.data_root() if root is None else Path(root).expanduser().resolve()


def cifar10_status(root: str | os.PathLike | None = None) -> DataStatus:
    """Whether CIFAR-10's batch files are in `root/cifar-10-batches-py/` and look whole (cheap: sizes
    and two bytes of each file are read, nothing is decoded)."""
    root = _root(root)
    batch_dir = root / BATCHES_DIR
    missing = missing_files(batch_dir)
    if not missing:
        problems = {name: why for name in ALL_FILES if (why := damage(batch_dir / name))}
        if problems:
            listed = "; ".join(f"`{name}` is {why}" for name, why in problems.items())
            return DataStatus(True, root, f"CIFAR-10 in {batch_dir} is damaged: {listed}. Delete the folder and "
                              "download CIFAR-10 again (or rebuild your copy), or use the synthetic demo set.",
                              damaged=tuple(problems))
        return DataStatus(True, root, f"CIFAR-10 found in {batch_dir}")
    if not batch_dir.is_dir():
        return DataStatus(False, root, f"CIFAR-10 not found: {batch_dir} does not exist")
    return DataStatus(False, root, f"CIFAR-10 incomplete in {batch_dir}: missing {', '.join(missing)}")


def _missing_message(root: Path, download: str) -> str:
    batch_dir = root / BATCHES_DIR
    missing = missing_files(batch_dir)
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


def _checksum_mismatches(batch_dir: Path) -> list[str]:
    return [name for name in ALL_FILES if file_md5(batch_dir / name) != OFFICIAL_MD5[name]]


def _checksum_note(mismatched: list[str]) -> str:
    if not mismatched:
        return ""
    which = "None of the files" if len(mismatched) == len(ALL_FILES) else f"Some files ({', '.join(mismatched)})"
    return (f"{which} match the official CIFAR-10 checksums: this is another copy "
            "(e.g. a re-encoded development split); loaded anyway.")


def load_cifar10(root: str | os.PathLike | None = None, *, download: bool = True,
                 progress: Progress | None = None) -> Dataset:
    """CIFAR-10 from `root/cifar-10-batches-py/`, downloading it first when missing and allowed."""
    root = _root(root)
    if missing_files(root / BATCHES_DIR):
        if settings.offline():
            raise DataMissingError(_missing_message(root, OFFLINE_REASON))
        if not download:
            raise DataMissingError(_missing_message(
                root, f"not tried here (this loader does not download); the dashboard's \"Download CIFAR-10\" "
                f"button fetches it from {CIFAR10_URL}"))
        download_cifar10(root, progress=progress)
    return load_folder(root, synthetic=False, check=_checksum_mismatches, note_for=_checksum_note)


# --------------------------------------------------------------------------- downloading

def download_cifar10(root: str | os.PathLike | None = None, *, progress: Progress | None = None,
                     url: str | None = None) -> Path:
    """Fetch the official archive into `root`, check its MD5, unpack `cifar-10-batches-py/` (unless it is there).

    `progress(done_bytes, total_bytes)` is called as the bytes arrive; a tqdm bar shows in the
    terminal too. Returns the batch folder. Offline or unreachable: DataMissingError.
    """
    root = _root(root)
    url = url or CIFAR10_URL
    if not missing_files(root / BATCHES_DIR):
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
    got = file_md5(part)
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


