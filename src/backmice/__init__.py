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

    options = backmice.AnalysisOptions(method=backmice.Method.DIXON, threshold=0.45)
    result = backmice.analyze("path/to/study", options=options)

    us = backmice.analyze_ultrasound(backmice.load(stack), seed=(212.0, 96.0))

    project = backmice.Project.open("reads/")       # the annotation store

A NIfTI file or folder (``.nii``, ``.nii.gz``, dcm2niix sidecars) opens like a
DICOM study (``docs/nifti.md``); in a notebook a result shows its table and QC
picture (``docs/notebook.md``). ``docs/architecture.md`` shows where each part
lives; the contract (columns, vocabularies, units) is ``docs/SPEC.md``.

Only the loading functions are imported with the package: the analysis, the
ultrasound analysis and the store (scikit-image, SciPy, matplotlib, SQLite) load
on first use of their names, so ``import backmice`` stays light.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from backmice.errors import BackmiceError, InputError, OutputError, StoreError
from backmice.io import Role, SkippedFile, Stack, Study, Volume, load, open_study
from backmice.vocab import Method, RedFlag, Relation, Side, Status, Subtype

if TYPE_CHECKING:
    from backmice.analysis import Analysis, AnalysisOptions
    from backmice.measure.red_flags import RedFlagRules
    from backmice.notebook import analyze
    from backmice.segment.candidates import CandidateOptions
    from backmice.store import Project
    from backmice.ultrasound import UltrasoundResult, analyze_ultrasound

__version__ = "0.1.0.dev0"

__all__ = [
    "Analysis",
    "AnalysisOptions",
    "BackmiceError",
    "CandidateOptions",
    "InputError",
    "Method",
    "OutputError",
    "Project",
    "RedFlag",
    "RedFlagRules",
    "Relation",
    "Role",
    "Side",
    "SkippedFile",
    "Stack",
    "Status",
    "StoreError",
    "Study",
    "Subtype",
    "UltrasoundResult",
    "Volume",
    "__version__",
    "analyze",
    "analyze_ultrasound",
    "load",
    "open_study",
]

#: Names imported on first use, and the module each lives in.
_LAZY = {
    "analyze": "backmice.notebook",
    "Analysis": "backmice.analysis",
    "AnalysisOptions": "backmice.analysis",
    "CandidateOptions": "backmice.segment.candidates",
    "RedFlagRules": "backmice.measure.red_flags",
    "analyze_ultrasound": "backmice.ultrasound",
    "UltrasoundResult": "backmice.ultrasound",
    "Project": "backmice.store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'backmice' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
