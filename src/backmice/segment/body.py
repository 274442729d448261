"""The body against air, and each voxel's depth below the skin."""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import pairwise

import cc3d
import edt
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

__all__ = [
    "EDT_THREADS",
    "Body",
    "body_mask",
    "bounding_box",
    "distance_mm",
    "distance_mm_in_box",
    "field_of_view",
    "fov_edge",
    "posterior_half",
    "smooth_in_plane",
]

#: Threads for Euclidean distance transforms (the ``edt`` package scales well).
EDT_THREADS = max(1, min(2, os.cpu_count() or 1))

log = logging.getLogger(__name__)

_CROSS = ndimage.generate_binary_structure(2, 1)


@dataclass(slots=True)
class Body:
    """The body and the skin.

    Attributes
    ----------
    mask : ndarray of bool, shape (slice, row, col)
        Inside the body (skin included, internal cavities filled); its edge is
        the air/skin edge (:func:`body_mask`).
    depth_mm : ndarray of float32, same shape
        Depth below the skin, mm: for a voxel inside the body, the distance
        from its centre to the nearest voxel centre outside; 0 outside. Where
        the field of view cuts the body, the image's edge (or the zero padding
        beyond it) is not skin.
    threshold : float
        Signal level (of the smoothed image) of the generous first mask.
    skin_depth_mm : ndarray of float32, same shape
        The same array as ``depth_mm`` (kept under the name the measurements
        use).
    skin_level : float or None
        Median signal level (of the lightly smoothed image) of the skin
        surface, half way between air and the skin; None where no skin edge
        was found (a body that fills the image).
    field_of_view : tuple of slice or None
        The in-plane box of the image that was acquired (:func:`field_of_view`);
        None for the whole image.
    """

    mask: np.ndarray
    depth_mm: np.ndarray
    threshold: float
    skin_depth_mm: np.ndarray
    skin_level: float | None = None
    field_of_view: tuple[slice, ...] | None = None

    def cut(self) -> np.ndarray:
        """Body voxels on the edge of the field of view, where it cuts the body.

        Returns
        -------
        ndarray of bool, shape (slice, row, col)
        """
        return fov_edge(self.mask, self.field_of_view)


def bounding_box(mask: np.ndarray, *, margin: int = 0) -> tuple[slice, ...] | None:
    """The bounding box of the True voxels, grown by ``margin`` voxels within the array.

    Parameters
    ----------
    mask : ndarray of bool
    margin : int
        Voxels added on every side (clipped to the array).

    Returns
    -------
    tuple of slice, or None
        None when ``mask`` has no True voxel.
    """
    box = []
    for axis, n in enumerate(mask.shape):
        others = tuple(a for a in range(mask.ndim) if a != axis)
        hit = np.flatnonzero(mask.any(axis=others))
        if not hit.size:
            return None
        box.append(slice(max(int(hit[0]) - margin, 0), min(int(hit[-1]) + 1 + margin, n)))
    return tuple(box)


