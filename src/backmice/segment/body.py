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
    "skin_level",
    "smooth_in_plane",
]

#: Threads for Euclidean distance transforms (the ``edt`` package scales well).
EDT_THREADS = max(1, min(2, os.cpu_count() or 1))

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Body:
    """The body and the skin.

    Attributes
    ----------
    mask : ndarray of bool, shape (slice, row, col)
        Inside the body (skin included, internal cavities filled).
    depth_mm : ndarray of float32, same shape
        Distance from the edge of ``mask``, mm: for a voxel inside the body,
        the distance from its centre to the nearest voxel outside; 0 outside.
        The mask's edge lies about 1–1.5 mm outside the skin (see
        :func:`skin_level`); the analysis' depth bands are set on this map.
    threshold : float
        Signal level (of the smoothed image) separating air from tissue for
        ``mask``.
    skin_depth_mm : ndarray of float32, same shape
        Depth below the skin surface, mm: the air/skin boundary found at
        sub-voxel level (:func:`skin_level`); for a voxel inside the skin, the
        distance from its centre to the nearest voxel centre outside it, 0
        elsewhere. Where the level is not found, ``depth_mm``.
    skin_level : float or None
        Signal level (of the lightly smoothed image) of the skin surface, half
        way between air and the skin; None where it was not found.
    """

    mask: np.ndarray
    depth_mm: np.ndarray
    threshold: float
    skin_depth_mm: np.ndarray
    skin_level: float | None = None


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
    if box is None:
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


def skin_level(
    fine: np.ndarray,
    coarse: np.ndarray,
    mask: np.ndarray,
    depth_mm: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    max_rays: int = 20000,
    reach_mm: tuple[float, float] = (-3.0, 5.0),
    min_peak: float = 0.5,
) -> float | None:
    """Signal level of the skin surface: half way between air and the skin.

    A mask thresholded on a smoothed image lies outside the skin (smoothing
    spreads the bright tissue into the air, and the threshold sits near the
    noise floor; about 1–1.5 mm on the phantoms). The level at which the
    air/skin edge itself lies is read from profiles along the inward normal at
    the mask's edge: the outermost strong rise of the signal (the first local
    maximum of its slope that reaches ``min_peak`` of the profile's steepest)
    is the air/skin edge, and the signal there, half way between air and the
    skin for any symmetric blur, is that profile's level. The median over the
    profiles is returned. Deeper, stronger edges (the dermis against brighter
    subcutaneous fat on T1) are not taken for the skin while they are resolved
    from it; where the skin is thinner than about 1.5 pixels the two edges merge
    and the level is pulled toward the fat (a 2 mm skin on T1 at 1.5 mm pixels:
    the depth below it reads about 0.5 mm shallow).

    Parameters
    ----------
    fine : ndarray of float32, shape (slice, row, col)
        The image, lightly smoothed (the profiles are read from it).
    coarse : ndarray of float32, same shape
        The image smoothed as for ``mask`` (its gradient gives the normals).
    mask : ndarray of bool, same shape
        The body.
    depth_mm : ndarray of float32, same shape
        :func:`distance_mm` of ``mask`` (its edge voxels start the profiles).
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    max_rays : int
        At most this many profiles (every n-th edge voxel, so the result is
        the same on every run).
    reach_mm : (float, float)
        Profiles run from ``reach_mm[0]`` (outside) to ``reach_mm[1]`` (inside)
        of the edge voxel, mm.
    min_peak : float
        Fraction of the profile's steepest slope the skin edge must reach.

    Returns
    -------
    float or None
        The level, or None when no edge was found or the level is not between
        the air and the body's tissue (then there is nothing to refine).
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
    # Inward normals (toward brighter), in mm, by central differences of the coarse image.
    grad = np.empty_like(edge)
    for axis in range(3):
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
    if not found.any():
        return None
    first = np.argmax(peak, axis=1)
    level = float(np.median(profile[np.flatnonzero(found), first[found]]))
    sub = (slice(None), slice(None, None, 3), slice(None, None, 3))
    air = float(np.median(fine[sub][~mask[sub]]))
    tissue = float(np.median(profile[:, -1]))  # ``reach_mm[1]`` inside the mask's edge
    if not air < level < tissue:
        log.warning("skin level %.3g not between air %.3g and tissue %.3g", level, air, tissue)
        return None
    return level


def _fill_per_slice(mask: np.ndarray, *, max_notch_px: float | None = None) -> np.ndarray:
    """Fill the holes of ``mask`` in each slice, and small pockets of air open to the edge.

    A hole is a 4-connected component of the background that does not touch the
    image's edge (as :func:`scipy.ndimage.binary_fill_holes` with its default
    structure fills). One labelling of the background per slice finds both the
    holes and the pockets, several times faster than ``binary_fill_holes``
    (whose iterated dilation from the edge visits the slice many times).

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
    max_notch_px : float, optional
        Also fill components of the background that touch the image's edge
        when their area (pixels) is at most this (:func:`_fill_edge_notches`).

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
        for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
            fill[edge] = False
        if max_notch_px is not None:
            fill |= np.bincount(labels.ravel(), minlength=n + 1) <= max_notch_px
        fill[0] = False
        out[k] |= fill[labels]
    return out


