"""The quality-control picture of an ultrasound analysis (``qc.png``).

The measured frame's tissue region in mm (depth down from the transducer
face), the scanner's graphics that were masked (magenta tint: Doppler colour,
text, lines, bars), the skin line (green), the fascia line (orange), every
nodule's outline (cyan) with its long and short axes (yellow) and its
measurements. An uncalibrated image says so in red across the top.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from backmice.ultrasound.study import UltrasoundResult

__all__ = ["draw_qc", "qc_figure"]

log = logging.getLogger(__name__)

_SKIN = "#4caf50"
_FASCIA = "#ff8c00"
_NODULE = "#00e5ff"
_AXES = "#ffe600"
#: RGBA of the tint over masked scanner graphics.
_MASKED = (1.0, 0.0, 1.0, 0.45)


def _caption(result: UltrasoundResult) -> list[str]:
    """The measurement lines under the picture (two per nodule, one per cine spread)."""
    a = result.analysis
    unit = a.units
    lines = []
    for n in a.nodules:
        lines.append(
            f"#{n['nodule_id']} ({n['found_by']}, {n['status']}) {n['relation']}, suggests "
            f"{n['suggested_subtype']}{'  red flags: ' + n['red_flags'] if n['red_flags'] else ''}"
        )
        lines.append(
            f"    long × short {n['long_axis_mm']:.1f} × {n['short_axis_mm']:.1f} {unit}, "
            f"area {n['area_mm2']:.0f} {unit}², fascia {n['fascia_offset_mm']:+.1f} {unit} "
            f"[{n['fascia_min_mm']:+.1f}, {n['fascia_max_mm']:+.1f}], "
            f"skin {n['skin_depth_mm']:.1f} {unit}"
        )
    if not a.nodules:
        lines.append("no nodule (give a seed: --seed COL,ROW)")
    for s in result.spread:
        if "long_axis_mm" in s:
            lo, hi = s["long_axis_mm"]["min"], s["long_axis_mm"]["max"]
            slo, shi = s["short_axis_mm"]["min"], s["short_axis_mm"]["max"]
            lines.append(
                f"#{s['nodule_id']} over {s['frames']}/{result.frames_measured} cine frames: "
                f"long {lo:.1f}-{hi:.1f}, short {slo:.1f}-{shi:.1f} {unit}"
            )
    return lines[:24]


def qc_figure(result: UltrasoundResult, path: str | os.PathLike[str]) -> None:
    """Draw the QC picture of an ultrasound analysis into a PNG file (:func:`draw_qc`).

    Parameters
    ----------
    result : UltrasoundResult
    path : path-like
        The PNG to write.
    """
    draw_qc(result).savefig(os.fspath(path), facecolor="black", format="png")


def draw_qc(result: UltrasoundResult) -> Figure:
    """The QC picture of an ultrasound analysis.

    Parameters
    ----------
    result : UltrasoundResult

    Returns
    -------
    matplotlib.figure.Figure
        Not attached to pyplot (show it as a notebook cell's value, or save it).
    """
    a = result.analysis
    dy, dx = a.spacing_mm
    unit = a.units
    rows, cols = a.image.shape
    extent = (-0.5 * dx, (cols - 0.5) * dx, (rows - 0.5) * dy, -0.5 * dy)
    lines = [
        *_caption(result),
        "skin green, fascia orange, nodule cyan, long and short axes yellow, "
        "masked scanner graphics magenta",
    ]
    width = 7.5
    image_h = min(max(6.2 * (rows * dy) / max(cols * dx, 1e-6), 2.0), 10.0)
    text_h = 0.16 * len(lines) + 0.25
    top_h = 0.55
    height = image_h + text_h + top_h + 0.45
    fig = Figure(figsize=(width, height), dpi=110, facecolor="black")
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0.09, (text_h + 0.45) / height, 0.88, image_h / height), anchor="S")
    lo, hi = np.percentile(a.image, [1, 99.5])
    ax.imshow(a.image, cmap="gray", vmin=lo, vmax=hi, extent=extent, interpolation="nearest")
    if a.graphics is not None and a.graphics.any():
        tint = np.zeros((*a.graphics.shape, 4), dtype=np.float32)
        tint[a.graphics] = _MASKED
        ax.imshow(tint, extent=extent, interpolation="nearest")
    ax.set_facecolor("black")
    ax.tick_params(colors="#bbbbbb", labelsize=7)
    ax.set_xlabel(f"lateral ({unit})", color="#bbbbbb", fontsize=7)
    ax.set_ylabel(f"depth from the transducer ({unit})", color="#bbbbbb", fontsize=7)
    ax.plot(a.skin[:, 0] * dx, a.skin[:, 1] * dy, color=_SKIN, lw=0.8)
    ax.plot(a.fascia[:, 0] * dx, a.fascia[:, 1] * dy, color=_FASCIA, lw=1.0)
    for n in a.nodules:
        c = np.vstack([n["contour"], n["contour"][:1]])
        ax.plot(c[:, 1] * dx, c[:, 0] * dy, color=_NODULE, lw=1.0)
        for key in ("long_axis_ends_rc", "short_axis_ends_rc"):
            e = n[key]
            ax.plot(e[:, 1] * dx, e[:, 0] * dy, color=_AXES, lw=0.9)
        ax.annotate(
            str(n["nodule_id"]),
            (n["x_mm"], n["depth_mm"]),
            color=_AXES,
            fontsize=9,
            weight="bold",
            ha="center",
            va="center",
        )
    frames = result.volume.array.shape[0]
    ax.set_title(
        f"{result.study or 'ultrasound'} — frame {result.frame} of 0-{frames - 1} "
        "(0-based, as --frame)",
        color="white",
        fontsize=9,
    )
    fig.text(0.01, 0.1 / height, "\n".join(lines), color="white", fontsize=6.5, va="bottom")
    if not a.calibrated:
        fig.text(
            0.5,
            1 - 0.22 / height,
            "UNCALIBRATED: no ultrasound region — every length is in PIXELS",
            color="#ff3030",
            fontsize=11,
            weight="bold",
            ha="center",
        )
    log.info("ultrasound QC picture: %d nodule(s)", len(a.nodules))
    return fig
