"""Batch measurement of a cohort: ``backmice batch`` and :func:`run`.

::

    from backmice.batch import run
    nodules = run("cohort/", "results/", workers=4, resume=True)

Each study folder under the cohort root is analysed in a worker process (a
local pool, or a Dask cluster) and its results land atomically in
``results/studies/<name>/``; the cohort tables ``nodules.csv``,
``nodules.parquet`` and ``studies.csv`` and the picture ``summary.png`` are
written at the end. A study with ultrasound and no MR images is analysed as
ultrasound (:func:`is_ultrasound_study`), the others as MRI. See
``docs/batch.md``.
"""

from __future__ import annotations

from backmice.batch.discover import StudyTask, discover, fingerprint
from backmice.batch.modality import ULTRASOUND, is_ultrasound_study
from backmice.batch.project import to_project
from backmice.batch.runner import ProgressCallback, run
from backmice.batch.tables import STUDY_COLUMNS, read_nodules
from backmice.batch.worker import StudyRecord, StudyStatus

__all__ = [
    "STUDY_COLUMNS",
    "ULTRASOUND",
    "ProgressCallback",
    "StudyRecord",
    "StudyStatus",
    "StudyTask",
    "discover",
    "fingerprint",
    "is_ultrasound_study",
    "read_nodules",
    "run",
    "to_project",
]
