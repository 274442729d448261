"""backmice in a notebook: one call to analyse, and results that show themselves.

::

    import backmice
    result = backmice.analyze("study/")      # a DICOM folder, a NIfTI file, ...
    result                                   # in Jupyter: the table and the QC picture
    df = result.to_dataframe()               # pandas, the SPEC columns of nodules.csv
    fig = result.qc_figure()                 # matplotlib Figure, with R/L and A/P letters

:func:`analyze` returns an :class:`~backmice.analysis.Analysis` (MRI) or an
:class:`~backmice.ultrasound.UltrasoundResult` (a study with ultrasound and no
MR image, or when an ultrasound option is given), by the rule ``backmice
analyze`` and ``backmice batch`` use
(:func:`~backmice.run.is_ultrasound_study`). Both have
``to_dataframe()``, ``qc_figure()`` and ``_repr_html_()``; a batch's output
folder opens as a :class:`BatchResult` with the same three.

The table is the one ``nodules.csv`` holds (:func:`backmice.report.nodules_csv`,
read back as the batch reads it, :func:`backmice.batch.tables.read_nodules`), so a
notebook and the files never disagree.
"""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from backmice.vocab import COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from backmice.analysis import Analysis, AnalysisOptions
    from backmice.io import Study
    from backmice.ultrasound import UltrasoundResult

__all__ = [
    "DISPLAY_COLUMNS",
    "BatchResult",
    "analysis_html",
    "analyze",
    "figure_png",
    "open_batch",
    "rows_frame",
    "ultrasound_html",
]

log = logging.getLogger(__name__)

#: The columns the notebook display shows (``to_dataframe`` has them all).
DISPLAY_COLUMNS: tuple[str, ...] = (
    "nodule_id",
    "relation",
    "side",
    "volume_mm3",
    "max_diameter_mm",
    "long_axis_mm",
    "short_axis_mm",
    "fascia_offset_mm",
    "skin_depth_mm",
    "suggested_subtype",
    "red_flags",
    "status",
)
#: Width of the QC picture in the notebook display, pixels.
DISPLAY_WIDTH_PX = 900


def analyze(
    path: str | os.PathLike[str] | Study,
    *,
    method: str | None = None,
    threshold: float | None = None,
    series: str | None = None,
    echo: int | None = None,
    options: AnalysisOptions | None = None,
    seed: tuple[float, float] | None = None,
    frame: int | None = None,
    all_frames: bool = False,
    progress: Callable[[str, float], None] | None = None,
) -> Analysis | UltrasoundResult:
    """Analyse a study, MRI or ultrasound, as ``backmice analyze`` does (without writing files).

    Parameters
    ----------
    path : path-like or Study
        A study folder, a DICOM file, a DICOMDIR, a NIfTI file (``.nii``,
        ``.nii.gz``) or a folder of them, or an opened study.
    method : str, optional
        ``t1``, ``dixon`` or ``inout`` (MRI); default: chosen from the roles found.
    threshold : float, optional
        Fat threshold (0-1) on the fat score or fat fraction; default 0.5.
    series : str, optional
        Analyse this series: its SeriesInstanceUID, or a NIfTI file (path or name).
    echo : int, optional
        Analyse this echo of a series that holds several.
    options : AnalysisOptions, optional
        Every MRI option; ``method`` and ``threshold`` override its fields.
    seed : (float, float), optional
        Ultrasound: ``(col, row)`` in pixels of the stored image, inside the nodule.
    frame : int, optional
        Ultrasound: the cine frame to measure (0-based; default 0).
    all_frames : bool
        Ultrasound: measure every cine frame too and report the spread.
    progress : callable, optional
        MRI: called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis or UltrasoundResult
        Both have ``nodules`` (rows of SPEC columns), ``warnings``,
        ``to_dataframe()``, ``qc_figure()`` and a notebook display.

    Raises
    ------
    InputError
        No usable stack, or a file cannot be read (the message names it).
    """
    from backmice.analysis import AnalysisOptions
    from backmice.io import Study, open_study
    from backmice.run import is_ultrasound_study, plan, run_mri, run_ultrasound
    from backmice.vocab import Method

    study = path if isinstance(path, Study) else open_study(path)
    ultrasound_asked = seed is not None or frame is not None or all_frames
    ultrasound = is_ultrasound_study(
        study, method=method, series_uid=series, ultrasound_asked=ultrasound_asked
    )
    # One plan (backmice.run), as ``backmice analyze`` and the batch make it.
    if ultrasound:
        planned = plan(study, series_uid=series, ultrasound=True)
        return run_ultrasound(planned, seed=seed, frame=frame, all_frames=all_frames)
    options = options or AnalysisOptions()
    if method is not None:
        options = replace(options, method=Method(method))
    if threshold is not None:
        options = replace(options, threshold=float(threshold))
    planned = plan(study, method=options.method, series_uid=series, echo=echo, ultrasound=False)
    return run_mri(planned, options=options, progress=progress)


