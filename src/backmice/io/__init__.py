"""DICOM study loading: :func:`open_study` reads headers, :func:`load` reads pixels."""

from __future__ import annotations

from backmice.io.load import load
from backmice.io.model import FrameRef, Role, SkippedFile, Stack, Study, UltrasoundRegion, Volume
from backmice.io.scan import open_study

__all__ = [
    "FrameRef",
    "Role",
    "SkippedFile",
    "Stack",
    "Study",
    "UltrasoundRegion",
    "Volume",
    "load",
    "open_study",
]
