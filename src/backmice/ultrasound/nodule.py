"""A nodule on a B-mode frame: from a seed point, or found automatically.

The seeded segmentation looks first for the capsule as an oval
(:func:`capsule_ellipse`). A lipoma is oval with its long axis along the skin,
and its capsule is a thin bright rim: from the dark fat inside, the image rises
across the rim's inner face all round, except where the capsule is missing.
The capsule is the ellipse holding the seed along which that rise is strongest
on average (each sample's rise counted from speckle level up to a full edge,
so bright striations count no more than a faint capsule and a gap counts
nothing). Echogenic striations inside a lipoma (lines parallel to the skin),
septa, the skin and the fascia are straight or short: an ellipse along them
has no rise where it turns. An ellipse inside the capsule, between
striations, can still score well; one around it that scores nearly as well
and rises all round is the capsule, which holds the striations. The ellipse
is found by a coarse search (sizes, elongations, centre offsets, tilts about
the skin's direction) refined by Nelder-Mead, first on a wide reading of the
rim (capture range) and then on the face itself.

Without a capsule the contour is an optimal closed path around the seed (a
shortest path in polar coordinates, the classic graph search for a lesion in
ultrasound): along each ray the contour wants the inner face of the nodule's
boundary (dark fat inside, bright outside); dynamic programming over the
angles keeps it smooth and closed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

from backmice.ultrasound.lines import line_rows

__all__ = ["ANECHOIC", "automatic_seeds", "capsule_ellipse", "ellipse_radius", "segment_nodule"]

log = logging.getLogger(__name__)

#: A region darker than this share of the fat's median is anechoic (a cyst), not fat.
ANECHOIC = 0.8
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


#: Parametric samples around a candidate ellipse.
ELLIPSE_SAMPLES = 192
#: The rise across the capsule's inner face is read this far either side of it, mm.
FACE_MM = 0.25
#: Outward offsets where the wide score looks for the capsule's rim, mm.
RIM_MM = (0.1, 0.35, 0.6, 0.85)
#: Inward offsets where the wide score reads the fat inside, mm.
FAT_MM = (0.4, 0.8)
#: A capsule: at least this share of the ellipse rises by :data:`NOISE_EDGE` or more.
CAPSULE_COVERAGE = 0.6
#: ... and this share makes it the capsule outright (less: only when the contour
#: without it leaks out through the capsule's gap).
CAPSULE_SURE = 0.75
#: Smallest median rise from inside the ellipse to its rim (despeckled 0..1).
CAPSULE_RING = 0.08
#: The contour leaked when its area exceeds the capsule ellipse's this many times.
LEAK_AREA = 1.3
#: Smallest semi-axis of a capsule ellipse, mm.
MIN_SEMI_MM = 1.5
#: Tilts of the coarse search, radians (lipomas lie about parallel to the skin).
TILTS = (-0.12, 0.0, 0.12)
#: Ellipses refined from the best of the coarse search.
CAPSULE_STARTS = 4
#: An ellipse around the best one scoring this share of it is the capsule instead.
NESTED = 0.6
#: Lowest share of its own semi-axis the seed may lie from the ellipse's centre
#: (normalised radius): the seed is inside the nodule, not on its capsule.
SEED_INSIDE = 0.85


@dataclass(frozen=True)
class _Frame:
    """What the ellipse score reads: the image, the seed, the pixel size and the ceiling."""

    s: NDArray
    seed_rc: tuple[float, float]
    geo: tuple[float, float]
    ceiling: NDArray | None
    t: NDArray
    ignore: NDArray | None = None

    def sample(self, p: NDArray, offset_mm: float) -> tuple[NDArray, NDArray]:
        """Image values around ellipses ``p`` (n, 5) offset outward; and where they are inside.

        ``p`` holds ``(x, y, a, b, theta)``: the centre in mm from the seed
        (x lateral, y down), the semi-axes in mm, the tilt in radians.
        """
        x, y, a, b, th = (p[:, k : k + 1] for k in range(5))
        ct, st = np.cos(self.t)[None, :], np.sin(self.t)[None, :]
        u, v = (a + offset_mm) * ct, np.maximum(b + offset_mm, 0.05) * st
        xx = x + u * np.cos(th) - v * np.sin(th)
        yy = y + u * np.sin(th) + v * np.cos(th)
        rr = self.seed_rc[0] + yy / self.geo[0]
        cc = self.seed_rc[1] + xx / self.geo[1]
        rows, cols = self.s.shape
        inside = (rr >= 0) & (rr <= rows - 1) & (cc >= 0) & (cc <= cols - 1)
        if self.ignore is not None:  # masked scanner graphics are no evidence
            ri = np.clip(np.rint(rr), 0, rows - 1).astype(int)
            ci = np.clip(np.rint(cc), 0, cols - 1).astype(int)
            inside &= ~self.ignore[ri, ci]
        values = ndi.map_coordinates(self.s, [rr.ravel(), cc.ravel()], order=1, mode="nearest")
        return values.reshape(rr.shape), inside

    def rise(self, p: NDArray, *, wide: bool = False) -> NDArray:
        """Rise across each ellipse's face (outside minus inside), (n, samples); 0 off the image.

        Narrow: read :data:`FACE_MM` either side (locates the face). Wide: the
        brightest of the rim within 0.85 mm outside minus the fat 0.4-0.8 mm
        inside (finds a capsule from an ellipse near it).
        """
        if not wide:
            out, inside_o = self.sample(p, FACE_MM)
            inn, inside_i = self.sample(p, -FACE_MM)
            return np.where(inside_o & inside_i, out - inn, 0.0)
        outs = [self.sample(p, o) for o in RIM_MM]
        inns = [self.sample(p, -o) for o in FAT_MM]
        out = np.max([v for v, _ in outs], axis=0)
        inn = np.mean([v for v, _ in inns], axis=0)
        ok = np.all([k for _, k in outs + inns], axis=0)
        return np.where(ok, out - inn, 0.0)

    def valid(self, p: NDArray) -> NDArray:
        """Ellipses that hold the seed well inside and stay below the skin."""
        x, y, a, b, th = (p[:, k] for k in range(5))
        u = -x * np.cos(th) - y * np.sin(th)  # the seed (origin) in the ellipse's frame
        v = x * np.sin(th) - y * np.cos(th)
        ok = (np.hypot(u / a, v / b) < SEED_INSIDE) & (np.minimum(a, b) >= MIN_SEMI_MM)
        if self.ceiling is not None:
            _, below = self._top(p)
            ok &= below
        return ok

    def _top(self, p: NDArray) -> tuple[NDArray, NDArray]:
        """Rows of each ellipse's samples, and whether all lie below the ceiling."""
        ceiling = self.ceiling
        if ceiling is None:
            raise ValueError("no ceiling (skin line) to compare with")
        x, y, a, b, th = (p[:, k : k + 1] for k in range(5))
        ct, st = np.cos(self.t)[None, :], np.sin(self.t)[None, :]
        xx = x + a * ct * np.cos(th) - b * st * np.sin(th)
        yy = y + a * ct * np.sin(th) + b * st * np.cos(th)
        rr = self.seed_rc[0] + yy / self.geo[0]
        cc = np.clip(np.rint(self.seed_rc[1] + xx / self.geo[1]), 0, len(ceiling) - 1)
        return rr, np.all(rr >= ceiling[cc.astype(int)], axis=1)

    def score(self, p: NDArray, *, wide: bool = False) -> tuple[NDArray, NDArray]:
        """Mean evidence of a capsule's face round each ellipse (0..1), and its coverage.

        Each sample's rise counts from :data:`NOISE_EDGE` (speckle) up to
        :data:`FULL_EDGE` (a full edge): bright striations count no more than
        a faint capsule, and a missing arc counts nothing. Coverage: the share
        of samples rising by :data:`NOISE_EDGE` or more.
        """
        rise = self.rise(p, wide=wide)
        gain = np.clip((rise - NOISE_EDGE) / (FULL_EDGE - NOISE_EDGE), 0.0, 1.0)
        coverage = (rise >= NOISE_EDGE).mean(axis=1)
        return np.where(self.valid(p), gain.mean(axis=1), -np.inf), coverage


