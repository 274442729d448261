"""The subcutaneous fat, the fascia under it, and the signed distance to the fascia.

The fascia (``SPEC.md``) is the superficial face of the deep fascia: the inner
boundary of the subcutaneous fat. It is found as the depth below the skin at
which the subcutaneous fat ends, sampled where that boundary is trustworthy and
interpolated smoothly elsewhere, so that neither the septa in the fat nor a
nodule sitting in or through the fascia pulls it off course:

1. The subcutaneous fat is the fat connected to the skin side, in each
   acquisition-plane slice (4-connected, so a thin capsule or septum, even
   blurred, still separates what is behind it).
2. The *deep region* of a slice is the large part of the body that is not
   subcutaneous fat (muscle, bone, viscera, and whatever fat lies in or through
   the fascia), opened by a small disk so thin notches close; small pockets
   inside the subcutaneous fat (septa, subcutaneous nodules with their
   capsules, cysts) are not part of it, nor is the skin (where the fat thins
   out at the side of the field of view, or a nodule comes close to the skin,
   the dermis would otherwise join the muscle). The rest is the *superficial
   region*.
3. The depth below the skin of the boundary between the two is sampled, away
   from non-subcutaneous fat (a nodule that herniates through the fascia would
   drag the boundary with it), as a height field over (slice, angle about the
   body's centre in the slice): the first boundary met coming in from the
   skin. Each sample is moved to the edge between the fat and
   the tissue deep to it, half-way between their levels along the normal of
   the deep region (a study-wide threshold puts the boundary millimetres
   short of the muscle where the deepest fat is dimmer than the rest: a
   surface coil's near field, a deep layer of lower signal). Samples that lie
   well deeper than their neighbours around the body are dropped too: a
   herniation whose capsule is lost in the partial volume joins the
   subcutaneous fat, and the boundary then bulges over it. Gaps
   over a nodule are bridged linearly, others filled by normalised Gaussian
   convolution, and the field is smoothed, giving a smooth fascia depth
   ``T(x)`` for each voxel's angle.
4. The deep side of the fascia is ``depth(x) > T(x)``; the signed distance to
   that surface (+ superficial, − deep, mm) follows from two Euclidean
   distance transforms, and within three pixels of the surface from
   ``T(x) - depth(x)`` over its gradient's length (the transforms measure to
   voxel centres, half a pixel off next to the surface).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from backmice.segment.body import bounding_box, distance_mm, distance_mm_in_box

__all__ = [
    "Fascia",
    "fascia_distance",
    "signed_distance",
    "slices_without_fat",
    "subcutaneous_fat",
]

log = logging.getLogger(__name__)

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass(slots=True)
class Fascia:
    """The fascia found under the subcutaneous fat.

    Attributes
    ----------
    depth_mm : ndarray of float32, shape (slice, row, col)
        The fascia's depth below the skin near each voxel, mm (NaN far from
        any sampled boundary).
    deep : ndarray of bool
        Voxels deep to the fascia.
    signed_mm : ndarray of float32
        Signed distance to the fascia surface, mm: + superficial (toward the
        skin), − deep.
    samples : ndarray of bool
        Where the boundary was sampled (for quality control).
    """

    depth_mm: np.ndarray
    deep: np.ndarray
    signed_mm: np.ndarray
    samples: np.ndarray


def subcutaneous_fat(
    fat: np.ndarray,
    body: np.ndarray,
    depth_mm: np.ndarray,
    *,
    pixel_mm: tuple[float, float],
    band_mm: float = 6.0,
    min_share: float = 0.05,
    gap_mm: float = 1.0,
    strict: np.ndarray | None = None,
) -> np.ndarray:
    """The fat connected to the skin side, slice by slice.

    A capsule or a septum seen obliquely in a slice is a broken line of dark
    pixels; so that fat does not flow through its gaps, connection to the skin
    is judged on the fat mask eroded by a disk of radius ``gap_mm`` (gaps up to
    about twice that close), and the subcutaneous fat is that eroded layer grown
    back by the same disk within the fat. Fat left over that touches the layer
    is subcutaneous too when it is too thin to hold a disk (slivers beside
    septa); what does hold one is not (a nodule, or fat deep to the fascia).
    The left-over fat is split at the dark lines (``strict``) first: a sheet of
    fat between a capsule and the fascia, joined to the nodule only through the
    capsule's partly-fat pixels, is a sliver of the layer, not part of the nodule.

    Parameters
    ----------
    fat : ndarray of bool, shape (slice, row, col)
        The fat mask.
    body : ndarray of bool
        The body mask.
    depth_mm : ndarray of float
        Depth below the skin, mm.
    pixel_mm : (float, float)
        Row and column spacing, mm.
    band_mm : float
        Fat within this depth of the skin belongs to the subcutaneous layer.
    min_share : float
        A fat region is subcutaneous when it holds at least this share of the
        slice's fat in the skin band (so a small nodule just under the skin is
        not mistaken for the layer).
    gap_mm : float
        Radius of the disk (mm; at least a pixel); 0 judges connection on the
        fat mask itself.
    strict : ndarray of bool, optional
        A stricter fat mask (a higher threshold) to judge connection on: a
        capsule thinner than a pixel is only partly dark, and its pixels may
        pass the fat threshold while failing a stricter one.

    Returns
    -------
    ndarray of bool
    """
    # At least one pixel: a broken line of dark pixels has gaps a pixel wide.
    radius = (max(1.0, gap_mm / pixel_mm[0]), max(1.0, gap_mm / pixel_mm[1]))
    disk = _disk(radius) if gap_mm > 0 else None
    out = np.zeros(fat.shape, dtype=bool)
    # Everything happens inside the body: work on its bounding box, grown so the
    # disk and the 4-neighbourhood never reach past it (the box holds every label,
    # and the image's edge, where the box meets it, stays the edge).
    box = _crop_box(body, 0 if disk is None else max(disk.shape) // 2)
    if box is None:
        return out
    body, depth_mm = body[box], depth_mm[box]
    fat = fat[box] & body
    strict = fat if strict is None else strict[box] & fat
    crop = out[box]
    cores = _erode(strict, disk) if disk is not None else strict
    for k in range(fat.shape[0]):
        core = cores[k]
        labels, n = ndimage.label(core, structure=_CROSS)
        if n == 0:
            crop[k] = fat[k]
            continue
        in_band = np.bincount(labels[depth_mm[k] <= band_mm], minlength=n + 1)
        in_band[0] = 0
        total = in_band.sum()
        if total == 0:
            continue
        # Fat that runs off the image where the field of view cuts the body is
        # subcutaneous only when it reaches the skin band in view: visceral,
        # ischioanal and pelvic fat run off the image too.
        keep = in_band >= max(10, min_share * total)
        keep[0] = False
        layer = keep[labels]
        if disk is not None:
            layer = _dilate(layer, disk) & fat[k]
            # Left-over fat beside the layer without a core of its own is part of it.
            rest, m = ndimage.label(strict[k] & ~layer, structure=_CROSS)
            if m:
                has_core = np.zeros(m + 1, dtype=bool)
                has_core[np.unique(rest[core & ~keep[labels] & (labels > 0)])] = True
                touches = np.zeros(m + 1, dtype=bool)
                touches[np.unique(rest[_dilate(layer, _CROSS)])] = True
                sliver = touches & ~has_core
                sliver[0] = False
                layer |= sliver[rest]
        crop[k] = layer
    return out


def slices_without_fat(
    sat: np.ndarray, region: np.ndarray, *, min_area_px: int, min_share: float = 0.005
) -> list[int]:
    """Slices where ``region`` (the posterior body) holds (almost) no subcutaneous fat.

    A reader sees subcutaneous fat over the back on every slice of a normal
    study; where none is found, the fat threshold or the image is at fault, and
    every measurement against the fascia there is unreliable: say so.

    Parameters
    ----------
    sat : ndarray of bool, shape (slice, row, col)
        Subcutaneous fat.
    region : ndarray of bool, same shape
        Where it is expected (the posterior half of the body).
    min_area_px : int
        Slices where ``region`` is smaller than this are not judged.
    min_share : float
        Fat covering less than this share of ``region`` counts as none.

    Returns
    -------
    list of int
        The slice indices.
    """
    area = region.sum(axis=(1, 2))
    fat = (sat & region).sum(axis=(1, 2))
    judged = area >= min_area_px
    return [int(k) for k in np.flatnonzero(judged & (fat < min_share * area))]


def _crop_box(body: np.ndarray, reach_px: int) -> tuple[slice, ...] | None:
    """The body's bounding box, grown by ``reach_px`` + 2 pixels in the slice plane.

    Per-slice work confined to the body gives the same result on this box as on
    the whole slice when no operation reaches more than ``reach_px`` pixels
    beyond the body: the two extra pixels are background all round (so a
    dilation, a neighbourhood maximum or a component never meets the box's
    side), and where the box meets the image's edge, that edge is kept.
    """
    box = bounding_box(body, margin=reach_px + 2)
    return None if box is None else (slice(None), box[1], box[2])


def _disk(radius_px: tuple[float, float]) -> np.ndarray:
    ry, rx = (max(r, 0.5) for r in radius_px)
    ny, nx = int(np.floor(ry)), int(np.floor(rx))
    y, x = np.mgrid[-ny : ny + 1, -nx : nx + 1]
    return (y / ry) ** 2 + (x / rx) ** 2 <= 1.0


def _pairs(
    structure: np.ndarray, shape: tuple[int, ...]
) -> list[tuple[tuple[slice, slice], tuple[slice, slice], tuple[slice, slice]]]:
    """Index pairs for shifting an array of ``shape`` by a 2-D structure's elements.

    For each off-centre element ``d`` of ``structure`` (which must hold its
    centre and be symmetric, so reflecting it changes nothing), over the last
    two axes: the pixels ``p`` whose ``p + d`` lies in the array, those
    ``p + d``, and the rows and the columns whose ``p + d`` does not.
    """
    centre = tuple(n // 2 for n in structure.shape)
    if not structure[centre] or not np.array_equal(structure, structure[::-1, ::-1]):
        raise ValueError("the structure must hold its centre and be symmetric")
    ny, nx = shape[-2:]
    out = []
    for y, x in np.argwhere(structure):
        dy, dx = int(y) - centre[0], int(x) - centre[1]
        if dy == 0 and dx == 0:
            continue
        p = (
            slice(max(0, -dy), max(0, ny - max(0, dy))),
            slice(max(0, -dx), max(0, nx - max(0, dx))),
        )
        q = (slice(max(0, dy), max(0, ny + min(0, dy))), slice(max(0, dx), max(0, nx + min(0, dx))))
        rows = slice(max(0, ny - dy), ny) if dy > 0 else slice(0, min(ny, -dy))
        cols = slice(max(0, nx - dx), nx) if dx > 0 else slice(0, min(nx, -dx))
        out.append((p, q, (rows, cols)))
    return out


def _dilate(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_dilation`` of each slice (the last two axes), nothing beyond the edge.

    For the small symmetric structures used here, a few shifted ORs over the
    whole array are several times faster than scipy's per-pixel loop (and one
    call covers every slice).
    """
    out = mask.copy()
    for p, q, _ in _pairs(structure, mask.shape):
        out[..., p[0], p[1]] |= mask[..., q[0], q[1]]
    return out


