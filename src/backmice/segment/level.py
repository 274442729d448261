"""The spinal level: where the sacrum begins, for the lumbar / lumbosacral suggestion.

SPEC's suggestion rule calls a fascial fat herniation *lumbosacral* when the
nodule lies below the top of the sacrum. The sacrum is found the way a reader
finds it, but in 3D and in patient coordinates (so oblique and sagittal
series work too): bone marrow is fat-bright on T1 and in the Dixon fat image
and lies deep to the fascia, so it is the fat that is neither subcutaneous nor
a candidate. In a slab around the midsagittal plane, a few centimetres
anterior to the fascia (the depth of the posterior elements and of the
sacrum, short of the pelvic viscera), thick marrow reaches 27–37 mm to both
sides of the midline below the top of the sacrum (the sacrum with its alae is
about 100 mm wide) and not above it (L5's body and lamina are 40–50 mm wide,
its disc is no marrow at all, the iliac wings lie farther out, fat streaks in
the multifidus are thin). The top of the sacrum is the height where the one
turns into the other, found as one step over all the heights in view; when
the heights do not make one clear step the level is unknown (None), never a
guess.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = ["SacrumProfile", "sacrum_profile", "sacrum_top_z_mm"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SacrumProfile:
    """How far the marrow reaches to either side of the midline, height by height.

    Attributes
    ----------
    z_mm : ndarray of float64, shape (n,)
        LPS z of each height sampled, mm, inferior to superior.
    alae : ndarray of float64, shape (n,)
        The smaller, of the two sides, of the share (0–1) of the lateral band
        (where the sacral alae are, and L5 is not) that has a thick column of
        marrow; NaN where the slab is not wholly in the field of view.
    traces : ndarray of float64, shape (n,)
        The same for columns with any marrow at all, however thin: a sacrum
        whose marrow is barely above the fat threshold leaves traces across
        the lateral bands where L5 leaves none (NaN likewise).
    fascia_y_mm : ndarray of float64, shape (n,)
        LPS y of the fascia in the midline at that height (NaN: not found).
    x_mm : ndarray of float64, shape (m,)
        LPS x of the slab's columns, mm.
    marrow_mm : ndarray of float64, shape (n, m)
        Marrow along the depth of each column of the slab, mm; NaN where the
        column is not wholly in view.
    """

    z_mm: np.ndarray
    alae: np.ndarray
    traces: np.ndarray
    fascia_y_mm: np.ndarray
    x_mm: np.ndarray
    marrow_mm: np.ndarray


def _sample(
    volume: np.ndarray, affine: np.ndarray, points: np.ndarray, *, cval: float, order: int
) -> np.ndarray:
    """``volume`` sampled at LPS points (mm), shape (..., 3) → (...)."""
    inv = np.linalg.inv(affine)
    flat = points.reshape(-1, 3)
    idx = inv[:3, :3] @ flat.T + inv[:3, 3:4]
    out = ndimage.map_coordinates(volume, idx, order=order, mode="constant", cval=cval)
    return out.reshape(points.shape[:-1])


def sacrum_profile(
    fat: np.ndarray,
    signed_fascia_mm: np.ndarray,
    *,
    affine: np.ndarray,
    midline_x_mm: float,
    alae_mm: tuple[float, float] = (27.0, 37.0),
    depth_mm: tuple[float, float] = (15.0, 65.0),
    min_marrow_mm: float = 4.0,
    step_mm: float = 1.0,
) -> SacrumProfile:
    """How far the marrow reaches to either side of the midline, at each height.

    The fascia's LPS y in the midline is found at each height as the most
    posterior place where the signed distance turns from deep (−) to
    superficial (+), along antero-posterior lines at the midline and 10 mm to
    either side (their median). The slab ``|x − midline_x_mm| ≤ alae_mm[1]``,
    ``depth_mm`` anterior to that fascia, is resampled on an LPS grid of
    ``step_mm`` (nearest voxel), so the slices' orientation does not matter.
    A column of the slab (one x at one height) is bone when it holds at least
    ``min_marrow_mm`` of marrow along its depth (fat streaks in the muscle are
    thin); the lateral bands ``alae_mm[0] ≤ |x − midline_x_mm| ≤ alae_mm[1]``
    have bone below the top of the sacrum (its alae) and none above (L5's body
    and lamina are narrower; the iliac wings lie farther out).

    Parameters
    ----------
    fat : ndarray of bool, shape (slice, row, col)
        Deep fat (marrow, visceral fat): fat that is neither subcutaneous nor a nodule.
    signed_fascia_mm : ndarray of float, shape (slice, row, col)
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm (any orientation).
    midline_x_mm : float
        LPS x of the body's midsagittal plane.
    alae_mm : (float, float)
        Inner and outer distance of the lateral bands from the midline, LPS x, mm.
    depth_mm : (float, float)
        Nearest and farthest LPS-y distance anterior to the midline fascia, mm:
        the depth of the sacrum's dorsal half, past most of the multifidus,
        short of the pelvic viscera.
    min_marrow_mm : float
        Marrow a column needs to count as bone, mm.
    step_mm : float
        Sampling step of the LPS grid, mm.

    Returns
    -------
    SacrumProfile
    """
    affine = np.asarray(affine, dtype=np.float64)
    corners = np.array(
        [
            [i, j, k]
            for i in (0, fat.shape[0] - 1)
            for j in (0, fat.shape[1] - 1)
            for k in (0, fat.shape[2] - 1)
        ],
        dtype=np.float64,
    )
    world = corners @ affine[:3, :3].T + affine[:3, 3]
    (y_lo, z_lo), (y_hi, z_hi) = world[:, 1:].min(axis=0), world[:, 1:].max(axis=0)
    z = np.arange(np.ceil(z_lo / step_mm) * step_mm, z_hi + 1e-9, step_mm)
    y = np.arange(y_lo, y_hi + 1e-9, step_mm)
    x = np.arange(midline_x_mm - alae_mm[1], midline_x_mm + alae_mm[1] + 1e-9, step_mm)
    if z.size == 0 or y.size < 2:
        empty = np.zeros(0)
        return SacrumProfile(empty, empty, empty, empty, x, np.zeros((0, x.size)))
    # The fascia in the midline: along AP lines at x = mid + (-10, 0, 10).
    xs = midline_x_mm + np.array([-10.0, 0.0, 10.0])
    pts = np.stack(np.broadcast_arrays(xs[None, :, None], y[None, None, :], z[:, None, None]), -1)
    s = _sample(np.asarray(signed_fascia_mm, dtype=np.float32), affine, pts, cval=np.nan, order=1)
    cross = (s[..., :-1] < 0) & (s[..., 1:] >= 0)  # deep → superficial, going posterior
    has = cross.any(axis=-1)
    last = cross.shape[-1] - 1 - np.argmax(cross[..., ::-1], axis=-1)  # the most posterior one
    s0 = np.take_along_axis(s, last[..., None], -1)[..., 0]
    s1 = np.take_along_axis(s, last[..., None] + 1, -1)[..., 0]
    frac = np.clip(-s0 / np.where(s1 > s0, s1 - s0, 1.0), 0.0, 1.0)
    fy = np.where(has, y[last] + frac * step_mm, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # heights without a crossing: NaN
        fascia_y = np.nanmedian(fy, axis=1)
    # The slab on the LPS grid, (z, depth, x); 255 marks samples outside the field of view.
    depth = np.arange(depth_mm[0], depth_mm[1] + 1e-9, step_mm)
    yy = np.where(np.isnan(fascia_y), 0.0, fascia_y)[:, None] - depth[None, :]
    pts = np.stack(np.broadcast_arrays(x[None, None, :], yy[:, :, None], z[:, None, None]), -1)
    fat = np.asarray(fat)
    codes = fat.view(np.uint8) if fat.dtype == np.bool_ else (fat != 0).view(np.uint8)
    slab = _sample(codes, affine, pts, cval=255, order=0)
    in_view = ~(slab == 255).any(axis=1) & ~np.isnan(fascia_y)[:, None]  # (z, x)
    marrow_mm = np.where(in_view, (slab == 1).sum(axis=1) * step_mm, np.nan)
    bone = marrow_mm >= min_marrow_mm
    off = np.abs(x - midline_x_mm)
    lateral = (off >= alae_mm[0]) & (off <= alae_mm[1])
    left, right = lateral & (x > midline_x_mm), lateral & (x < midline_x_mm)
    whole = in_view[:, lateral].all(axis=1)

    def both_sides(columns: np.ndarray) -> np.ndarray:
        share = np.minimum(columns[:, left].mean(axis=1), columns[:, right].mean(axis=1))
        return np.where(whole, share, np.nan)

    return SacrumProfile(z, both_sides(bone), both_sides(marrow_mm > 0), fascia_y, x, marrow_mm)


def sacrum_top_z_mm(
    fat: np.ndarray,
    signed_fascia_mm: np.ndarray,
    *,
    affine: np.ndarray,
    midline_x_mm: float,
    alae_mm: tuple[float, float] = (27.0, 37.0),
    depth_mm: tuple[float, float] = (15.0, 65.0),
    min_marrow_mm: float = 4.0,
    min_alae: float = 0.25,
    max_traces: float = 0.6,
    step_mm: float = 1.0,
    min_run_mm: float = 8.0,
    min_agreement: float = 0.9,
    max_unclear_mm: float = 6.0,
    endplate_mm: float = 0.0,
) -> float | None:
    """LPS z (mm) of the top of the sacrum, or None when it cannot be told.

    A height is *sacral* when, on both sides of the midline, at least
    ``min_alae`` of the lateral band has bone (:func:`sacrum_profile`); it is
    *lumbar* when it is not sacral and less than ``max_traces`` of the lateral
    band on one side has any marrow at all; else it is unclear (a sacrum
    whose marrow is barely fat-bright), and agrees with no step. The sacral
    heights must lie below the lumbar ones, as one step that at least
    ``min_agreement`` of the heights in view agree with and with
    ``min_run_mm`` of each kind on its side. The top of the sacrum is then
    where the lumbar heights begin above the sacral ones (after at most
    ``max_unclear_mm`` of unclear heights: the faint top of the sacrum, a
    slice partly through the endplate), plus ``endplate_mm`` (the marrow stops
    at the endplate's cortex). Anything less clear gives None: the level is
    unknown, and the suggestion falls back to lumbar (SPEC).

    Parameters
    ----------
    fat : ndarray of bool, shape (slice, row, col)
        Fat that is neither subcutaneous nor a nodule (deep fat: marrow, visceral fat).
    signed_fascia_mm : ndarray of float, shape (slice, row, col)
        Signed distance to the fascia, mm (+ superficial).
    affine : ndarray of shape (4, 4)
        Index to LPS mm (any orientation: the search is in LPS).
    midline_x_mm : float
        LPS x of the body's midsagittal plane.
    alae_mm, depth_mm, min_marrow_mm, step_mm
        The slab, what counts as bone, and the sampling (:func:`sacrum_profile`).
    min_alae : float
        Share of each lateral band with bone at a sacral height.
    max_traces : float
        Share of a lateral band with any marrow below which a height that is
        not sacral is lumbar.
    min_run_mm : float
        Sacral heights below the step and others above it, at least, mm.
    min_agreement : float
        Share of the heights in view the step must agree with.
    max_unclear_mm : float
        Unclear heights allowed between the sacral and the lumbar ones, mm.
    endplate_mm : float
        Added to the step, mm.

    Returns
    -------
    float or None
        None when the step is not clear (including a field of view that is
        all sacral or all lumbar, or a slab mostly out of view).
    """
    prof = sacrum_profile(
        fat,
        signed_fascia_mm,
        affine=affine,
        midline_x_mm=midline_x_mm,
        alae_mm=alae_mm,
        depth_mm=depth_mm,
        min_marrow_mm=min_marrow_mm,
        step_mm=step_mm,
    )
    seen = ~np.isnan(prof.alae)
    zs = prof.z_mm[seen]
    flags = prof.alae[seen] >= min_alae
    lumbar = ~flags & (prof.traces[seen] < max_traces)
    run = max(1, round(min_run_mm / step_mm))
    if flags.size < 2 * run:
        log.info("level: too little of the midline slab in view")
        return None
    below = np.concatenate([[0], np.cumsum(flags)])  # sacral heights below each split
    above = np.concatenate([[0], np.cumsum(lumbar[::-1])])[::-1]  # lumbar heights above it
    agree = below + above
    splits = np.arange(run, flags.size - run + 1)
    best = int(splits[np.argmax(agree[splits])])
    share = float(agree[best]) / flags.size
    if share < min_agreement or below[best] < run or above[best] < run:
        log.info("level: sacral and lumbar heights do not form one step (%.0f%%)", 100 * share)
        return None
    # Unclear heights right above the sacral ones are the faint top of the
    # sacrum (a slice partly through the endplate): the top is where the
    # lumbar heights begin, if that is near.
    first_lumbar = best + int(np.argmax(lumbar[best:]))
    if zs[first_lumbar] - zs[best] > max_unclear_mm:
        log.info("level: unclear heights between the sacral and lumbar ones")
        return None
    if zs[first_lumbar] - zs[first_lumbar - 1] > 2.5 * step_mm:
        log.info("level: the step falls in a gap of the field of view")
        return None
    top = float((zs[first_lumbar - 1] + zs[first_lumbar]) / 2) + endplate_mm
    log.info("level: top of the sacrum at z = %.1f mm (%.0f%% of heights agree)", top, 100 * share)
    return top
