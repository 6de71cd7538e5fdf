"""Files and folders written whole or not at all: a hidden temporary sibling, then a rename.

A reader (or a crash) never sees half of a file: the old one stays until the rename, and
the temporary is removed on any error, Ctrl-C included. Every file the package writes
goes through here.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]


def temporary_sibling(path: PathLike, kind: str = "tmp") -> Path:
    """``DIR/.NAME.tmp-PID-RANDOM.SUFFIX``: hidden, on the same file system (so the rename
    is atomic), and keeping the suffix, from which writers such as PyAV and Pillow pick
    the format."""
    path = Path(path)
    return path.with_name(f".{path.name}.{kind}-{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write the file at ``path`` to; renamed over ``path`` when
    the block ends, removed if it raises. ``durable``: fsync the file and its folder, so
    the new content survives a power loss, not only a crash of this process."""
    path = Path(path)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        if durable:
            fsync_file(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    if durable:
        fsync_dir(path.parent)


def write_text(path: PathLike, text: str, durable: bool = False) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: PathLike, data: bytes, durable: bool = False) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_directory(path: PathLike, durable: bool = False) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; it takes the place of ``path`` when the
    block ends (an existing folder there is swapped out atomically where the OS can, see
    :func:`replace_directory`), and is removed if the block raises."""
    path = Path(path)
    tmp = temporary_sibling(path)
    tmp.mkdir(parents=False)
    try:
        yield tmp
        if durable:
            for entry in tmp.iterdir():
                if entry.is_file():
                    fsync_file(entry)
            fsync_dir(tmp)
        replace_directory(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if durable:
        fsync_dir(path.parent)


def replace_directory(new: Path, target: Path) -> None:
    """Move the folder ``new`` to ``target``. An existing ``target`` is exchanged with it in
    one step where the OS allows (Linux ``renameat2``), else moved aside first: a crash
    between the two renames leaves the old folder under a hidden ``.NAME.old-PID-...``
    name, never a half-written one, and the old folder is removed at the end."""
    if not target.exists():
        os.rename(new, target)
        return
    if _exchange(new, target):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
        return
    old = temporary_sibling(target, kind="old")
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def fsync_file(path: PathLike) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: PathLike) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:  # not supported (Windows): the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two folders (Linux renameat2); False where unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))
