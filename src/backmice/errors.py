"""Exceptions raised by backmice.

Every problem with what the user gave us (a file, a folder, an option) is an
:class:`InputError`: its message names the file and says what is wrong, and the
command line turns it into exit code 2 with one readable line. Anything else that
escapes is a bug in backmice (exit code 1).
"""

from __future__ import annotations

from os import PathLike

__all__ = ["BackmiceError", "InputError"]


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
