"""Write an analysis: nodules.csv and .json, labels.nii.gz, fascia.nii.gz and qc.png.

Every file is written atomically (a temporary file renamed over the target), so
an interrupted run never leaves a half-written result behind.
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import io
import json
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import SimpleITK as sitk

from backmice import __version__
from backmice._atomic import atomic_path, write_text
from backmice._spreadsheet import FORMULA_STARTS, spreadsheet_safe, spreadsheet_text
from backmice.vocab import COLUMNS, DETAILS

if TYPE_CHECKING:
    from backmice.analysis import Analysis

__all__ = [
    "FORMULA_STARTS",
    "nodules_csv",
    "spreadsheet_safe",
    "spreadsheet_text",
    "write_analysis",
    "write_csv",
    "write_json",
    "write_nifti",
]

log = logging.getLogger(__name__)

#: Decimals kept for lengths and volumes in the tables (a micrometre).
DECIMALS = 3


def _cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else round(value, DECIMALS)
    return spreadsheet_safe(value)


def _json_value(value: object) -> object:
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, DECIMALS)
    if isinstance(value, np.generic):
        return _json_value(value.item())
    return value


def nodules_csv(rows: Sequence[dict], *, columns: Sequence[str] = COLUMNS) -> str:
    """The rows as CSV text (header first; empty cells for missing values)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buffer.getvalue()


def write_csv(path: str | os.PathLike[str], rows: Sequence[dict]) -> Path:
    """Write the nodule rows as CSV (SPEC columns, in order)."""
    return write_text(path, nodules_csv(rows))


def write_json(
    path: str | os.PathLike[str],
    rows: Sequence[dict],
    *,
    columns: Sequence[str] = COLUMNS,
    **about: object,
) -> Path:
    """Write the nodule rows as JSON: ``{"backmice_version", **about, "nodules": [...]}``.

    Each nodule has ``columns`` (default the SPEC columns; an ultrasound result
    adds its extra columns), then the :data:`backmice.vocab.DETAILS` the row
    carries (``red_flag_criteria``: each red-flag criterion with its measured
    value), which the CSV leaves out.
    """
    doc = {"backmice_version": __version__, **about}
    doc["nodules"] = [
        {
            **{c: _json_value(row.get(c)) for c in columns},
            **{k: row[k] for k in DETAILS if row.get(k) is not None},
        }
        for row in rows
    ]
    return write_text(path, json.dumps(doc, indent=1) + "\n")


def _itk_image(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image (LPS, like DICOM) of an array indexed (slice, row, col)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)  # slice, row, col
    direction = np.stack(
        [affine[:3, 2] / spacing[2], affine[:3, 1] / spacing[1], affine[:3, 0] / spacing[0]],
        axis=1,
    )
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))
    image.SetOrigin(tuple(float(v) for v in affine[:3, 3]))
    image.SetDirection(tuple(float(v) for v in direction.ravel()))
    return image


def write_nifti(path: str | os.PathLike[str], array: np.ndarray, affine: np.ndarray) -> Path:
    """Write a volume indexed (slice, row, col) in its patient geometry (NIfTI, via SimpleITK).

    SimpleITK converts DICOM's LPS to NIfTI's RAS, so the file opens in the
    right place in 3D Slicer, ITK-SNAP or nibabel.
    """
    with atomic_path(path) as tmp:
        sitk.WriteImage(_itk_image(array, affine), str(tmp), useCompression=True)
        _check_written(tmp, array.shape)
    return Path(path)


def _check_written(path: Path, shape: tuple[int, ...]) -> None:
    """Read a NIfTI file back: ITK's writer only prints (``NWAD: wrote only 0 of N bytes``)
    when the disk is full, and would leave an empty file behind.

    Raises
    ------
    OSError
        ``ENOSPC`` (the usual cause) when the file cannot be read back whole.
    """
    try:
        back = sitk.ReadImage(str(path))
        ok = tuple(reversed(back.GetSize())) == tuple(shape)
    except RuntimeError:
        ok = False
    if not ok:
        raise OSError(errno.ENOSPC, "the file could not be written whole (disk full?)", str(path))


def write_analysis(
    analysis: Analysis, out: str | os.PathLike[str], *, qc: bool = True
) -> dict[str, Path]:
    """Write every result file of an analysis into ``out``.

    Parameters
    ----------
    analysis : Analysis
    out : path-like
        Folder (created if missing).
    qc : bool
        Also draw ``qc.png``.

    Returns
    -------
    dict of str to Path
        What was written, by kind.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    volume = analysis.volume
    affine = volume.affine if volume.calibrated else np.eye(4)
    written = {
        "csv": write_csv(out / "nodules.csv", analysis.nodules),
        "json": write_json(
            out / "nodules.json",
            analysis.nodules,
            study=analysis.study,
            source_files=[str(p.resolve()) for s in analysis.stacks for p in s.paths],
            method=str(analysis.method),
            threshold=analysis.fat.threshold,
            series=[
                {
                    "series_uid": s.series_uid,
                    "role": str(s.role),
                    "description": s.description,
                    "shape": list(s.shape),
                    "spacing_mm": list(s.spacing_mm),
                }
                for s in analysis.stacks
            ],
            units=volume.units,
            sacrum_top_z_mm=analysis.sacrum_top_z_mm,
            warnings=analysis.warnings,
            # What the red flags were raised by: a re-measure (the store) uses the same.
            red_flag_rules=dataclasses.asdict(analysis.red_flag_rules),
        ),
        "labels": write_nifti(out / "labels.nii.gz", analysis.labels.astype(np.uint16), affine),
        "fascia": write_nifti(
            out / "fascia.nii.gz", analysis.fascia.signed_mm.astype(np.float32), affine
        ),
    }
    if qc:
        from backmice.report.qc import qc_figure

        with atomic_path(out / "qc.png") as tmp:
            qc_figure(analysis, tmp)
        written["qc"] = out / "qc.png"
    log.info("wrote %s", ", ".join(str(p) for p in written.values()))
    return written