def _erode(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """``ndimage.binary_erosion`` of each slice (the last two axes), background beyond the edge."""
    out = mask.copy()
    for p, q, (rows, cols) in _pairs(structure, mask.shape):
        out[..., p[0], p[1]] &= mask[..., q[0], q[1]]
        out[..., rows, :] = False
        out[..., :, cols] = False
    return out


def _max_cross(labels: np.ndarray) -> np.ndarray:
    """``ndimage.grey_dilation(labels, footprint=_CROSS)`` of a 2-D array.

    Its default mode ('reflect') repeats the edge pixel beyond the edge, so a
    missing neighbour there adds nothing to the maximum.
    """
    out = labels.copy()
    for p, q, _ in _pairs(_CROSS, labels.shape):
        np.maximum(out[p], labels[q], out=out[p])
    return out


def _superficial(sat: np.ndarray, body: np.ndarray, open_px: tuple[float, float]) -> np.ndarray:
    """Air + subcutaneous fat + what they enclose in each slice; the rest, opened, is deep.

    In a slice the subcutaneous fat is a ring around the deep region, which is
    therefore "enclosed" too: the deep region is told from the pockets inside the
    fat (septa, subcutaneous nodules, cysts) by its size.
    """
    disk = _disk(open_px)
    out = np.ones_like(sat)
    rest = body & ~sat
    # The pixels around the regions, in every slice at once.
    ring = _dilate(rest, _CROSS) & ~rest
    for k in range(sat.shape[0]):
        labels, n = ndimage.label(rest[k], structure=_CROSS)
        if n == 0:
            continue
        area = np.bincount(labels.ravel(), minlength=n + 1)
        area[0] = 0
        # Besides the large deep region, a pocket is deep when it is not surrounded
        # by subcutaneous fat (bowel in visceral fat); pockets in the subcutaneous
        # fat, and the skin (it touches the air), are superficial.
        near = _max_cross(labels)
        ring_body = np.bincount(near[ring[k] & body[k]], minlength=n + 1)
        ring_sat = np.bincount(near[ring[k] & sat[k]], minlength=n + 1)
        ring_air = np.bincount(near[ring[k] & ~body[k]], minlength=n + 1)
        enclosed = ring_sat >= 0.5 * np.maximum(ring_body, 1)
        big = (area >= 0.1 * area.max()) | ((ring_air == 0) & ~enclosed)
        big[0] = False
        deep = _dilate(_erode(big[labels], disk), disk)  # an opening
        out[k] = ~deep
    return out


def _skin_rim(
    sat: np.ndarray, body: np.ndarray, depth_mm: np.ndarray, *, band_mm: float, pixel_mm: float
) -> np.ndarray:
    """The skin: what is not subcutaneous fat within ``band_mm`` of the body's edge, from the edge.

    In each slice, the voxels of the body that are not subcutaneous fat, lie
    within ``band_mm`` of the body's edge and are connected to the edge
    through such voxels. Taken as superficial, the dermis cannot join the
    deep region where the subcutaneous fat thins out (at the side of a field
    of view) and carry the fascia up to the skin.
    """
    rim = body & ~sat & (depth_mm <= band_mm)
    edge = rim & (depth_mm <= pixel_mm * 1.001)
    out = np.zeros_like(rim)
    for k in range(rim.shape[0]):
        if not edge[k].any():
            continue
        labels, n = ndimage.label(rim[k], structure=_CROSS)
        reached = np.zeros(n + 1, dtype=bool)
        reached[labels[edge[k]]] = True
        reached[0] = False
        out[k] = reached[labels]
    return out


def _drop_bumps(table: np.ndarray, bin_mm: float, *, window_mm: float, max_mm: float) -> np.ndarray:
    """Drop samples of the fascia's depth well deeper than their neighbours' (NaN).

    In each slice the samples' depth is bridged linearly around the body and
    its running median over ``window_mm`` of arc taken as the local level; a
    sample more than ``max_mm`` deeper lies on a bulge of the subcutaneous fat
    into the muscle (a herniation that joined the layer), not on the fascia.
    A slice with fewer than two samples is left as it is.

    Parameters
    ----------
    table : ndarray of float, shape (slice, bin)
        Depth of the boundary below the skin, mm; NaN where not sampled.
    bin_mm : float
        Arc length of one bin, mm.
    window_mm, max_mm : float
        Width of the running median, and the depth beyond it dropped, mm.

    Returns
    -------
    ndarray of float, same shape
    """
    filled = _bridge_rows(table, np.ones(table.shape, dtype=bool), max_gap=table.shape[1])
    rows = np.isfinite(filled).all(axis=1)
    if not rows.any():
        return table
    width = max(3, int(window_mm / bin_mm) | 1)
    level = np.full(table.shape, np.nan)
    level[rows] = ndimage.median_filter(filled[rows], size=(1, width), mode="wrap")
    with np.errstate(invalid="ignore"):
        bump = np.isfinite(table) & (table > level + max_mm)
    return np.where(bump, np.nan, table)


def _bridge_rows(table: np.ndarray, covered: np.ndarray, *, max_gap: int) -> np.ndarray:
    """Fill gaps of at most ``max_gap`` bins in each row linearly (periodic rows).

    Over a nodule the fascia's depth is not sampled; between the samples on
    either side it is taken to change linearly, as the layer's thickness does
    over a few centimetres (a smoothing kernel would pull a sloping layer's
    gap toward the side with more samples). Only gaps whose every bin is
    ``covered`` (the boundary is there, but was not sampled: near a nodule)
    are bridged; others (where the field of view cuts the body and the fascia
    leaves the image) are left to the smoothing.
    """
    out = table.copy()
    n = table.shape[1]
    for k in range(table.shape[0]):
        have = np.isfinite(table[k])
        if have.all() or np.count_nonzero(have) < 2:
            continue
        idx = np.flatnonzero(have)
        xp = np.concatenate([idx - n, idx, idx + n])
        fp = np.tile(table[k, idx], 3)
        missing = np.flatnonzero(~have)
        j = np.searchsorted(xp, missing)
        lo, hi = xp[j - 1], xp[j]
        # Uncovered bins between the two samples (indices into the row repeated 3x).
        uncovered = np.concatenate([[0], np.cumsum(np.tile(~covered[k], 3))])
        open_ = uncovered[hi + n] - uncovered[lo + n + 1] > 0
        fill = (hi - lo - 1 <= max_gap) & ~open_
        out[k, missing[fill]] = np.interp(missing[fill], xp, fp)
    return out


@dataclass(slots=True)
class _PolarGrid:
    """Angles about each slice's body centre, binned: the fascia as a height field.

    In each acquisition-plane slice the fascia is a curve around the body; seen
    from the body's centre it is a function of the angle, so its depth below the
    skin is a table over (slice, angle bin) that can be smoothed and its gaps
    filled like an image, and read back for every voxel.
    """

    bins: np.ndarray  # int16/32 (slice, row, col): angle bin of each voxel, -1 outside the body
    n_bins: int
    radius_mm: float  # typical distance of the body wall from the centre

    @classmethod
    def of(
        cls,
        body: np.ndarray,
        pixel_mm: tuple[float, float],
        *,
        n_bins: int,
        origin: tuple[int, int] = (0, 0),
    ) -> _PolarGrid:
        """The grid of ``body``, a crop whose first row and column are ``origin`` in the image.

        Centres and angles are those of the whole image: the row and column
        indices are offset by ``origin`` before any arithmetic (integers, so the
        sums, and the centre, are exact either way).
        """
        dy, dx = pixel_mm
        n_slices, rows, cols = body.shape
        # Half a degree needs 720 bins: 16 bits hold them in half the memory of 32.
        dtype = np.int16 if n_bins <= np.iinfo(np.int16).max else np.int32
        bins = np.full(body.shape, -1, dtype=dtype)
        yy, xx = np.mgrid[origin[0] : origin[0] + rows, origin[1] : origin[1] + cols].astype(
            np.float32
        )
        radii = []
        for k in range(n_slices):
            inside = body[k]
            if not inside.any():
                continue
            rr, cc = np.nonzero(inside)
            r0, c0 = float((rr + origin[0]).mean()), float((cc + origin[1]).mean())
            theta = np.arctan2((yy - r0) * dy, (xx - c0) * dx)
            b = ((theta + np.pi) / (2 * np.pi) * n_bins).astype(np.int32) % n_bins
            bins[k] = np.where(inside, b, -1)
            radii.append(np.sqrt(inside.sum() * dy * dx / np.pi))
        return cls(bins, n_bins, float(np.median(radii)) if radii else 100.0)

    def slice_index(self) -> np.ndarray:
        """The slice index of every voxel, broadcast to the grid's shape (a view)."""
        n = self.bins.shape[0]
        return np.broadcast_to(np.arange(n)[:, None, None], self.bins.shape)

    @property
    def bin_mm(self) -> float:
        """Arc length of one bin at the body wall, mm."""
        return 2 * np.pi * self.radius_mm / self.n_bins

    def sample(self, where: np.ndarray, values: np.ndarray, *, add: float = 0.0) -> np.ndarray:
        """The smallest value of ``values + add`` at ``where`` in each (slice, bin); NaN if none.

        ``add`` is added to the values sampled only (in their dtype, as
        ``values + add`` would), not to the whole volume.
        """
        table = np.full((self.bins.shape[0], self.n_bins), np.inf, dtype=np.float64)
        k, r, c = np.nonzero(where & (self.bins >= 0))
        picked = values[k, r, c]
        if add:
            picked = picked + add
        np.minimum.at(table, (k, self.bins[k, r, c]), picked)
        table[np.isinf(table)] = np.nan
        return table

    def smooth(
        self,
        table: np.ndarray,
        *,
        smooth_mm: float,
        fill_mm: float,
        dz: float,
        covered: np.ndarray | None = None,
    ) -> np.ndarray:
        """Smooth the table and fill its gaps (normalised convolution, periodic in angle)."""
        bin_mm = self.bin_mm
        if covered is not None:
            table = _bridge_rows(table, covered, max_gap=int(2 * fill_mm / bin_mm))
        have = np.isfinite(table).astype(np.float64)
        values = np.where(have > 0, table, 0.0)

        def conv(sigma_mm: float) -> tuple[np.ndarray, np.ndarray]:
            # Gaps are bridged around the body (along the angle); along the body
            # axis the fascia changes with the anatomy, so it is never blurred
            # further than the fine scale.
            sigma = (min(sigma_mm, smooth_mm) / dz, sigma_mm / bin_mm)
            num = ndimage.gaussian_filter(values, sigma, mode=("nearest", "wrap"))
            den = ndimage.gaussian_filter(have, sigma, mode=("nearest", "wrap"))
            with np.errstate(invalid="ignore", divide="ignore"):
                return num / den, den

        fine, den_fine = conv(smooth_mm)
        coarse, den_coarse = conv(fill_mm)
        weight = np.clip(den_fine / 0.3, 0.0, 1.0)
        out = np.where(den_fine > 1e-6, weight * fine + (1 - weight) * coarse, coarse)
        return np.where(den_coarse > 1e-3, out, np.nan)

    def lookup(self, table: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
        """The table's value at every voxel (NaN outside the body or where unknown).

        Written into ``out`` (float32, the grid's shape) when given.
        """
        # A last column of NaN, which bin -1 (outside the body) picks: one
        # float32 gather, slice by slice, and no mask pass.
        ext = np.full((table.shape[0], table.shape[1] + 1), np.nan, dtype=np.float32)
        ext[:, :-1] = table
        if out is None:
            out = np.empty(self.bins.shape, dtype=np.float32)
        for k in range(self.bins.shape[0]):
            out[k] = ext[k][self.bins[k]]
        return out


def fascia_distance(
    sat: np.ndarray,
    body: np.ndarray,
    depth_mm: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    exclude: np.ndarray | None = None,
    exclude_mm: float = 4.0,
    smooth_mm: float = 5.0,
    fill_mm: float = 25.0,
    open_mm: float = 1.5,
    n_bins: int = 720,
    skin_band_mm: float = 6.0,
    bump_mm: float = 3.0,
    bump_window_mm: float = 50.0,
    score: np.ndarray | None = None,
    cut: np.ndarray | None = None,
) -> Fascia:
    """Find the fascia under the subcutaneous fat and the signed distance to it.

    Parameters
    ----------
    sat : ndarray of bool, shape (slice, row, col)
        Subcutaneous fat (:func:`subcutaneous_fat`).
    body : ndarray of bool
        The body mask.
    depth_mm : ndarray of float
        Depth below the skin, mm.
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    exclude : ndarray of bool, optional
        Fat that is not subcutaneous (possible nodules): the boundary is not
        sampled within ``exclude_mm`` of it.
    exclude_mm : float
        See ``exclude``.
    smooth_mm : float
        Gaussian sigma (mm) of the fascia depth where it is sampled densely.
    fill_mm : float
        Gaussian sigma (mm) that bridges gaps in the samples (over excluded
        nodules), up to about twice this size.
    open_mm : float
        Radius (mm) of the disk that opens the deep region (closes thin notches).
    n_bins : int
        Angle bins of the fascia height field (720: half a degree).
    skin_band_mm : float
        Depth (mm, from the body mask's edge) within which what is not
        subcutaneous fat and is reached from the edge is skin (superficial).
    bump_mm, bump_window_mm : float
        Boundary samples more than ``bump_mm`` deeper than the running median
        of their slice over ``bump_window_mm`` of arc are dropped (a bulge of
        the layer over a herniation); 0 keeps them.
    score : ndarray of float, optional
        The fat score the fat mask was thresholded from (fat high, muscle low;
        :class:`backmice.segment.fat.FatSignal`): each boundary sample is moved
        to the fat-to-lean edge in it (:func:`_edge_depths`). Without it, the
        boundary is taken half a pixel beyond the last fat voxel.
    cut : ndarray of bool, optional
        Body voxels where the field of view cuts the body
        (:meth:`backmice.segment.body.Body.cut`). At an angle where the body
        runs off the image there is no skin in view to measure a depth from
        (the depth below the skin there is to the skin at other angles): the
        fascia is not sampled there nor carried into it, and the deep region
        stands for it.

    Returns
    -------
    Fascia
    """
    dz, dy, dx = (float(s) for s in spacing_mm)
    open_px = (open_mm / dy, open_mm / dx)
    # The fascia lies inside the body: find it on the body's bounding box (grown
    # so the opening disk never reaches past it), and paste it into the volume.
    box = _crop_box(body, max(_disk(open_px).shape) // 2)
    if box is None:
        box = (slice(None),) * 3
    in_body = body[box]
    in_depth = depth_mm[box]
    in_sat = sat[box]
    skin = _skin_rim(in_sat, in_body, in_depth, band_mm=skin_band_mm, pixel_mm=max(dy, dx))
    superficial = _superficial(in_sat | skin, in_body, open_px)
    del skin
    deep0 = in_body & ~superficial
    # Samples: superficial body voxels touching the deep region in the slice plane.
    touch = _dilate(deep0, _CROSS)
    boundary = touch & superficial & in_body
    samples = boundary
    if exclude is not None and exclude.any():
        samples = boundary & ~_near(exclude, boundary, box, spacing_mm, exclude_mm)
    # The boundary lies about half a pixel deeper than the centre of the last fat pixel.
    offset = 0.25 * (dy + dx)
    origin = (box[1].indices(body.shape[1])[0], box[2].indices(body.shape[2])[0])
    polar = _PolarGrid.of(in_body, (dy, dx), n_bins=n_bins, origin=origin)
    off_image = None
    if cut is not None and cut[box].any():
        off_image = np.isfinite(polar.sample(cut[box], in_depth)).astype(np.uint8)
        # Bins are narrower than pixels: close the gaps between the edge's pixels.
        run = 2 * int(np.ceil(max(dy, dx) / polar.bin_mm)) + 1
        off_image = ndimage.maximum_filter1d(off_image, run, axis=1, mode="wrap").astype(bool)
        samples = samples & ~off_image[polar.slice_index(), np.maximum(polar.bins, 0)]
    if score is not None:
        edge = _edge_depths(score[box], samples, in_depth, deep0, (dy, dx))
        edge = np.where(np.isfinite(edge), edge, in_depth + np.float32(offset))
        table = polar.sample(samples, edge)
        del edge
    else:
        table = polar.sample(samples, in_depth, add=offset)
    if bump_mm > 0:
        table = _drop_bumps(table, polar.bin_mm, window_mm=bump_window_mm, max_mm=bump_mm)
    # Bins are narrower than pixels: a boundary seen in every pixel skips bins.
    covered = np.isfinite(polar.sample(boundary, in_depth)).astype(np.uint8)
    run = 2 * int(np.ceil(max(dy, dx) / polar.bin_mm)) + 1
    covered = ndimage.maximum_filter1d(covered, run, axis=1, mode="wrap")
    covered = ndimage.minimum_filter1d(covered, run, axis=1, mode="wrap").astype(bool)
    table = polar.smooth(table, smooth_mm=smooth_mm, fill_mm=fill_mm, dz=dz, covered=covered)
    if off_image is not None:
        table[off_image] = np.nan
    depth = np.full(body.shape, np.nan, dtype=np.float32)
    polar.lookup(table, out=depth[box])
    del polar  # its bins are as large as the box
    with np.errstate(invalid="ignore"):
        in_deep = in_body & np.where(np.isfinite(depth[box]), in_depth > depth[box], deep0)
    deep = np.zeros(body.shape, dtype=bool)
    deep[box] = in_deep
    all_samples = np.zeros(body.shape, dtype=bool)
    all_samples[box] = samples
    n_samples = int(np.count_nonzero(samples))
    # Freed before the distance transforms, whose arrays then reuse the memory.
    del superficial, deep0, touch, boundary, samples, in_deep
    signed = signed_distance(deep, spacing_mm, fascia_mm=depth, depth_mm=depth_mm)
    log.info("fascia: %d boundary samples", n_samples)
    return Fascia(depth_mm=depth, deep=deep, signed_mm=signed, samples=all_samples)


def signed_distance(
    deep: np.ndarray,
    spacing_mm: Sequence[float],
    *,
    fascia_mm: np.ndarray | None = None,
    depth_mm: np.ndarray | None = None,
) -> np.ndarray:
    """Signed distance to the surface of the deep side of the fascia, mm.

    Positive (superficial) outside ``deep``, negative inside. From two
    Euclidean distance transforms, which measure to voxel centres: the surface
    lies half a pixel beyond the last voxel centre on either side. Where the
    fascia's depth below the skin is known (``fascia_mm``, ``depth_mm``), the
    voxels near it get its sub-voxel distance instead (:func:`_subvoxel`),
    wherever that agrees with the voxel grid's to within its rounding (a deep
    side edited by hand keeps the grid's distance where it moved).

    Parameters
    ----------
    deep : ndarray of bool, shape (slice, row, col)
        Voxels deep to the fascia.
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    fascia_mm, depth_mm : ndarray of float, same shape, optional
        The fascia's depth below the skin (NaN where unknown) and each voxel's.

    Returns
    -------
    ndarray of float32, shape of ``deep``
    """
    deep = np.asarray(deep, dtype=bool)
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]), float(spacing_mm[2]))
    # Built in place: + outside ``deep``, − inside, zero half a pixel beyond the
    # last voxel centre on either side.
    half = 0.25 * (spacing[1] + spacing[2])
    signed = distance_mm(~deep, spacing)
    np.subtract(signed, half, out=signed)
    deep_box, inside = distance_mm_in_box(deep, spacing)
    if deep_box is not None and inside is not None:
        np.subtract(inside, half, out=inside)
        np.negative(inside, out=inside)
        np.copyto(signed[deep_box], inside, where=deep[deep_box])
    if fascia_mm is not None and depth_mm is not None:
        _subvoxel(signed, fascia_mm, depth_mm, spacing)
    return signed


