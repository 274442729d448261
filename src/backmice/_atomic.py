"""Atomic, crash-safe file writes: write a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from backmice.errors import WRITE_ERRNOS, OutputError

__all__ = ["atomic_path", "write_bytes", "write_text"]

# mkstemp makes files readable by their owner only; results follow the umask instead.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path in the target's folder that replaces ``target`` on success.

    The temporary file keeps the target's suffixes (``.nii.gz``) so writers that
    choose a format by extension work. On error it is removed and the target is
    left as it was; on success it is flushed to disk and renamed over the target
    (atomic on POSIX and Windows).
    """
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        suffix = "".join(target.suffixes) or ".tmp"
        fd, name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=suffix, dir=target.parent)
        os.close(fd)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS:
            raise OutputError.from_os_error(exc, target) from exc
        raise
    tmp = Path(name)
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        tmp.chmod(0o666 & ~_UMASK)
        tmp.replace(target)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.errno in WRITE_ERRNOS:  # a full disk, a read-only folder: not a bug
            raise OutputError.from_os_error(exc, target) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically."""
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically.

    A file name that is not valid UTF-8 (surrogate escapes, as :mod:`os` gives
    it) is written with its undecodable bytes as ``\\xff`` escapes
    (:func:`backmice._names.printable`) rather than failing the whole file.
    """
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        from backmice._names import printable

        data = printable(text).encode("utf-8", "backslashreplace")
    return write_bytes(target, data)
