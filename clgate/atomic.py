"""Atomic file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from clgate.errors import InputError


def writable_file(path: Path, option: str = "") -> Path:
    """`path`, once it is sure a file can be written there (its folder made): an InputError names why not,
    and the command-line `option` it came from.

    Commands that record something and then write a file call it first, so a bad output path is bad
    input before the record, not an error after it.
    """
    path = Path(path)
    where = f"{option} {path}" if option else str(path)
    if path.is_dir():
        raise InputError(f"{where}: is a folder; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{where}: cannot create its folder ({exc.strerror})") from None
    try:  # the file itself is replaced, not written into: a file must be creatable beside it
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.probe-"):
            pass
    except OSError as exc:
        raise InputError(f"{where}: its folder is not writable ({exc.strerror})") from None
    return path


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; it replaces `path` only if the block succeeds."""
    path = writable_file(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: Path, data: bytes, mode: int | None = None) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        if mode is not None:
            os.chmod(tmp, mode)
    return Path(path)


def write_text_atomic(path: Path, text: str, mode: int | None = None) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"), mode)


@contextlib.contextmanager
def lock_file(path: Path, busy: str | None = None) -> Iterator[None]:
    """Hold an advisory lock on `path` (made if missing, never truncated, never followed if a link: a link
    planted there pointed the lock at a trust file or a key, and opening it for writing emptied that). With
    `busy`, a lock another process holds is that InputError at once instead of a wait."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise InputError(f"{path}: cannot open the lock file ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (fcntl.LOCK_NB if busy else 0))
        except BlockingIOError:
            raise InputError(busy or "") from None
        yield
    finally:
        os.close(fd)