def _near(
    target: np.ndarray,
    where: np.ndarray,
    box: tuple[slice, ...],
    spacing_mm: tuple[float, float, float],
    reach_mm: float,
) -> np.ndarray:
    """Voxels of ``where`` no farther than ``reach_mm`` from a voxel of ``target``.

    ``where`` is the crop of the volume at ``box``; ``target`` is the whole
    volume. The distance transform runs on the box of ``where`` grown by
    ``reach_mm``: a target beyond it is farther than that from every voxel of
    ``where``, so the answer is the same as on the whole volume.
    """
    out = np.zeros(where.shape, dtype=bool)
    found = bounding_box(where)
    if found is None:
        return out
    start = [b.indices(n)[0] for b, n in zip(box, target.shape, strict=True)]
    grow = tuple(
        slice(max(s + f.start - m, 0), min(s + f.stop + m, n))
        for s, f, m, n in zip(
            start,
            found,
            (int(np.ceil(reach_mm / float(sp))) + 1 for sp in spacing_mm),
            target.shape,
            strict=True,
        )
    )
    near = distance_mm(~target[grow], spacing_mm) <= reach_mm
    inner = tuple(
        slice(s + f.start - g.start, s + f.stop - g.start)
        for s, f, g in zip(start, found, grow, strict=True)
    )
    out[found] = near[inner] & where[found]
    return out


