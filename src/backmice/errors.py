"""Exceptions raised by backmice: every one derives from :class:`BackmiceError`.

Every problem with what the user gave us (a file, a folder, an option) is an
:class:`InputError`: its message names the file and says what is wrong, and the
command line turns it into exit code 2 with one readable line. Anything else that
escapes is a bug in backmice (exit code 1).

The hierarchy::

    BackmiceError
    ├── InputError (also a ValueError)     bad input: a file, a folder, an option
    ├── OutputError                        the results cannot be written
    ├── StoreError                         the project database cannot be read or written
    │   └── NotAProjectError (also an InputError)
    ├── GeometryError (also a ValueError)  positions that are not a stack of parallel slices
    ├── DecodeError                        every pixel decoder failed on a file
    └── PlacementError (also a RuntimeError)  a phantom lesion does not fit
"""

from __future__ import annotations

import errno
from os import PathLike

__all__ = [
    "WRITE_ERRNOS",
    "BackmiceError",
    "DecodeError",
    "GeometryError",
    "InputError",
    "NotAProjectError",
    "OutputError",
    "PlacementError",
    "StoreError",
]

#: ``errno`` values that mean "this place cannot be written" (not a bug): a full
#: disk or quota, a read-only file system, no permission, a file too large, an
#: I/O error of the device.
WRITE_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}
)


class BackmiceError(Exception):
    """Base class of the errors backmice raises on purpose."""


class InputError(BackmiceError, ValueError):
    """Bad input: the message names the file (when there is one) and the problem.

    Parameters
    ----------
    problem : str
        What is wrong, in words a radiology researcher understands.
    path : str or path-like, optional
        The file or folder the problem is in.
    """

    def __init__(self, problem: str, *, path: str | PathLike[str] | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)


class OutputError(BackmiceError):
    """The results cannot be written where asked (full disk, read-only folder, no permission).

    The command line turns it into exit code 2 with one line naming the file.

    Parameters
    ----------
    problem : str
        What the file system said, in words.
    path : str or path-like, optional
        The file or folder that could not be written.
    """

    def __init__(self, problem: str, *, path: str | PathLike[str] | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {problem}" if self.path else problem)

    @classmethod
    def from_os_error(cls, exc: OSError, path: str | PathLike[str] | None = None) -> OutputError:
        """The error for an :class:`OSError` of :data:`WRITE_ERRNOS` (``path``: where)."""
        why = {
            errno.ENOSPC: "the disk is full",
            errno.EDQUOT: "the disk quota is exceeded",
            errno.EROFS: "the file system is read-only",
            errno.EACCES: "no permission to write here",
            errno.EPERM: "no permission to write here",
            errno.EFBIG: "the file is too large for the file system",
            errno.EIO: "an input/output error on the disk",
        }.get(exc.errno or 0, exc.strerror or str(exc))
        where = path if path is not None else exc.filename
        return cls(f"cannot write the results: {why} ({exc.strerror or exc})", path=where)


class StoreError(BackmiceError):
    """The project database cannot be read or written; the message names the file.

    Parameters
    ----------
    problem : str
        What is wrong.
    path : str or path-like
        The database file.
    code : str, optional
        SQLite's error name (``SQLITE_FULL``, ``SQLITE_READONLY``, ...) where there is one.
    """

    def __init__(self, problem: str, *, path: str | PathLike[str], code: str | None = None) -> None:
        self.problem = problem
        # Always set; typed as InputError's so NotAProjectError can be both.
        self.path: str | None = str(path)
        self.code = code
        super().__init__(f"{self.path}: {problem}")


class NotAProjectError(StoreError, InputError):
    """There is no backmice project (``backmice.db``) where one was expected."""


class GeometryError(BackmiceError, ValueError):
    """Positions and orientation that do not describe a stack of parallel slices."""


class DecodeError(BackmiceError):
    """Every pixel-data decoding plugin failed (the message lists why, plugin by plugin).

    Raised inside :mod:`backmice.io.pixels`, which turns it into an
    :class:`InputError` naming the file.
    """


class PlacementError(BackmiceError, RuntimeError):
    """A phantom lesion does not fit where it was asked to go."""
