"""backmice: find, measure and annotate back mice on MR and ultrasound DICOM.

The main entry points::

    import backmice
    study = backmice.open_study("path/to/study")   # headers only
    for stack in study.stacks:
        print(stack.role, stack.shape, stack.spacing_mm)
    volume = backmice.load(study.stacks[0])         # pixels, float32, (slice, row, col)
"""

from __future__ import annotations

from backmice.errors import BackmiceError, InputError
from backmice.io import Role, SkippedFile, Stack, Study, Volume, load, open_study

__version__ = "0.1.0.dev0"

__all__ = [
    "BackmiceError",
    "InputError",
    "Role",
    "SkippedFile",
    "Stack",
    "Study",
    "Volume",
    "__version__",
    "load",
    "open_study",
]