def _edge_depths(
    score: np.ndarray,
    samples: np.ndarray,
    depth_mm: np.ndarray,
    deep: np.ndarray,
    pixel_mm: tuple[float, float],
    *,
    fat_mm: float = 4.0,
    lean_mm: float = 14.0,
    step_mm: float = 0.25,
    max_shift_mm: float = 12.0,
    rebound_share: float = 0.25,
    min_contrast: float = 0.25,
    chunk: int = 16_384,
) -> np.ndarray:
    """Depth below the skin (mm) of the fat-to-lean edge at each boundary sample.

    The fat mask's boundary lies where the fat score crosses one threshold for
    the whole study; but the fat's own level varies (a surface coil's near
    field that the bias correction is too smooth to follow, deep subcutaneous
    fat dimmer than the superficial layer), and where the deepest fat scores
    under the threshold the boundary sits millimetres short of the muscle. The
    edge between two tissues lies half-way between *their* levels: along the
    normal of the deep region at each sample (in the slice), the profile of
    the score is read from ``fat_mm`` outside to ``lean_mm`` inside; the local
    fat level is its highest value outside the sample, the lean level its
    lowest inside, and the edge is the first place past the fat's peak where
    the profile falls below half-way between them (linear between steps).

    Parameters
    ----------
    score : ndarray of float, shape (slice, row, col)
        The fat score (high in fat, low in muscle).
    samples : ndarray of bool, same shape
        The boundary samples (superficial voxels touching the deep region).
    depth_mm : ndarray of float, same shape
        Depth below the skin, mm.
    deep : ndarray of bool, same shape
        The deep region (its smoothed edge gives the normal).
    pixel_mm : (float, float)
        Row and column spacing, mm.
    fat_mm, lean_mm, step_mm : float
        Extent of the profile outside and inside the sample, and its step, mm.
    max_shift_mm : float
        Edges farther than this from the sample are not trusted.
    rebound_share : float
        Past the fat's peak, a rise of the profile by this share of the fat-to-lean
        contrast before the fall is found marks a dark line with fat behind it
        (the fascia over epimuscular fat): no edge is taken beyond it.
    min_contrast : float
        Least difference between the fat and lean levels (score units; fat to
        muscle is about 1) for an edge.
    chunk : int
        Samples profiled at a time (bounds the memory).

    Returns
    -------
    ndarray of float32, same shape
        The edge's depth at each sample; NaN elsewhere and where no edge was
        found (the caller keeps the mask's boundary there).
    """
    dy, dx = pixel_mm
    out = np.full(depth_mm.shape, np.nan, dtype=np.float32)
    ks, rs, cs = np.nonzero(samples)
    if ks.size == 0:
        return out
    smooth = ndimage.gaussian_filter(deep.astype(np.float32), (0, 1.5 / dy, 1.5 / dx))
    steps = np.arange(-fat_mm, lean_mm + step_mm / 2, step_mm)
    zero = round(fat_mm / step_mm)
    for start in range(0, ks.size, chunk):
        k, r, c = (a[start : start + chunk] for a in (ks, rs, cs))
        # The normal points into the deep region, up its smoothed indicator.
        nr = _at(smooth, k, r + 0.5, c) - _at(smooth, k, r - 0.5, c)
        nc = _at(smooth, k, r, c + 0.5) - _at(smooth, k, r, c - 0.5)
        nr, nc = nr / dy, nc / dx
        norm = np.hypot(nr, nc)
        norm[norm == 0] = 1.0
        nr, nc = nr / norm, nc / norm
        rr = r[:, None] + steps[None, :] * (nr / dy)[:, None]
        cc = c[:, None] + steps[None, :] * (nc / dx)[:, None]
        kk = np.broadcast_to(k[:, None], rr.shape)
        prof = _at(score, kk.ravel(), rr.ravel(), cc.ravel()).reshape(rr.shape)
        prof = ndimage.gaussian_filter1d(prof, 0.5 / step_mm, axis=1)
        rows = np.arange(k.size)
        # The fat level: the highest value outside the sample (at most fat_mm
        # out); the lean level: the lowest inside. The edge is the first fall
        # below half-way between them past the fat's peak: a dimmer fat layer
        # that stays above half-way is crossed, a septum of fat in the muscle
        # beyond the edge is never reached.
        peak = np.argmax(prof[:, : zero + 1], axis=1)
        hi = prof[rows, peak]
        lo = prof[:, zero:].min(axis=1)
        mid = 0.5 * (hi + lo)
        below = (prof < mid[:, None]) & (np.arange(steps.size)[None, :] > peak[:, None])
        first = np.where(below.any(axis=1), np.argmax(below, axis=1), 0)
        ok = (first > 0) & (hi - lo >= min_contrast)
        # A dark line that the fat rises again behind (the fascia itself, with
        # epimuscular fat under it) is where the layer ends, however faint: the
        # profile is not followed past it (the mask's boundary is kept).
        after = np.arange(steps.size)[None, :] >= peak[:, None]
        low = np.minimum.accumulate(np.where(after, prof, np.inf), axis=1)
        rebound = after & (prof - low >= rebound_share * (hi - lo)[:, None])
        back = np.where(rebound.any(axis=1), np.argmax(rebound, axis=1), steps.size)
        ok &= back >= first
        j = np.maximum(first, 1)
        a, b = prof[rows, j - 1], prof[rows, j]
        frac = np.where(a > b, (a - mid) / np.where(a > b, a - b, 1.0), 0.5)
        shift = steps[j - 1] + frac * step_mm
        ok &= np.abs(shift) <= max_shift_mm
        k, r, c, shift, nr, nc = k[ok], r[ok], c[ok], shift[ok], nr[ok], nc[ok]
        # The edge's own depth below the skin (the normal is the deep region's, not the skin's).
        out[k, r, c] = _at(depth_mm, k, r + shift * nr / dy, c + shift * nc / dx)
    log.debug("fascia: %d of %d samples moved to the edge", np.isfinite(out).sum(), ks.size)
    return out


