"""A nodule on a B-mode frame: from a seed point, or found automatically.

The seeded segmentation looks first for the capsule as an oval
(:func:`capsule_contour`): rays leave the seed every degree; along each, every
place where it enters a bright structure is a candidate for the capsule's
inner face; an ellipse is fitted by random sample consensus to the candidates
of many rays, and the one most rays agree with is the capsule. Echogenic
striations inside a lipoma (lines parallel to the skin), septa outside it,
the skin and the fascia are straight or short: few rays agree on an ellipse
through them. Where a ray has a candidate on the ellipse the contour follows
it; where the capsule is missing (an incomplete capsule) the ellipse closes it.

Without a capsule the contour is an optimal closed path around the seed (a
shortest path in polar coordinates, the classic graph search for a lesion in
ultrasound): along each ray the contour wants the inner face of the nodule's
boundary (dark fat inside, bright outside); dynamic programming over the
angles keeps it smooth and closed.
"""

from __future__ import annotations

import logging
import math

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from backmice.ultrasound.lines import line_rows

__all__ = ["automatic_seeds", "capsule_contour", "segment_nodule"]

log = logging.getLogger(__name__)

#: Levels (from the fat to the fascia) at which capsules are looked for as enclosures.
ENCLOSURE_LEVELS = (0.5, 0.3)
#: The skin's bright band under the skin line, left out of the enclosure search, mm.
SKIN_BAND_MM = 1.5
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


#: Fewest rays (of 360) that must agree on an ellipse for it to be a capsule candidate.
CAPSULE_RAYS = 200
#: Rays agreeing on an ellipse that make it the capsule outright (fewer: only
#: when the contour without it leaks out through the capsule's gap).
CAPSULE_SURE_RAYS = 300
#: Smallest median rise from inside the ellipse to its rim (despeckled 0..1).
CAPSULE_RING = 0.08
#: The contour leaked when its area exceeds the capsule ellipse's this many times.
LEAK_AREA = 1.3
#: A ray agrees with the ellipse when it has a candidate this close to it, mm.
CAPSULE_TOLERANCE_MM = 0.5
#: Candidates kept per ray (its strongest rises).
CANDIDATES_PER_RAY = 6
#: Brightness levels a capsule is looked for at: fractions of the way from the
#: seed's surroundings to the frame's 99th percentile.
CAPSULE_LEVELS = (0.5, 0.35, 0.2)
#: The ellipse's rays agree in at least this many of its eight 45° sectors.
CAPSULE_SECTORS = 6
#: Random ellipses tried at most.
CAPSULE_TRIALS = 1500
#: An ellipse this many rays agree with ends the search early.
CAPSULE_DONE_RAYS = 350


def _ray_hits(
    s: NDArray, seed_rc: tuple[float, float], geo: tuple[float, float], radii: NDArray, levels
) -> list[NDArray]:
    """Per ray, the radii (mm) where it first enters structures brighter than each level.

    For each level the first :data:`CANDIDATES_PER_RAY` entries; pooled over
    the levels (a faint capsule side appears only at the low ones).
    """
    theta = np.arange(N_ANGLES) * (2 * math.pi / N_ANGLES)
    rr = seed_rc[0] + np.outer(np.sin(theta), radii) / geo[0]
    cc = seed_rc[1] + np.outer(np.cos(theta), radii) / geo[1]
    rows, cols = s.shape
    inside = (rr >= 0) & (rr <= rows - 1) & (cc >= 0) & (cc <= cols - 1)
    values = ndi.map_coordinates(s, [rr, cc], order=1, mode="nearest")
    out: list[list[NDArray]] = [[] for _ in range(N_ANGLES)]
    for level in levels:
        bright = (values > level) & inside
        entering = bright[:, 1:] & ~bright[:, :-1]
        for k in range(N_ANGLES):
            idx = np.flatnonzero(entering[k])[:CANDIDATES_PER_RAY] + 1
            out[k].append(radii[idx])
    return [np.unique(np.concatenate(h)) for h in out]