def rows_frame(rows: Sequence[dict], *, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """Nodule rows as the DataFrame ``nodules.csv`` reads back into.

    The rows go through :func:`backmice.report.nodules_csv` (the writer of
    ``nodules.csv``: its columns, order and rounding) and back through
    :func:`backmice.batch.tables.read_nodules` (its dtypes), so the frame holds
    what the file holds.

    Parameters
    ----------
    rows : sequence of dict
        Rows of SPEC columns (``Analysis.nodules``).
    columns : sequence of str
        The columns (default SPEC; ultrasound adds its extra columns).

    Returns
    -------
    pandas.DataFrame
        One row per nodule, ``columns`` in order; lengths in mm (or px where
        ``units`` says so), volumes in mm³.
    """
    from backmice.batch.tables import read_nodules
    from backmice.report.write import nodules_csv

    return read_nodules(nodules_csv(rows, columns=columns), columns=columns)


def figure_png(figure: Figure, *, dpi: float | None = None) -> bytes:
    """A matplotlib figure as PNG bytes (black background, as ``qc.png``)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor=figure.get_facecolor(), dpi=dpi)
    return buffer.getvalue()


def _html(
    *,
    title: str,
    facts: Sequence[tuple[str, str]],
    warnings: Sequence[str],
    table: pd.DataFrame,
    png: bytes | None,
) -> str:
    """The notebook display: a title, a few facts, the warnings, the table and the picture."""
    parts = [f"<div class='backmice-result'><h4>{html.escape(title)}</h4>"]
    if facts:
        parts.append(
            "<p>"
            + " · ".join(f"<b>{html.escape(k)}</b> {html.escape(v)}" for k, v in facts)
            + "</p>"
        )
    if warnings:
        parts.append(
            "<details><summary>"
            + html.escape(f"{len(warnings)} warning(s)")
            + "</summary><ul>"
            + "".join(f"<li>{html.escape(w)}</li>" for w in warnings)
            + "</ul></details>"
        )
    if len(table):
        parts.append(
            table.to_html(index=False, escape=True, na_rep="", float_format="{:.1f}".format)
        )
    else:
        parts.append("<p><i>no nodules</i></p>")
    if png is not None:
        data = base64.b64encode(png).decode("ascii")
        parts.append(
            f"<img alt='QC picture' style='max-width:{DISPLAY_WIDTH_PX}px;width:100%' "
            f"src='data:image/png;base64,{data}'/>"
        )
    parts.append("</div>")
    return "".join(parts)


def _display(frame: pd.DataFrame, extra: Sequence[str] = ()) -> pd.DataFrame:
    keep = [c for c in (*DISPLAY_COLUMNS, *extra) if c in frame.columns]
    return frame[keep]


def analysis_html(analysis: Analysis) -> str:
    """The notebook display of an MRI analysis: the nodule table and the QC picture (PNG)."""
    stacks = "; ".join(f"{s.role} {s.series_uid}" for s in analysis.stacks)
    facts = [
        ("method", str(analysis.method)),
        ("series", stacks),
        ("nodules", str(len(analysis.nodules))),
        ("units", analysis.volume.units),
    ]
    return _html(
        title=f"backmice: {analysis.study}",
        facts=facts,
        warnings=analysis.warnings,
        table=_display(analysis.to_dataframe()),
        png=figure_png(analysis.qc_figure()),
    )


def ultrasound_html(result: UltrasoundResult) -> str:
    """The notebook display of an ultrasound result: the nodule table and the QC picture."""
    facts = [
        ("series", result.volume.series_uid),
        ("frame", str(result.frame)),
        ("nodules", str(len(result.nodules))),
        ("units", result.units),
    ]
    return _html(
        title=f"backmice ultrasound: {result.study}",
        facts=facts,
        warnings=result.warnings,
        table=_display(result.to_dataframe(), ("area_mm2", "found_by")),
        png=figure_png(result.qc_figure()),
    )


@dataclass(frozen=True, slots=True)
class BatchResult:
    """A batch's output folder (``backmice batch --out DIR``), read for a notebook.

    Attributes
    ----------
    out : Path
        The folder: ``nodules.csv``, ``studies.csv``, ``summary.png`` and
        ``studies/<name>/``.
    """

    out: Path

    def to_dataframe(self) -> pd.DataFrame:
        """Every study's nodules: ``nodules.csv``, typed as :func:`backmice.batch.run` gives it."""
        from backmice.batch.tables import read_nodules

        return read_nodules((self.out / "nodules.csv").read_text(encoding="utf-8"))

    def studies(self) -> pd.DataFrame:
        """``studies.csv``: one row per study with its status and message."""
        import pandas as pd

        return pd.read_csv(self.out / "studies.csv", dtype=str, keep_default_na=False)

    def qc_figure(self) -> Figure:
        """The batch's ``summary.png`` as a matplotlib Figure (sizes, depths, relations)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.image import imread

        image = imread(self.out / "summary.png")
        height, width = image.shape[:2]
        fig = Figure(figsize=(width / 100, height / 100), dpi=100)
        FigureCanvasAgg(fig)
        ax = fig.add_axes((0, 0, 1, 1))
        ax.imshow(image)
        ax.set_axis_off()
        return fig

    def study(self, name: str) -> Path:
        """The result folder of one study (what ``backmice analyze`` writes)."""
        return self.out / "studies" / name

    def _repr_html_(self) -> str:
        studies = self.studies()
        failed = studies[studies["status"] != "ok"] if "status" in studies else studies[:0]
        facts = [
            ("studies", str(len(studies))),
            ("failed", str(len(failed))),
            ("nodules", str(len(self.to_dataframe()))),
        ]
        warnings = [f"{r['study']}: {r['status']}: {r['message']}" for _, r in failed.iterrows()]
        summary = self.out / "summary.png"
        keep = [c for c in ("study", "status", "method", "n_nodules", "units") if c in studies]
        return _html(
            title=f"backmice batch: {self.out}",
            facts=facts,
            warnings=warnings,
            table=studies[keep],
            png=summary.read_bytes() if summary.is_file() else None,
        )


def open_batch(out: str | os.PathLike[str]) -> BatchResult:
    """Open a batch's output folder for a notebook (:class:`BatchResult`).

    Raises
    ------
    InputError
        The folder holds no ``nodules.csv`` and ``studies.csv`` (not a finished batch).
    """
    from backmice.errors import InputError

    out = Path(out)
    missing = [n for n in ("nodules.csv", "studies.csv") if not (out / n).is_file()]
    if missing:
        raise InputError(
            f"not a finished batch's output folder ({', '.join(missing)} missing)", path=out
        )
    return BatchResult(out)
