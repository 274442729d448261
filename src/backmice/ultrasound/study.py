"""Ultrasound of a study: pick the stack, analyse a frame (or every cine frame), write it.

:func:`analyze_ultrasound` runs :func:`~backmice.ultrasound.analyze_frame` on a
loaded ultrasound :class:`~backmice.io.Volume` and turns its nodules into rows
of every SPEC column (plus :data:`~backmice.ultrasound.EXTRA_COLUMNS`);
:func:`write_ultrasound` writes the same files as the MRI analysis.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backmice import __version__
from backmice._atomic import atomic_path, write_text
from backmice.errors import InputError
from backmice.io import Role, Stack, Study, Volume
from backmice.report.write import nodules_csv, write_nifti
from backmice.ultrasound.frame import EXTRA_COLUMNS, UltrasoundAnalysis, analyze_frame
from backmice.vocab import COLUMNS, Side

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "SPREAD_KEYS",
    "UltrasoundResult",
    "analyze_ultrasound",
    "choose_ultrasound",
    "result_rows",
    "seed_in_region",
    "side_from_header",
    "write_ultrasound",
]

log = logging.getLogger(__name__)

#: Smallest tissue region analysed, pixels a side.
MIN_SIZE_PX = 8
#: Pixel sizes (mm) the ultrasound analysis works on: its filters are sized in
#: mm; at 0.003 mm a frame took minutes, at 50 mm the fascia search broke.
ANALYSIS_PIXEL_MM = (0.02, 2.0)
#: Measurements whose spread over the cine frames is reported.
SPREAD_KEYS: tuple[str, ...] = (
    "long_axis_mm",
    "short_axis_mm",
    "area_mm2",
    "fascia_offset_mm",
    "fascia_min_mm",
    "fascia_max_mm",
    "skin_depth_mm",
    "fascia_depth_mm",
)


@dataclass(slots=True)
class UltrasoundResult:
    """The analysis of one ultrasound series.

    Attributes
    ----------
    study : str
        The study's name (folder or file name).
    volume : Volume
        The loaded series (cropped to its tissue region).
    frame : int
        The frame measured (0-based).
    analysis : UltrasoundAnalysis
        Lines, labels and nodules of that frame.
    nodules : list of dict
        One row per nodule: every SPEC column plus ``EXTRA_COLUMNS``.
    spread : list of dict
        With every frame measured: per nodule, ``nodule_id``, ``frames`` (how
        many frames found it) and ``min``/``median``/``max`` of each of
        :data:`SPREAD_KEYS`. Empty otherwise.
    frames_measured : int
    stack : Stack or None
    warnings : list of str
    """

    study: str
    volume: Volume
    frame: int
    analysis: UltrasoundAnalysis
    nodules: list[dict]
    spread: list[dict] = field(default_factory=list)
    frames_measured: int = 1
    stack: Stack | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def units(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return self.analysis.units

    def to_dataframe(self) -> pd.DataFrame:
        """The nodules as a pandas DataFrame: what ``nodules.csv`` holds, typed.

        Returns
        -------
        pandas.DataFrame
            The SPEC columns then :data:`~backmice.ultrasound.EXTRA_COLUMNS`.
        """
        from backmice.notebook import rows_frame

        return rows_frame(self.nodules, columns=(*COLUMNS, *EXTRA_COLUMNS))

    def qc_figure(self) -> Figure:
        """The QC picture (``qc.png``) as a matplotlib Figure."""
        from backmice.ultrasound.qc import draw_qc

        return draw_qc(self)

    def _repr_html_(self) -> str:
        """The notebook display: the nodule table and the QC picture."""
        from backmice.notebook import ultrasound_html

        return ultrasound_html(self)


def choose_ultrasound(study: Study, *, series_uid: str | None = None) -> Stack:
    """The ultrasound stack of a study (the given series, else the first calibrated one).

    Raises
    ------
    InputError
        No ultrasound stack (of that series).
    """
    stacks = [s for s in study.stacks if s.role is Role.US]
    if series_uid:
        stacks = [s for s in stacks if s.series_uid == series_uid]
    if not stacks:
        what = f" with series UID {series_uid}" if series_uid else ""
        raise InputError(f"no ultrasound image{what}", path=study.path)
    return sorted(stacks, key=lambda s: (not s.calibrated, -s.shape[0]))[0]


def seed_in_region(seed_col_row: tuple[float, float], volume: Volume) -> tuple[float, float]:
    """A seed in pixels of the stored image, as ``(row, col)`` of the cropped tissue region.

    Parameters
    ----------
    seed_col_row : (float, float)
        ``(col, row)`` in the original (stored, uncropped) frame, as a viewer of
        the DICOM file shows it.
    volume : Volume
        The loaded ultrasound (``origin_px`` is where its region starts).

    Raises
    ------
    InputError
        The seed is not inside the tissue region.
    """
    col, row = (float(v) for v in seed_col_row)
    r0, c0 = volume.origin_px
    rr, cc = row - r0, col - c0
    rows, cols = volume.array.shape[1:3]
    if not (-0.5 <= rr <= rows - 0.5 and -0.5 <= cc <= cols - 0.5):
        raise InputError(
            f"seed column {col:g}, row {row:g} is outside the image's tissue region "
            f"(columns {c0}-{c0 + cols - 1}, rows {r0}-{r0 + rows - 1})"
        )
    return rr, cc


_LEFT = re.compile(r"\b(left|lt)\b", re.IGNORECASE)
_RIGHT = re.compile(r"\b(right|rt)\b", re.IGNORECASE)


def side_from_header(path: str | os.PathLike[str] | None) -> Side | None:
    """The patient side an ultrasound file says it shows, or None.

    ImageLaterality or Laterality (``L``/``R``) first; else the words
    left/right (or LT/RT) in BodyPartExamined, ImageComments,
    SeriesDescription or ProtocolName, when only one side is named.
    """
    if path is None:
        return None
    import pydicom

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # a header we cannot read says nothing about the side
        return None
    for key in ("ImageLaterality", "Laterality"):
        value = str(ds.get(key, "") or "").strip().upper()
        if value in ("L", "R"):
            return Side.LEFT if value == "L" else Side.RIGHT
    text = " ".join(
        str(ds.get(k, "") or "")
        for k in ("BodyPartExamined", "ImageComments", "SeriesDescription", "ProtocolName")
    )
    left, right = bool(_LEFT.search(text)), bool(_RIGHT.search(text))
    if left != right:
        return Side.LEFT if left else Side.RIGHT
    return None


def result_rows(
    analysis: UltrasoundAnalysis,
    *,
    study: str,
    series_uid: str,
    frame: int,
    side: Side | None,
) -> list[dict]:
    """The rows ``backmice analyze`` writes for one analysed frame.

    Every SPEC column (:data:`backmice.vocab.COLUMNS`), then
    :data:`~backmice.ultrasound.EXTRA_COLUMNS`, with the study, series, side,
    units and frame filled in and the review columns empty.
    """
    rows = []
    for n in analysis.nodules:
        row: dict = dict.fromkeys(COLUMNS)
        row.update({k: n.get(k) for k in COLUMNS if k in n})
        row.update({k: n.get(k) for k in EXTRA_COLUMNS if k in n})
        row.update(
            study=study,
            series_uid=series_uid,
            side=None if side is None else str(side),
            subtype="",
            reader="",
            updated="",
            units=analysis.units,
            frame=frame,
        )
        rows.append(row)
    return rows


def _match(rows: list[dict], other: list[dict]) -> dict[int, dict]:
    """For each row, the nodule of another frame nearest its centre (within half its long axis)."""
    out = {}
    for r in rows:
        best, dist = None, math.inf
        for o in other:
            d = math.hypot(o["x_mm"] - r["x_mm"], o["depth_mm"] - r["depth_mm"])
            if d < dist:
                best, dist = o, d
        if best is not None and dist <= 0.5 * r["long_axis_mm"]:
            out[r["nodule_id"]] = best
    return out


def analyze_ultrasound(
    volume: Volume,
    *,
    seed: tuple[float, float] | None = None,
    frame: int = 0,
    all_frames: bool = False,
    study: str = "",
    stack: Stack | None = None,
) -> UltrasoundResult:
    """Analyse an ultrasound series: one frame, or every cine frame with the spread.

    Parameters
    ----------
    volume : Volume
        A loaded ultrasound stack (``backmice.load``), shape ``(frame, row, col)``.
    seed : (float, float), optional
        ``(col, row)`` of a point inside the nodule in pixels of the ORIGINAL
        stored frame (converted here to the cropped region). Without it the
        automatic candidates are reported (status ``candidate``).
    frame : int
        The frame measured, 0-based (default the first).
    all_frames : bool
        Also measure every other frame and report the spread of each measurement.
    study : str
        Name written into the rows.
    stack : Stack, optional
        Where the volume came from (for the side and the record).

    Returns
    -------
    UltrasoundResult

    Raises
    ------
    InputError
        The frame does not exist, or the seed is outside the tissue region.
    """
    n_frames = volume.array.shape[0]
    if not 0 <= frame < n_frames:
        raise InputError(
            f"frame {frame} does not exist: the series has {n_frames} frame(s), 0-{n_frames - 1}"
        )
    where = stack.frames[0].path if stack is not None and stack.frames else None
    if min(volume.array.shape[1:3]) < MIN_SIZE_PX:
        raise InputError(
            f"the ultrasound image is {volume.array.shape[2]}x{volume.array.shape[1]} pixels: "
            f"too small to analyse (at least {MIN_SIZE_PX}x{MIN_SIZE_PX})",
            path=where,
        )
    dy, dx = volume.spacing_mm[1], volume.spacing_mm[2]
    spacing = (
        (float(dy), float(dx)) if volume.calibrated and dy is not None and dx is not None else None
    )
    if spacing is not None and not all(
        ANALYSIS_PIXEL_MM[0] <= s <= ANALYSIS_PIXEL_MM[1] for s in spacing
    ):
        raise InputError(
            f"the ultrasound region's pixels are {spacing[1]:g} x {spacing[0]:g} mm: the analysis "
            f"works on {ANALYSIS_PIXEL_MM[0]:g}-{ANALYSIS_PIXEL_MM[1]:g} mm (check PhysicalDeltaX "
            "and PhysicalDeltaY of SequenceOfUltrasoundRegions)",
            path=where,
        )
    seed_rc = None if seed is None else seed_in_region(seed, volume)
    side = side_from_header(where)
    warnings = list(volume.warnings)

    def run(k: int) -> UltrasoundAnalysis:
        return analyze_frame(
            volume.array[k],
            spacing_mm=spacing,
            seed_rc=seed_rc,
            color=None if volume.color is None else volume.color[k],
            overlays=volume.overlays,
        )

    analysis = run(frame)
    warnings.extend(analysis.warnings)
    rows = result_rows(analysis, study=study, series_uid=volume.series_uid, frame=frame, side=side)
    spread: list[dict] = []
    measured = 1
    if all_frames and n_frames > 1:
        per_frame = {frame: analysis.nodules}
        for k in range(n_frames):
            if k != frame:
                per_frame[k] = run(k).nodules
        measured = n_frames
        for r in rows:
            values: dict[str, list[float]] = {key: [] for key in SPREAD_KEYS}
            found = 0
            for k in range(n_frames):
                match = _match([r], per_frame[k]).get(r["nodule_id"])
                if match is None:
                    continue
                found += 1
                for key in SPREAD_KEYS:
                    values[key].append(float(match[key]))
            spread.append(
                {
                    "nodule_id": r["nodule_id"],
                    "frames": found,
                    **{
                        key: {
                            "min": float(np.min(v)),
                            "median": float(np.median(v)),
                            "max": float(np.max(v)),
                        }
                        for key, v in values.items()
                        if v
                    },
                }
            )
    return UltrasoundResult(
        study=study,
        volume=volume,
        frame=frame,
        analysis=analysis,
        nodules=rows,
        spread=spread,
        frames_measured=measured,
        stack=stack,
        warnings=list(dict.fromkeys(warnings)),
    )


def _json(value: object) -> object:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 3)
    return value


def write_ultrasound(
    result: UltrasoundResult, out: str | os.PathLike[str], *, qc: bool = True
) -> dict[str, Path]:
    """Write nodules.csv, nodules.json, labels.nii.gz, fascia.nii.gz and qc.png.

    The CSV has the SPEC columns then :data:`EXTRA_COLUMNS`. The JSON adds the
    frame, the pixel size, the warnings, the cine spread and the skin and
    fascia lines (``(col, row)`` in pixels of the tissue region). The NIfTI
    files are 2D (one slice) in mm; the fascia map is the signed distance to
    the fascia line (+ superficial).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    a = result.analysis
    volume = result.volume
    columns = (*COLUMNS, *EXTRA_COLUMNS)
    doc = {
        "backmice_version": __version__,
        "study": result.study,
        "modality": "US",
        "source_files": [str(p.resolve()) for p in (result.stack.paths if result.stack else ())],
        "series_uid": volume.series_uid,
        # As the MRI result lists its series (a project records it from here).
        "series": [
            {
                "series_uid": volume.series_uid,
                "role": str(volume.role),
                "description": volume.description,
                "shape": [int(v) for v in volume.array.shape],
                "spacing_mm": [None if v is None else float(v) for v in volume.spacing_mm],
            }
        ],
        "units": a.units,
        "frame": result.frame,
        "frames": int(volume.array.shape[0]),
        "frames_measured": result.frames_measured,
        "pixel_mm": None if not a.calibrated else [float(v) for v in a.spacing_mm],
        "region_origin_px": [int(v) for v in volume.origin_px],
        "warnings": result.warnings,
        "extra_columns": list(EXTRA_COLUMNS),
        "nodules": [{c: _json(row.get(c)) for c in columns} for row in result.nodules],
        "cine_spread": [
            {
                k: (_json(v) if not isinstance(v, dict) else {q: _json(x) for q, x in v.items()})
                for k, v in s.items()
            }
            for s in result.spread
        ],
        "lines": {
            "skin": np.round(a.skin, 2).tolist(),
            "fascia": np.round(a.fascia, 2).tolist(),
        },
    }
    affine = volume.affine.copy() if a.calibrated else np.eye(4)
    affine[2, 3] = result.frame if a.calibrated else 0.0
    written = {
        "csv": write_text(out / "nodules.csv", nodules_csv(result.nodules, columns=columns)),
        "json": write_text(out / "nodules.json", json.dumps(doc, indent=1) + "\n"),
        "labels": write_nifti(out / "labels.nii.gz", a.labels[None].astype(np.uint16), affine),
        "fascia": write_nifti(
            out / "fascia.nii.gz", a.fascia_signed_mm[None].astype(np.float32), affine
        ),
    }
    if qc:
        from backmice.ultrasound.qc import qc_figure

        with atomic_path(out / "qc.png") as tmp:
            qc_figure(result, tmp)
        written["qc"] = out / "qc.png"
    log.info("wrote %s", ", ".join(str(p) for p in written.values()))
    return written