def _params(q: NDArray) -> NDArray:
    """``(x, y, a, b, theta)`` from the optimiser's ``(x, y, log a, log b, theta)``."""
    return np.array([q[0], q[1], math.exp(q[2]), math.exp(q[3]), q[4]])


def _encloses(outer: NDArray, inner: NDArray, *, margin: float) -> bool:
    """Every point of ellipse ``inner`` lies ``margin`` mm or more inside ellipse ``outer``."""
    s = np.linspace(0, 2 * math.pi, 64, endpoint=False)
    x, y, a, b, th = inner
    px = x + a * np.cos(s) * math.cos(th) - b * np.sin(s) * math.sin(th)
    py = y + a * np.cos(s) * math.sin(th) + b * np.sin(s) * math.cos(th)
    X, Y, A, B, TH = outer
    u = (px - X) * math.cos(TH) + (py - Y) * math.sin(TH)
    v = -(px - X) * math.sin(TH) + (py - Y) * math.cos(TH)
    return bool(np.all(np.hypot(u / max(A - margin, 1e-3), v / max(B - margin, 1e-3)) <= 1.0))


def _coarse_ellipses(max_semi_mm: float) -> NDArray:
    """Axis-parallel ellipses around the seed: sizes, elongations and centre offsets."""
    semis = np.geomspace(1.5, max_semi_mm, 22)
    ratios = (0.2, 0.25, 0.3, 0.36, 0.43, 0.5, 0.6, 0.7, 0.85, 1.0)
    offsets = (-0.4, -0.2, 0.0, 0.2, 0.4)
    lateral = (-0.3, 0.0, 0.3)
    out = [
        (fx * a, fy * a * q, a, a * q, th)
        for a in semis
        for q in ratios
        if a * q >= MIN_SEMI_MM
        for fy in offsets
        for fx in lateral
        for th in TILTS
    ]
    return np.array(out, dtype=np.float64)