def _at(volume: np.ndarray, k: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``volume`` at in-slice sub-voxel points (bilinear; the nearest edge value beyond)."""
    return ndimage.map_coordinates(volume, [k, r, c], order=1, mode="nearest")


def _subvoxel(
    signed: np.ndarray,
    fascia_mm: np.ndarray,
    depth_mm: np.ndarray,
    spacing_mm: tuple[float, float, float],
    *,
    band_px: float = 3.0,
) -> None:
    """Replace the voxel-grid distance near the fascia by its sub-voxel value, in place.

    The distance transforms measure to the centres of the voxels on the other
    side, so every voxel next to the surface reads half a pixel whatever the
    fascia depth ``T`` between them. Near the surface the level-set function
    ``phi = T - depth`` (mm along the depth direction; the same sign as the
    voxel classification) divided by the length of its gradient is the
    distance to first order, to a fraction of a pixel.
    """
    px = max(spacing_mm[1:])
    near = np.abs(signed) <= band_px * px
    near &= np.isfinite(fascia_mm)
    k, r, c = np.nonzero(near)
    if k.size == 0:
        return
    phi = fascia_mm[k, r, c] - depth_mm[k, r, c]
    grad2 = np.zeros(k.size, dtype=np.float64)
    for axis, idx, step in ((0, k, spacing_mm[0]), (1, r, spacing_mm[1]), (2, c, spacing_mm[2])):
        n = signed.shape[axis]
        lo, hi = np.maximum(idx - 1, 0), np.minimum(idx + 1, n - 1)
        at = [k, r, c]
        at[axis] = lo
        a = fascia_mm[tuple(at)] - depth_mm[tuple(at)]
        at[axis] = hi
        b = fascia_mm[tuple(at)] - depth_mm[tuple(at)]
        # One-sided where a neighbour has no fascia depth, none where neither has.
        a = np.where(np.isfinite(a), a, phi)
        b = np.where(np.isfinite(b), b, phi)
        span = (hi - lo) * step
        g = np.where(span > 0, (b - a) / np.where(span > 0, span, 1), 0.0)
        grad2 += g * g
    norm = np.clip(np.sqrt(grad2), 1.0, 4.0)
    exact = phi / norm
    # Only where it refines the grid's distance (the same side, within its
    # rounding): elsewhere the surface is not the one ``fascia_mm`` describes.
    grid = signed[k, r, c]
    agree = (np.sign(exact) == np.sign(grid)) & (np.abs(exact - grid) <= 0.75 * px)
    signed[k[agree], r[agree], c[agree]] = exact[agree]
