"""Tables and label maps of an export: ``nodules.csv``, ``nodules.json``, ``<study>/labels.nii.gz``.

They reuse the analysis' writers (:mod:`backmice.report.write`): the same SPEC
columns in the same order, written atomically. Neither carries a patient name,
ID or birth date (SPEC columns have none, and no source file paths are
written); with a :class:`~backmice.export.anonymize.Pseudonymizer` the
``study`` column becomes the study's pseudonym too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from backmice.export.anonymize import Pseudonymizer
from backmice.export.source import Annotations
from backmice.report.write import write_csv, write_json, write_nifti

__all__ = ["export_rows", "write_labels", "write_table_csv", "write_table_json"]


def export_rows(
    annotations: Sequence[Annotations], *, pseudonymizer: Pseudonymizer | None = None
) -> list[dict]:
    """Every study's rows, in study then ``nodule_id`` order (``study`` pseudonymised if asked)."""
    rows = []
    for ann in annotations:
        study = ann.study if pseudonymizer is None else pseudonymizer.study(ann.study)
        for row in sorted(ann.rows, key=lambda r: int(r["nodule_id"])):
            rows.append({**row, "study": study})
    return rows


def write_table_csv(
    out: str | os.PathLike[str],
    annotations: Sequence[Annotations],
    *,
    pseudonymizer: Pseudonymizer | None = None,
) -> Path:
    """Write ``out/nodules.csv`` (SPEC columns)."""
    return write_csv(
        Path(out) / "nodules.csv", export_rows(annotations, pseudonymizer=pseudonymizer)
    )


def write_table_json(
    out: str | os.PathLike[str],
    annotations: Sequence[Annotations],
    *,
    pseudonymizer: Pseudonymizer | None = None,
    reader: str | None = None,
) -> Path:
    """Write ``out/nodules.json``: ``{"backmice_version", "anonymized", "reader", "nodules"}``."""
    return write_json(
        Path(out) / "nodules.json",
        export_rows(annotations, pseudonymizer=pseudonymizer),
        anonymized=pseudonymizer is not None,
        reader=reader,
    )


def write_labels(path: str | os.PathLike[str], annotations: Annotations) -> Path:
    """Write the labels as NIfTI in their patient geometry (``uint16``, label = ``nodule_id``)."""
    import numpy as np

    return write_nifti(path, annotations.labels.astype(np.uint16), annotations.affine)
