"""Fat signal: a normalised fat score from T1, or a fat fraction (Dixon, or in/opposed phase).

Either way the result is a map where 1 means fat and 0 means muscle (T1) or
water (Dixon, in/opposed phase), and one threshold separates fat from the rest,
so users tune a single number.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from skimage.filters import threshold_otsu

from backmice.segment.body import EDT_THREADS
from backmice.vocab import Method  # defined there; re-exported here

__all__ = [
    "DEFAULT_THRESHOLD",
    "FatSignal",
    "Method",
    "fat_signal_dixon",
    "fat_signal_t1",
    "fat_signal_two_point",
]

log = logging.getLogger(__name__)


#: Default threshold on the fat map, per method.
DEFAULT_THRESHOLD = {Method.T1: 0.5, Method.DIXON: 0.5, Method.INOUT: 0.5}

#: T1 fat score of the in-phase image (0 muscle, 1 subcutaneous fat) from which a
#: voxel counts as fat-dominant in the two-point Dixon estimate: half-way.
FAT_DOMINANT_SCORE = 0.5
#: In the two-point estimate, fat- or water-dominant specks smaller than this many
#: voxels (8-connected in the slice plane) take the dominance of what surrounds
#: them: in the subcutaneous fat of a real dual echo (CHAOS set 1, 1.9 mm pixels)
#: the in-phase score dips just under 0.5 at single voxels and short diagonal
#: runs of up to 4, and the water branch would turn their fat fraction from 0.9
#: to 0.05, a dark hole that looks like a capsule (3 false candidates there).
#: A capsule round even a 5 mm nodule is a longer ring, and keeps its dominance.
DOMINANCE_MIN_VOXELS = 5


@dataclass(slots=True)
class FatSignal:
    """A fat map and the threshold that makes it a fat mask.

    Attributes
    ----------
    method : Method
    score : ndarray of float32, shape (slice, row, col)
        T1: ``(signal - muscle level) / (fat level - muscle level)``, so 0 at
        muscle and 1 at subcutaneous fat (not clipped). Dixon: the fat fraction
        F/(F+W) in [0, 1] (0 below the noise floor).
    threshold : float
        Fat is ``score >= threshold``.
    image : ndarray of float32
        The image fat was found in, for signal ratios and display: the
        bias-corrected T1, or the Dixon fat fraction (which no coil fall-off
        biases, unlike the fat image).
    fat_fraction : ndarray of float32 or None
        The Dixon fat fraction (None for T1).
    levels : dict
        The reference levels found (``muscle``, ``fat`` for T1; ``noise_floor``
        for Dixon).
    """

    method: Method
    score: np.ndarray
    threshold: float
    image: np.ndarray
    fat_fraction: np.ndarray | None = None
    levels: dict | None = None

    @property
    def mask(self) -> np.ndarray:
        """``score >= threshold``."""
        return self.score >= self.threshold


def _mode(values: np.ndarray, *, bins: int = 256) -> float:
    """The most common value (peak of a lightly smoothed histogram)."""
    lo, hi = np.percentile(values, [0.5, 99.5])
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    hist = np.convolve(hist, np.ones(5) / 5, mode="same")
    i = int(np.argmax(hist))
    return float((edges[i] + edges[i + 1]) / 2)


def _fat_reference(
    image: np.ndarray,
    band: np.ndarray,
    cut: float,
    level: float,
    spacing_mm: tuple[float, float, float],
    sigma_mm: float,
) -> np.ndarray:
    """Smooth local level of the subcutaneous fat relative to ``level`` (1 where unknown).

    Two passes of normalised Gaussian convolution on a grid coarsened to about
    4 mm: first the mean of the skin band (its fat may fall below ``cut`` where a
    fall-off is strong), then, on the image divided by that, the band's fat
    (above ``cut``). The product is interpolated back linearly: the field is
    smooth, so this costs little.
    """
    from scipy import ndimage

    step = [max(1, round(4.0 / s)) for s in spacing_mm]
    sl = tuple(slice(0, None, f) for f in step)
    small = image[sl].astype(np.float32)
    small_band = band[sl]
    sigma = [sigma_mm / (s * f) for s, f in zip(spacing_mm, step, strict=True)]

    def smooth(samples: np.ndarray, values: np.ndarray, ref: float) -> np.ndarray:
        num = ndimage.gaussian_filter(np.where(samples, values, 0.0), sigma, mode="nearest")
        den = ndimage.gaussian_filter(samples.astype(np.float32), sigma, mode="nearest")
        support = den / max(float(den.max()), 1e-12)
        with np.errstate(invalid="ignore", divide="ignore"):
            local = np.where(support > 0.01, num / den, ref) / ref
        return np.clip(local, 0.2, 5.0).astype(np.float32)

    mean_band = float(np.mean(small[small_band])) if small_band.any() else level
    rough = smooth(small_band, small, mean_band)
    flat = small / rough
    local = rough * smooth(small_band & (flat > cut), flat, level)
    return _upsample_linear(local, image.shape)


def _axis_weights(
    n_in: int, n_out: int, n_keep: int
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Linear interpolation along one axis, as ``ndimage.zoom(..., grid_mode=True)`` does it.

    For the first ``n_keep`` of ``n_out`` output samples: the lower and upper
    input indices (clamped: mode 'nearest' repeats the edge sample) and their
    weights, computed with scipy's own arithmetic, in the same order.
    """
    zoom = n_in / n_out if n_out else 1.0
    cc = np.arange(n_keep, dtype=np.float64)
    cc += 0.5
    cc *= zoom
    cc -= 0.5
    start = np.floor(cc)
    lower = 1.0 - (cc - start)
    first = start.astype(np.intp)
    return (
        (np.clip(first, 0, n_in - 1), lower),
        (np.clip(first + 1, 0, n_in - 1), 1.0 - lower),
    )