def _ring_contrast(
    s: NDArray, seed_rc: tuple[float, float], geo: tuple[float, float], theta: NDArray, rho: NDArray
) -> float:
    """Median over the angles of the rim (0.3 mm outside) minus the inside (0.8 mm in)."""

    def at(r: NDArray) -> NDArray:
        rr = seed_rc[0] + np.sin(theta) * r / geo[0]
        cc = seed_rc[1] + np.cos(theta) * r / geo[1]
        return ndi.map_coordinates(s, [rr, cc], order=1, mode="nearest")

    return float(np.median(at(rho + 0.3) - at(np.maximum(rho - 0.8, 0.0))))


def _fit_ellipse(xy: NDArray) -> object | None:
    """scikit-image's ellipse through points, or None when they fit none."""
    from skimage.measure import EllipseModel

    try:
        model = EllipseModel.from_estimate(xy)
    except (TypeError, ValueError, ArithmeticError, np.linalg.LinAlgError):
        return None  # degenerate points (collinear): scikit-image fails in several ways
    if not model or not np.all(np.isfinite(model.axis_lengths)) or min(model.axis_lengths) <= 0:
        return None
    return model


def _ellipse_radius(model: object, theta: NDArray) -> NDArray:
    """Distance from the origin (inside) to an ellipse along each direction; nan if outside."""
    xc, yc = model.center
    a, b = model.axis_lengths
    t = model.theta
    d = np.column_stack([np.cos(theta), np.sin(theta)])
    # Into the ellipse's frame: the ray p = r·d, origin o = -centre.
    rot = np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    dd = d @ rot.T
    o = rot @ np.array([-xc, -yc])
    qa = (dd[:, 0] / a) ** 2 + (dd[:, 1] / b) ** 2
    qb = 2 * (o[0] * dd[:, 0] / a**2 + o[1] * dd[:, 1] / b**2)
    qc = (o[0] / a) ** 2 + (o[1] / b) ** 2 - 1.0
    disc = qb**2 - 4 * qa * qc
    r = (-qb + np.sqrt(np.maximum(disc, 0.0))) / (2 * qa)
    return np.where((disc >= 0) & (qc < 0), r, np.nan)


