"""A nodule on a B-mode frame: from a seed point, or found automatically.

The seeded segmentation is an optimal closed contour around the seed (a
shortest path in polar coordinates, the classic graph search for a lesion in
ultrasound): rays leave the seed every degree; along each ray, the contour
wants the inner face of the nodule's boundary (dark fat inside, the bright
capsule outside); dynamic programming over the angles keeps the contour
smooth and closed, so a gap in the capsule or a bright streak inside the fat
does not leak or cut the outline.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from backmice.ultrasound.lines import line_rows

__all__ = ["automatic_seeds", "segment_nodule"]

log = logging.getLogger(__name__)

#: Angular samples of the contour (one per degree).
N_ANGLES = 360
#: Largest radius searched from the seed, mm.
MAX_RADIUS_MM = 40.0
#: Width of the circular median that smooths the contour, degrees.
SMOOTH_DEG = 7
#: Smallest radius of the contour, mm.
MIN_RADIUS_MM = 0.4
#: Cost of a contour point beyond an edge it has already crossed, per unit of that edge.
CROSSING = 0.8
#: Rise of the despeckled image (0..1) across the boundary that counts as a full edge.
FULL_EDGE = 0.25
#: Rises below this are speckle, not a boundary.
NOISE_EDGE = 0.08


def _polar_edges(
    s: NDArray, seed_rc: tuple[float, float], spacing_mm: tuple[float, float], radii: NDArray
) -> tuple[NDArray, NDArray, NDArray]:
    """Edge strength (dark inside, bright outside) along rays from the seed."""
    dy, dx = spacing_mm
    theta = np.arange(N_ANGLES) * (2 * math.pi / N_ANGLES)
    rr = seed_rc[0] + np.outer(np.sin(theta), radii) / dy
    cc = seed_rc[1] + np.outer(np.cos(theta), radii) / dx
    rows, cols = s.shape
    inside = (rr >= -0.5) & (rr <= rows - 0.5) & (cc >= -0.5) & (cc <= cols - 0.5)
    values = ndi.map_coordinates(s, [rr, cc], order=1, mode="nearest")
    step = float(radii[1] - radii[0])
    w = max(2, round(0.6 / step))  # inside the capsule (about 1 mm thick)
    wb = max(2, round(1.0 / step))  # the fat before it
    c = np.concatenate([np.zeros((N_ANGLES, 1)), np.cumsum(values, axis=1)], axis=1)
    n = len(radii)
    i = np.arange(n)
    lo, hi = np.clip(i - wb, 0, n), np.clip(i + w, 0, n)
    before = (c[:, i] - c[:, lo]) / np.maximum(i - lo, 1)
    after = (c[:, hi] - c[:, i]) / np.maximum(hi - i, 1)
    edge = after - before
    edge[:, :wb] = 0.0  # too near the seed or the end of the ray to compare both sides
    edge[:, n - w :] = 0.0
    return edge, inside, theta


def segment_nodule(
    despeckled: NDArray,
    seed_rc: tuple[float, float],
    *,
    spacing_mm: tuple[float, float],
    box_rc: tuple[float, float, float, float] | None = None,
    max_radius_mm: float = MAX_RADIUS_MM,
) -> tuple[NDArray, NDArray]:
    """Segment the nodule around a seed point: its fat core, inside the capsule.

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
        Output of :func:`backmice.ultrasound.despeckle` (0..1).
    seed_rc : (float, float)
        ``(row, col)`` of a point inside the nodule, pixels of the tissue region.
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm (``(1, 1)`` when uncalibrated; radii are then
        taken as if pixels were 0.1 mm).
    box_rc : (float, float, float, float), optional
        ``(row0, col0, row1, col1)``: the nodule lies within this box.
    max_radius_mm : float
        Farthest the boundary may be from the seed.

    Returns
    -------
    mask : ndarray of bool, shape (row, col)
        The nodule's pixels (centres inside the contour).
    contour : ndarray of float64, shape (360, 2)
        ``(row, col)`` of the contour, one point per degree around the seed.

    Raises
    ------
    ValueError
        The seed is outside the image.
    """
    s = np.asarray(despeckled, dtype=np.float32)
    rows, cols = s.shape
    r0, c0 = float(seed_rc[0]), float(seed_rc[1])
    if not (-0.5 <= r0 <= rows - 0.5 and -0.5 <= c0 <= cols - 0.5):
        raise ValueError(f"seed (row {r0:g}, col {c0:g}) is outside the {rows}x{cols} region")
    spacing = tuple(float(v) for v in spacing_mm)
    calibrated = not (spacing[0] == 1.0 and spacing[1] == 1.0)
    geo = spacing if calibrated else (0.1, 0.1)  # px: pretend 0.1 mm for the radii
    step = min(geo) / 1.5
    radii = np.arange(MIN_RADIUS_MM, max_radius_mm, step)
    edge, inside, theta = _polar_edges(s, (r0, c0), geo, radii)
    if box_rc is not None:
        b0, b1, b2, b3 = box_rc
        rr = r0 + np.outer(np.sin(theta), radii) / geo[0]
        cc = c0 + np.outer(np.cos(theta), radii) / geo[1]
        inside &= (rr >= min(b0, b2)) & (rr <= max(b0, b2)) & (cc >= min(b1, b3))
        inside &= cc <= max(b1, b3)
    gain = np.clip((edge - NOISE_EDGE) / (FULL_EDGE - NOISE_EDGE), 0.0, 1.0)
    # The inner face is the first strong edge out from the seed: going past an edge
    # (a capsule, to reach the fascia or a septum beyond it) costs most of what it gains.
    w = max(2, round(0.5 / step))
    crossed = np.maximum.accumulate(gain, axis=1)
    crossed = np.concatenate([np.zeros((N_ANGLES, 2 * w)), crossed[:, : -2 * w]], axis=1)
    cost = -gain + CROSSING * crossed + 0.05 * radii[None, :] / max_radius_mm
    # Beyond the image (or the box) nothing is known: the last ray sample inside is an edge.
    last = np.where(inside.any(axis=1), inside.shape[1] - 1 - np.argmax(inside[:, ::-1], 1), 0)
    cost[~inside] = 1.0
    at = np.arange(N_ANGLES), last
    cost[at] = np.minimum(cost[at], -0.5 + CROSSING * crossed[at])
    # DP over the angles, three turns; the middle turn is closed and smooth.
    n = len(radii)
    k = max(1, round(0.6 / step))  # at most 0.6 mm of radius per degree
    shifts = np.arange(-k, k + 1)
    penalty = 0.01 * np.abs(shifts) * step / 0.1
    turns = 3
    acc = cost[0].astype(np.float64).copy()
    back = np.zeros((turns * N_ANGLES, n), dtype=np.int16)
    for t in range(1, turns * N_ANGLES):
        cand = np.full((len(shifts), n), np.inf)
        for m, d in enumerate(shifts):
            if d >= 0:
                cand[m, d:] = acc[: n - d] + penalty[m]
            else:
                cand[m, :d] = acc[-d:] + penalty[m]
        best = np.argmin(cand, axis=0)
        acc = cand[best, np.arange(n)] + cost[t % N_ANGLES]
        back[t] = shifts[best]
    idx = np.empty(turns * N_ANGLES, dtype=np.int64)
    i = int(np.argmin(acc))
    for t in range(turns * N_ANGLES - 1, -1, -1):
        idx[t] = i
        i -= int(back[t, i])
    middle = idx[N_ANGLES : 2 * N_ANGLES]
    # Speckle leaves single-degree spikes and notches; a circular median removes them
    # (a spike sets the caliper width, so the short axis would come out long).
    rho = ndi.median_filter(radii[middle], size=SMOOTH_DEG, mode="wrap")
    rho = ndi.gaussian_filter1d(rho, sigma=1.0, mode="wrap")
    contour = np.column_stack(
        [r0 + np.sin(theta) * rho / geo[0], c0 + np.cos(theta) * rho / geo[1]]
    )
    from skimage.draw import polygon2mask

    mask = polygon2mask((rows, cols), contour)
    return mask, contour


def automatic_seeds(
    despeckled: NDArray,
    *,
    spacing_mm: tuple[float, float],
    skin: NDArray,
    fascia: NDArray,
    fat_level: float,
    min_diameter_mm: float = 3.0,
) -> list[tuple[float, float]]:
    """Seeds of candidate nodules: oval, iso- to hyperechoic regions enclosed above the fascia.

    Bright pixels (capsules, septa, the fascia; above the midpoint between the
    subcutaneous fat and the fascia) are closed over small gaps; the dark
    regions they enclose completely are candidates when they lie between the
    skin and the fascia, are at least ``min_diameter_mm`` across, oval (solidity
    0.85 or more) and not anechoic (median at least 0.8 of the fat's: cysts
    drop out).

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
    spacing_mm : (float, float)
    skin, fascia : ndarray of shape (n, 2)
        ``(col, row)`` lines.
    fat_level : float
        Median despeckled value of the subcutaneous fat.
    min_diameter_mm : float

    Returns
    -------
    list of (float, float)
        ``(row, col)`` seeds (the centroids of the enclosed regions), shallowest first.
    """
    from skimage.measure import regionprops
    from skimage.morphology import disk

    s = np.asarray(despeckled, dtype=np.float32)
    rows, cols = s.shape
    dy, dx = spacing_mm
    geo = (dy, dx) if not (dy == 1.0 and dx == 1.0) else (0.1, 0.1)
    fascia_rows = line_rows(fascia, cols)
    skin_rows = line_rows(skin, cols)
    fascia_level = float(
        np.median(s[np.clip(np.rint(fascia_rows + 1).astype(int), 0, rows - 1), np.arange(cols)])
    )
    bright = s > 0.5 * (fat_level + fascia_level)
    radius = max(1, round(0.3 / min(geo)))
    bright = ndi.binary_closing(bright, structure=disk(radius), border_value=0)
    holes = ndi.binary_fill_holes(bright) & ~bright
    lab, _ = ndi.label(holes)
    seeds: list[tuple[float, float]] = []
    min_area = math.pi * (min_diameter_mm / 2) ** 2 / (geo[0] * geo[1])
    for reg in regionprops(lab, intensity_image=s):
        if reg.area < min_area or reg.solidity < 0.85:
            continue
        r, c = reg.centroid
        col = min(max(round(c), 0), cols - 1)
        if not (skin_rows[col] + 1.0 / geo[0] < r < fascia_rows[col]):
            continue
        if float(np.median(reg.image_intensity[reg.image])) < 0.8 * fat_level:
            continue  # anechoic: a cyst, not fat
        seeds.append((float(r), float(c)))
    return sorted(seeds)
