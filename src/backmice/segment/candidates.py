"""Candidate nodules: fat walled off from the subcutaneous fat, or in or under the fascia.

A candidate is a connected region of fat that is not subcutaneous fat in its
slice — so it is walled off from the subcutaneous layer by a thin non-fat
boundary (a capsule), or lies deep to or through the fascia — and that lies in
the region of interest: by default the posterior half of the body, between the
skin and 20 mm deep to the fascia. Deep structures that only reach into the
region of interest (bone marrow, visceral and intermuscular fat) are not
candidates, and a candidate deep to the fascia must reach up to it (fat in the
muscle further down is not a herniation).

Working slice by slice in the acquisition plane, where the resolution is finest,
keeps anisotropic voxels honest: a 4 mm slice blurs a capsule at a nodule's
poles, but not across its equator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import cc3d
import numpy as np
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError
from skimage.segmentation import watershed

from backmice.measure.red_flags import interior_voxels
from backmice.measure.shape import ellipsoid_axes_mm
from backmice.segment.body import distance_mm

__all__ = ["CandidateOptions", "find_candidates"]

#: A candidate holds at least this share of the volume of a ball of the minimum size.
MIN_FILL = 0.75

#: The shell around a candidate whose fat share is judged (mm beyond its edge):
#: past a capsule (about 1 mm and a partial voxel), within a few millimetres.
SHELL_MM = (1.5, 4.0)

#: How much further out the shell may start where the fat resumes only beyond
#: a thick capsule (mm).
MAX_CAPSULE_MM = 2.0

_SQUARE = np.ones((3, 3), dtype=bool)

#: A section in the next slice continues a nodule when a capsule (a thin dark
#: line with fat beyond it, not the thick dermis or muscle) walls at least this
#: share of its border (:func:`_follow_capsule`).
CLOSED_SHARE = 0.75

#: The subcutaneous fat a candidate's core is compared with lies within this
#: distance of it in the slice plane (mm): under the same coil sensitivity.
LOCAL_FAT_MM = 20.0

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CandidateOptions:
    """Options of :func:`find_candidates` (lengths in mm).

    Attributes
    ----------
    min_size_mm, max_size_mm : float
        Limits on a candidate's largest extent.
    roi_deep_mm : float
        The region of interest reaches this far deep to the fascia.
    posterior_only : bool
        Keep to the posterior half of the body (the back).
    reach_mm : float
        A candidate deep to the fascia must come within this distance of it.
    min_in_roi : float
        Share of a region's voxels that must lie in the region of interest.
    min_thickness_mm : float
        Diameter of the largest disk that fits in the region's largest
        cross-section (fatty streaks in muscle and slivers of fat between septa
        are thinner than a nodule).
    min_solidity : float
        Area over convex-hull area of the largest cross-section (a nodule is
        convex; a crescent of fat squeezed between a capsule and the fascia is not).
    min_skin_depth_mm : float
        A candidate that reaches closer to the skin than this is fat walled off
        by the skin itself (beside a cyst, between a septum and the skin), not a
        nodule in its capsule.
    sheet_mm : float
        Layers of fat thinner than this that hug a nodule's section are cut
        off it (fat between a capsule lost in the partial volume and the
        fascia); 0 keeps them.
    min_shell_fat : float
        A candidate wholly superficial to the fascia is a nodule in the
        subcutaneous fat: at least this share of the shell around it is fat.
        The shell is :data:`SHELL_MM` wide and starts where the fat resumes
        beyond most of the candidate's edge (past its capsule, up to
        :data:`MAX_CAPSULE_MM` further out for a thick one). A pocket of the
        layer cut off by one septum against the skin or the fascia has the
        dermis or the muscle along one side; on the phantoms such pockets have
        0.42-0.76 and nodules 0.76-0.95. 0 turns the check off.
    min_core_fat : float
        A lipoma is mature fat, like the subcutaneous fat on every sequence
        (Kransdorf et al., Radiology 2002;224:99): the candidate's interior
        in the slice plane (:func:`backmice.measure.red_flags.interior_voxels`
        with ``in_plane``: each section one pixel in, free of the partial
        volume of its border, whatever the slices' thickness) must have a
        median fat score at least this share of the subcutaneous fat's. A
        strip of fat between muscles, a few pixels wide, has no such core (its
        every pixel shares the muscle's signal).
        0 turns the check off.
    max_elongation : float
        Lipomas and fat herniations are ovoid or discoid: the longest diameter
        of the candidate's moment ellipsoid is at most this many times the
        middle one. Fat along a muscle plane (between the erector spinae and
        multifidus, at the lateral border of the erector spinae, epimuscular
        fat under the fascia) runs along the muscles for several centimetres as
        a strip. 0 turns the check off.
    """

    min_size_mm: float = 5.0
    max_size_mm: float = 100.0
    roi_deep_mm: float = 20.0
    posterior_only: bool = True
    reach_mm: float = 5.0
    min_in_roi: float = 0.95
    min_thickness_mm: float = 3.5
    min_solidity: float = 0.7
    min_skin_depth_mm: float = 2.0
    sheet_mm: float = 3.0
    min_shell_fat: float = 0.7
    min_core_fat: float = 0.9
    max_elongation: float = 3.0


def _lps_y(shape: tuple[int, int, int], affine: np.ndarray) -> np.ndarray:
    """LPS y (mm, + posterior) of every voxel centre, as a broadcastable sum."""
    k, r, c = (np.arange(n, dtype=np.float32) for n in shape)
    a = affine.astype(np.float32)
    return (
        a[1, 3]
        + a[1, 0] * k[:, None, None]
        + a[1, 1] * r[None, :, None]
        + a[1, 2] * c[None, None, :]
    )


def _grown(
    box: tuple[slice, ...], pad: tuple[int, ...] | list[int], shape: tuple[int, ...]
) -> tuple[slice, ...]:
    """``box`` grown by ``pad`` voxels on each side of each axis, within ``shape``."""
    return tuple(
        slice(max(s.start - p, 0), min(s.stop + p, n))
        for s, p, n in zip(box, pad, shape, strict=True)
    )


def _inscribed_mm(section: np.ndarray, pixel_mm: np.ndarray) -> float:
    """Diameter (mm) of the largest disk that fits in a section (row, col) of a crop.

    Padded first: a crop's edge would otherwise count as more of the section.
    """
    padded = np.pad(section, 1)
    return 2 * float(distance_mm(padded[np.newaxis], (1.0, *pixel_mm)).max())


def _compact_enough(region: np.ndarray, pixel_mm: np.ndarray, options: CandidateOptions) -> bool:
    """Thick and convex enough in its largest cross-section to be a nodule."""
    areas = region.sum(axis=(1, 2))
    section = region[int(np.argmax(areas))]
    if _inscribed_mm(section, pixel_mm) < options.min_thickness_mm:
        return False
    points = np.argwhere(section)
    if len(points) < 4:
        return False
    try:
        hull = ConvexHull(points * pixel_mm)
    except QhullError:  # all in a line
        return False
    # Hull of pixel centres misses half a pixel all round: add the perimeter strip.
    area = section.sum() * float(np.prod(pixel_mm))
    hull_area = hull.volume + hull.area * 0.5 * float(np.mean(pixel_mm))
    return area / hull_area >= options.min_solidity


def _nodule_like(
    region: np.ndarray,
    score: np.ndarray,
    sat: np.ndarray,
    sat_level: float,
    affine: np.ndarray,
    options: CandidateOptions,
) -> bool:
    """A core of fat like the fat around it, and an ovoid (see :class:`CandidateOptions`).

    ``region``, ``score`` and ``sat`` are crops around the candidate (its box
    grown by :data:`LOCAL_FAT_MM` in the slice plane); the layer's level is
    read there when the crop holds enough of it (a coil's shading changes the
    fat's level across the body), else ``sat_level`` (the layer's median over
    the back) is used.
    """
    if options.min_core_fat > 0:
        level = sat_level
        near = score[sat]
        if near.size >= 50:
            level = float(np.median(near))
        if np.isfinite(level) and level > 0:
            # At the nodule's equator, its largest section: in thick slices the
            # others also hold what lies beyond its poles (they read dimmer,
            # whatever the tissue).
            k = int(np.argmax(region.sum(axis=(1, 2))))
            core = score[k][interior_voxels(region[k : k + 1], in_plane=True)[0]]
            if core.size == 0 or float(np.median(core)) < options.min_core_fat * level:
                return False
    if options.max_elongation > 0:
        axes = ellipsoid_axes_mm(region, affine)
        if axes[0] > options.max_elongation * axes[1]:
            return False
    return True


def _surrounded_by_fat(
    labels: np.ndarray,
    i: int,
    sl: tuple[slice, ...],
    fat: np.ndarray,
    signed_mm: np.ndarray,
    spacing: np.ndarray,
    options: CandidateOptions,
) -> bool:
    """False for a candidate wholly superficial to the fascia that fat does not surround.

    A nodule in the subcutaneous fat has fat all round it beyond its capsule;
    a pocket of the layer walled off by a septum against the skin or the
    fascia has the dermis or the muscle along one side.
    """
    if options.min_shell_fat <= 0:
        return True
    region = labels[sl] == i
    if signed_mm[sl][region].min() <= -1.0:  # in or under the fascia: muscle around it
        return True
    reach = SHELL_MM[1] + MAX_CAPSULE_MM
    pad = [int(np.ceil(reach / d)) + 1 for d in spacing]
    box = _grown(sl, pad, labels.shape)
    own = labels[box] == i
    mm = (float(spacing[0]), float(spacing[1]), float(spacing[2]))
    beyond = distance_mm(~own, mm)
    # Where the capsule ends: the fat resumes this far beyond most of the
    # candidate's edge (the lower quartile, so the sides against the dermis or
    # the muscle do not count). The shell starts there, not at a fixed
    # distance: a capsule is 0.6-1.8 mm thick, and a pixel of partial volume
    # on each side of it.
    edge = own & ~ndimage.binary_erosion(own)
    to_fat = distance_mm(~(fat[box] & ~own), mm)[edge]
    to_fat = to_fat[np.isfinite(to_fat)]  # no fat in the box at all: the furthest start
    resumes = float(np.percentile(to_fat, 25)) if to_fat.size else np.inf
    start = min(max(resumes, SHELL_MM[0]), SHELL_MM[0] + MAX_CAPSULE_MM)
    shell = (beyond > start) & (beyond <= start + SHELL_MM[1] - SHELL_MM[0])
    if not shell.any():
        return True
    share = float(np.count_nonzero(fat[box][shell])) / float(np.count_nonzero(shell))
    return share >= options.min_shell_fat


def _grow(
    cores: np.ndarray,
    ids: np.ndarray,
    score: np.ndarray,
    fat: np.ndarray,
    sat: np.ndarray,
    *,
    pixel_mm: np.ndarray,
    slice_mm: float,
    strict: np.ndarray | None = None,
    margin_mm: float = 6.0,
    grow_mm: float = 3.0,
) -> np.ndarray:
    """Grow each core through the fat up to the capsule, in 3D (marker watershed).

    Where a capsule is blurred (at a nodule's poles in thick slices, or where it
    runs oblique to the slice) the core found slice by slice stops short. From
    each core the fat is flooded in order of fat score, against the subcutaneous
    fat flooding from outside the core's footprint; the two meet in the valley
    of the fat score that the capsule leaves even where it is faint.
    """
    out = np.zeros(cores.shape, dtype=np.int32)
    background = int(cores.max()) + 1  # the marker of the fat the cores flood against
    pad = (1, *(int(np.ceil(margin_mm / p)) for p in pixel_mm))
    for i, sl in enumerate(ndimage.find_objects(cores), start=1):
        if sl is None or i not in ids:
            continue
        box = _grown(sl, pad, cores.shape)
        core = cores[box]
        markers = np.where(np.isin(core, ids), core, 0).astype(np.int32)
        if strict is not None:
            # Seed from the fat inside the capsule, not from the capsule's own
            # partly-fat pixels: the flood must start on the right side of the valley.
            inner = strict[box] & (markers > 0)
            if np.any(inner & (markers == i)):
                markers = np.where(inner, markers, 0)
                # Fat that a dark line parts from the core's largest piece (a
                # wedge between the capsule, a septum and the fascia) floods
                # against it, so that the two meet at that line.
                pieces = cc3d.connected_components(markers == i, connectivity=6)
                if pieces.max() > 1:
                    size = np.bincount(pieces.ravel())
                    size[0] = 0
                    markers[(pieces > 0) & (pieces != int(np.argmax(size)))] = background
        own = markers == i
        footprint = ndimage.binary_dilation(
            np.any(own, axis=0), structure=np.ones((5, 5), dtype=bool)
        )
        # The subcutaneous fat floods from outside the core's footprint, and from
        # slices more than ``grow_mm`` beyond the core (a cap is never thicker).
        reach = np.flatnonzero(np.any(own, axis=(1, 2)))
        within = np.zeros(core.shape[0], dtype=bool)
        steps = int(np.ceil(grow_mm / slice_mm))
        within[max(reach[0] - steps, 0) : reach[-1] + steps + 1] = True
        allowed = footprint[np.newaxis] & within[:, np.newaxis, np.newaxis]
        # A cap beyond the core's slices is narrower than the core: keep it inside
        # the core's own footprint there (its capsule may be too faint to stop a flood).
        caps = within.copy()
        caps[reach[0] : reach[-1] + 1] = False
        allowed[caps] &= np.any(own, axis=0)
        markers[sat[box] & ~allowed & (markers == 0)] = background
        smooth = ndimage.gaussian_filter(score[box].astype(np.float32), (0.0, 0.7, 0.7))
        basins = watershed(-smooth, markers=markers, mask=fat[box] | (markers > 0))
        # The capsule is not part of the nodule (SPEC): where its partly-fat pixels
        # pass the fat threshold, the strict mask leaves them out.
        keep = fat[box] if strict is None else strict[box] | (score[box] >= 0.8)
        region = (basins == i) & keep
        out[box][region] = i
    return out


def _closed_share(section: np.ndarray, inside: np.ndarray, *, capsule_px: int) -> float:
    """Share of a section's border walled off from the fat around it by a capsule.

    ``inside`` is the fat free of thin dark lines. A border pixel is walled
    off where a dark pixel beside it has fat beyond it within ``capsule_px``
    pixels: a thin dark line in the fat, as a capsule is. The dermis and the
    muscle are dark too, but thick: a pocket of fat against them is not
    closed by them.
    """
    border = section & ~ndimage.binary_erosion(section, structure=_SQUARE)
    if not border.any():
        return 0.0
    outside = inside & ~section
    dark = ~inside & ~section
    capsule = dark & ndimage.binary_dilation(outside, structure=_SQUARE, iterations=capsule_px)
    walled = border & ndimage.binary_dilation(capsule, structure=_SQUARE)
    return float(np.count_nonzero(walled)) / float(np.count_nonzero(border))


def _follow_capsule(
    labels: np.ndarray,
    score: np.ndarray,
    fat: np.ndarray,
    strict: np.ndarray,
    signed_mm: np.ndarray,
    *,
    pixel_mm: np.ndarray,
    slice_mm: float,
    min_size_mm: float,
    min_thickness_mm: float,
    min_closed: float = CLOSED_SHARE,
) -> np.ndarray:
    """Carry each candidate from slice to slice for as long as its capsule closes it.

    The core found slice by slice may hold only the nodule's equator: where a
    capsule has a gap of a pixel or two (a thin capsule in partial volume),
    the fat inside it joins the subcutaneous fat in that slice, and
    :func:`_grow` reaches only a cap's thickness beyond the core. From the
    widest section outward, one slice at a time: in the next slice, the fat
    that the middle of the previous section floods before the fat more than
    4 mm beyond it does (a 2D marker watershed on the fat score, which parts
    them at the capsule's valley even across its gaps) is the nodule's
    section there when a capsule walls at least ``min_closed`` of its border
    (:func:`_closed_share`). The first slice it does not wall ends the
    nodule, and what :func:`_grow` found there and beyond is kept.

    Only candidates wholly superficial to the fascia are followed (muscle
    walls the others in every slice, and their connected fat is the whole of
    them), and only from a section that could be a nodule's equator (the
    area of a disk of ``min_size_mm`` at :data:`MIN_FILL`, and a disk of
    ``min_thickness_mm`` inside).

    Parameters
    ----------
    labels : ndarray of int, shape (slice, row, col)
        Candidates as grown by :func:`_grow`.
    score, fat, strict, signed_mm : ndarray, same shape
        Fat score, fat mask, fat free of thin dark lines, signed distance to
        the fascia (mm, + superficial).
    pixel_mm : ndarray of shape (2,)
        Pixel size in the slice plane, mm.
    slice_mm : float
        Distance between slices, mm.
    min_size_mm, min_thickness_mm : float
        As in :class:`CandidateOptions`.
    min_closed : float
        Share of the border a capsule must wall.

    Returns
    -------
    ndarray of the same shape and dtype as ``labels``
    """
    out = labels.copy()
    margin = tuple(int(np.ceil(4.0 / p)) for p in pixel_mm)
    # A capsule and the partial volume on each side of it.
    capsule_px = int(np.ceil(MAX_CAPSULE_MM / float(np.min(pixel_mm)))) + 1
    ring = np.ones((2 * margin[0] + 1, 2 * margin[1] + 1), dtype=bool)
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == i
        if signed_mm[sl][own].min() <= -1.0:
            # In or under the fascia, muscle walls the fat in every slice and
            # the connected fat is the whole of it already.
            continue
        areas = np.count_nonzero(own, axis=(1, 2))
        widest = int(np.argmax(areas)) + sl[0].start
        section = own[widest - sl[0].start]
        area = float(np.count_nonzero(section)) * float(np.prod(pixel_mm))
        if (
            area < MIN_FILL * np.pi / 4 * min_size_mm**2
            or _inscribed_mm(section, pixel_mm) < min_thickness_mm
        ):
            continue  # no nodule's equator: nothing to follow
        # A nodule is ovoid: it reaches no further beyond what was found than
        # that is wide.
        reach = max(s.stop - s.start for s in sl[1:]) * float(np.max(pixel_mm))
        steps = int(np.ceil(reach / slice_mm))
        rows, cols = _grown(sl[1:], [2 * m for m in margin], labels.shape[1:])
        for first, step in ((widest, -1), (widest, 1)):
            prev = labels[first, rows, cols] == i
            for n in range(1, steps + 1):
                k = first + step * n
                if not 0 <= k < labels.shape[0] or not prev.any():
                    break
                # Seed from the middle of the previous section: toward a pole
                # the next one is smaller, and only its middle is sure to lie in it.
                depth = ndimage.distance_transform_edt(prev)
                inner = (depth >= 0.5 * depth.max()) & strict[k, rows, cols]
                if not inner.any():
                    break
                markers = inner.astype(np.int32)
                beyond = ~ndimage.binary_dilation(prev, structure=ring)
                markers[beyond & fat[k, rows, cols]] = 2
                smooth = ndimage.gaussian_filter(score[k, rows, cols].astype(np.float32), 0.7)
                basins = watershed(
                    -smooth, markers=markers, mask=fat[k, rows, cols] | (markers > 0)
                )
                section = (basins == 1) & strict[k, rows, cols]
                here = out[k, rows, cols]
                if (
                    # Away from its widest section a nodule narrows (a little
                    # growth: the widest found may fall beside the equator).
                    np.count_nonzero(section) > 1.3 * np.count_nonzero(prev)
                    # Another candidate there: fat between them, not this one.
                    or np.any(section & (here != i) & (here > 0))
                    or _closed_share(section, strict[k, rows, cols], capsule_px=capsule_px)
                    < min_closed
                ):
                    break
                here[(here == i) & ~section] = 0
                here[section & (here == 0)] = i
                prev = section
    return out


def _merge_stacked(labels: np.ndarray, *, min_overlap: float = 0.5) -> np.ndarray:
    """Join labels that continue each other from one slice to the next.

    A nodule whose capsule is lost in the partial volume over a few slices
    joins the subcutaneous fat there, and its two ends become two candidates,
    one above the other, each grown into the slice between. Two labels whose
    sections in neighbouring slices overlap by at least ``min_overlap`` of the
    smaller section are one nodule.
    """
    below, above = labels[:-1], labels[1:]
    touch = (below > 0) & (above > 0) & (below != above)
    if not touch.any():
        return labels
    n = int(labels.max()) + 1
    k = np.nonzero(touch)[0]
    a, b = below[touch].astype(np.int64), above[touch].astype(np.int64)
    pairs, overlap = np.unique(np.stack([k, a, b]), axis=1, return_counts=True)
    # Section size of each label in each slice.
    sizes: dict[tuple[int, int], int] = {}
    kk, ll = np.nonzero(labels.reshape(labels.shape[0], -1))
    flat = labels.reshape(labels.shape[0], -1)[kk, ll].astype(np.int64)
    keys, counts = np.unique(kk.astype(np.int64) * n + flat, return_counts=True)
    sizes = dict(zip(keys.tolist(), counts.tolist(), strict=True))
    parent = np.arange(n)

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (sk, la, lb), o in zip(pairs.T.tolist(), overlap.tolist(), strict=True):
        smaller = min(sizes[sk * n + la], sizes[(sk + 1) * n + lb])
        if o >= min_overlap * smaller:
            ra, rb = root(la), root(lb)
            parent[max(ra, rb)] = min(ra, rb)
    lut = np.array([root(i) for i in range(n)], dtype=labels.dtype)
    merged = int(np.count_nonzero(lut != np.arange(n)))
    if merged:
        log.debug("candidates: %d joined to the one above or below", merged)
    return lut[labels]


def _tips(removed: np.ndarray, kept: np.ndarray, *, max_px: int) -> np.ndarray:
    """The pieces of ``removed`` that are a section's tips, as a mask.

    The opening that cuts a sheet off a section also cuts the tips of an
    elongated section where it is narrower than the disk (a flat lipoma seen
    edge on), and the long axis came out short (on the 1.5 mm Dixon phantoms
    by 1.0 ± 0.7 mm). A tip is a small piece (at most ``max_px`` pixels),
    touching the kept section and reaching beyond its ends along its long
    axis; a sheet is a long piece, and lies along the section's side.

    Parameters
    ----------
    removed, kept : ndarray of bool, shape (row, col)
        What the opening took off a section, and what it kept.
    max_px : int
        The largest piece taken for a tip, pixels.

    Returns
    -------
    ndarray of bool, shape (row, col)
    """
    out = np.zeros_like(removed)
    rc = np.argwhere(kept).astype(np.float64)
    if max_px <= 0 or not removed.any() or len(rc) < 3:
        return out
    pieces, n = ndimage.label(removed, structure=_SQUARE)
    size = np.bincount(pieces.ravel(), minlength=n + 1)
    touch = np.bincount(pieces[ndimage.binary_dilation(kept, structure=_SQUARE)], minlength=n + 1)
    # The kept section's extent along its long axis (the principal axis of its pixels).
    mean = rc.mean(axis=0)
    axis = np.linalg.eigh(np.cov((rc - mean).T))[1][:, -1]
    along = (rc - mean) @ axis
    where = np.argwhere(pieces > 0)
    t = (where - mean) @ axis
    outside = (t < along.min()) | (t > along.max())
    beyond = np.bincount(pieces[where[:, 0], where[:, 1]], weights=outside, minlength=n + 1)
    tip = (size <= max_px) & (touch > 0) & (beyond > 0)
    tip[0] = False
    return tip[pieces]


def _trim_sheets(labels: np.ndarray, *, pixel_mm: np.ndarray, sheet_mm: float) -> np.ndarray:
    """Cut what is not the nodule off each label, slice by slice.

    Where a capsule runs nearly parallel to thick slices it vanishes in the
    partial volume, and the thin layer of fat between it and the fascia (or
    the skin) joins the nodule: a sheet a few pixels thick hugging the core.
    A nodule's section is convex and much thicker than that, so an opening
    with a disk of diameter ``sheet_mm`` removes the sheet and leaves the
    section; the section's tips, which the opening also cuts where they are
    narrower than the disk, are put back (:func:`_tips`). A section too small
    to hold the disk twice over (toward a pole) is kept within reach of the
    section next to it toward the largest one, which cuts off what a pole
    touches beyond the nodule (a fat streak in the muscle). A section is one
    piece: pieces under half the largest, joined to it only at a corner and
    overlapping neither neighbouring section (fat in a wedge between the
    capsule and a septum), are cut off.
    """
    from skimage.morphology import disk

    radius = max(round(sheet_mm / 2 / float(np.mean(pixel_mm))), 1)
    footprint = disk(radius)
    # A tip the opening cuts off holds less than half the disk's square.
    tip_px = int(0.5 * sheet_mm**2 / float(np.prod(pixel_mm)))
    out = labels.copy()
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        region = labels[sl] == i
        whole = region.copy()  # as it came, for the neighbours of each section
        largest = int(np.argmax(region.sum(axis=(1, 2))))
        # From the largest section outward, so each pole section is judged
        # against its inner neighbour as already trimmed.
        order = [largest, *range(largest + 1, region.shape[0]), *range(largest - 1, -1, -1)]
        bodies: dict[int, np.ndarray] = {}
        for k in order:
            section = region[k]  # a view: trimmed in place
            inner = bodies.get(k + 1 if k < largest else k - 1)
            # brute_force: scipy's fast path for iterated erosion writes out of
            # bounds when the footprint is larger than the input (scipy#11400).
            if ndimage.binary_erosion(section, footprint, iterations=2, brute_force=True).any():
                opened = ndimage.binary_opening(section, footprint)
                section &= opened | _tips(section & ~opened, opened, max_px=tip_px)
            elif inner is not None:
                section &= ndimage.binary_dilation(
                    inner, structure=_SQUARE, iterations=3, brute_force=True
                )
            pieces, n = ndimage.label(section)
            if n > 1:
                size = np.bincount(pieces.ravel())
                size[0] = 0
                keep = size >= 0.5 * size.max()
                # A small piece that the section above or below overlaps is the
                # nodule's own (a tip cut off by a capsule pixel); one that
                # neither does is fat beside it.
                beside = np.zeros_like(section)
                for j in (k - 1, k + 1):
                    if 0 <= j < whole.shape[0]:
                        beside |= whole[j]
                keep |= np.bincount(pieces[beside], minlength=n + 1) > 0
                keep[0] = False
                section &= keep[pieces]
            # What the next section out must lie within reach of: this one eroded
            # by a pixel or, where that leaves nothing (a small pole section), its
            # part next to the inner one's, so that a thin arm kept here (the
            # root of a streak) does not lead on to the next slice.
            body = ndimage.binary_erosion(section, structure=_SQUARE)
            if not body.any() and inner is not None:
                body = section & ndimage.binary_dilation(inner, structure=_SQUARE)
            bodies[k] = body if body.any() else section
        out[sl][whole & ~region] = 0
    return out


def find_candidates(
    fat: np.ndarray,
    score: np.ndarray,
    sat: np.ndarray,
    body: np.ndarray,
    signed_mm: np.ndarray,
    *,
    affine: np.ndarray,
    options: CandidateOptions | None = None,
    strict: np.ndarray | None = None,
    skin_depth_mm: np.ndarray | None = None,
    field_of_view: tuple[slice, ...] | None = None,
) -> np.ndarray:
    """Label candidate nodules.

    Parameters
    ----------
    fat : ndarray of bool, shape (slice, row, col)
        The fat mask.
    score : ndarray of float
        The fat score (or fat fraction) the mask was thresholded from.
    sat : ndarray of bool
        Subcutaneous fat (:func:`backmice.segment.subcutaneous_fat`).
    body : ndarray of bool
        The body mask.
    signed_mm : ndarray of float
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    options : CandidateOptions, optional
    strict : ndarray of bool, optional
        Fat without thin dark lines (capsules): where growing a candidate starts.
    skin_depth_mm : ndarray of float, optional
        Depth below the skin, mm (for ``options.min_skin_depth_mm``).
    field_of_view : tuple of slice, optional
        The in-plane box of the image that was acquired
        (:attr:`backmice.segment.body.Body.field_of_view`; default the whole
        image): a candidate that reaches its edge is cut by it and cannot be
        measured.

    Returns
    -------
    ndarray of uint32
        0 background, 1..n candidates numbered in slice, row, column order of
        their centroids (the same input always gives the same numbers).
    """
    options = options or CandidateOptions()
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    other = fat & body & ~sat
    labels = cc3d.connected_components(other, connectivity=6)
    n = int(labels.max())
    if n == 0:
        return np.zeros(fat.shape, dtype=np.uint32)

    roi = body & (signed_mm >= -options.roi_deep_mm)
    if options.posterior_only:
        y = _lps_y(fat.shape, affine)
        y_mid = float(np.mean(y[body])) if body.any() else 0.0
        roi &= y >= y_mid
    where = np.flatnonzero(labels)  # only labelled voxels: a few percent of the volume
    flat = labels.ravel()[where]
    count = np.bincount(flat, minlength=n + 1)
    in_roi = np.bincount(flat, weights=roi.ravel()[where], minlength=n + 1)
    best = np.full(n + 1, -np.inf, dtype=np.float32)
    np.maximum.at(best, flat.astype(np.intp), signed_mm.ravel()[where])
    keep = (in_roi >= options.min_in_roi * count) & (best >= -options.reach_mm)
    keep[0] = False

    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if keep[i] and sl is not None:
            extent = max((s.stop - s.start) * d for s, d in zip(sl, spacing, strict=True))
            keep[i] = options.min_size_mm * 0.5 <= extent <= options.max_size_mm * 1.5
    labels = _grow(
        labels,
        np.flatnonzero(keep),
        score,
        fat,
        sat,
        pixel_mm=spacing[1:],
        slice_mm=spacing[0],
        strict=strict,
    )
    labels = _merge_stacked(labels)
    if strict is not None:
        labels = _follow_capsule(
            labels,
            score,
            fat,
            strict,
            signed_mm,
            pixel_mm=spacing[1:],
            slice_mm=float(spacing[0]),
            min_size_mm=options.min_size_mm,
            min_thickness_mm=options.min_thickness_mm,
        )
    if options.sheet_mm > 0:
        labels = _trim_sheets(labels, pixel_mm=spacing[1:], sheet_mm=options.sheet_mm)
    keep = np.zeros(n + 1, dtype=bool)
    # The subcutaneous fat's own level, where the candidates are looked for.
    sat_roi = sat & roi
    sat_level = float(np.median(score[sat_roi])) if sat_roi.any() else float("nan")
    voxel_mm3 = float(np.prod(spacing))
    min_voxels = MIN_FILL * np.pi / 6 * options.min_size_mm**3 / voxel_mm3
    rows, cols = (
        (slice(0, labels.shape[1]), slice(0, labels.shape[2]))
        if field_of_view is None
        else field_of_view[-2:]
    )
    r0, r1, _ = rows.indices(labels.shape[1])
    c0, c1, _ = cols.indices(labels.shape[2])
    local = (0, *(int(np.ceil(LOCAL_FAT_MM / d)) for d in spacing[1:]))
    for i, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        # Cut by the field of view in the slice plane: it cannot be measured.
        if sl[1].start <= r0 or sl[2].start <= c0 or sl[1].stop >= r1 or sl[2].stop >= c1:
            continue
        region = labels[sl] == i
        if np.count_nonzero(region) < min_voxels:
            continue
        if (
            skin_depth_mm is not None
            and skin_depth_mm[sl][region].min() < options.min_skin_depth_mm
        ):
            continue
        extent = max((s.stop - s.start) * d for s, d in zip(sl, spacing, strict=True))
        near = _grown(sl, local, labels.shape)
        keep[i] = (
            options.min_size_mm <= extent <= options.max_size_mm * 1.5
            and _compact_enough(region, spacing[1:], options)
            and _surrounded_by_fat(labels, i, sl, fat, signed_mm, spacing, options)
            and _nodule_like(labels[near] == i, score[near], sat[near], sat_level, affine, options)
        )

    # Number the kept regions by centroid (slice, row, col) so ids are stable.
    ids = np.flatnonzero(keep)
    if ids.size == 0:
        return np.zeros(fat.shape, dtype=np.uint32)
    k, r, c = np.nonzero(labels)
    lab = labels[k, r, c]
    size = np.maximum(np.bincount(lab, minlength=n + 1), 1)
    centroids = np.stack(
        [np.bincount(lab, weights=v, minlength=n + 1) / size for v in (k, r, c)], axis=1
    )[ids]
    order = np.lexsort((centroids[:, 2], centroids[:, 1], centroids[:, 0]))
    lut = np.zeros(n + 1, dtype=np.uint32)
    lut[ids[order]] = np.arange(1, ids.size + 1, dtype=np.uint32)
    log.info("candidates: %d of %d non-subcutaneous fat regions", ids.size, n)
    return lut[labels]
