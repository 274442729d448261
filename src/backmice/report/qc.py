"""The quality-control picture of an analysis (``qc.png``).

One panel shows the whole slice through the largest nodule with every nodule
outlined and the fascia drawn; then one panel per nodule: the acquisition-plane
slice where it is largest, its outline, the fascia line, its long and short
axes, and its measurements. Each panel's edges carry the patient directions
(R/L, A/P, S/I) its rows and columns run toward. :func:`draw_qc` returns the
picture as a matplotlib Figure (a notebook shows it); :func:`qc_figure` writes
it as a PNG.
"""

from __future__ import annotations

import logging
import os
import textwrap
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from backmice.measure.red_flags import flags_with_values
from backmice.measure.shape import measure_labels
from backmice.segment.body import posterior_half

if TYPE_CHECKING:
    from backmice.analysis import Analysis

__all__ = ["direction_letter", "draw_qc", "qc_figure"]

log = logging.getLogger(__name__)

#: At most this many nodule panels (the table has them all).
MAX_PANELS = 24
#: Width of a nodule panel, mm.
WINDOW_MM = 70.0
_FASCIA = "#ff8c00"
_NODULE = "#00e5ff"
_AXES = "#ffe600"
_SKIN = "#7cfc00"
_SAT = "#ff66cc"


def _display_range(image: np.ndarray, body: np.ndarray, fat: np.ndarray) -> tuple[float, float]:
    """Grey levels from the body's dark end to the subcutaneous fat's bright end."""
    values = image[body] if body.any() else image
    lo = float(np.percentile(values, 1))
    # A quarter above the fat's median: fat reads bright, noise does not set the scale.
    hi = 1.25 * float(np.median(image[fat])) if fat.any() else float(np.percentile(values, 99))
    return lo, hi if hi > lo else lo + 1.0


