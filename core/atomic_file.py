"""Write a file so that a crash or a kill leaves the old version or the new one, never a torn file.

    with atomic_write(path) as fh: ...                # any writer that wants a binary file object
    atomic_write_bytes(path, data, keep=older)        # bytes already in memory; the replaced file
                                                      # is kept as `older` (its own name, same bytes)
    remove_temporaries(folder, ["last.pt"])           # what kills left behind: .last.pt.<random>.tmp
    file_problem(error, folder)                       # what an OSError means, and what fixes it

Both writers put the data in a temporary file `.<name>.<random>.tmp` next to the target, flush it
to disk, then rename it over the target. A kill can leave such a temporary file behind (never a
torn target): remove_temporaries clears them at a moment when nobody else writes there.

atomic_write_bytes writes with os.write, so a full disk or a folder that may not be written
surfaces as a plain OSError (ENOSPC, EACCES, ...) that file_problem turns into words for the user.
"""
from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

_CHUNK = 8 << 20   # bytes per os.write call


@contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Yield a binary file handle; on success its bytes replace `path` in one rename.

    The data goes to a temporary file in the same folder, is flushed to disk, then renamed
    over `path`. On any error the temporary file is removed and `path` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview, *,
                       keep: str | os.PathLike | None = None) -> Path:
    """Replace `path` with `data` in one rename; OSError (the file system's own) when it cannot.

    With `keep`, the file being replaced stays readable under that name (a hard link made just
    before the rename, so `path` never goes missing; a rename where the file system has no hard
    links). On any error the temporary file is removed, and `path` and `keep` are as they were.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        try:
            view = memoryview(data).cast("B")
            while len(view):
                written = os.write(fd, view[:_CHUNK])
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        if keep is not None and path.is_file():
            _keep_copy(path, Path(keep))
        os.replace(tmp, path)
    except BaseException:
        with suppress(OSError):
            Path(tmp).unlink(missing_ok=True)
        raise
    _sync_folder(path.parent)
    return path


def _keep_copy(path: Path, keep: Path) -> None:
    """`keep` becomes the file now at `path` (which is about to be replaced)."""
    link = keep.with_name(f".{keep.name}.link.tmp")
    try:
        link.unlink(missing_ok=True)
        os.link(path, link)
        os.replace(link, keep)
    except OSError:
        with suppress(OSError):
            link.unlink(missing_ok=True)
        os.replace(path, keep)   # no hard links here: for an instant there is only `keep`


def _sync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: not every system can open a folder)."""
    with suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_temporaries(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """Remove the temporary files these writers leave for `names` in `folder` when killed
    (`.<name>.<anything>.tmp`); returns those removed. Call it only while nothing writes them."""
    folder = Path(folder)
    removed = []
    for name in names:
        for path in sorted(folder.glob(f".{name}.*.tmp")):
            try:
                path.unlink()
            except OSError:
                continue  # gone already, or not ours to remove: left for the next time
            removed.append(path)
    return removed


@dataclass(frozen=True)
class FileProblem:
    """What an OSError says about a folder, in the user's words."""
    kind: str     # "full" | "not_writable" | "read_only"
    cause: str    # e.g. "the disk holding /runs/3 is full (No space left on device)"
    fix: str      # e.g. "Free some space there"


FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM})


def file_problem(error: BaseException, folder: str | os.PathLike) -> FileProblem | None:
    """The cause and the fix when `error` is the machine's doing (a full disk, a quota, a folder
    without write permission, a read-only file system) while writing in `folder`; else None."""
    if not isinstance(error, OSError) or error.errno is None:
        return None
    reason = error.strerror or os.strerror(error.errno)
    if error.errno in FULL:
        fix = "Free some space there" + (" (or raise the disk quota)" if error.errno != errno.ENOSPC else "")
        return FileProblem("full", f"the disk holding {folder} is full ({reason})", fix)
    if error.errno in NOT_WRITABLE:
        return FileProblem("not_writable", f"the folder {folder} is not writable ({reason})",
                           f"Fix its permissions so that this user may write there (e.g. chmod u+w '{folder}')")
    if error.errno == errno.EROFS:
        return FileProblem("read_only", f"the folder {folder} is read-only ({reason})",
                           "Remount its disk read-write")
    return None
