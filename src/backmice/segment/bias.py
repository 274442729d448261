"""N4 bias-field correction (SimpleITK), estimated on a shrunk copy, applied at full size."""

from __future__ import annotations

import logging

import numpy as np
import SimpleITK as sitk

__all__ = ["n4_correct"]

log = logging.getLogger(__name__)


def _shrink_factors(shape: tuple[int, ...], shrink: int) -> list[int]:
    # SimpleITK order is (col, row, slice); keep at least 8 samples along each axis.
    return [max(1, min(shrink, n // 8)) for n in reversed(shape)]


def n4_correct(
    image: np.ndarray,
    mask: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    shrink: int = 4,
    iterations: tuple[int, ...] = (50, 50, 30),
) -> tuple[np.ndarray, np.ndarray]:
    """Remove a smooth multiplicative bias field (surface coil fall-off).

    Parameters
    ----------
    image : ndarray, shape (slice, row, col)
        A positive MR image (T1).
    mask : ndarray of bool, same shape
        Where to estimate the field (the body).
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    shrink : int
        Shrink factor of the copy the field is estimated on (MEASURED.md: 4 in
        every axis gives the same correction as finer ones, several times faster).
    iterations : tuple of int
        Iterations per fitting level.

    Returns
    -------
    corrected : ndarray of float32
        ``image / bias``.
    bias : ndarray of float32
        The multiplicative field, normalised to a median of 1 inside the mask.
    """
    img = sitk.GetImageFromArray(np.ascontiguousarray(image, dtype=np.float32))
    img.SetSpacing(tuple(float(s) for s in reversed(spacing_mm)))
    msk = sitk.GetImageFromArray(np.ascontiguousarray(mask, dtype=np.uint8))
    msk.CopyInformation(img)
    factors = _shrink_factors(image.shape, shrink)
    small = sitk.Shrink(img, factors)
    small_mask = sitk.Shrink(msk, factors)
    n4 = sitk.N4BiasFieldCorrectionImageFilter()
    n4.SetMaximumNumberOfIterations(list(iterations))
    n4.Execute(small, small_mask)
    log_bias = sitk.GetArrayFromImage(n4.GetLogBiasFieldAsImage(img)).astype(np.float32)
    bias = np.exp(log_bias)
    inside = bias[mask]
    if inside.size:
        bias /= np.float32(np.median(inside))
    corrected = (image / bias).astype(np.float32)
    log.info("N4: bias field from %.2f to %.2f inside the body", inside.min(), inside.max())
    return corrected, bias