def _draw_slice(ax, image2d, extent, vmin, vmax) -> None:
    ax.imshow(image2d, cmap="gray", vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
    ax.set_facecolor("black")
    ax.set_xticks([])
    ax.set_yticks([])


#: Patient direction of +x, +y, +z in LPS, and of -x, -y, -z.
_LETTERS = (("L", "P", "S"), ("R", "A", "I"))


def direction_letter(vector: np.ndarray) -> str:
    """The patient direction (``L``, ``R``, ``P``, ``A``, ``S``, ``I``) a vector in LPS points to.

    Parameters
    ----------
    vector : ndarray of shape (3,)
        A direction in LPS (any length).

    Returns
    -------
    str
        The letter of its largest component; an oblique direction whose second
        component is more than half the first gets both (``LA``).
    """
    v = np.asarray(vector, dtype=np.float64)
    order = np.argsort(-np.abs(v))
    letters = [_LETTERS[int(v[order[0]] < 0)][order[0]]]
    if abs(v[order[1]]) > 0.5 * abs(v[order[0]]):
        letters.append(_LETTERS[int(v[order[1]] < 0)][order[1]])
    return "".join(letters)


def _orientation_letters(ax, affine: np.ndarray) -> None:
    """Write the patient directions at the panel's four edges (rows go down, columns right)."""
    row, col = affine[:3, 1], affine[:3, 2]
    style = {
        "color": "#ffb000",
        "fontsize": 8,
        "weight": "bold",
        "transform": ax.transAxes,
        "zorder": 5,
    }
    ax.text(0.5, 0.995, direction_letter(-row), ha="center", va="top", **style)
    ax.text(0.5, 0.005, direction_letter(row), ha="center", va="bottom", **style)
    ax.text(0.005, 0.5, direction_letter(-col), ha="left", va="center", **style)
    ax.text(0.995, 0.5, direction_letter(col), ha="right", va="center", **style)


def qc_figure(analysis: Analysis, path: str | os.PathLike[str]) -> None:
    """Draw the QC picture of an analysis into a PNG file (:func:`draw_qc`).

    Parameters
    ----------
    analysis : Analysis
    path : path-like
        The PNG to write.
    """
    fig = draw_qc(analysis)
    fig.savefig(os.fspath(path), facecolor="black", format="png")


def draw_qc(analysis: Analysis) -> Figure:
    """The QC picture of an analysis.

    Parameters
    ----------
    analysis : Analysis

    Returns
    -------
    matplotlib.figure.Figure
        The overview slice and one panel per nodule (at most :data:`MAX_PANELS`),
        with the patient directions at each panel's edges when the image is
        calibrated. Not attached to pyplot: show it in a notebook as the
        value of a cell, or save it with ``fig.savefig``.
    """
    volume = analysis.volume
    image = analysis.fat.image
    labels = analysis.labels
    affine = volume.affine if volume.calibrated else np.eye(4)
    # The fascia is looked for over the back; its zero level elsewhere (the flanks,
    # the abdominal wall) is not drawn, so the picture shows only what was measured.
    signed = np.where(
        posterior_half(analysis.body.mask, affine) if volume.calibrated else analysis.body.mask,
        analysis.fascia.signed_mm,
        np.nan,
    )
    pixel = np.linalg.norm(affine[:3, 1:3], axis=0)  # row, col
    dy, dx = float(pixel[0]), float(pixel[1])
    rows, cols = image.shape[1:]
    extent_full = (-0.5 * dx, (cols - 0.5) * dx, (rows - 0.5) * dy, -0.5 * dy)
    unit = volume.units
    vmin, vmax = _display_range(image, analysis.body.mask, analysis.subcutaneous)
    nodules = analysis.nodules[:MAX_PANELS]
    shapes = {s.label: s for s in measure_labels(labels, affine)} if nodules else {}
    inverse = np.linalg.inv(affine)

    n_panels = 1 + len(nodules)
    ncols = min(4, n_panels)
    nrows = int(np.ceil(n_panels / ncols))
    fig = Figure(figsize=(4.2 * ncols, 4.4 * nrows), dpi=110, facecolor="black")
    FigureCanvasAgg(fig)

    # Overview: the slice through the largest nodule, or the middle slice.
    if nodules:
        biggest = max(nodules, key=lambda r: r["volume_mm3"])
        k = shapes[biggest["nodule_id"]].long_axis_slice
    else:
        k = image.shape[0] // 2
    ax = fig.add_subplot(nrows, ncols, 1)
    _draw_slice(ax, image[k], extent_full, vmin, vmax)
    if volume.calibrated:
        _orientation_letters(ax, affine)
    y = (np.arange(rows) * dy)[:, None] * np.ones((1, cols))
    x = np.ones((rows, 1)) * (np.arange(cols) * dx)[None, :]
    # The skin and the subcutaneous fat the fascia was found under: where they are
    # wrong, every depth is, and a look at them is the first check.
    if analysis.body.mask[k].any():
        ax.contour(x, y, analysis.body.mask[k], levels=[0.5], colors=_SKIN, linewidths=0.6)
    if analysis.subcutaneous[k].any():
        ax.contour(x, y, analysis.subcutaneous[k], levels=[0.5], colors=_SAT, linewidths=0.4)
    ax.contour(x, y, signed[k], levels=[0], colors=_FASCIA, linewidths=0.8)
    if labels[k].any():
        ax.contour(x, y, labels[k] > 0, levels=[0.5], colors=_NODULE, linewidths=0.8)
    for row in nodules:
        s = shapes[row["nodule_id"]]
        idx = (inverse @ np.append(s.centroid_lps, 1.0))[:3]
        if abs(idx[0] - k) <= 0.5 + 1e-6 or row is nodules[0]:
            ax.annotate(
                str(row["nodule_id"]),
                (idx[2] * dx, idx[1] * dy),
                color=_AXES,
                fontsize=9,
                ha="center",
                va="center",
                weight="bold",
            )
    title = f"{analysis.study or 'study'} — {analysis.method} — slice {k}"
    ax.set_title(title, color="white", fontsize=9)
    if analysis.warnings:
        ax.text(
            0.02,
            0.98,
            "\n".join(textwrap.fill(f"⚠ {w}", 60) for w in analysis.warnings[:4]),
            color=_AXES,
            transform=ax.transAxes,
            va="top",
            fontsize=6,
            bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 2},
        )
    if not nodules:
        ax.text(
            0.5,
            0.05,
            "no candidate nodules",
            color="white",
            transform=ax.transAxes,
            ha="center",
            fontsize=10,
        )

    for j, row in enumerate(nodules, start=2):
        s = shapes[row["nodule_id"]]
        k = s.long_axis_slice
        idx = (inverse @ np.append(s.centroid_lps, 1.0))[:3]
        cy, cx = idx[1] * dy, idx[2] * dx
        half = max(WINDOW_MM / 2, 0.75 * row["max_diameter_mm"])
        ax = fig.add_subplot(nrows, ncols, j)
        _draw_slice(ax, image[k], extent_full, vmin, vmax)
        if volume.calibrated:
            _orientation_letters(ax, affine)
        ax.contour(x, y, signed[k], levels=[0], colors=_FASCIA, linewidths=1.0)
        ax.contour(
            x, y, labels[k] == row["nodule_id"], levels=[0.5], colors=_NODULE, linewidths=1.2
        )
        for ends in (s.long_axis_end_points_lps, s.short_axis_end_points_lps):
            e = (inverse @ np.c_[ends, np.ones(2)].T)[:3]
            ax.plot(e[2] * dx, e[1] * dy, color=_AXES, lw=1.0)
        ax.set_xlim(cx - half, cx + half)
        ax.set_ylim(cy + half, cy - half)
        flags = f"\nred flags: {flags_with_values(row)}" if row["red_flags"] else ""
        ax.set_title(
            f"#{row['nodule_id']} {row['relation']}, {row['side'] or '?'} — slice {k}",
            color="white",
            fontsize=9,
        )
        ax.text(
            0.02,
            0.02,
            f"vol {row['volume_mm3']:.0f} {unit}³  max {row['max_diameter_mm']:.1f} {unit}\n"
            f"long × short {row['long_axis_mm']:.1f} × {row['short_axis_mm']:.1f} {unit}\n"
            f"fascia {row['fascia_offset_mm']:+.1f} {unit} "
            f"[{row['fascia_min_mm']:+.1f}, {row['fascia_max_mm']:+.1f}]\n"
            f"suggests {row['suggested_subtype']}{flags}",
            color="white",
            fontsize=7,
            transform=ax.transAxes,
            va="bottom",
            bbox={"facecolor": "black", "alpha": 0.6, "edgecolor": "none", "pad": 2},
        )
    fig.text(
        0.01,
        0.005,
        "skin (green), subcutaneous fat (pink), fascia (orange, over the back), "
        "nodule outline (cyan), long/short axes (yellow); patient directions at the edges "
        f"(L/R, A/P, S/I); lengths in {unit}",
        color="#bbbbbb",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1))
    log.info("QC picture: %d panel(s)", n_panels)
    return fig
