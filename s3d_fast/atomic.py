"""Files and folders written whole or not at all: a hidden temporary sibling, then a rename.

A reader (or a crash) never sees half of a file: the old one stays until the rename, and
the temporary is removed on any error, Ctrl-C included. Every file the package writes
goes through here, so here too an existing path that is not what is being written (a
device node, a FIFO, a symlink, a folder where a file belongs) is refused rather than
replaced, and the temporaries of writers that were killed are swept away.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import re
import secrets
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from .errors import S3DError

PathLike = Union[str, os.PathLike]


class OutputPathError(S3DError):
    """An output path holds something this package must not replace."""


def check_output_file(path: PathLike) -> None:
    """Refuse an existing ``path`` that is not a regular file: a symlink, device node,
    FIFO, socket or folder would be replaced (or written through) by a plain file."""
    _check_existing(Path(path), stat.S_ISREG, "a file")


def check_output_folder(path: PathLike) -> None:
    """Refuse an existing ``path`` that is not a real folder (a file, a symlink...)."""
    _check_existing(Path(path), stat.S_ISDIR, "a folder")


def _check_existing(path: Path, is_wanted, wanted: str) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot be written ({exc.strerror or exc})") from None
    if stat.S_ISLNK(mode):
        raise OutputPathError(f"{path} is a symbolic link; refusing to replace it with {wanted}")
    if not is_wanted(mode):
        raise OutputPathError(f"{path} exists and is {_kind(mode)}, not {wanted}; refusing to replace it")


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def make_output_folder(path: PathLike, what: str = "--out") -> bool:
    """Create the output folder ``path`` (and its parents) and check that files can be
    written in it: one :class:`OutputPathError` naming ``what`` otherwise. Returns whether
    it was created here."""
    path = Path(path)
    try:
        check_output_folder(path)
    except OutputPathError as exc:
        raise OutputPathError(f"{what} {exc}") from None
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe_writable(path)
    except OSError as exc:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()
        raise OutputPathError(f"{what} {path}: cannot write there ({exc.strerror or exc})") from None
    return created


@contextlib.contextmanager
def output_folder(path: PathLike, what: str = "--out") -> Iterator[Path]:
    """:func:`make_output_folder`, and if the block raises while the folder it created is
    still empty, the folder is removed again: a failed command leaves nothing behind."""
    path = Path(path)
    created = make_output_folder(path, what)
    try:
        yield path
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only succeeds while empty
        raise


def probe_writable(folder: PathLike) -> None:
    """Raise OSError unless a file can be created in ``folder``: tried for real, since
    permission bits say nothing to root or on a read-only mount."""
    probe = temporary_sibling(Path(folder) / "write-test")
    probe.touch(exist_ok=False)
    probe.unlink()


def sweep_stale_temporaries(path: PathLike) -> list[Path]:
    """Remove the temporary siblings of ``path`` (``.NAME.tmp-PID-...``, our own naming
    only) whose writing process is no longer alive: what a SIGKILL or a power loss left
    behind. Returns what was removed. A checkpoint folder's ``.old-`` sibling is the
    checkpoint store's to recover (``RunDirectory.prune``), so only ``tmp`` ones go."""
    path = Path(path)
    folder = path.parent
    pattern = re.compile(r"^\." + re.escape(path.name) + r"\.tmp-(\d+)-[0-9a-f]{8}" + re.escape(path.suffix) + "$")
    removed = []
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else []
    except OSError:
        return removed
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None or pid_alive(int(m.group(1))):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue  # someone else's to clear (permissions) or already gone
        removed.append(entry)
    return removed


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (ours counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


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
    check_output_file(path)
    sweep_stale_temporaries(path)
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
    check_output_folder(path)
    sweep_stale_temporaries(path)
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