def _starts(p: NDArray, score: NDArray, n: int) -> list[int]:
    """Where to refine from: the best of each size band, then the best overall (distinct)."""
    ok = np.isfinite(score)
    bands = np.digitize(np.log(p[:, 2]), np.linspace(np.log(1.5), np.log(p[:, 2].max()), 8))
    picks = []
    for band in np.unique(bands[ok]):
        idx = np.flatnonzero(ok & (bands == band))
        picks.append(int(idx[np.argmax(score[idx])]))
    order = np.argsort(-score)
    order = order[np.isfinite(score[order])]
    return list(dict.fromkeys(picks + _distinct(p, order, n)))


def _distinct(p: NDArray, order: NDArray, n: int) -> list[int]:
    """The first ``n`` of ``order`` that differ from those taken (centre, size)."""
    taken: list[int] = []
    for i in order:
        if not np.isfinite(i):
            continue
        q = p[int(i)]
        if all(
            np.hypot(*(q[:2] - p[j][:2])) > 0.25 * min(q[3], p[j][3])
            or abs(math.log(q[2] / p[j][2])) > 0.15
            or abs(math.log(q[3] / p[j][3])) > 0.15
            for j in taken
        ):
            taken.append(int(i))
        if len(taken) == n:
            break
    return taken


def capsule_ellipse(
    despeckled: NDArray,
    seed_rc: tuple[float, float],
    *,
    spacing_mm: tuple[float, float],
    max_radius_mm: float = MAX_RADIUS_MM,
    skin: NDArray | None = None,
    ignore: NDArray | None = None,
) -> tuple[NDArray, float, float] | None:
    """The capsule around a seed as the ellipse with the strongest inner face.

    A lipoma is oval and its capsule is a thin bright rim: the rim's inner face
    rises from the dark fat inside to the bright capsule outside all round,
    except where the capsule is missing. The capsule is the ellipse holding the
    seed, below the skin, along which that rise (read :data:`FACE_MM` either
    side) is largest on average over its best :data:`1 - CAPSULE_MISSING`.
    Striations, the skin and the fascia are straight: an ellipse along them
    has no rise where it turns, so it scores less. A coarse search over
    axis-parallel ellipses (sizes, elongations, centre offsets) is refined by
    Nelder-Mead over the centre, semi-axes and tilt from its
    :data:`CAPSULE_STARTS` best distinct ellipses.

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
    seed_rc : (float, float)
    spacing_mm : (float, float)
        ``(row, col)``, mm (pixels: pass 0.1 mm).
    max_radius_mm : float
        Largest semi-axis, mm.
    skin : ndarray of shape (n, 2), optional
        ``(col, row)`` skin line: no ellipse reaches above it.
    ignore : ndarray of bool, shape (row, col), optional
        Pixels that are no evidence (masked scanner graphics).

    Returns
    -------
    (ndarray of float64, shape (5,), float, float) or None
        ``(x, y, a, b, theta)`` (centre in mm from the seed, x lateral, y
        down; semi-axes, mm; tilt, radians), the share of the ellipse whose
        face rises by :data:`NOISE_EDGE` or more, and the ring contrast
        (median rim minus inside); None when no ellipse fits.
    """
    from scipy.optimize import minimize

    s = np.asarray(despeckled, dtype=np.float32)
    geo = (float(spacing_mm[0]), float(spacing_mm[1]))
    ceiling = None
    if skin is not None:
        ceiling = line_rows(skin, s.shape[1]) + 0.5 / geo[0]
    frame = _Frame(
        s,
        (float(seed_rc[0]), float(seed_rc[1])),
        geo,
        ceiling,
        np.linspace(0, 2 * math.pi, ELLIPSE_SAMPLES, endpoint=False),
        None if ignore is None or not np.any(ignore) else np.asarray(ignore, dtype=bool),
    )
    coarse = _coarse_ellipses(max(2.0, 0.65 * max_radius_mm))
    few = replace(frame, t=frame.t[::3])
    score, _ = few.score(coarse, wide=True)
    if not np.isfinite(score).any():
        return None

    def cost(q: NDArray, wide: bool) -> float:
        p = np.array([[q[0], q[1], math.exp(q[2]), math.exp(q[3]), q[4]]])
        if p[0, 2] > max_radius_mm or abs(q[4]) > math.radians(30):
            return 1.0
        return -float(frame.score(p, wide=wide)[0][0]) if frame.valid(p)[0] else 1.0

    def refine(q0: NDArray, step: NDArray, wide: bool) -> tuple[NDArray, float]:
        res = minimize(
            cost,
            q0,
            args=(wide,),
            method="Nelder-Mead",
            options={
                "initial_simplex": np.vstack([q0, q0 + np.diag(step)]),
                "xatol": 1e-3,
                "fatol": 1e-4,
                "maxiter": 300,
            },
        )
        return res.x, -float(res.fun)

    found: list[tuple[float, NDArray]] = []
    for i in _starts(coarse, score, CAPSULE_STARTS):
        x, y, a, b, th = coarse[i]
        q0 = np.array([x, y, math.log(a), math.log(b), th])
        q, sc = refine(q0, np.array([0.2 * b, 0.2 * b, 0.1, 0.1, 0.05]), True)
        if np.isfinite(sc):
            found.append((sc, q))
    if not found:
        return None
    found.sort(key=lambda f: -f[0])
    step_mm = 2 * FACE_MM

    def face(q: NDArray) -> tuple[NDArray, float, float]:
        """The narrow rise from an ellipse near the capsule: the face itself."""
        b = math.exp(q[3])
        q, sc = refine(q, np.array([step_mm, step_mm, step_mm / b, step_mm / b, 0.02]), False)
        return q, sc, float(frame.score(_params(q)[None])[1][0])

    best_p, best_s, _ = face(found[0][1])
    # The capsule holds the striations: an ellipse around the best one that is
    # nearly as good is the capsule, the best one a space between striations.
    for sc, q in found[1:]:
        if sc < NESTED * found[0][0] or not _encloses(_params(q), _params(best_p), margin=0.5):
            continue
        q, sc, share = face(q)
        if sc >= NESTED * best_s and share >= CAPSULE_COVERAGE:
            best_p, best_s = q, sc
    p = _params(best_p)
    coverage = frame.score(p[None])[1]
    rim, _ = frame.sample(p[None], 0.3)
    inner, _ = frame.sample(p[None], -0.8)
    ring = float(np.median(rim - inner))
    log.debug(
        "capsule ellipse %s: score %.3f, coverage %.2f, ring %.3f", p, best_s, coverage[0], ring
    )
    return p, float(coverage[0]), ring


