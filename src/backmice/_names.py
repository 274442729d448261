"""Safe file and folder names from untrusted text (DICOM descriptions, folder names).

A name built from SeriesDescription, PatientName or a folder name found on
disk must never escape the output folder or confuse a shell or a file system:
:func:`safe_name` keeps one path component of plain characters.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from pathlib import Path

__all__ = ["printable", "safe_name", "study_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")
#: Names Windows refuses whatever the extension (outputs are often copied there).
_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"{p}{i}" for p in ("COM", "LPT") for i in range(1, 10)}


def safe_name(text: object, *, max_len: int = 80, fallback: str = "unnamed") -> str:
    """One safe path component made from ``text``.

    Accents are folded to ASCII, every run of other characters (path
    separators, control characters, spaces, quotes) becomes ``_``, leading dots
    and dashes are removed (no ``..``, no hidden files, no option-like names),
    and a name cut to ``max_len`` or changed at all keeps a short hash of the
    original so that two different inputs never share one name.

    Parameters
    ----------
    text : object
        Any text; ``bytes`` are decoded as UTF-8 with replacement.
    max_len : int
        Longest name returned, in characters (at least 16).
    fallback : str
        Stem used when nothing printable is left.

    Returns
    -------
    str
        Matches ``[A-Za-z0-9][A-Za-z0-9._+-]*``; never ``.``/``..``, never absolute.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    raw = str(text)
    ascii_ = unicodedata.normalize("NFKD", raw).encode("ascii", "ignore").decode("ascii")
    name = _UNSAFE.sub("_", ascii_).strip("_").lstrip(".-_+")
    name = name.rstrip(". ")
    if not name:
        name = fallback
    if name.split(".")[0].upper() in _RESERVED:
        name = "x" + name
    max_len = max(int(max_len), 16)
    if name != raw or len(name) > max_len:
        digest = hashlib.sha1(raw.encode("utf-8", "surrogateescape")).hexdigest()[:8]
        name = f"{name[: max_len - 9]}-{digest}"
    return name


def printable(text: str) -> str:
    """``text`` as valid Unicode: undecodable bytes of a file name become ``\\xff``.

    A file or folder name that is not valid UTF-8 reaches Python with surrogate
    escapes, which no UTF-8 file (CSV, JSON) can hold; this shows each such byte
    as its escape, so the name stays readable and distinct.

    Parameters
    ----------
    text : str
        A name as :mod:`os` returns it.

    Returns
    -------
    str
        Encodable as UTF-8.
    """
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def study_name(path: str | os.PathLike[str]) -> str:
    """The name a study is reported under: its folder's (or file's) name, printable.

    Parameters
    ----------
    path : path-like
        What was opened (a folder, a file or a DICOMDIR).

    Returns
    -------
    str
    """
    return printable(Path(path).name or str(path))