def capsule_contour(
    despeckled: NDArray,
    seed_rc: tuple[float, float],
    *,
    spacing_mm: tuple[float, float],
    max_radius_mm: float = MAX_RADIUS_MM,
    skin: NDArray | None = None,
    ignore: NDArray | None = None,
    rng_seed: int = 0,
) -> tuple[NDArray, int] | None:
    """The capsule's inner face around a seed as an oval, or None when there is no capsule.

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
    seed_rc : (float, float)
    spacing_mm : (float, float)
        ``(row, col)``, mm (pixels: pass 0.1 mm).
    max_radius_mm : float
    skin : ndarray of shape (n, 2), optional
        ``(col, row)`` skin line: no ellipse reaches above it.
    ignore : ndarray of bool, shape (row, col), optional
        Pixels that are no evidence (masked scanner graphics).
    rng_seed : int
        Seed of the random sample consensus (fixed: the result is reproducible).

    Returns
    -------
    (ndarray of float64, shape (360,), int) or None
        The contour's radius (mm) every degree from the seed, and how many rays
        agree with its ellipse (angle 0 along the
        columns, 90° down); None when fewer than :data:`CAPSULE_RAYS` rays agree
        on an ellipse around the seed.
    """
    s = np.asarray(despeckled, dtype=np.float32)
    geo = (float(spacing_mm[0]), float(spacing_mm[1]))
    step = min(geo) / 1.5
    radii = np.arange(MIN_RADIUS_MM, max_radius_mm, step)
    theta = np.arange(N_ANGLES) * (2 * math.pi / N_ANGLES)
    r0, c0 = seed_rc
    rng = np.random.default_rng(rng_seed)
    # The ceiling: an ellipse may not reach above the skin (it would be the skin's).
    ceiling = None
    if skin is not None:
        ceiling = line_rows(skin, s.shape[1]) + 0.5 / geo[0]
    near = max(2, round(1.5 / min(geo)))
    box = s[
        max(0, round(r0) - near) : round(r0) + near + 1,
        max(0, round(c0) - near) : round(c0) + near + 1,
    ]
    inner = float(np.median(box))
    top = float(np.percentile(s, 99.0))
    if top - inner < 0.1:
        return None
    hits = _ray_hits(s, (r0, c0), geo, radii, [inner + f * (top - inner) for f in CAPSULE_LEVELS])
    if ignore is not None and np.any(ignore):
        # Masked scanner graphics (filled in) are no evidence of a capsule.
        rows, cols = s.shape
        for k, h in enumerate(hits):
            rr = np.clip(np.rint(r0 + math.sin(theta[k]) * h / geo[0]).astype(int), 0, rows - 1)
            cc = np.clip(np.rint(c0 + math.cos(theta[k]) * h / geo[1]).astype(int), 0, cols - 1)
            hits[k] = h[~ignore[rr, cc]]
    fits: list[tuple[int, float, object, NDArray]] = []  # (rays, area, model, radii)
    have = np.flatnonzero([len(h) > 0 for h in hits])
    if len(have) < CAPSULE_RAYS:
        return None
    flat_r = np.concatenate([hits[k] for k in range(N_ANGLES)])
    flat_k = np.concatenate([np.full(len(h), k) for k, h in enumerate(hits)])
    tolerance = CAPSULE_TOLERANCE_MM + min(geo)
    for _ in range(CAPSULE_TRIALS):
        # Five rays spread around the seed, one candidate each.
        sectors = np.sort(rng.choice(N_ANGLES, 5, replace=False))
        pick = []
        for k in sectors:
            j = have[np.argmin(np.abs(have - k))]
            pick.append((j, hits[j][rng.integers(len(hits[j]))]))
        xy = np.array([[r * math.cos(theta[j]), r * math.sin(theta[j])] for j, r in pick])
        model = _fit_ellipse(xy)
        if model is None:
            continue
        rho = _ellipse_radius(model, theta)
        if np.isnan(rho).any() or rho.max() > max_radius_mm or rho.min() < MIN_RADIUS_MM:
            continue
        if ceiling is not None:
            er = r0 + np.sin(theta) * rho / geo[0]
            ec = np.clip(np.rint(c0 + np.cos(theta) * rho / geo[1]), 0, len(ceiling) - 1)
            if np.any(er < ceiling[ec.astype(int)]):
                continue
        agree = np.abs(flat_r - rho[flat_k]) <= tolerance
        rays = np.unique(flat_k[agree])
        # All round the seed: a capsule may miss an arc, not most of a side.
        per_sector = np.bincount(rays // (N_ANGLES // 8), minlength=8)
        if len(rays) < CAPSULE_RAYS or (per_sector >= 0.25 * N_ANGLES / 8).sum() < CAPSULE_SECTORS:
            continue
        if _ring_contrast(s, (r0, c0), geo, theta, rho) < CAPSULE_RING:
            continue  # an ellipse through speckle: no bright rim around a darker inside
        a, b = model.axis_lengths
        fits.append((len(rays), float(a * b), model, rho))
        if len(rays) >= CAPSULE_DONE_RAYS:
            break
    if not fits:
        return None
    rays, _, model, rho = max(fits, key=lambda f: f[0])
    # Refit on every agreeing candidate, then follow each ray's own candidate.
    for _ in range(2):
        agree = np.abs(flat_r - rho[flat_k]) <= tolerance
        xy = np.column_stack(
            [
                flat_r[agree] * np.cos(theta[flat_k[agree]]),
                flat_r[agree] * np.sin(theta[flat_k[agree]]),
            ]
        )
        refit = _fit_ellipse(xy)
        if refit is None:
            break
        new = _ellipse_radius(refit, theta)
        if np.isnan(new).any():
            break
        rho = new
    out = rho.copy()
    agree = np.abs(flat_r - rho[flat_k]) <= tolerance
    for k, r in zip(flat_k[agree], flat_r[agree], strict=True):
        if abs(r - rho[k]) < abs(out[k] - rho[k]) or out[k] == rho[k]:
            out[k] = r
    log.debug("capsule: %d of %d rays on the ellipse", rays, N_ANGLES)
    return out, rays


def segment_nodule(
    despeckled: NDArray,
    seed_rc: tuple[float, float],
    *,
    spacing_mm: tuple[float, float],
    box_rc: tuple[float, float, float, float] | None = None,
    max_radius_mm: float = MAX_RADIUS_MM,
    skin: NDArray | None = None,
    ignore: NDArray | None = None,
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
    skin : ndarray of shape (n, 2), optional
        ``(col, row)`` skin line: the capsule lies below it.
    ignore : ndarray of bool, shape (row, col), optional
        Pixels that are no evidence of a capsule (masked scanner graphics).

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
    from skimage.draw import polygon2mask

    theta = np.arange(N_ANGLES) * (2 * math.pi / N_ANGLES)
    capsule = None
    if box_rc is None:
        found = capsule_contour(
            s, (r0, c0), spacing_mm=geo, max_radius_mm=max_radius_mm, skin=skin, ignore=ignore
        )
        if found is not None:
            rho, rays = found
            rho = ndi.median_filter(rho, size=SMOOTH_DEG, mode="wrap")
            rho = ndi.gaussian_filter1d(rho, sigma=1.0, mode="wrap")
            contour = np.column_stack(
                [r0 + np.sin(theta) * rho / geo[0], c0 + np.cos(theta) * rho / geo[1]]
            )
            capsule = (polygon2mask((rows, cols), contour), contour)
            if rays >= CAPSULE_SURE_RAYS:
                return capsule
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
    mask = polygon2mask((rows, cols), contour)
    if capsule is not None and mask.sum() > LEAK_AREA * capsule[0].sum():
        return capsule  # the path went out through the capsule's gap: the oval closes it
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
    subcutaneous fat and the fascia) are closed over small gaps. An oval
    enclosure (a capsule with all it holds, striations included: solidity 0.85
    or more, narrower than 80 % of the frame) is a candidate at its centre;
    so are the dark regions enclosed completely, when they lie between the
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
        ``(row, col)`` seeds (the centres of the enclosures, then of the enclosed
        regions), shallowest first.
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
    radius = max(1, round(0.3 / min(geo)))
    seeds: list[tuple[float, float]] = []
    min_area = math.pi * (min_diameter_mm / 2) ** 2 / (geo[0] * geo[1])
    # A capsule and all it encloses (striations split what it encloses into pieces):
    # an oval enclosure is a candidate at its centre. A capsule is often fainter
    # than the fascia: it is also looked for at a lower level.
    # The skin's own bright band would join a shallow capsule to the frame's width.
    below_skin = np.arange(rows)[:, None] > skin_rows[None, :] + SKIN_BAND_MM / geo[0]
    for level in ENCLOSURE_LEVELS:
        ring = s > fat_level + level * (fascia_level - fat_level)
        ring = ndi.binary_closing(ring & below_skin, structure=disk(radius), border_value=0)
        filled = ndi.binary_fill_holes(ring)
        enclosures, _ = ndi.label(filled)
        for reg in regionprops(enclosures):
            inside = (filled & ~ring)[reg.slice] & reg.image
            if inside.sum() < min_area or reg.solidity < 0.85:
                continue
            if reg.slice[1].stop - reg.slice[1].start > 0.8 * cols:
                continue  # the skin or the fascia with what they enclose, not a nodule
            r, c = reg.centroid
            col = min(max(round(c), 0), cols - 1)
            if not (skin_rows[col] + 1.0 / geo[0] < r < fascia_rows[col]):
                continue
            if float(np.median(s[reg.slice][inside])) < 0.8 * fat_level:
                continue  # anechoic: a cyst, not fat
            seeds.append((float(r), float(c)))
    bright = s > 0.5 * (fat_level + fascia_level)
    bright = ndi.binary_closing(bright, structure=disk(radius), border_value=0)
    holes = ndi.binary_fill_holes(bright) & ~bright
    lab, _ = ndi.label(holes)
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
