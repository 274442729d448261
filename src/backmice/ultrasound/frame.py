"""One B-mode frame, stage by stage: :func:`analyze_frame` and :func:`measure_mask`.

0. mask what the scanner drew (Doppler colour, text, calipers, bars) and fill
   it from the tissue around (:mod:`backmice.ultrasound.graphics`);
1. despeckle the tissue region (:func:`~backmice.ultrasound.despeckle`);
2. the skin line at the top, the fascia line deep to the subcutaneous fat;
3. the nodule from a seed (or automatic candidates), then the fascia again with
   the nodule excluded;
4. every SPEC measurement, in mm (or px when uncalibrated).

This is the API the napari plugin calls: everything takes and returns plain
arrays in pixel coordinates of the tissue region with the pixel size beside
them, and the lines are ``(col, row)`` arrays a user may edit and hand back.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from backmice.io.model import RegionOverlay
from backmice.measure.nodules import suggest_subtype
from backmice.measure.red_flags import size_check
from backmice.measure.shape import long_short_axes_mm
from backmice.ultrasound.graphics import fill_graphics, scanner_graphics
from backmice.ultrasound.lines import (
    despeckle,
    fascia_line,
    line_rows,
    signed_distance_mm,
    skin_line,
)
from backmice.ultrasound.nodule import ANECHOIC, automatic_seeds, segment_nodule
from backmice.vocab import Relation, Status

__all__ = [
    "EXTRA_COLUMNS",
    "UltrasoundAnalysis",
    "analyze_frame",
    "edited_frame",
    "frame_row",
    "mask_axes",
    "measure_mask",
    "remeasure_frame",
]

log = logging.getLogger(__name__)

#: Columns appended after the SPEC columns for ultrasound (docs/ultrasound.md).
EXTRA_COLUMNS: tuple[str, ...] = (
    "area_mm2",
    "x_mm",
    "depth_mm",
    "fascia_depth_mm",
    "frame",
    "found_by",
)
#: Margin around a nodule that the fascia search ignores (its capsule and blur), mm.
EXCLUDE_MARGIN_MM = 2.5
#: Around a nodule, its capsule (about 1.2 mm and the blur), mm.
CAPSULE_MARGIN_MM = 1.5
#: A fascia line that leaves the bridged one by more than this over a nodule went over it.
CLIMB_MM = 1.5
#: Masked scanner graphics are reported from this share of the frame on.
REPORTED_GRAPHICS = 0.005
#: A bright rim at least this much above the fat (despeckled, 0..1) is a capsule.
CAPSULE_CONTRAST = 0.15


@dataclass(slots=True)
class UltrasoundAnalysis:
    """What :func:`analyze_frame` found on one frame.

    Attributes
    ----------
    image : ndarray of float32, shape (row, col)
        The frame's tissue region as given.
    despeckled : ndarray of float32, shape (row, col)
        The speckle-reduced image (0..1).
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm; ``(1, 1)`` when uncalibrated.
    calibrated : bool
    skin : ndarray of float64, shape (col, 2)
        ``(col, row)`` skin line.
    fascia : ndarray of float64, shape (col, 2)
        ``(col, row)`` fascia line (its superficial face).
    fascia_signed_mm : ndarray of float32, shape (row, col)
        Signed distance to the fascia: + superficial, − deep (px when uncalibrated).
    labels : ndarray of uint16, shape (row, col)
        Nodule labels; the label is the ``nodule_id``.
    nodules : list of dict
        One dict per nodule: the measurements of :func:`measure_mask` plus
        ``status``, ``found_by`` (``seed`` or ``automatic``) and ``contour``
        (ndarray (360, 2) of ``(row, col)``).
    warnings : list of str
    graphics : ndarray of bool, shape (row, col), or None
        The scanner's graphics masked before the analysis
        (:func:`~backmice.ultrasound.graphics.scanner_graphics`); None when
        masking was off.
    """

    image: NDArray
    despeckled: NDArray
    spacing_mm: tuple[float, float]
    calibrated: bool
    skin: NDArray
    fascia: NDArray
    fascia_signed_mm: NDArray
    labels: NDArray
    nodules: list[dict]
    warnings: list[str] = field(default_factory=list)
    graphics: NDArray | None = None

    @property
    def units(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return "mm" if self.calibrated else "px"


def _polyline_signed(points_rc: NDArray, line: NDArray, spacing_mm: tuple[float, float]) -> NDArray:
    """Exact signed distance (mm) of points to a ``(col, row)`` polyline; + above it."""
    dy, dx = spacing_mm
    p = np.asarray(line, dtype=np.float64)
    p = p[np.argsort(p[:, 0], kind="stable")]
    a = np.column_stack([p[:-1, 0] * dx, p[:-1, 1] * dy])
    b = np.column_stack([p[1:, 0] * dx, p[1:, 1] * dy])
    q = np.column_stack([points_rc[:, 1] * dx, points_rc[:, 0] * dy])
    ab = b - a
    ab2 = np.maximum((ab**2).sum(-1), 1e-12)
    dist = np.empty(len(q))
    for start in range(0, len(q), 256):  # points x segments in blocks of a few MB
        part = q[start : start + 256, None, :]
        t = np.clip(((part - a[None]) * ab[None]).sum(-1) / ab2, 0.0, 1.0)
        nearest = a[None] + t[..., None] * ab[None]
        dist[start : start + 256] = np.sqrt(((part - nearest) ** 2).sum(-1)).min(axis=1)
    row_at = np.interp(points_rc[:, 1], p[:, 0], p[:, 1])
    return np.where(points_rc[:, 0] < row_at, dist, -dist)


def measure_mask(
    mask: NDArray,
    *,
    spacing_mm: tuple[float, float],
    fascia_line: NDArray,
    skin_line: NDArray | None = None,
    fascia_signed_mm: NDArray | None = None,
) -> dict:
    """Every measurement of one nodule on one frame, against the given lines.

    Parameters
    ----------
    mask : ndarray of bool, shape (row, col)
        The nodule's pixels in the tissue region.
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm; ``(1, 1)`` for an uncalibrated image (then
        every length below is in pixels).
    fascia_line : ndarray of shape (n, 2)
        ``(col, row)`` fascia line (as found, or edited by hand).
    skin_line : ndarray of shape (n, 2), optional
        ``(col, row)`` skin line; default the top of the region (row 0 is the
        transducer face, depth 0).
    fascia_signed_mm : ndarray of shape (row, col), optional
        :func:`~backmice.ultrasound.signed_distance_mm` of ``fascia_line``, if
        already computed.

    Returns
    -------
    dict
        ``long_axis_mm``, ``short_axis_mm`` (2D Feret and the caliper width
        perpendicular to it), ``max_diameter_mm`` (= long axis), ``area_mm2``,
        ``axis_1_mm``, ``axis_2_mm`` (diameters of the ellipse of equal second
        moments), ``fascia_offset_mm`` (signed distance of the centroid to the
        fascia, + superficial), ``fascia_min_mm``, ``fascia_max_mm`` (over the
        nodule's pixels), ``relation``, ``skin_depth_mm`` (nearest nodule pixel
        to the skin line), ``x_mm``, ``depth_mm`` (centroid from the region's
        top-left pixel centre), ``fascia_depth_mm`` (depth of the fascia below
        the centroid), ``long_axis_ends_rc`` and ``short_axis_ends_rc``
        (ndarray (2, 2) of ``(row, col)``, for drawing).

    Raises
    ------
    ValueError
        The mask is empty.
    """
    m = np.asarray(mask, dtype=bool)
    if not m.any():
        raise ValueError("the nodule mask is empty")
    rows, cols = m.shape
    dy, dx = (float(v) for v in spacing_mm)
    axes = mask_axes(m, spacing_mm=(dy, dx))
    rr, cc = np.nonzero(m)
    centre = np.array([[rr.mean(), cc.mean()]])
    signed = fascia_signed_mm
    if signed is None:
        signed = signed_distance_mm(fascia_line, (rows, cols), spacing_mm=(dy, dx))
    inside = signed[m]
    # Second moments in mm: the ellipse of equal inertia.
    cov = np.cov(np.column_stack([rr * dy, cc * dx]).T) if len(rr) > 1 else np.zeros((2, 2))
    cov = cov + np.eye(2) * (dx * dy) / 12.0
    ev = np.sort(np.linalg.eigvalsh(cov))[::-1]
    skin = np.zeros((1, 2)) if skin_line is None else np.asarray(skin_line, dtype=np.float64)
    edge = m & ~ndi.binary_erosion(m)
    er, ec = np.nonzero(edge)
    if skin_line is None:
        skin_depth = float((er.min() - 0.5) * dy) if er.size else math.nan
    else:
        # The skin is above the nodule: its distance to the nearest boundary pixel.
        d = -_polyline_signed(np.column_stack([er, ec]).astype(float), skin, (dy, dx))
        skin_depth = max(0.0, float(d.min()) - 0.5 * dy)
    fascia_min, fascia_max = float(inside.min()), float(inside.max())
    fascia_rows = line_rows(fascia_line, cols)
    return {
        "long_axis_mm": axes["long_axis_mm"],
        "short_axis_mm": axes["short_axis_mm"],
        "max_diameter_mm": axes["long_axis_mm"],
        "area_mm2": float(m.sum() * dx * dy),
        "axis_1_mm": 4.0 * math.sqrt(max(ev[0], 0.0)),
        "axis_2_mm": 4.0 * math.sqrt(max(ev[1], 0.0)),
        "fascia_offset_mm": float(_polyline_signed(centre, fascia_line, (dy, dx))[0]),
        "fascia_min_mm": fascia_min,
        "fascia_max_mm": fascia_max,
        "relation": str(Relation.from_extent(fascia_min, fascia_max)),
        "skin_depth_mm": skin_depth,
        "x_mm": float(centre[0, 1] * dx),
        "depth_mm": float(centre[0, 0] * dy),
        "fascia_depth_mm": float(np.interp(centre[0, 1], np.arange(cols), fascia_rows) * dy),
        "long_axis_ends_rc": axes["long_axis_ends_rc"],
        "short_axis_ends_rc": axes["short_axis_ends_rc"],
    }


def mask_axes(mask: NDArray, *, spacing_mm: tuple[float, float]) -> dict:
    """Long and short axis of a 2D mask and where they lie (the one owner of both).

    The long axis is the 2D Feret diameter, the short axis the caliper width
    perpendicular to it (:func:`backmice.measure.shape.long_short_axes_mm`).

    Parameters
    ----------
    mask : ndarray of bool, shape (row, col)
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm.

    Returns
    -------
    dict
        ``long_axis_mm``, ``short_axis_mm`` and ``long_axis_ends_rc``,
        ``short_axis_ends_rc`` (ndarray (2, 2) of ``(row, col)`` pixel centres).
    """
    m = np.asarray(mask, dtype=bool)
    dy, dx = (float(v) for v in spacing_mm)
    affine = np.zeros((4, 4))
    affine[0, 2], affine[1, 1], affine[2, 0], affine[3, 3] = dx, dy, 1.0, 1.0
    ls = long_short_axes_mm(m[None], affine)
    out: dict[str, float | NDArray] = {
        "long_axis_mm": float(ls["long_axis_mm"]),
        "short_axis_mm": float(ls["short_axis_mm"]),
    }
    for key, name in (
        ("long_axis_end_points_lps", "long_axis_ends_rc"),
        ("short_axis_end_points_lps", "short_axis_ends_rc"),
    ):
        e = np.asarray(ls[key], dtype=np.float64)  # (x = col·dx, y = row·dy, z = 0)
        out[name] = np.column_stack([e[:, 1] / dy, e[:, 0] / dx])
    return out


def _subcutaneous(s: NDArray, skin: NDArray, fascia: NDArray, exclude: NDArray) -> NDArray:
    """Pixels of the subcutaneous fat: 2 px below the skin to 2 px above the fascia."""
    rows, cols = s.shape
    r = np.arange(rows)[:, None]
    return (
        (r > line_rows(skin, cols)[None] + 2) & (r < line_rows(fascia, cols)[None] - 2) & ~exclude
    )


def _fascia_around(
    s: NDArray, masks: list[NDArray], *, spacing: tuple[float, float], skin: NDArray, step: float
) -> NDArray:
    """The fascia again, the nodules' capsules excluded (they are not the fascia).

    Two readings: (a) the columns of the nodules and 2.5 mm around them
    excluded, the line bridged across (a septum or the capsule
    over a fat herniation must not lure the line over its top); (b) only the
    nodules and 1.5 mm around them (their capsule) excluded, so a fascia lying
    over a subfascial nodule is followed where it is. Where (b) climbs more than
    1.5 mm above (a) over a nodule it went over a herniation's top: (a) is kept.
    """
    core = np.zeros(s.shape, dtype=bool)
    for m in masks:
        core |= m
    wide = ndi.binary_dilation(core, iterations=max(1, round(EXCLUDE_MARGIN_MM / step)))
    # Whole columns: a path may not dive under the zone along the muscle's fibres
    # (a lipoma through the fascia, an "iceberg", breaks the sheet it crosses).
    columns = np.broadcast_to(wide.any(axis=0)[None, :], wide.shape)
    bridged = fascia_line(s, spacing_mm=spacing, skin=skin, exclude=columns)
    near = ndi.binary_dilation(core, iterations=max(1, round(CAPSULE_MARGIN_MM / step)))
    followed = fascia_line(s, spacing_mm=spacing, skin=skin, exclude=near)
    cols = core.any(axis=0)
    climb = (bridged[cols, 1] - followed[cols, 1]) * spacing[0]
    calibrated_climb = climb if spacing != (1.0, 1.0) else climb * 0.1
    if calibrated_climb.size and float(np.max(np.abs(calibrated_climb))) > CLIMB_MM:
        return bridged
    return followed


def _capsule(s: NDArray, mask: NDArray, fat: float, spacing: tuple[float, float]) -> bool:
    """A bright rim just outside the nodule (0.2-1.0 mm): encapsulated."""
    step = min(spacing) if spacing != (1.0, 1.0) else 0.1
    outer = ndi.binary_dilation(mask, iterations=max(1, round(1.0 / step)))
    inner = ndi.binary_dilation(mask, iterations=max(1, round(0.2 / step)))
    ring = outer & ~inner
    return bool(ring.any() and np.median(s[ring]) > fat + CAPSULE_CONTRAST)


def frame_row(
    mask: NDArray,
    *,
    spacing_mm: tuple[float, float],
    calibrated: bool,
    fascia_line: NDArray,
    skin_line: NDArray | None,
    fascia_signed_mm: NDArray | None = None,
    encapsulated: bool = True,
) -> dict:
    """The measured columns of one nodule of a frame: what an ultrasound row measures.

    :func:`measure_mask` (axes, area, depths, fascia distances, relation), the
    size red flag (:func:`backmice.measure.red_flags.size_check`) and the
    suggested subtype (:func:`backmice.measure.nodules.suggest_subtype`). The
    one owner of these columns: :func:`analyze_frame` measures a found nodule
    with it, :func:`remeasure_frame` (the plugin) an edited one.

    Parameters
    ----------
    mask : ndarray of bool, shape (row, col)
    spacing_mm : (float, float)
        ``(row, col)``; ``(1, 1)`` when uncalibrated.
    calibrated : bool
    fascia_line, skin_line : ndarray of shape (n, 2)
        ``(col, row)`` lines.
    fascia_signed_mm : ndarray of float32, shape (row, col), optional
        Signed distance to ``fascia_line`` (computed when not given).
    encapsulated : bool
        The nodule has a capsule (for the suggestion).

    Returns
    -------
    dict
        :func:`measure_mask`'s columns, ``red_flags`` and ``suggested_subtype``.
    """
    row = measure_mask(
        mask,
        spacing_mm=spacing_mm,
        fascia_line=fascia_line,
        skin_line=skin_line,
        fascia_signed_mm=fascia_signed_mm,
    )
    size = size_check(row.get("max_diameter_mm", row["long_axis_mm"]), calibrated=calibrated)
    flags = [size.flag] if size.met else []
    row["red_flags"] = ";".join(str(f) for f in flags)
    row["suggested_subtype"] = str(
        suggest_subtype(Relation(row["relation"]), red_flags=flags, encapsulated=encapsulated)
    )
    return row


def remeasure_frame(
    nodules: list[dict],
    masks: list[NDArray],
    *,
    spacing_mm: tuple[float, float],
    calibrated: bool,
    fascia: NDArray,
    skin: NDArray | None,
) -> tuple[list[dict], NDArray | None]:
    """Every nodule of a frame measured again against the given lines (after an edit).

    Parameters
    ----------
    nodules : list of dict
        Rows of :func:`analyze_frame` (their ``encapsulated`` is kept).
    masks : list of ndarray of bool, shape (row, col)
    spacing_mm : (float, float)
        ``(row, col)``; ``(1, 1)`` when uncalibrated.
    calibrated : bool
    fascia, skin : ndarray of shape (n, 2)
        ``(col, row)`` lines.

    Returns
    -------
    rows : list of dict
        New rows (:func:`frame_row`'s columns over the old rows).
    fascia_signed_mm : ndarray of float32, shape (row, col), or None
        Signed distance to the fascia (+ superficial); None without masks.
    """
    shape = masks[0].shape if masks else None
    signed = signed_distance_mm(fascia, shape, spacing_mm=spacing_mm) if shape is not None else None
    rows = []
    for row, mask in zip(nodules, masks, strict=True):
        measured = frame_row(
            mask,
            spacing_mm=spacing_mm,
            calibrated=calibrated,
            fascia_line=fascia,
            skin_line=skin,
            fascia_signed_mm=signed,
            encapsulated=bool(row.get("encapsulated", True)),
        )
        rows.append({**row, **measured})
    return rows, signed


def _analysis(
    *,
    image: NDArray,
    despeckled: NDArray,
    spacing_mm: tuple[float, float],
    calibrated: bool,
    skin: NDArray,
    fascia: NDArray,
    fascia_signed_mm: NDArray,
    rows: list[dict],
    masks: list[NDArray],
    warnings: list[str],
    graphics: NDArray | None = None,
) -> UltrasoundAnalysis:
    """The one builder of :class:`UltrasoundAnalysis`: labels painted from the masks.

    Each mask is painted with its row's ``nodule_id``; a pixel of two nodules
    goes to the first. Used by :func:`analyze_frame` and :func:`edited_frame`.
    """
    labels = np.zeros(image.shape, dtype=np.uint16)
    for row, mask in zip(rows, masks, strict=True):
        labels[mask & (labels == 0)] = int(row["nodule_id"])
    return UltrasoundAnalysis(
        image=image,
        despeckled=despeckled,
        spacing_mm=spacing_mm,
        calibrated=calibrated,
        skin=np.asarray(skin, dtype=np.float64),
        fascia=np.asarray(fascia, dtype=np.float64),
        fascia_signed_mm=fascia_signed_mm,
        labels=labels,
        nodules=rows,
        warnings=warnings,
        graphics=graphics,
    )


def edited_frame(
    *,
    image: NDArray,
    despeckled: NDArray,
    spacing_mm: tuple[float, float],
    calibrated: bool,
    skin: NDArray,
    fascia: NDArray,
    nodules: list[dict],
    masks: list[NDArray],
    warnings: list[str] | None = None,
) -> UltrasoundAnalysis:
    """A frame's analysis as a reader left it: nodules re-measured against the given lines.

    What the napari plugin saves after the reader edited the lines or the
    nodules: the same :class:`UltrasoundAnalysis` :func:`analyze_frame` gives,
    its rows measured again (:func:`remeasure_frame`).

    Parameters
    ----------
    image, despeckled : ndarray of float32, shape (row, col)
        The frame's tissue region and its speckle-reduced image.
    spacing_mm : (float, float)
        ``(row, col)``; ``(1, 1)`` when uncalibrated.
    calibrated : bool
    skin, fascia : ndarray of shape (n, 2)
        ``(col, row)`` lines.
    nodules : list of dict
        Rows of :func:`analyze_frame` (``nodule_id``, ``encapsulated``, ...).
    masks : list of ndarray of bool, shape (row, col)
        Each nodule's pixels, in the order of ``nodules``.
    warnings : list of str, optional

    Returns
    -------
    UltrasoundAnalysis
        Its ``labels`` painted from ``masks`` (a pixel of two nodules goes to the first).
    """
    rows, signed = remeasure_frame(
        nodules, masks, spacing_mm=spacing_mm, calibrated=calibrated, fascia=fascia, skin=skin
    )
    if signed is None:
        signed = signed_distance_mm(fascia, image.shape, spacing_mm=spacing_mm)
    return _analysis(
        image=image,
        despeckled=despeckled,
        spacing_mm=spacing_mm,
        calibrated=calibrated,
        skin=skin,
        fascia=fascia,
        fascia_signed_mm=signed,
        rows=rows,
        masks=masks,
        warnings=list(warnings or []),
    )


def analyze_frame(
    image2d: NDArray,
    *,
    spacing_mm: tuple[float, float] | None,
    seed_rc: tuple[float, float] | None = None,
    box_rc: tuple[float, float, float, float] | None = None,
    fascia: NDArray | None = None,
    skin: NDArray | None = None,
    candidates: bool = True,
    color: NDArray | None = None,
    overlays: tuple[RegionOverlay, ...] = (),
    mask_graphics: bool = True,
) -> UltrasoundAnalysis:
    """Analyse one B-mode frame: lines, the nodule(s), and every measurement.

    Parameters
    ----------
    image2d : ndarray of shape (row, col)
        The tissue region of one frame (cropped to the calibrated region).
    spacing_mm : (float, float) or None
        ``(row, col)`` pixel size, mm; None when uncalibrated (everything is then
        in pixels and a warning says so).
    seed_rc : (float, float), optional
        ``(row, col)`` of a point inside the nodule, pixels of the region. Without
        it, automatic candidates are searched (if ``candidates``).
    box_rc : (float, float, float, float), optional
        ``(row0, col0, row1, col1)`` the seeded nodule lies in.
    fascia, skin : ndarray of shape (n, 2), optional
        ``(col, row)`` lines to use instead of finding them (edited by hand).
    candidates : bool
        Look for automatic candidates when there is no seed.
    color : ndarray of uint8, shape (row, col, 3), optional
        The frame's RGB when the file is in colour (``Volume.color[k]``): its
        colour pixels (Doppler) are masked.
    overlays : tuple of RegionOverlay
        The file's other regions on this one (``Volume.overlays``): masked.
    mask_graphics : bool
        Mask what the scanner drew (colour, text, lines, bars) and fill it from
        the tissue around before anything is found (default). Off, the frame
        is analysed as given.

    Returns
    -------
    UltrasoundAnalysis
        Its ``nodules`` rows carry the measurements, ``status`` (``accepted``
        for a seeded nodule, which the reader pointed at; ``candidate`` for
        automatic ones) and ``found_by``.
    """
    img = np.asarray(image2d, dtype=np.float32)
    if img.ndim != 2 or min(img.shape) < 8:
        raise ValueError(f"analyze_frame needs one 2D frame of at least 8x8, not {img.shape}")
    warnings: list[str] = []
    calibrated = spacing_mm is not None
    spacing = (float(spacing_mm[0]), float(spacing_mm[1])) if spacing_mm is not None else (1.0, 1.0)
    if not calibrated:
        warnings.append("UNCALIBRATED: no usable ultrasound region, every length is in px")
        log.warning("%s", warnings[-1])
    graphics = None
    work = img
    if mask_graphics:
        found = scanner_graphics(img, color=color, overlays=overlays)
        graphics = found.mask
        if graphics.any():
            work = fill_graphics(img, graphics)
            if graphics.mean() >= REPORTED_GRAPHICS:
                warnings.append(found.summary())
                log.info("%s", warnings[-1])
            else:  # a few flat speckle pixels: not worth a warning
                log.debug("%s", found.summary())
    s = despeckle(work, spacing_mm=spacing)
    if skin is None:
        skin = skin_line(s, spacing_mm=spacing)
    fascia_given = fascia is not None
    line: NDArray = fascia if fascia is not None else fascia_line(s, spacing_mm=spacing, skin=skin)
    step = min(spacing) if calibrated else 0.1
    masks: list[tuple[NDArray, NDArray, str]] = []
    if seed_rc is not None:
        mask, contour = segment_nodule(
            s, seed_rc, spacing_mm=spacing, box_rc=box_rc, skin=skin, ignore=graphics
        )
        masks.append((mask, contour, "seed"))
    elif candidates:
        region = _subcutaneous(s, skin, line, np.zeros(s.shape, bool))
        fat = float(np.median(s[region])) if region.any() else float(np.median(s))
        for seed in automatic_seeds(s, spacing_mm=spacing, skin=skin, fascia=line, fat_level=fat):
            if any(m[round(seed[0]), round(seed[1])] for m, _, _ in masks):
                continue
            mask, contour = segment_nodule(s, seed, spacing_mm=spacing, skin=skin, ignore=graphics)
            if mask.any():
                masks.append((mask, contour, "automatic"))
        # An incomplete capsule encloses nothing: enclosures closed over its gap,
        # kept only where the capsule search is sure of an oval capsule. Only on
        # a calibrated frame: the gaps are in mm, and an uncalibrated frame is
        # the whole stored frame, graphics and all.
        gapped = (
            automatic_seeds(
                s, spacing_mm=spacing, skin=skin, fascia=line, fat_level=fat, wide_gaps=True
            )
            if calibrated
            else []
        )
        for seed in gapped:
            if any(m[round(seed[0]), round(seed[1])] for m, _, _ in masks):
                continue
            mask, contour = segment_nodule(
                s, seed, spacing_mm=spacing, skin=skin, ignore=graphics, capsule_only=True
            )
            if mask.any() and float(np.median(s[mask])) >= ANECHOIC * fat:  # not a cyst
                masks.append((mask, contour, "automatic"))
        if masks:
            warnings.append(
                f"{len(masks)} nodule(s) found automatically (status candidate): check them"
            )
    masks = [m for m in masks if m[0].any()]  # a seed on the region's very edge
    if masks and not fascia_given:
        line = _fascia_around(s, [m for m, _, _ in masks], spacing=spacing, skin=skin, step=step)
    signed = signed_distance_mm(line, s.shape, spacing_mm=spacing)
    taken = np.zeros(s.shape, dtype=bool)
    for m, _, _ in masks:
        taken |= m
    fat_px = _subcutaneous(s, skin, line, taken)
    fat_level = float(np.median(s[fat_px])) if fat_px.any() else float(np.median(s))
    fat_raw = float(np.median(work[fat_px])) if fat_px.any() else float(np.median(work))
    rows = []
    for k, (m, contour, how) in enumerate(masks, start=1):
        encapsulated = _capsule(s, m, fat_level, spacing)
        row = frame_row(
            m,
            spacing_mm=spacing,
            calibrated=calibrated,
            fascia_line=line,
            skin_line=skin,
            fascia_signed_mm=signed,
            encapsulated=encapsulated,
        )
        row.update(
            nodule_id=k,
            status=str(Status.ACCEPTED if how == "seed" else Status.CANDIDATE),
            found_by=how,
            contour=contour,
            encapsulated=encapsulated,
            fat_signal_ratio=float(np.median(work[m]) / fat_raw) if fat_raw > 0 else math.nan,
        )
        rows.append(row)
    return _analysis(
        image=img,
        despeckled=s,
        spacing_mm=spacing,
        calibrated=calibrated,
        skin=skin,
        fascia=line,
        fascia_signed_mm=signed,
        rows=rows,
        masks=[m for m, _, _ in masks],
        warnings=warnings,
        graphics=graphics,
    )
