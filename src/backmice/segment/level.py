"""The spinal level: where the sacrum begins, for the lumbar / lumbosacral suggestion.

SPEC's suggestion rule calls a fascial fat herniation *lumbosacral* when the
nodule lies below the top of the sacrum. The sacrum is found the way a reader
finds it on axial slices: the bone just deep to the fascia in the midline is
the narrow spinous process and lamina at lumbar levels, and the broad sacrum
(its alae reach toward the iliac bones) below S1. Bone marrow is fat-bright on
T1 and in the Dixon fat image, and lies deep to the fascia, so it is the fat
that is neither subcutaneous nor a candidate.
"""

from __future__ import annotations

import logging

import numpy as np
from scipy import ndimage

__all__ = ["sacrum_top_z_mm"]

log = logging.getLogger(__name__)


def sacrum_top_z_mm(
    fat: np.ndarray,
    signed_fascia_mm: np.ndarray,
    *,
    affine: np.ndarray,
    midline_x_mm: float,
    near_mm: float = 30.0,
    midline_band_mm: float = 10.0,
    min_width_mm: float = 70.0,
    max_tilt_deg: float = 10.0,
    min_run: int = 2,
    min_agreement: float = 0.9,
) -> float | None:
    """LPS z (mm) of the top of the sacrum, or None when it cannot be told.

    In each slice, the connected regions of deep fat (marrow) that come within
    ``near_mm`` of the fascia in the midline (within ``midline_band_mm`` of
    the midsagittal plane) are measured across (LPS x); a slice whose widest such
    region spans ``min_width_mm`` or more is at a sacral level (lumbar spinous
    processes, laminae and vertebral bodies are narrower; the sacrum with its
    alae is about 100 mm wide). The sacral slices must lie below the lumbar
    ones, as one step that at least ``min_agreement`` of the slices agree with
    and with ``min_run`` slices on each side; the top of the sacrum is then
    midway between the two slices at the step. Anything less clear gives None:
    the level is unknown, and the suggestion falls back to lumbar (SPEC).

    Parameters
    ----------
    fat : ndarray of bool, shape (slice, row, col)
        Fat that is neither subcutaneous nor a nodule (deep fat: marrow, visceral fat).
    signed_fascia_mm : ndarray of float
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    midline_x_mm : float
        LPS x of the body's midsagittal plane.
    near_mm, midline_band_mm, min_width_mm : float
        See above.
    max_tilt_deg : float
        Slices tilted more than this from axial give None (one slice of an
        oblique series spans several levels).
    min_run : int
    min_agreement : float

    Returns
    -------
    float or None
        None when the series is not near-axial, or the step is not clear
        (including a field of view that is all sacral or all lumbar).
    """
    normal = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    if np.degrees(np.arccos(min(abs(float(normal[2])), 1.0))) > max_tilt_deg:
        log.info("level: slices not axial; the top of the sacrum is not looked for")
        return None
    deep = fat & (signed_fascia_mm < 0) & (signed_fascia_mm > -3 * near_mm)
    n, rows, cols = fat.shape
    r, c = np.mgrid[:rows, :cols]
    sacral = np.zeros(n, dtype=bool)
    seen = np.zeros(n, dtype=bool)
    for k in range(n):
        if not deep[k].any():
            continue
        x = affine[0, 3] + affine[0, 0] * k + affine[0, 1] * r + affine[0, 2] * c
        seen[k] = True
        regions, count = ndimage.label(deep[k])
        if count == 0:
            continue
        # Within reach of the fascia *in the midline* (visceral fat comes near
        # the fascia only at the flanks).
        at = (signed_fascia_mm[k] > -near_mm) & (np.abs(x - midline_x_mm) <= midline_band_mm)
        ids = np.unique(regions[at & deep[k]])
        ids = ids[ids > 0]
        if ids.size == 0:
            continue
        lo = ndimage.minimum(x, regions, ids)
        hi = ndimage.maximum(x, regions, ids)
        sacral[k] = float(np.max(np.asarray(hi) - np.asarray(lo))) >= min_width_mm
    centre = affine[2, 1] * rows / 2 + affine[2, 2] * cols / 2
    z = affine[2, 3] + affine[2, 0] * np.arange(n) + centre  # slice centres, LPS z
    order = np.argsort(z[seen])  # slices with deep fat, from inferior to superior
    flags = sacral[seen][order]
    zs = z[seen][order]
    if flags.size < 2 * min_run:
        return None
    # Fit a step: sacral below, lumbar above. Take the split that agrees with
    # the most slices; keep it only if it agrees with nearly all of them and
    # has at least ``min_run`` slices on each side.
    below = np.concatenate([[0], np.cumsum(flags)])  # sacral slices below each split
    above = np.concatenate([[0], np.cumsum(~flags[::-1])])[::-1]  # lumbar slices above
    agree = below + above
    splits = np.arange(min_run, flags.size - min_run + 1)
    best = int(splits[np.argmax(agree[splits])])
    share = float(agree[best]) / flags.size
    if share < min_agreement:
        log.info("level: sacral and lumbar slices do not form one step (%.0f%%)", 100 * share)
        return None
    top = float((zs[best - 1] + zs[best]) / 2)
    log.info("level: top of the sacrum at z = %.1f mm (%.0f%% of slices agree)", top, 100 * share)
    return top
