"""Files that are never left half-written, and their digests: every writer in the package uses these."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path


def check_output_dir(path: str | Path, what: str) -> Path:
    """``path`` as a folder to write into, checked before any work: it, or its nearest existing ancestor, must be a
    writable folder. Creates nothing; a failure names the option (``what``) and the path."""
    path = Path(path).expanduser()
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "" if existing == path else f" cannot be created: {existing}"
        raise NotADirectoryError(f"{what} {path}{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"{what} {path}: folder {existing} is not writable")
    return path


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_of(path: str | Path) -> str:
    return file_digest(path, "sha256")


def is_disk_full(error: BaseException) -> bool:
    """Whether ``error`` is a write that found no room: a full disk or quota, or a file-size limit."""
    return isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def remove_stale_temps(path: str | Path) -> list[Path]:
    """Delete the temp files and folders that killed writes of ``path`` left beside it (``.NAME.*.tmp``: those of
    :func:`atomic_write` and :func:`staging_folder`).

    A writer holds an exclusive ``flock`` on its temp file or folder until it is done, and the kernel drops the lock
    when the writer dies, so a temp whose lock can be taken is abandoned; live writers' temps are kept.
    """
    path = Path(path)
    removed = []
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        try:
            fd = os.open(stale, os.O_RDONLY)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if stale.is_dir():
                shutil.rmtree(stale)
            else:
                stale.unlink(missing_ok=True)
            removed.append(stale)
        except OSError:  # locked by a live writer (BlockingIOError) or already gone
            pass
        finally:
            os.close(fd)
    return removed


#: Mode of every file this project writes (temp-file writers such as mkstemp and safetensors create 0600), and of its folders.
FILE_MODE, FOLDER_MODE = 0o644, 0o755


def atomic_write(path: str | Path, content: str | bytes | Callable[[Path], object]) -> Path:
    """Write ``content`` (text, bytes, or a callable that writes to the path it is given) to a temp file in
    the same folder, then rename it over ``path``: a crash or an error leaves the old file or nothing.
    Temp files of earlier, killed writes of the same ``path`` are removed first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # marks the temp file as in use until this write ends
        if callable(content):
            content(tmp)
        else:
            tmp.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return path


#: Folders this process holds a :func:`folder_lock` on, by (device, inode).
_HELD: set[tuple[int, int]] = set()


@contextlib.contextmanager
def folder_lock(folder: str | Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``folder`` itself (no lock file is left behind): writers that move several
    files into one folder take it around the moves, so concurrent writers of the same output serialise and
    their files never mix. Released when the block ends or the process dies. A folder this process already holds
    (a staging folder it builds an output in) is not locked again: that would wait on itself."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    stat = os.fstat(fd)
    key = (stat.st_dev, stat.st_ino)
    try:
        if key in _HELD:
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)


@contextlib.contextmanager
def staging_folder(folder: str | Path, name: str) -> Iterator[Path]:
    """A new hidden folder ``folder/.NAME.*.tmp`` to build an output of several files in (``folder`` is created if
    needed); it is removed when the block ends, so what is not moved out of it (:func:`move_into_place`) is never
    seen. It is held with :func:`folder_lock` while in use: the folders of killed runs, which no one holds, are
    removed when ``NAME`` is staged again. A full disk met in the block is reported as one at ``folder/NAME``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(folder / name)
    workdir = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}.", suffix=".tmp"))
    with folder_lock(workdir):
        try:
            yield workdir
        except OSError as e:
            if is_disk_full(e) and (e.filename is None or workdir in Path(e.filename).parents):
                e.filename, e.filename2 = str(folder / name), None  # the output, not a temp file or nothing at all
            raise
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def move_into_place(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename each staged file onto its final path (all in one folder), in the order given, holding
    :func:`folder_lock` on that folder. Every target is checked first, so a folder in the way stops them all
    before any lands; renames need no space, so once they start only a kill can leave some of them undone."""
    folder = moves[0][1].parent
    with folder_lock(folder):
        for _, final in moves:
            if final.is_dir():
                raise IsADirectoryError(errno.EISDIR, "a folder is in the way of a file to be written", str(final))
        for staged, final in moves:
            os.replace(staged, final)


def save_png(fig, path: str | Path, dpi: float | str = "figure") -> Path:
    """Write a matplotlib figure as PNG with :func:`atomic_write`, then close it (plots are written once)."""
    import matplotlib.pyplot as plt

    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=dpi))
    finally:
        plt.close(fig)
