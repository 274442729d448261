"""backmice: find, measure and annotate back mice on MR and ultrasound DICOM.

The main entry points::

    import backmice
    study = backmice.open_study("path/to/study")   # headers only
    for stack in study.stacks:
        print(stack.role, stack.shape, stack.spacing_mm)
    volume = backmice.load(study.stacks[0])         # pixels, float32, (slice, row, col)

    result = backmice.analyze("path/to/study")     # MRI or ultrasound, DICOM or NIfTI
    result.to_dataframe()                           # the nodules.csv table (pandas)
    result.qc_figure()                              # the QC picture (matplotlib Figure)

A NIfTI file or folder (``.nii``, ``.nii.gz``, dcm2niix sidecars) opens like a
DICOM study (``docs/nifti.md``); in a notebook a result shows its table and QC
picture (``docs/notebook.md``).
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
    "analyze",
    "load",
    "open_study",
]


def __getattr__(name: str):
    # backmice.analyze is imported on first use: ``import backmice`` stays light
    # (the analysis pulls in scikit-image, SciPy and matplotlib).
    if name == "analyze":
        from backmice.notebook import analyze

        return analyze
    raise AttributeError(f"module 'backmice' has no attribute {name!r}")
