"""The body against air, and each voxel's depth below the skin."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import cc3d
import edt
import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu

__all__ = ["EDT_THREADS", "Body", "body_mask", "distance_mm"]

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
        Distance from the skin surface, mm: for a voxel inside the body, the
        distance from its centre to the nearest voxel outside; 0 outside.
    threshold : float
        Signal level separating air from tissue.
    """

    mask: np.ndarray
    depth_mm: np.ndarray
    threshold: float


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
    return edt.edt(
        np.ascontiguousarray(mask, dtype=np.uint8),
        anisotropy=tuple(float(s) for s in spacing_mm),
        black_border=False,
        parallel=EDT_THREADS,
    ).astype(np.float32, copy=False)


def _fill_holes_per_slice(mask: np.ndarray) -> np.ndarray:
    out = np.empty_like(mask)
    for k in range(mask.shape[0]):
        out[k] = ndimage.binary_fill_holes(mask[k])
    return out


def body_mask(
    image: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    threshold: float | None = None,
    smooth_mm: float = 1.5,
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

    Returns
    -------
    Body
    """
    # Noise in air overlaps dark tissue voxel by voxel: judge a smoothed image, and
    # split air from tissue by Otsu's method on log intensities, which a coil's
    # fall-off (dark tissue far from it) does not pull into the tissue range.
    sigma = tuple(0.0 if k == 0 else smooth_mm / float(s) for k, s in enumerate(spacing_mm))
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), sigma)
    if threshold is None:
        sample = smooth[:, ::2, ::2]
        sample = sample[np.isfinite(sample)]
        threshold = float(np.expm1(threshold_otsu(np.log1p(np.maximum(sample, 0)))))
    tissue = smooth > threshold
    labels = cc3d.connected_components(tissue, connectivity=6)
    if labels.max() == 0:
        mask = tissue
    else:
        counts = np.bincount(labels.ravel())
        counts[0] = 0
        mask = labels == int(np.argmax(counts))
    mask = _fill_holes_per_slice(mask)
    depth = distance_mm(mask, spacing_mm)
    log.info("body: %.0f%% of the volume, air/tissue threshold %.3g", 100 * mask.mean(), threshold)
    return Body(mask=mask, depth_mm=depth, threshold=float(threshold))