def _upsample_linear(small: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``ndimage.zoom(small, shape / small.shape, order=1, mode="nearest", grid_mode=True)``.

    Cropped to ``shape``, and the same to the bit (checked against scipy 1.17 on
    random grids): every output voxel is the sum over the 8 corners, the last
    axis fastest, of ``((value * w0) * w1) * w2`` in double precision, as scipy
    computes it, cast to the input's dtype. Done a slice at a time in
    :data:`~backmice.segment.body.EDT_THREADS` threads (numpy releases the GIL),
    the upsampling of a 40×103×103 grid to 160×512×512 takes 0.2 s instead of
    scipy's 0.9 s, whose loop visits the 8 corners voxel by voxel in one thread.
    """
    # Output shape and zoom as scipy derives them from the factors.
    factors = [n / m for n, m in zip(shape, small.shape, strict=True)]
    full = [round(m * f) for m, f in zip(small.shape, factors, strict=True)]
    keep = [min(n, f) for n, f in zip(shape, full, strict=True)]
    axis0, axis1, axis2 = (
        _axis_weights(m, f, k) for m, f, k in zip(small.shape, full, keep, strict=True)
    )
    values = small.astype(np.float64)
    out = np.empty(keep, dtype=small.dtype)

    def one_slice(k: int) -> None:
        total = np.empty((keep[1], keep[2]))
        term = np.empty_like(total)
        first = True
        for i0, w0 in axis0:
            plane = values[i0[k]] * w0[k]
            for i1, w1 in axis1:
                rows = plane[i1] * w1[:, None]
                for i2, w2 in axis2:
                    np.take(rows, i2, axis=1, out=term)
                    np.multiply(term, w2, out=term)
                    if first:  # scipy's sum starts at 0.0 (which turns -0.0 into 0.0)
                        np.add(term, 0.0, out=total)
                        first = False
                    else:
                        np.add(total, term, out=total)
        out[k] = total

    if EDT_THREADS > 1 and keep[0] > 1:
        with ThreadPoolExecutor(EDT_THREADS) as pool:
            list(pool.map(one_slice, range(keep[0])))
    else:
        for k in range(keep[0]):
            one_slice(k)
    return out


def fat_signal_t1(
    corrected: np.ndarray,
    body: np.ndarray,
    depth_mm: np.ndarray,
    *,
    threshold: float | None = None,
    subcutaneous_band_mm: tuple[float, float] = (3.0, 15.0),
    spacing_mm: tuple[float, float, float] | None = None,
    flatten_mm: float | None = 40.0,
) -> FatSignal:
    """A fat score from a bias-corrected fat-bright image (T1).

    The muscle and fat levels are found per study from the histogram inside the
    body: Otsu's threshold splits it in two; the fat level is the peak of the
    bright side in the superficial band where subcutaneous fat lies, and the
    muscle level the peak of the dark side.

    Parameters
    ----------
    corrected : ndarray, shape (slice, row, col)
        Bias-corrected T1.
    body : ndarray of bool
        The body mask.
    depth_mm : ndarray of float
        Depth below the skin, mm (from :func:`backmice.segment.body_mask`).
    threshold : float, optional
        Fat score that counts as fat; default 0.5 (half-way from muscle to fat).
    subcutaneous_band_mm : (float, float)
        Depths (mm) where the subcutaneous fat level is sampled.
    spacing_mm : (float, float, float), optional
        Voxel spacing, mm (needed for ``flatten_mm``).
    flatten_mm : float or None
        Divide the image by the smooth local level of the subcutaneous fat
        (Gaussian sigma in mm) before scoring, so fat scores 1 all round the
        body even where a coil's fall-off outlasts N4; None to skip.

    Returns
    -------
    FatSignal
    """
    inside = corrected[body]
    rng = np.random.default_rng(0)
    sample = inside if inside.size <= 2_000_000 else rng.choice(inside, 2_000_000, replace=False)
    cut = float(threshold_otsu(sample))
    band = body & (depth_mm >= subcutaneous_band_mm[0]) & (depth_mm <= subcutaneous_band_mm[1])
    bright = corrected[band]
    bright = bright[bright > cut]
    if bright.size < 100:
        bright = sample[sample > cut]
    fat = _mode(bright)
    dark = sample[(sample < cut) & (sample > 0.2 * cut)]
    muscle = _mode(dark) if dark.size >= 100 else 0.5 * cut
    if fat <= muscle:
        raise ValueError("no contrast between fat and muscle in this image")
    if flatten_mm and spacing_mm is not None:
        # What N4 leaves of a strong coil fall-off shows in the subcutaneous fat,
        # which should be one level all round: divide by its smooth local level.
        ref = _fat_reference(corrected, band, cut, fat, spacing_mm, flatten_mm)
        # Divided into the reference's own array when the quotient's dtype is its
        # (a float32 image): one full-size array fewer to allocate.
        out = ref if np.result_type(corrected, ref) == ref.dtype else None
        corrected = np.divide(corrected, ref, out=out)
    # Computed in place: the same arithmetic as ``(corrected - muscle) / (fat - muscle)``.
    score = corrected - muscle
    np.divide(score, fat - muscle, out=score)
    score = score.astype(np.float32, copy=False)
    log.info("T1 fat score: muscle level %.4g, fat level %.4g (Otsu %.4g)", muscle, fat, cut)
    return FatSignal(
        method=Method.T1,
        score=score,
        threshold=DEFAULT_THRESHOLD[Method.T1] if threshold is None else float(threshold),
        image=corrected.astype(np.float32, copy=False),
        levels={"muscle": muscle, "fat": fat, "otsu": cut},
    )


def fat_signal_dixon(
    fat: np.ndarray,
    water: np.ndarray,
    body: np.ndarray,
    *,
    threshold: float | None = None,
    noise_floor: float | None = None,
) -> FatSignal:
    """The Dixon fat fraction F/(F+W), guarded against the noise floor.

    Parameters
    ----------
    fat, water : ndarray, shape (slice, row, col)
        Dixon fat and water images of the same geometry.
    body : ndarray of bool
        The body mask.
    threshold : float, optional
        Fat fraction that counts as fat; default 0.5.
    noise_floor : float, optional
        F+W below which the fraction is noise and set to 0; default 5% of the
        median F+W inside the body.

    Returns
    -------
    FatSignal
    """
    fat = np.asarray(fat, dtype=np.float32)
    water = np.asarray(water, dtype=np.float32)
    total = fat + water
    if noise_floor is None:
        noise_floor = 0.05 * float(np.median(total[body])) if body.any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ff = np.where(total > noise_floor, fat / total, 0.0).astype(np.float32)
    np.clip(ff, 0.0, 1.0, out=ff)
    log.info("Dixon fat fraction, noise floor %.4g", noise_floor)
    return FatSignal(
        method=Method.DIXON,
        score=ff,
        threshold=DEFAULT_THRESHOLD[Method.DIXON] if threshold is None else float(threshold),
        image=ff,
        fat_fraction=ff,
        levels={"noise_floor": noise_floor},
    )


def _despeckle(dominant: np.ndarray) -> np.ndarray:
    """``dominant`` with in-plane components under :data:`DOMINANCE_MIN_VOXELS` flipped."""
    from scipy import ndimage

    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = True  # 8-connected within a slice, never across slices
    out = dominant.copy()
    for value in (False, True):
        labels, _n = ndimage.label(dominant == value, structure=structure)
        small = np.bincount(labels.ravel()) < DOMINANCE_MIN_VOXELS
        small[0] = False
        out[small[labels]] = not value
    return out


def fat_signal_two_point(
    in_phase: np.ndarray,
    opposed: np.ndarray,
    body: np.ndarray,
    in_phase_score: np.ndarray,
    *,
    threshold: float | None = None,
    noise_floor: float | None = None,
) -> FatSignal:
    """The fat fraction from the in-phase and opposed-phase echoes (two-point Dixon).

    On magnitude images ``IP = W + F`` and ``OP = |W - F|``, so with
    ``r = OP / IP`` (clipped to [0, 1]) the fat fraction is ``(1 + r) / 2``
    where fat dominates and ``(1 - r) / 2`` where water does: the two echoes
    alone cannot tell which. The anatomy decides: a voxel is fat-dominant where
    the in-phase image is fat-bright, i.e. where its T1 fat score (0 at muscle,
    1 at the subcutaneous fat, from :func:`fat_signal_t1` on the bias-corrected
    in-phase image) is at least :data:`FAT_DOMINANT_SCORE`. This needs a
    T1-weighted dual echo (the clinical one: TR 100-200 ms, flip angle 70-80°),
    where fat is bright and fluid dark; on a proton-density-weighted pair, fluid
    would be called fat. The ratio is free of the coil's bias field (both
    echoes share it). Not corrected: T2* decay between the echoes (the
    opposed echo is the earlier one, so ``r`` is slightly high: fat fractions a
    few percent nearer 0 or 1 than they are) and the multi-peak fat spectrum.
    Where fat and water are equal, ``OP`` is 0 and both branches give 0.5, so
    the map is continuous across the boundaries of fat. Specks of either
    dominance smaller than :data:`DOMINANCE_MIN_VOXELS` in the slice plane take
    the dominance around them (noise in the score near 0.5 must not flip a
    fat voxel to its water branch); thin septa and capsules, which are long,
    keep theirs.

    Parameters
    ----------
    in_phase, opposed : ndarray, shape (slice, row, col)
        The in-phase and opposed-phase magnitude images, same grid.
    body : ndarray of bool
        The body mask.
    in_phase_score : ndarray of float, same shape
        T1 fat score of the in-phase image (:attr:`FatSignal.score` of
        :func:`fat_signal_t1`).
    threshold : float, optional
        Fat fraction that counts as fat; default 0.5.
    noise_floor : float, optional
        In-phase signal below which the fraction is noise and set to 0; default
        5% of the median in-phase signal inside the body.

    Returns
    -------
    FatSignal
        ``method`` ``inout``; ``score``, ``image`` and ``fat_fraction`` are the
        fat fraction in [0, 1], as for :func:`fat_signal_dixon`; ``levels``
        holds the noise floor and the share of the body found fat-dominant.
    """
    ip = np.asarray(in_phase, dtype=np.float32)
    op = np.asarray(opposed, dtype=np.float32)
    if ip.shape != op.shape or ip.shape != np.shape(in_phase_score):
        raise ValueError(
            f"in-phase {ip.shape}, opposed-phase {op.shape} and score "
            f"{np.shape(in_phase_score)} differ in shape"
        )
    if noise_floor is None:
        noise_floor = 0.05 * float(np.median(ip[body])) if body.any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ip > noise_floor, op / ip, 1.0).astype(np.float32)
    np.clip(ratio, 0.0, 1.0, out=ratio)
    dominant = _despeckle(np.asarray(in_phase_score) >= FAT_DOMINANT_SCORE)
    ff = np.where(dominant, 1.0 + ratio, 1.0 - ratio).astype(np.float32)
    ff *= 0.5
    ff[ip <= noise_floor] = 0.0
    np.clip(ff, 0.0, 1.0, out=ff)
    share = float(dominant[body].mean()) if body.any() else 0.0
    log.info(
        "two-point Dixon fat fraction: noise floor %.4g, %.1f%% of the body fat-dominant",
        noise_floor,
        100 * share,
    )
    return FatSignal(
        method=Method.INOUT,
        score=ff,
        threshold=DEFAULT_THRESHOLD[Method.INOUT] if threshold is None else float(threshold),
        image=ff,
        fat_fraction=ff,
        levels={"noise_floor": noise_floor, "fat_dominant_share": share},
    )
