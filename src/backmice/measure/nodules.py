"""Every SPEC column of every nodule: shape, fascia and skin distances, side, fat, subtype.

:func:`measure_nodules` turns a label image and the maps the analysis made
(signed fascia distance, depth below the skin, the fat image) into one row per
nodule with the columns of ``docs/SPEC.md`` (:data:`backmice.vocab.COLUMNS`). It is
the one owner of a nodule row: the analysis measures its candidates with it,
and :func:`measure_nodule` (one mask, on its bounding box) is what the editor,
the project store and the import of a SEG re-measure an edited mask with, so an
unchanged mask gives the analysis' row back, every column.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage

from backmice.measure.red_flags import (
    RedFlagRules,
    apply_checks,
    deep_check,
    evaluate,
    flags_of,
)
from backmice.measure.shape import distance_stats, measure_labels
from backmice.vocab import COLUMNS, DETAILS, RedFlag, Relation, Side, Status, Subtype

__all__ = [
    "MARGIN",
    "RedFlagRules",
    "SiteMaps",
    "fascia_columns",
    "fascia_offset_mm",
    "measure_nodule",
    "measure_nodules",
    "sat_signal_of",
    "suggest_subtype",
]

log = logging.getLogger(__name__)

#: Distance (mm) from the midsagittal plane within which a nodule is ``midline``.
MIDLINE_MM = 5.0

#: Voxels added around a nodule's bounding box when it is measured alone
#: (:func:`measure_nodule`): the partial-volume ring, the slice beyond each pole
#: and the trilinear fascia lookup need one.
MARGIN = 2

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass(slots=True)
class SiteMaps:
    """What the analysis knows about the site, on the nodules' grid.

    Attributes
    ----------
    signed_fascia_mm : ndarray of float32, shape (slice, row, col)
        Signed distance to the fascia, mm (+ superficial).
    skin_depth_mm : ndarray of float32
        Depth below the skin, mm.
    image : ndarray of float32
        The image the nodules were found in (bias-corrected T1 or Dixon fat).
    subcutaneous : ndarray of bool or None
        Subcutaneous fat (for the signal reference); None when ``sat_signal``
        is given.
    fat : ndarray of bool
        The fat mask (for non-fat components).
    midline_x_mm : float or None
        LPS x of the body's midsagittal plane (None: side unknown).
    fat_fraction : ndarray of float32 or None
        Dixon fat fraction.
    sacrum_top_z_mm : float or None
        LPS z of the top of the sacrum, when known.
    fat_share : ndarray of float32 or None
        Share of fat in each voxel, 0..1 (the fat score or fraction, clipped),
        for the partial-volume part of ``volume_mm3``.
    sat_signal : float or None
        Median ``image`` of the study's subcutaneous fat, the reference of
        ``fat_signal_ratio``; None: taken from these maps (give it when the maps
        are a crop of the study's).
    """

    signed_fascia_mm: np.ndarray
    skin_depth_mm: np.ndarray
    image: np.ndarray
    subcutaneous: np.ndarray | None
    fat: np.ndarray
    midline_x_mm: float | None
    fat_fraction: np.ndarray | None = None
    sacrum_top_z_mm: float | None = None
    fat_share: np.ndarray | None = None
    sat_signal: float | None = None

    def crop(self, box: tuple[slice, ...]) -> SiteMaps:
        """The maps within ``box`` (views), with the study's own ``sat_signal``.

        Parameters
        ----------
        box : tuple of 3 slice
            A box of the ``(slice, row, col)`` grid.

        Returns
        -------
        SiteMaps
            ``sat_signal`` is the whole study's (:func:`sat_signal_of`), not the crop's.
        """

        def cut(volume: np.ndarray | None) -> np.ndarray | None:
            return None if volume is None else volume[box]

        return SiteMaps(
            signed_fascia_mm=self.signed_fascia_mm[box],
            skin_depth_mm=self.skin_depth_mm[box],
            image=self.image[box],
            subcutaneous=cut(self.subcutaneous),
            fat=self.fat[box],
            midline_x_mm=self.midline_x_mm,
            fat_fraction=cut(self.fat_fraction),
            sacrum_top_z_mm=self.sacrum_top_z_mm,
            fat_share=cut(self.fat_share),
            sat_signal=sat_signal_of(self),
        )


def sat_signal_of(site: SiteMaps) -> float:
    """The reference signal of ``fat_signal_ratio``: median ``image`` of the subcutaneous fat.

    ``site.sat_signal`` when given; NaN without subcutaneous fat.
    """
    if site.sat_signal is not None:
        return float(site.sat_signal)
    if site.subcutaneous is None:
        return float("nan")
    values = site.image[site.subcutaneous]
    return float(np.median(values)) if values.size else float("nan")


def _at(volume: np.ndarray, index: np.ndarray) -> float:
    """Trilinear value of a map at a fractional ``(slice, row, col)`` index."""
    return float(ndimage.map_coordinates(volume, index.reshape(3, 1), order=1, mode="nearest")[0])


def suggest_subtype(
    relation: Relation,
    *,
    red_flags: Sequence[RedFlag],
    encapsulated: bool = True,
    centroid_z_mm: float | None = None,
    sacrum_top_z_mm: float | None = None,
) -> Subtype:
    """The rule-based suggestion of ``docs/SPEC.md`` (a hint, never a diagnosis).

    A red flag that is a published feature of liposarcoma
    (:attr:`backmice.vocab.RedFlag.liposarcoma`: larger than 10 cm, septa over
    2 mm, nodular non-fat areas, under 75 % fat) offers ``liposarcoma_suspected``
    first; ``not_fat`` (the nodule is not fat: a cyst, an abscess, a fibrous
    nodule?) offers ``other``; ``deep_extension`` alone changes nothing. A nodule in or under
    the fascia is a fascial fat herniation: lumbosacral below the top of the
    sacrum, lumbar above it or when the level is unknown. A subcutaneous nodule
    with a capsule is an episacroiliac lipoma (backmice analyses the lumbosacral
    region, so "over the sacroiliac region" is taken as given); without one, a
    non-encapsulated fat prominence.
    """
    flags = {RedFlag(f) for f in red_flags}
    if any(f.liposarcoma for f in flags):
        return Subtype.LIPOSARCOMA_SUSPECTED
    if RedFlag.NOT_FAT in flags:
        return Subtype.OTHER
    if relation is not Relation.SUBCUTANEOUS:
        if (
            centroid_z_mm is not None
            and sacrum_top_z_mm is not None
            and centroid_z_mm < sacrum_top_z_mm
        ):
            return Subtype.LUMBOSACRAL_FAT_HERNIATION
        return Subtype.LUMBAR_FASCIAL_FAT_HERNIATION
    if encapsulated:
        return Subtype.EPISACROILIAC_LIPOMA
    return Subtype.NON_ENCAPSULATED_FAT_PROMINENCE


def fascia_offset_mm(
    signed: np.ndarray, affine: np.ndarray, centroid_lps: Sequence[float] | np.ndarray
) -> float:
    """``fascia_offset_mm``: the signed fascia distance at a nodule's centroid, trilinear.

    Parameters
    ----------
    signed : ndarray of float, shape (slice, row, col)
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    centroid_lps : (float, float, float)
        LPS mm.
    """
    index = (np.linalg.inv(affine) @ np.append(np.asarray(centroid_lps, dtype=float), 1.0))[:3]
    return _at(signed, index)


def fascia_columns(
    mask: np.ndarray,
    signed: np.ndarray,
    affine: np.ndarray,
    *,
    row: dict,
    sacrum_top_z_mm: float | None = None,
    rules: RedFlagRules | None = None,
) -> dict[str, Any]:
    """The columns that follow the fascia, for a row whose fascia changed (or was never measured).

    ``fascia_offset_mm`` is read at the centroid (:func:`fascia_offset_mm`, as
    :func:`measure_nodules` reads it), ``fascia_min/max_mm`` over the mask;
    ``relation`` follows from them (SPEC), and so do the ``deep_extension`` red
    flag (:func:`backmice.measure.red_flags.deep_check`, with its value in
    ``red_flag_criteria``) and the suggested subtype (SPEC rules), when the row
    has one.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    signed : ndarray of float, same shape
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    row : dict
        The nodule's row (its centroid, red flags, criteria and suggestion).
    sacrum_top_z_mm : float, optional
        LPS z of the top of the sacrum (the study's level), for the suggestion.
    rules : RedFlagRules, optional

    Returns
    -------
    dict
        The columns to update the row with (all None without a finite distance).
    """
    values = signed[mask]
    values = values[np.isfinite(values)]
    if not values.size:
        return {
            "fascia_offset_mm": None,
            "fascia_min_mm": None,
            "fascia_max_mm": None,
            "relation": None,
        }
    fmin, fmax = float(values.min()), float(values.max())
    centroid = [float(v) for a in "xyz" if (v := row.get(f"centroid_{a}_mm")) is not None]
    if len(centroid) < 3:
        offset = _at(signed, np.argwhere(mask).mean(axis=0))
    else:
        offset = fascia_offset_mm(signed, affine, centroid)
    relation = Relation.from_extent(fmin, fmax)
    flagged = apply_checks(row, [deep_check(fmin, rules=rules)])
    flags = [RedFlag(f) for f in flagged["red_flags"].split(";") if f]
    out: dict[str, Any] = {
        "fascia_offset_mm": offset if math.isfinite(offset) else None,
        "fascia_min_mm": fmin,
        "fascia_max_mm": fmax,
        "relation": str(relation),
        **flagged,
    }
    if row.get("suggested_subtype") is not None:
        out["suggested_subtype"] = str(
            suggest_subtype(
                relation,
                red_flags=flags,
                encapsulated=row.get("suggested_subtype")
                != Subtype.NON_ENCAPSULATED_FAT_PROMINENCE,
                centroid_z_mm=row.get("centroid_z_mm"),
                sacrum_top_z_mm=sacrum_top_z_mm,
            )
        )
    return out


def _fat_fraction_per_slice(region: np.ndarray, fat_fraction: np.ndarray) -> np.ndarray:
    """The fat core's volume in voxels, slice by slice, from the Dixon fat fraction.

    The fat fraction is linear in the share of a voxel the fat fills: a voxel
    at the edge that straddles the core and its capsule holds, of the core,
    its fat fraction over the core's own (the median over the nodule). Each
    voxel counts that share, at most one.

    Parameters
    ----------
    region : ndarray of bool, shape (slice, row, col)
    fat_fraction : ndarray of float, same shape

    Returns
    -------
    ndarray of float, shape (slice,)
        Voxels of fat core in each slice.
    """
    values = fat_fraction[region].astype(np.float64)
    if values.size == 0:
        return np.zeros(region.shape[0])
    core = float(np.median(values))
    share = np.minimum(values / core, 1.0) if core > 0 else np.ones_like(values)
    k = np.nonzero(region)[0]
    return np.bincount(k, weights=share, minlength=region.shape[0])


def _partial_volume(labels: np.ndarray, shape, site: SiteMaps) -> np.ndarray:
    """Fat (in voxels) in the pixels just outside a nodule that fell below the threshold.

    A voxel straddling the edge of the fat core and its dark capsule holds part
    of the core; thresholding drops it whole. Adding the fat share of the
    non-fat pixels that border the nodule in the acquisition plane puts it back
    (on the phantoms: isotropic volumes from -7..-14% to -5..+1%).

    Returns
    -------
    ndarray of float, shape (slices of ``shape.bbox``,)
        The fat added in each slice (zeros without ``site.fat_share``).
    """
    depth = shape.bbox[0].stop - shape.bbox[0].start
    if site.fat_share is None:
        return np.zeros(depth)
    box = tuple(
        slice(max(s.start - (0 if a == 0 else 1), 0), s.stop + (0 if a == 0 else 1))
        for a, s in enumerate(shape.bbox)
    )
    region = labels[box] == shape.label
    ring = np.zeros_like(region)
    for k in range(region.shape[0]):
        ring[k] = ndimage.binary_dilation(region[k], structure=_CROSS)
    ring &= ~region & ~site.fat[box]
    share = np.where(ring, np.clip(site.fat_share[box], 0.0, 1.0), 0.0)
    return share.sum(axis=(1, 2))


def _fat_beyond_poles(labels: np.ndarray, shape, fat: np.ndarray) -> tuple[float, float]:
    """Share of fat in the slice just beyond each end of a nodule, over its end section.

    What the end slices overproject is what lies beyond the pole within the
    slice's thickness: fat beside a nodule in the subcutaneous layer, muscle
    beside one deep to the fascia (which the fat threshold then discounts).
    Beyond the field of view the fat is taken as fat (1).
    """
    first, last = shape.bbox[0].start, shape.bbox[0].stop - 1
    rows, cols = shape.bbox[1], shape.bbox[2]
    out = []
    for end, beyond in ((first, first - 1), (last, last + 1)):
        section = labels[end, rows, cols] == shape.label
        if not 0 <= beyond < labels.shape[0] or not section.any():
            out.append(1.0)
            continue
        out.append(float(np.count_nonzero(fat[beyond, rows, cols][section])) / section.sum())
    return out[0], out[1]


def _end_slab_excess(per_slice: np.ndarray, beyond: tuple[float, float] = (1.0, 1.0)) -> float:
    """How much of a nodule's two end slices is fat beyond its poles (same units).

    The fat-fraction volume counts all the fat in each voxel. In a thick end
    slice the pole lies somewhere within the slice's thickness, and the fat
    beyond it, in the same voxels, is counted as the nodule's: the end slice
    holds the pole's whole footprint times the thickness (the overprojection,
    or Holmes effect, of thick sections). Near a pole a smooth nodule's section
    shrinks linearly with the distance left to the pole (a paraboloid cap), so
    the amounts in the end slice and in its neighbour, in ratio ``r``, put the
    pole ``h = T r / (1 - r)`` beyond the end slice's inner face, and the cap
    holds ``h / 2T`` of what the end slice counts. An end slice with
    ``r >= 2/3`` (the pole is not in it) is left whole.

    Parameters
    ----------
    per_slice : ndarray of float, shape (slice,)
        The nodule's amount in each slice along the slice axis, in order.
    beyond : (float, float)
        Share of fat beyond the first and the last end (1: all fat); the
        overprojection at each end is scaled by it.

    Returns
    -------
    float
        The amount to take off (0 for a nodule in fewer than two slices).
    """
    values = np.asarray(per_slice, dtype=np.float64)
    present = np.flatnonzero(values > 0)
    if present.size < 2:
        return 0.0
    values = values[present[0] : present[-1] + 1]
    excess = 0.0
    for (end, neighbour), fat in zip(
        ((values[0], values[1]), (values[-1], values[-2])), beyond, strict=True
    ):
        r = end / neighbour if neighbour > 0 else 1.0
        share = min(1.0, r / (2.0 * (1.0 - r))) if r < 1.0 else 1.0
        excess += end * (1.0 - share) * fat
    return excess


def measure_nodules(
    labels: np.ndarray,
    affine: np.ndarray,
    site: SiteMaps,
    *,
    study: str = "",
    series_uid: str = "",
    calibrated: bool = True,
    rules: RedFlagRules | None = None,
) -> list[dict]:
    """One row of SPEC columns per nodule of a label image.

    Parameters
    ----------
    labels : ndarray of int, shape (slice, row, col)
        Nodule labels (0 background); the label is the ``nodule_id``.
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    site : SiteMaps
        The maps of the analysis.
    study, series_uid : str
        Written into every row.
    calibrated : bool
        False: lengths are in pixels and ``units`` says ``px``.
    rules : RedFlagRules, optional

    Returns
    -------
    list of dict
        Keys :data:`backmice.vocab.COLUMNS`, in that order, then
        :data:`backmice.vocab.DETAILS` (``red_flag_criteria``: every red-flag
        criterion with its measured value, :meth:`.red_flags.Check.as_json`);
        None for a value that does not apply (``fat_fraction`` without Dixon,
        ``side`` without patient geometry).
    """
    rules = rules or RedFlagRules()
    shapes = measure_labels(labels, affine)
    if not shapes:
        return []
    ids = [s.label for s in shapes]
    fascia = distance_stats(labels, site.signed_fascia_mm, ids)
    skin = distance_stats(labels, site.skin_depth_mm, ids)
    signal = distance_stats(labels, site.image, ids)
    ff = distance_stats(labels, site.fat_fraction, ids) if site.fat_fraction is not None else None
    sat_signal = sat_signal_of(site)
    pixel = np.linalg.norm(affine[:3, 1:3], axis=0)
    half_pixel = float(np.mean(pixel)) / 2
    voxel_mm3 = abs(float(np.linalg.det(affine[:3, :3])))
    # Slices thicker than 1.5 pixels: their end slices overproject the poles.
    thick = float(np.linalg.norm(affine[:3, 0])) > 1.5 * float(np.mean(pixel))
    rows = []
    for j, shape in enumerate(shapes):
        centroid = shape.centroid_lps
        fmin, fmax = float(fascia["min"][j]), float(fascia["max"][j])
        relation = Relation.from_extent(fmin, fmax)
        region = labels[shape.bbox] == shape.label
        if site.fat_share is None and site.fat_fraction is not None:
            # The fat-fraction volume counts all the fat in each voxel, so in thick
            # slices it counts the fat beyond a pole in the end slices too; and a
            # voxel that the core shares with muscle overstates the core's share
            # (fat's signal dominates its fat fraction), which this offsets too,
            # so the correction is taken whatever lies beyond.
            per_slice = _fat_fraction_per_slice(region, site.fat_fraction[shape.bbox])
            volume = voxel_mm3 * float(per_slice.sum())
            if thick:
                volume -= voxel_mm3 * _end_slab_excess(per_slice)
        else:
            per_slice = region.sum(axis=(1, 2)) + _partial_volume(labels, shape, site)
            volume = voxel_mm3 * float(per_slice.sum())
            if thick:
                # An end slice counts the fat beyond the pole within its thickness
                # where fat lies beyond (a nodule in the subcutaneous layer); where
                # muscle does, the voxels fall below the fat threshold instead.
                beyond = _fat_beyond_poles(labels, shape, site.fat)
                volume -= voxel_mm3 * _end_slab_excess(per_slice, beyond)
        ratio = float(signal["median"][j]) / sat_signal if sat_signal > 0 else float("nan")
        fat_fraction = float(ff["median"][j]) if ff is not None else None
        checks = evaluate(
            region,
            fat=site.fat[shape.bbox],
            image=site.image[shape.bbox],
            sat_signal=sat_signal,
            pixel_mm=(float(pixel[0]), float(pixel[1])),
            max_diameter_mm=shape.max_diameter_mm,
            fascia_min_mm=fmin,
            fat_fraction=None if site.fat_fraction is None else site.fat_fraction[shape.bbox],
            calibrated=calibrated,
            rules=rules,
        )
        flags = flags_of(checks)
        side, midline = None, None
        if site.midline_x_mm is not None and calibrated:
            offset = float(centroid[0]) - site.midline_x_mm
            midline = abs(offset)
            side = (
                Side.MIDLINE if midline <= MIDLINE_MM else (Side.LEFT if offset > 0 else Side.RIGHT)
            )
        subtype = suggest_subtype(
            relation,
            red_flags=flags,
            centroid_z_mm=float(centroid[2]),
            sacrum_top_z_mm=site.sacrum_top_z_mm,
        )
        row = {
            "study": study,
            "series_uid": series_uid,
            **shape.as_row(),
            "volume_mm3": volume,
            "fascia_offset_mm": fascia_offset_mm(site.signed_fascia_mm, affine, centroid),
            "fascia_min_mm": fmin,
            "fascia_max_mm": fmax,
            "relation": str(relation),
            # The depth map is measured from the skin surface itself
            # (Body.skin_depth_mm); the nodule's edge lies about half a pixel
            # beyond its outermost voxel centres.
            "skin_depth_mm": max(float(skin["min"][j]) - half_pixel, 0.0),
            "side": None if side is None else str(side),
            "midline_distance_mm": midline,
            "fat_fraction": fat_fraction,
            "fat_signal_ratio": ratio,
            "suggested_subtype": str(subtype),
            "subtype": None,
            "status": str(Status.CANDIDATE),
            "reader": None,
            "updated": None,
            "red_flags": ";".join(str(f) for f in flags),
            "units": "mm" if calibrated else "px",
            "red_flag_criteria": [c.as_json() for c in checks],
        }
        rows.append({key: row.get(key) for key in (*COLUMNS, *DETAILS)})
    return rows


def _crop_affine(affine: np.ndarray, lo: Sequence[int]) -> np.ndarray:
    """The affine of a crop whose first voxel is index ``lo`` of the grid of ``affine``."""
    out = np.array(affine, dtype=np.float64, copy=True)
    out[:3, 3] = affine[:3, :3] @ np.asarray(lo, dtype=np.float64) + affine[:3, 3]
    return out


def measure_nodule(
    labels: np.ndarray,
    affine: np.ndarray,
    site: SiteMaps,
    *,
    nodule_id: int = 1,
    box: tuple[slice, ...] | None = None,
    study: str = "",
    series_uid: str = "",
    calibrated: bool = True,
    rules: RedFlagRules | None = None,
) -> dict | None:
    """The SPEC row of one nodule, measured on its bounding box as :func:`measure_nodules` does.

    What an edited (or re-saved) mask is measured with: by the editor, the
    project store and the import of a SEG. The row is the one
    :func:`measure_nodules` gives the same voxels in the whole study, every
    column (the crop keeps :data:`MARGIN` voxels around the nodule, and the
    subcutaneous-fat reference is the study's).

    Parameters
    ----------
    labels : ndarray of int or bool, shape (slice, row, col)
        The nodule's voxels are ``labels == nodule_id`` (a bool mask with the
        default ``nodule_id=1``).
    affine : ndarray of shape (4, 4)
        Index to LPS mm of the grid.
    site : SiteMaps
        The study's maps on the same grid (:func:`backmice.analysis.site_maps`,
        or what the project store kept of them).
    nodule_id : int
        The nodule's label, and the row's ``nodule_id``.
    box : tuple of slice, optional
        A box that holds every voxel of the nodule (default: found).
    study, series_uid : str
        Written into the row.
    calibrated : bool
        False: lengths in pixels (``units`` = ``px``).
    rules : RedFlagRules, optional

    Returns
    -------
    dict or None
        The row (keys of :func:`measure_nodules`); None when the nodule has no voxel.
    """
    if box is None:
        found = ndimage.find_objects((labels == nodule_id).astype(np.uint8, copy=False))
        if not found or found[0] is None:
            return None
        box = found[0]
    grown = tuple(
        slice(max(s.indices(n)[0] - MARGIN, 0), min(s.indices(n)[1] + MARGIN, n))
        for s, n in zip(box, labels.shape, strict=True)
    )
    crop = np.where(labels[grown] == nodule_id, np.uint32(nodule_id), np.uint32(0))
    rows = measure_nodules(
        crop,
        _crop_affine(affine, [s.start for s in grown]),
        site.crop(grown),
        study=study,
        series_uid=series_uid,
        calibrated=calibrated,
        rules=rules,
    )
    return rows[0] if rows else None