def distance_mm(mask: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """Euclidean distance (mm) from each True voxel to the nearest False voxel.

    The world beyond the array's border continues the border voxels (a body cut
    by the field of view is not skin there, nor are the first and last slices).

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    spacing_mm : (float, float, float)

    Returns
    -------
    ndarray of float32, same shape; 0 where ``mask`` is False.
    """
    box, sub = distance_mm_in_box(mask, spacing_mm)
    if box is None or sub is None:
        return np.zeros(mask.shape, dtype=np.float32)
    if sub.shape == mask.shape:
        return sub
    out = np.zeros(mask.shape, dtype=np.float32)
    out[box] = sub
    return out


def distance_mm_in_box(
    mask: np.ndarray, spacing_mm: tuple[float, float, float]
) -> tuple[tuple[slice, ...] | None, np.ndarray | None]:
    """:func:`distance_mm` on the True voxels' bounding box grown by one voxel.

    Outside that box the distance is 0. Inside, it is the same as on the whole
    array: the added layer is all False, and no False voxel beyond it is nearer
    to a voxel inside than the layer is. A body fills about half of a typical
    field of view, so this halves the work.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    spacing_mm : (float, float, float)

    Returns
    -------
    box : tuple of slice, or None
        None when ``mask`` has no True voxel.
    distances : ndarray of float32, the shape of ``mask[box]``; or None
    """
    box = bounding_box(mask, margin=1)
    if box is None:
        return None, None
    whole = all(b.start == 0 and b.stop == n for b, n in zip(box, mask.shape, strict=True))
    sub = np.ascontiguousarray(mask if whole else mask[box])
    # A bool array is read as uint8 in place (True is 1): no copy of the volume.
    sub = sub.view(np.uint8) if sub.dtype == bool else sub.astype(np.uint8)
    sub = edt.edt(
        sub,
        anisotropy=tuple(float(s) for s in spacing_mm),
        black_border=False,
        parallel=EDT_THREADS,
    ).astype(np.float32, copy=False)
    return box, sub


def smooth_in_plane(image: np.ndarray, sigma_px: tuple[float, float]) -> np.ndarray:
    """Gaussian smoothing of each slice, as ``ndimage.gaussian_filter(image, (0, *sigma_px))``.

    Slices are independent, so they are smoothed in :data:`EDT_THREADS` threads
    (scipy's filters release the GIL), each on its own run of slices; the result
    is the same to the bit.

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)
    sigma_px : (float, float)
        Gaussian sigma along rows and columns, pixels.

    Returns
    -------
    ndarray of float32
    """
    image = np.asarray(image, dtype=np.float32)
    sigma = (0.0, float(sigma_px[0]), float(sigma_px[1]))
    out = np.empty(image.shape, dtype=np.float32)
    bounds = np.linspace(0, image.shape[0], EDT_THREADS + 1).round().astype(int)
    runs = [slice(int(a), int(b)) for a, b in pairwise(bounds) if b > a]

    def run(sl: slice) -> None:
        ndimage.gaussian_filter(image[sl], sigma, output=out[sl])

    if len(runs) > 1:
        with ThreadPoolExecutor(len(runs)) as pool:
            list(pool.map(run, runs))
    else:
        run(slice(None))
    return out


def _edge_profiles(
    fine: np.ndarray,
    coarse: np.ndarray,
    mask: np.ndarray,
    depth_mm: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    max_rays: int,
    reach_mm: tuple[float, float],
    min_peak: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The air/skin edge on profiles along the inward normal at the mask's edge.

    Returns
    -------
    points : ndarray of float, shape (n, 3)
        The edge voxels the profiles start from, ``(slice, row, col)``.
    levels : ndarray of float, shape (n,)
        The signal at the air/skin edge of each profile (NaN where none).
    offsets : ndarray of float, shape (n,)
        How far inside the mask's edge the air/skin edge lies, mm.
    profiles : ndarray of float, shape (n, samples)
        The profiles, from ``reach_mm[0]`` (outside) to ``reach_mm[1]`` (inside).
    """
    sp = np.asarray(spacing_mm, dtype=np.float64)
    pixel = float(max(sp[1], sp[2]))
    # The depth is 0 outside the mask: look for its edge within the mask's box.
    box = bounding_box(mask)
    if box is None or mask.all():
        return None
    near = depth_mm[box]
    edge = np.argwhere((near > 0) & (near <= pixel * 1.001))
    if len(edge) == 0:
        return None
    edge += np.array([b.start for b in box])
    edge = edge[:: max(1, -(-len(edge) // max_rays))].astype(np.float64)
    # Inward normals (toward brighter), in mm, by central differences of the coarse
    # image, in the slice plane (slices may be thick; the skin is found in each).
    grad = np.zeros_like(edge)
    for axis in (1, 2):
        step = np.zeros(3)
        step[axis] = 1.0
        hi = ndimage.map_coordinates(coarse, (edge + step).T, order=1, mode="nearest")
        lo = ndimage.map_coordinates(coarse, (edge - step).T, order=1, mode="nearest")
        grad[:, axis] = (hi - lo) / (2.0 * sp[axis])
    norm = np.linalg.norm(grad, axis=1)
    ok = norm > 0
    edge, normal = edge[ok], grad[ok] / norm[ok, None]
    if len(edge) == 0:
        return None
    dt = 0.1
    t = np.arange(reach_mm[0], reach_mm[1] + dt / 2, dt)
    coords = edge[:, None, :] + t[None, :, None] * (normal / sp)[:, None, :]
    profile = ndimage.map_coordinates(
        fine, coords.reshape(-1, 3).T, order=1, mode="nearest"
    ).reshape(len(edge), len(t))
    slope = np.gradient(profile, dt, axis=1)
    steepest = slope.max(axis=1, keepdims=True)
    half = max(1, round(0.5 / dt))  # a peak is the largest slope within ±0.5 mm
    local = ndimage.maximum_filter1d(slope, size=2 * half + 1, axis=1, mode="nearest")
    peak = (slope >= local) & (slope >= min_peak * steepest) & (steepest > 0)
    found = peak.any(axis=1)
    first = np.argmax(peak, axis=1)
    rows = np.arange(len(edge))
    levels = np.where(found, profile[rows, first], np.nan)
    offsets = t[first]
    # A clear edge: the tissue within 4 mm inside it is well above the air outside it.
    reach = round(4.0 / dt)
    ahead = np.clip(first[:, None] + np.arange(reach)[None, :], 0, len(t) - 1)
    tissue = profile[rows[:, None], ahead].max(axis=1)
    behind = np.clip(first[:, None] - round(1.0 / dt) - np.arange(reach)[None, :], 0, len(t) - 1)
    air = np.median(profile[rows[:, None], behind], axis=1)
    with np.errstate(invalid="ignore"):
        levels = np.where(tissue > 2.0 * np.maximum(air, 0.0) + 1e-12, levels, np.nan)
    return edge, levels, offsets, profile


def _spread(
    points: np.ndarray,
    values: np.ndarray,
    where: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    sigma_mm: float,
    log_scale: bool = False,
) -> np.ndarray:
    """A smooth map of values found at points, read at the voxels ``where``.

    The values (with ``log_scale`` their logarithms: a coil's fall-off scales
    the signal) are spread by normalised Gaussian convolution on a grid of
    about 4 mm, so a skin level follows a coil's shading around the body, and
    read back by linear interpolation.

    Parameters
    ----------
    points : ndarray of float, shape (n, 3)
        Where each value was found, ``(slice, row, col)``.
    values : ndarray of float, shape (n,)
        The values (finite; positive with ``log_scale``).
    where : ndarray of bool, shape (slice, row, col)
        The voxels whose level is wanted.
    spacing_mm : (float, float, float)
    sigma_mm : float
        Gaussian sigma in the slice plane, mm (along the slices, at most 10 mm).

    Returns
    -------
    ndarray of float32, shape (count of ``where``,)
    """
    step = np.array([max(1, round(4.0 / float(s))) for s in spacing_mm])
    shape = tuple(int(n // f) + 2 for n, f in zip(where.shape, step, strict=True))
    idx = np.rint(points / step).astype(np.intp)
    num = np.zeros(shape)
    den = np.zeros(shape)
    np.add.at(num, tuple(idx.T), np.log(values) if log_scale else values)
    np.add.at(den, tuple(idx.T), 1.0)
    sigma = [
        min(sigma_mm, 10.0 if axis == 0 else sigma_mm) / (float(s) * f)
        for axis, (s, f) in enumerate(zip(spacing_mm, step, strict=True))
    ]
    num = ndimage.gaussian_filter(num, sigma, mode="nearest")
    den = ndimage.gaussian_filter(den, sigma, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        field = np.where(den > 1e-9 * den.max(), num / den, np.nan)
    # Where no profile reached (far from any edge), the nearest known level.
    if np.isnan(field).any():
        _, nearest = ndimage.distance_transform_edt(np.isnan(field), return_indices=True)
        field = field[tuple(nearest)]
    coords = np.argwhere(where).astype(np.float64) / step
    out = ndimage.map_coordinates(field, coords.T, order=1, mode="nearest")
    return (np.exp(out) if log_scale else out).astype(np.float32)


def _peel(mask: np.ndarray, low: np.ndarray, *, box: tuple[slice, ...] | None) -> np.ndarray:
    """``mask`` less the ``low`` voxels connected to the air around it, slice by slice.

    Dark voxels inside the body (cortex, fascia, fluid) stay: only what is
    reached from the outside through voxels below the skin level goes.
    """
    out = mask.copy()
    if box is None:
        return out
    sub_mask, sub_low = mask[box], low[box]
    keep = sub_mask.copy()
    for k in range(sub_mask.shape[0]):
        open_ = ~sub_mask[k] | sub_low[k]
        labels, n = ndimage.label(open_, structure=_CROSS)
        if n == 0:
            continue
        outside = np.zeros(n + 1, dtype=bool)
        outside[labels[~sub_mask[k]]] = True
        outside[0] = False
        keep[k] &= ~outside[labels]
    out[box] = keep
    return out


def _fill_per_slice(
    mask: np.ndarray,
    *,
    max_notch_px: float | None = None,
    channel_px: tuple[float, float] | None = None,
) -> np.ndarray:
    """Fill the holes of ``mask`` in each slice, and pockets of "air" open to the edge.

    A hole is a 4-connected component of the background that does not touch the
    image's edge (as :func:`scipy.ndimage.binary_fill_holes` with its default
    structure fills). One labelling of the background per slice finds the
    holes and the pockets, several times faster than ``binary_fill_holes``
    (whose iterated dilation from the edge visits the slice many times).

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    max_notch_px : float, optional
        Also fill components of the background that touch the image's edge
        when their area (pixels) is at most this (:func:`_fill_edge_notches`).
    channel_px : (float, float), optional
        Also fill thin channels the image's edge cuts through the body: components
        that meet the edge only where the body lies on either side of them along
        it, and hold no ellipse of these radii (pixels; rows, cols).

    Returns
    -------
    ndarray of bool
    """
    out = mask.copy()
    for k in range(mask.shape[0]):
        labels, n = ndimage.label(~mask[k])
        if n == 0:
            continue
        fill = np.ones(n + 1, dtype=bool)
        edges = (labels[0], labels[-1], labels[:, 0], labels[:, -1])
        if channel_px is None:
            for edge in edges:
                fill[edge] = False
        else:
            body_edges = (mask[k, 0], mask[k, -1], mask[k, :, 0], mask[k, :, -1])
            for edge, body in zip(edges, body_edges, strict=True):
                inside = np.flatnonzero(body)
                outside = np.ones(edge.size, dtype=bool)
                if inside.size:
                    outside[inside[0] : inside[-1] + 1] = False
                fill[edge[outside]] = False
            # Of the rest, those touching the edge are filled only when thin.
            touching = np.zeros(n + 1, dtype=bool)
            for edge in edges:
                touching[edge] = True
            touching &= fill
            touching[0] = False
            if touching.any():
                pocket = touching[labels]
                wide = _erode(pocket, _ellipse(channel_px))
                fill[np.unique(labels[wide])] = False
        if max_notch_px is not None:
            fill |= np.bincount(labels.ravel(), minlength=n + 1) <= max_notch_px
        fill[0] = False
        out[k] |= fill[labels]
    return out


def _ellipse(radius_px: tuple[float, float]) -> np.ndarray:
    ry, rx = (max(r, 0.5) for r in radius_px)
    y, x = np.mgrid[-int(ry) : int(ry) + 1, -int(rx) : int(rx) + 1]
    return (y / ry) ** 2 + (x / rx) ** 2 <= 1.0


def _erode(mask: np.ndarray, structure: np.ndarray) -> np.ndarray:
    """Binary erosion of a 2-D mask, the outside of the image counting as background."""
    return ndimage.binary_erosion(mask, structure=structure, border_value=0)


def _fill_edge_notches(
    mask: np.ndarray,
    *,
    pixel_mm: tuple[float, float],
    max_area_mm2: float = 50.0,
    channel_mm: float = 5.0,
) -> np.ndarray:
    """Fill holes, and pockets of "air" open to the image's edge, slice by slice.

    Where the field of view cuts the body, a dark structure at the cut (bone
    cortex, a fascia, a tendon) falls below the air threshold and, being open to
    the image's edge, is not a hole that :func:`scipy.ndimage.binary_fill_holes`
    fills: it leaves a notch of air in the body, and the marrow or fat beside it
    lies "just under the skin" (taken for subcutaneous fat, it drags the fascia
    down into the muscle). Air enters the body's outline only from the skin, so
    a pocket that meets the image's edge only between body pixels of that edge
    and is thinner than ``2 * channel_mm`` everywhere is such a plane of dark
    tissue; a wider one (the air between two legs or buttocks cut by the
    image) stays air. A corner of real air smaller than ``max_area_mm2`` (a
    body that nearly fills the image) is filled too, which moves the skin there
    by a few millimetres at most.
    """
    return _fill_per_slice(
        mask,
        max_notch_px=max_area_mm2 / (pixel_mm[0] * pixel_mm[1]),
        channel_px=(channel_mm / pixel_mm[0], channel_mm / pixel_mm[1]),
    )


def _label_sizes(labels: np.ndarray, n: int) -> np.ndarray:
    """Voxels of each label 0..n, counted a few slices at a time.

    ``np.bincount`` turns its input into 64-bit integers first: on the whole
    volume that is a temporary twice the size of the labels.
    """
    counts = np.zeros(n + 1, dtype=np.int64)
    step = max(1, (1 << 22) // max(1, int(np.prod(labels.shape[1:]))))
    for k in range(0, labels.shape[0], step):
        counts += np.bincount(labels[k : k + step].ravel(), minlength=n + 1)
    return counts


def fov_edge(mask: np.ndarray, fov: tuple[slice, ...] | None = None) -> np.ndarray:
    """Voxels of ``mask`` on the first or last row or column of the field of view.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    fov : tuple of slice, optional
        The in-plane box that was acquired (:func:`field_of_view`); default the
        whole image.

    Returns
    -------
    ndarray of bool, same shape
    """
    edge = np.zeros(mask.shape[1:], dtype=bool)
    rows, cols = (slice(None), slice(None)) if fov is None else fov[-2:]
    r0, r1, _ = rows.indices(mask.shape[1])
    c0, c1, _ = cols.indices(mask.shape[2])
    if r1 > r0 and c1 > c0:
        edge[[r0, r1 - 1], c0:c1] = True
        edge[r0:r1, [c0, c1 - 1]] = True
    return mask & edge


def field_of_view(image: np.ndarray) -> tuple[slice, ...]:
    """The in-plane box of the image that was acquired: beyond it, only exact zeros.

    Images converted or reformatted are often padded with zeros beyond the
    field of view; where the padding meets the body, the body is cut by the
    field of view, not bounded by skin. Air that a scanner sets to zero inside
    the field of view is kept (it lies within the box).

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)

    Returns
    -------
    tuple of slice
        ``(all slices, rows, cols)``; the whole image when nothing is padded.
    """
    acquired = image != 0
    rows = np.flatnonzero(acquired.any(axis=(0, 2)))
    cols = np.flatnonzero(acquired.any(axis=(0, 1)))
    if not rows.size or not cols.size:
        return (slice(None),) * 3
    return (
        slice(None),
        slice(int(rows[0]), int(rows[-1]) + 1),
        slice(int(cols[0]), int(cols[-1]) + 1),
    )


def _pad_back(
    part: np.ndarray, box: tuple[slice, ...], shape: tuple[int, ...], *, edge: bool = False
) -> np.ndarray:
    """``part`` (the crop of an array of ``shape`` at ``box``) put back in place.

    Outside the box: zero (False), or with ``edge`` the nearest value inside it.
    """
    if part.shape == tuple(shape):
        return part
    starts = [b.indices(n)[0] for b, n in zip(box, shape, strict=True)]
    pad = [(s, n - s - m) for s, n, m in zip(starts, shape, part.shape, strict=True)]
    if edge:
        return np.pad(part, pad, mode="edge")
    return np.pad(part, pad)


def posterior_half(body: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """The posterior half of the body: LPS y at or beyond the body's mean y.

    The back (the subcutaneous fat and the fascia that the analysis measures)
    lies there, whatever the slice orientation.

    Parameters
    ----------
    body : ndarray of bool, shape (slice, row, col)
    affine : ndarray, shape (4, 4)
        Index to LPS, mm.

    Returns
    -------
    ndarray of bool, same shape; the whole body when it is empty.
    """
    k, r, c = np.nonzero(body[:, ::4, ::4])
    if k.size == 0:
        return np.ones(body.shape, dtype=bool)
    y_mid = float(
        np.mean(affine[1, 3] + affine[1, 0] * k + affine[1, 1] * 4 * r + affine[1, 2] * 4 * c)
    )
    kk, rr, cc = np.ogrid[: body.shape[0], : body.shape[1], : body.shape[2]]
    y = affine[1, 3] + affine[1, 0] * kk + affine[1, 1] * rr + affine[1, 2] * cc
    return body & (y >= y_mid)


def _largest_filled(tissue: np.ndarray, spacing_mm: tuple[float, float, float]) -> np.ndarray:
    """The largest 6-connected component of ``tissue``, holes and edge notches filled."""
    labels, n = cc3d.connected_components(tissue, connectivity=6, return_N=True)
    if n == 0:
        mask = tissue
    else:
        counts = _label_sizes(labels, n)
        counts[0] = 0
        mask = labels == int(np.argmax(counts))
    # Freed at once, the labels' memory serves the next arrays: on a virtual machine,
    # pages untouched for a few seconds are dear to touch again.
    del labels
    return _fill_edge_notches(mask, pixel_mm=(float(spacing_mm[1]), float(spacing_mm[2])))


def body_mask(
    image: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    threshold: float | None = None,
    smooth_mm: float = 1.5,
    skin_smooth_mm: float = 0.6,
    reach_mm: tuple[float, float] = (-4.0, 16.0),
    level_sigma_mm: float = 20.0,
) -> Body:
    """Segment the body against air, its edge on the skin, and the depth below the skin.

    Two steps, because the air around a real body is not empty (blur, ghosting,
    Gibbs ringing and parallel-imaging noise lie several millimetres beyond the
    skin, above any threshold that keeps the darkest tissue):

    1. A generous mask: the image smoothed in the slice plane and thresholded
       (default: Otsu's method on the log of the non-zero intensities, which a
       coil's fall-off does not pull into the tissue range), its largest
       connected component with the holes of each slice filled, so dark
       structures inside the body (bone cortex, fascia, fluid) belong to it.
       Its edge lies in the blur and ghosts around the body.
    2. The skin: on profiles along the inward normal of that edge, in a lightly
       smoothed image, the air/skin edge is the outermost strong rise of the
       signal, and the signal there (half way from air to the skin for a
       symmetric blur) is the local skin level. The levels are spread smoothly
       over the body (a coil's shading changes them), and what lies below the
       local level and is reached from the air is peeled off the mask.

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)
        Any MR image where tissue is brighter than air (T1, Dixon fat + water).
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    threshold : float, optional
        Air/tissue level of the generous mask (of the smoothed image); default
        from the image.
    smooth_mm : float
        Gaussian sigma (mm) of the in-plane smoothing for the generous mask.
    skin_smooth_mm : float
        Gaussian sigma (mm) of the light in-plane smoothing in which the skin
        is found.
    reach_mm : (float, float)
        The profiles run from ``reach_mm[0]`` outside the generous mask's edge
        to ``reach_mm[1]`` inside it (mm); the skin is looked for, and peeled
        to, no deeper than that.
    level_sigma_mm : float
        Gaussian sigma (mm) over which the skin level is spread.

    Returns
    -------
    Body
    """
    full_shape = image.shape
    fov = field_of_view(image)
    image = image[fov]
    # Noise in air overlaps dark tissue voxel by voxel: judge a smoothed image, and
    # split air from tissue by Otsu's method on log intensities. Exact zeros (air
    # masked by the scanner, or padding beyond the field of view) are not a level.
    smooth = smooth_in_plane(
        image, (smooth_mm / float(spacing_mm[1]), smooth_mm / float(spacing_mm[2]))
    )
    if threshold is None:
        sample = smooth[:, ::2, ::2]
        sample = sample[np.isfinite(sample) & (sample > 0)]  # a copy: transformed in place
        if sample.size == 0:
            threshold = 0.0
        else:
            # A body that fills the field of view leaves too little air for Otsu's
            # two classes, which then split the tissue (fat from muscle): no tissue
            # is darker than a twentieth of the bright fat, whatever the coil's
            # shading, unless the noise itself is (three times the darkest
            # percentile: the air, when there is any).
            low, high = np.percentile(sample, [1.0, 99.0])
            ceiling = max(0.05 * float(high), 3.0 * float(low))
            np.log1p(sample, out=sample)
            otsu = float(np.expm1(threshold_otsu(sample))) if np.ptp(sample) > 0 else 0.0
            threshold = min(otsu, ceiling)
        del sample
    rough = _largest_filled(smooth > threshold, spacing_mm)
    rough_depth = distance_mm(rough, spacing_mm)
    fine = smooth_in_plane(
        image, (skin_smooth_mm / float(spacing_mm[1]), skin_smooth_mm / float(spacing_mm[2]))
    )
    found = _edge_profiles(
        fine,
        smooth,
        rough,
        rough_depth,
        spacing_mm=spacing_mm,
        max_rays=20000,
        reach_mm=reach_mm,
        min_peak=0.5,
    )
    del smooth  # its memory serves the next arrays (see ``_largest_filled``)
    mask, depth, level = rough, rough_depth, None
    if found is not None:
        points, levels, offsets, _ = found
        ok = np.isfinite(levels) & (levels > 0)
        if np.count_nonzero(ok) >= 10:
            level = float(np.median(levels[ok]))
            band = rough & (rough_depth <= reach_mm[1])
            low = np.zeros_like(rough)
            # Below the local skin level, and no deeper than the skin was found
            # nearby (a pixel's margin): tissue darker than the skin further in (a
            # muscle in a coil's fall-off at the edge of the field of view) stays.
            reach = _spread(
                points[ok], offsets[ok], band, spacing_mm=spacing_mm, sigma_mm=level_sigma_mm
            ) + max(spacing_mm[1:])
            local_level = _spread(
                points[ok],
                levels[ok],
                band,
                spacing_mm=spacing_mm,
                sigma_mm=level_sigma_mm,
                log_scale=True,
            )
            low[band] = (fine[band] < local_level) & (rough_depth[band] <= reach)
            del local_level
            del reach
            peeled = _peel(rough, low, box=bounding_box(rough, margin=1))
            del low, band
            if peeled.any():
                mask = _largest_filled(peeled, spacing_mm)
                depth = distance_mm(mask, spacing_mm)
    del fine
    log.info(
        "body: %.0f%% of the volume, air/tissue threshold %.3g, skin level %s",
        100 * mask.mean(),
        threshold,
        "not found" if level is None else f"{level:.3g}",
    )
    mask = _pad_back(mask, fov, full_shape)
    depth = _pad_back(depth, fov, full_shape)
    return Body(
        mask=mask,
        depth_mm=depth,
        threshold=float(threshold),
        skin_depth_mm=depth,
        skin_level=level,
        field_of_view=fov,
    )