def _fill_edge_notches(
    mask: np.ndarray, *, pixel_mm: tuple[float, float], max_area_mm2: float = 50.0
) -> np.ndarray:
    """Fill holes, and small pockets of "air" open to the image's edge, slice by slice.

    Where the field of view cuts the body, a dark structure at the cut (bone
    cortex, a fascia) falls below the air threshold and, being open to the
    image's edge, is not a hole that :func:`scipy.ndimage.binary_fill_holes`
    fills: it leaves a notch of air in the body, and the marrow beside it lies
    "just under the skin" (taken for subcutaneous fat, it drags the fascia
    down into the muscle). A corner of real air this small (a body that
    nearly fills the image) is filled too, which moves the skin there by a
    few millimetres at most.
    """
    return _fill_per_slice(mask, max_notch_px=max_area_mm2 / (pixel_mm[0] * pixel_mm[1]))


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


def body_mask(
    image: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    threshold: float | None = None,
    smooth_mm: float = 1.5,
    skin_smooth_mm: float = 0.6,
) -> Body:
    """Segment the body against air and measure the depth below the skin.

    The image is smoothed in the slice plane and thresholded (default: Otsu's
    method on log intensities) to separate air and noise from tissue; the
    largest connected component is kept and holes are filled in each slice, so
    dark structures inside the body (bone cortex, fascia, fluid) belong to it.

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)
        Any MR image where tissue is brighter than air (T1, Dixon fat + water).
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    threshold : float, optional
        Air/tissue level (of the smoothed image); default from the image.
    smooth_mm : float
        Gaussian sigma (mm) of the in-plane smoothing before thresholding.
    skin_smooth_mm : float
        Gaussian sigma (mm) of the light in-plane smoothing in which the skin
        surface is found at sub-voxel level (:func:`skin_level`).

    Returns
    -------
    Body
    """
    # Noise in air overlaps dark tissue voxel by voxel: judge a smoothed image, and
    # split air from tissue by Otsu's method on log intensities, which a coil's
    # fall-off (dark tissue far from it) does not pull into the tissue range.
    smooth = smooth_in_plane(
        image, (smooth_mm / float(spacing_mm[1]), smooth_mm / float(spacing_mm[2]))
    )
    if threshold is None:
        sample = smooth[:, ::2, ::2]
        sample = sample[np.isfinite(sample)]  # a copy: transformed in place
        np.maximum(sample, 0, out=sample)
        np.log1p(sample, out=sample)
        threshold = float(np.expm1(threshold_otsu(sample)))
        del sample
    tissue = smooth > threshold
    labels, n = cc3d.connected_components(tissue, connectivity=6, return_N=True)
    if n == 0:
        mask = tissue
    else:
        counts = _label_sizes(labels, n)
        counts[0] = 0
        mask = labels == int(np.argmax(counts))
    # Freed at once, the labels' memory serves the next arrays: on a virtual machine,
    # pages untouched for a few seconds are dear to touch again.
    del labels, tissue
    mask = _fill_edge_notches(mask, pixel_mm=(float(spacing_mm[1]), float(spacing_mm[2])))
    depth = distance_mm(mask, spacing_mm)
    # The mask's edge lies outside the skin (the smoothing spreads tissue into the
    # air and the threshold is near the noise floor): the depth below the skin is
    # measured from the air/skin edge found at sub-voxel level in a lightly
    # smoothed image. The mask and its own depth map are kept for the other stages.
    fine = smooth_in_plane(
        image, (skin_smooth_mm / float(spacing_mm[1]), skin_smooth_mm / float(spacing_mm[2]))
    )
    level = skin_level(fine, smooth, mask, depth, spacing_mm=spacing_mm)
    del smooth  # its memory serves the skin's arrays (see ``labels`` above)
    skin_depth = depth
    if level is not None:
        # Only near the mask's edge: deeper dark structures (cortex, fascia, fluid)
        # stay inside.
        band = 3.0 * smooth_mm + 2.0 * max(float(spacing_mm[1]), float(spacing_mm[2]))
        # Found and filled within the body's bounding box grown by a pixel: the air
        # around it touches the image's edge, so the holes are the same as in the
        # slice.
        box = bounding_box(mask, margin=1)
        skin = np.zeros_like(mask)
        skin[box] = _fill_per_slice(mask[box] & ((fine[box] > level) | (depth[box] > band)))
        del fine
        skin_depth = distance_mm(skin, spacing_mm)
    log.info(
        "body: %.0f%% of the volume, air/tissue threshold %.3g, skin level %s",
        100 * mask.mean(),
        threshold,
        "not found" if level is None else f"{level:.3g}",
    )
    return Body(
        mask=mask,
        depth_mm=depth,
        threshold=float(threshold),
        skin_depth_mm=skin_depth,
        skin_level=level,
    )