def ellipse_radius(p: NDArray, theta: NDArray) -> NDArray:
    """Distance (mm) from the seed (the origin) to ellipse ``p`` along each direction.

    ``theta`` is measured from the columns toward depth; the seed lies inside.
    """
    x, y, a, b, th = (float(v) for v in p)
    d = np.column_stack([np.cos(theta), np.sin(theta)])
    rot = np.array([[math.cos(th), math.sin(th)], [-math.sin(th), math.cos(th)]])
    dd = d @ rot.T
    o = rot @ np.array([-x, -y])
    qa = (dd[:, 0] / a) ** 2 + (dd[:, 1] / b) ** 2
    qb = 2 * (o[0] * dd[:, 0] / a**2 + o[1] * dd[:, 1] / b**2)
    qc = (o[0] / a) ** 2 + (o[1] / b) ** 2 - 1.0
    disc = np.maximum(qb**2 - 4 * qa * qc, 0.0)
    return (-qb + np.sqrt(disc)) / (2 * qa)


def segment_nodule(
    despeckled: NDArray,
    seed_rc: tuple[float, float],
    *,
    spacing_mm: tuple[float, float],
    box_rc: tuple[float, float, float, float] | None = None,
    max_radius_mm: float = MAX_RADIUS_MM,
    skin: NDArray | None = None,
    ignore: NDArray | None = None,
    capsule_only: bool = False,
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
    capsule_only : bool
        Only a capsule the ellipse search is sure of (rising round
        :data:`CAPSULE_SURE` of it) is a nodule; otherwise the mask is empty.

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
    spacing = (float(spacing_mm[0]), float(spacing_mm[1]))
    calibrated = not (spacing[0] == 1.0 and spacing[1] == 1.0)
    geo = spacing if calibrated else (0.1, 0.1)  # px: pretend 0.1 mm for the radii
    from skimage.draw import polygon2mask

    theta = np.arange(N_ANGLES) * (2 * math.pi / N_ANGLES)
    capsule = None
    if box_rc is None:
        found = capsule_ellipse(
            s, (r0, c0), spacing_mm=geo, max_radius_mm=max_radius_mm, skin=skin, ignore=ignore
        )
        if found is not None and found[1] < CAPSULE_SURE:
            # The search's grid is laid around the seed; a reader clicks anywhere
            # inside. Searched again from the centre of what was found, the
            # better of the two is kept (it must still hold the seed).
            x, y = float(found[0][0]), float(found[0][1])
            if math.hypot(x, y) > 0.5:
                again = capsule_ellipse(
                    s,
                    (r0 + y / geo[0], c0 + x / geo[1]),
                    spacing_mm=geo,
                    max_radius_mm=max_radius_mm,
                    skin=skin,
                    ignore=ignore,
                )
                if again is not None and again[1] > found[1]:
                    q = again[0].copy()
                    q[:2] += (x, y)
                    a, b, th = q[2], q[3], q[4]
                    u = -q[0] * math.cos(th) - q[1] * math.sin(th)
                    v = q[0] * math.sin(th) - q[1] * math.cos(th)
                    if math.hypot(u / a, v / b) < 1.0:
                        found = (q, again[1], again[2])
        if found is not None and found[1] >= CAPSULE_COVERAGE and found[2] >= CAPSULE_RING:
            p, coverage, _ = found
            rho = ellipse_radius(p, theta)
            contour = np.column_stack(
                [r0 + np.sin(theta) * rho / geo[0], c0 + np.cos(theta) * rho / geo[1]]
            )
            capsule = (polygon2mask((rows, cols), contour), contour)
            if coverage >= CAPSULE_SURE:
                return capsule
    if capsule_only:
        return np.zeros((rows, cols), dtype=bool), np.full((N_ANGLES, 2), np.nan)
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


#: Gaps of an incomplete capsule closed when looking for enclosures, mm.
GAP_CLOSING_MM = (1.0, 2.5)
#: Grid the wide closings run on, mm.
COARSE_GRID_MM = 0.2


def _gapped_enclosures(
    s: NDArray,
    geo: tuple[float, float],
    skin_rows: NDArray,
    fascia_rows: NDArray,
    fat_level: float,
    fascia_level: float,
) -> list[tuple[float, float]]:
    """Centres of oval enclosures of bright structures closed over wide gaps, (row, col)."""
    from skimage.measure import block_reduce, regionprops
    from skimage.morphology import disk

    rows, cols = s.shape
    k = max(1, round(COARSE_GRID_MM / min(geo)))
    # Between the skin's band and the fascia: through them a capsule would join
    # the bright skin or the fascia and muscle across the frame.
    r = np.arange(rows)[:, None]
    band = (r > skin_rows[None, :] + SKIN_BAND_MM / geo[0]) & (
        r < fascia_rows[None, :] - SKIN_BAND_MM / geo[0]
    )
    seeds: list[tuple[float, float]] = []
    for level in ENCLOSURE_LEVELS:
        ring = (s > fat_level + level * (fascia_level - fat_level)) & band
        small = block_reduce(ring, (k, k), np.max)
        for gap in GAP_CLOSING_MM:
            radius = max(1, round(gap / 2 / (k * min(geo))))
            closed = ndi.binary_closing(small, structure=disk(radius), border_value=0)
            filled = ndi.binary_fill_holes(closed)
            lab, _ = ndi.label(filled)
            holes = filled & ~closed
            for reg in regionprops(lab):
                # A capsule with all it holds (striations fused in): something enclosed.
                if not holes[reg.slice][reg.image].any() or reg.solidity < 0.8:
                    continue
                if reg.area * (k * k * geo[0] * geo[1]) < math.pi * 1.5**2:
                    continue
                rc = float(reg.centroid[0] * k + (k - 1) / 2)
                cc = float(reg.centroid[1] * k + (k - 1) / 2)
                col = min(max(round(cc), 0), cols - 1)
                narrow = reg.bbox[3] - reg.bbox[1] < 0.8 * cols / k
                if skin_rows[col] + 1.0 / geo[0] < rc and narrow:
                    seeds.append((rc, cc))
    kept: list[tuple[float, float]] = []
    for seed in sorted(seeds):  # one seed per place (3 mm apart)
        if all(math.hypot((seed[0] - a) * geo[0], (seed[1] - b) * geo[1]) > 3.0 for a, b in kept):
            kept.append(seed)
    return kept


def automatic_seeds(
    despeckled: NDArray,
    *,
    spacing_mm: tuple[float, float],
    skin: NDArray,
    fascia: NDArray,
    fat_level: float,
    min_diameter_mm: float = 3.0,
    wide_gaps: bool = False,
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
    wide_gaps : bool
        Instead, the centres of enclosures closed over gaps of up to
        :data:`GAP_CLOSING_MM` (an incomplete capsule), on a coarser grid: many
        are no capsule, so :func:`segment_nodule` is to confirm each
        (``capsule_only``).

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
    if wide_gaps:
        return _gapped_enclosures(s, geo, skin_rows, fascia_rows, fat_level, fascia_level)
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
            if float(np.median(s[reg.slice][inside])) < ANECHOIC * fat_level:
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
        if float(np.median(reg.image_intensity[reg.image])) < ANECHOIC * fat_level:
            continue  # anechoic: a cyst, not fat
        seeds.append((float(r), float(c)))
    return sorted(seeds)
