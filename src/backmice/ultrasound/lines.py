"""Skin and fascia lines of a B-mode frame, and signed distances to a line.

A line is an array of ``(col, row)`` points in pixel coordinates of the tissue
region (pixel centres; row 0 is the transducer face), one point per column,
columns increasing. Lines are plain arrays so a user can edit them (the napari
plugin's path layer) and hand them back to :func:`signed_distance_mm` and
:func:`backmice.ultrasound.measure_mask`.
"""

from __future__ import annotations

import logging

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage as ndi

__all__ = [
    "despeckle",
    "fascia_line",
    "line_rows",
    "signed_distance_mm",
    "skin_line",
]

log = logging.getLogger(__name__)

#: Despeckling scale: the non-local-means patch is about this wide, mm.
PATCH_MM = 0.55
#: Non-local-means search window half-width, mm.
SEARCH_MM = 0.5


def _px(mm: float, step_mm: float, *, least: int = 1) -> int:
    return max(least, round(mm / step_mm))


def despeckle(image: NDArray, *, spacing_mm: tuple[float, float] = (0.1, 0.1)) -> NDArray:
    """Speckle-reduced copy of a B-mode frame (non-local means, scikit-image).

    Parameters
    ----------
    image : ndarray of shape (row, col)
        The tissue region of one frame (grey levels, any range; crop first: the
        region only, never the burned-in annotation around it).
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm (``(1, 1)`` when uncalibrated: then the
        patch sizes assume 0.1 mm pixels, which is typical).

    Returns
    -------
    ndarray of float32, shape (row, col)
        Scaled to 0..1 by the 1st and 99.5th percentiles of the input, then
        denoised. A 600×800 frame takes about 0.3 s (``bench/accuracy_us.py``).
    """
    from skimage.restoration import denoise_nl_means

    a = np.asarray(image, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"despeckle needs one 2D frame, not shape {a.shape}")
    lo, hi = np.percentile(a, [1.0, 99.5]) if a.size else (0.0, 1.0)
    a = np.clip((a - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0)
    step = float(min(spacing_mm))
    if step >= 1.0 - 1e-9 and max(spacing_mm) <= 1.0 + 1e-9:
        step = 0.1  # pixels: assume a typical pixel size for the filter's scale
    patch = _px(PATCH_MM, step, least=3) | 1
    search = _px(SEARCH_MM, step, least=3)
    # The speckle level: the median local standard deviation over 1 mm windows (speckle
    # is correlated over several pixels, so wavelet noise estimates miss most of it).
    win = _px(1.0, step, least=3)
    mean = ndi.uniform_filter(a, win)
    local = np.sqrt(np.maximum(ndi.uniform_filter(a * a, win) - mean * mean, 0.0))
    speckle = float(np.median(local))
    # A light Gaussian first breaks up the speckle grain so patches compare tissue.
    a = ndi.gaussian_filter(a, sigma=max(0.5, 0.1 / step))
    out = denoise_nl_means(
        a, patch_size=patch, patch_distance=search, h=max(0.6 * speckle, 1e-3), fast_mode=True
    )
    return out.astype(np.float32)


def _row_means(s: NDArray, top: int, bottom: int) -> tuple[NDArray, NDArray]:
    """Mean over the ``top`` rows above and the ``bottom`` rows from each row down."""
    rows = s.shape[0]
    c = np.vstack([np.zeros((1, s.shape[1]), s.dtype), np.cumsum(s, axis=0, dtype=np.float64)])
    r = np.arange(rows)
    lo = np.clip(r - top, 0, rows)
    hi = np.clip(r + bottom, 0, rows)
    above = (c[r] - c[lo]) / np.maximum(r - lo, 1)[:, None]
    below = (c[hi] - c[r]) / np.maximum(hi - r, 1)[:, None]
    return above, below


#: Bright parts narrower than this fraction of the widest are not tissue (text, specks).
WIDE_FRACTION = 0.5


def _wide_parts(bright: NDArray) -> NDArray:
    """The bright parts that span at least half as many columns as the widest one.

    The tissue under the probe is one wide connected part; burned-in text left
    by a lossy compression, bubbles in the gel and specks are narrow.
    """
    lab, n = ndi.label(bright, structure=np.ones((3, 3)))
    if n <= 1:
        return bright
    spans = np.array([sl[1].stop - sl[1].start for sl in ndi.find_objects(lab)])
    keep = np.concatenate([[False], spans >= WIDE_FRACTION * spans.max()])
    return keep[lab]


def skin_line(despeckled: NDArray, *, spacing_mm: tuple[float, float]) -> NDArray:
    """The skin surface: where the tissue begins below the transducer face.

    Gel or air between the probe and the skin is anechoic; the skin is the first
    bright band (of the bright parts, only those at least half as wide as
    the widest: text and specks are narrow). Where the probe touches the skin
    the line is at row 0; a
    column with no tissue (beside a sector, under masked text) takes the skin
    of the nearest column that has some.

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
        Output of :func:`despeckle` (0..1).
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm.

    Returns
    -------
    ndarray of float64, shape (col, 2)
        ``(col, row)`` of the skin surface in each column (pixel centres).
    """
    s = np.asarray(despeckled, dtype=np.float32)
    rows, cols = s.shape
    dy, dx = spacing_mm
    band = s[: max(2, rows // 3)]
    level = 0.5 * float(np.percentile(band, 95))
    smooth = ndi.uniform_filter1d(s, size=_px(0.3, dy), axis=0)
    bright = _wide_parts(smooth >= level)
    seen = bright.any(axis=0)
    first = np.where(seen, bright.argmax(axis=0), 0).astype(np.float64)
    if seen.any() and not seen.all():
        # A column with no tissue at all (beside a convex probe's sector, under masked
        # text) holds the nearest column's skin rather than the transducer face.
        x = np.arange(cols)
        first = np.interp(x, x[seen], first[seen])
    # A gap in contact or a dark skin column should not make a notch: a 5 mm median.
    first = ndi.median_filter(first, size=_px(5.0, dx, least=3) | 1, mode="nearest")
    return np.column_stack([np.arange(cols, dtype=np.float64), first])


def line_rows(line: NDArray, cols: int) -> NDArray:
    """Row of a ``(col, row)`` line at every column ``0..cols-1`` (linear, held at the ends).

    Parameters
    ----------
    line : array_like of shape (n, 2)
        ``(col, row)`` points; sorted by column here.
    cols : int

    Returns
    -------
    ndarray of float64, shape (cols,)
    """
    p = np.asarray(line, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] != 2 or len(p) < 1:
        raise ValueError(f"a line is an (n, 2) array of (col, row) points, not shape {p.shape}")
    order = np.argsort(p[:, 0], kind="stable")
    return np.interp(np.arange(cols, dtype=np.float64), p[order, 0], p[order, 1])


def fascia_line(
    despeckled: NDArray,
    *,
    spacing_mm: tuple[float, float],
    skin: NDArray | None = None,
    exclude: NDArray | None = None,
    max_slope: float = 1.0,
) -> NDArray:
    """The fascia: the strongest continuous bright line deep to the subcutaneous fat.

    Each row of each column gets an edge score: the mean brightness of a
    0.6 mm band below it minus that of a 1.5 mm band above it (dark fat above,
    a bright sheet below: the fascia's superficial face). A minimal-cost path
    across the columns (dynamic programming, vectorised over the rows, at most
    ``max_slope`` rows per column with a small penalty per step) then keeps the
    line continuous, so short bright septa in the fat and a nodule's capsule
    lose to the sheet that crosses the whole image. Rows within 2 mm of the
    skin are not considered. Columns covered by ``exclude`` (a nodule and a
    margin) carry no evidence: the path is bridged across them by a quadratic
    fitted to the line on either side.

    Parameters
    ----------
    despeckled : ndarray of shape (row, col)
        Output of :func:`despeckle` (0..1).
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm.
    skin : ndarray of shape (n, 2), optional
        The skin line (:func:`skin_line`); default row 0.
    exclude : ndarray of bool, shape (row, col), optional
        Pixels that are not fascia (a seeded nodule).
    max_slope : float
        Largest slope of the line, depth mm per lateral mm.

    Returns
    -------
    ndarray of float64, shape (col, 2)
        ``(col, row)`` of the fascia's superficial face in each column, rows in
        sub-pixel pixel-centre coordinates (depth = row × row spacing).
    """
    s = np.asarray(despeckled, dtype=np.float32)
    rows, cols = s.shape
    dy, dx = spacing_mm
    above, below = _row_means(s, _px(1.5, dy, least=2), _px(0.6, dy, least=2))
    score = below - above
    skin_rows = np.zeros(cols) if skin is None else line_rows(skin, cols)
    r = np.arange(rows)[:, None]
    invalid = (r < skin_rows[None, :] + 2.0 / dy) | (r > rows - 1 - _px(0.6, dy, least=2))
    scale = float(np.percentile(score[~invalid], 99.5)) if (~invalid).any() else 1.0
    # Rises below a third of the strongest are speckle in the fat: no evidence either way.
    floor = 0.33 * scale
    cost = -np.clip((score - floor) / max(scale - floor, 1e-6), 0.0, 1.0)
    cost[invalid] = 2.0
    ex = None
    if exclude is not None and np.any(exclude):
        ex = np.asarray(exclude, dtype=bool)
        cost[ex & ~invalid] = 0.0
    k = max(1, int(np.ceil(max_slope * dx / dy)))
    step_cost = 0.05 * dy / dx  # per row of step, relative to a full edge (1.0)
    acc = cost[:, 0].astype(np.float64).copy()
    back = np.zeros((rows, cols), dtype=np.int16)
    shifts = np.arange(-k, k + 1)
    for j in range(1, cols):
        cand = np.full((len(shifts), rows), np.inf)
        for n, d in enumerate(shifts):
            # Reaching row i from row i - d of the previous column.
            if d >= 0:
                cand[n, d:] = acc[: rows - d] + step_cost * abs(d)
            else:
                cand[n, :d] = acc[-d:] + step_cost * abs(d)
        best = np.argmin(cand, axis=0)
        acc = cand[best, np.arange(rows)] + cost[:, j]
        back[:, j] = shifts[best]
    path = np.empty(cols, dtype=np.float64)
    i = int(np.argmin(acc))
    for j in range(cols - 1, -1, -1):
        path[j] = i
        i -= int(back[i, j])
    # Sub-pixel: a parabola through the score at the path row and its neighbours.
    ii = path.astype(int)
    jj = np.arange(cols)
    up, mid, dn = (score[np.clip(ii + o, 0, rows - 1), jj] for o in (-1, 0, 1))
    denom = up - 2 * mid + dn
    frac = np.where(denom < 0, 0.5 * (up - dn) / np.where(denom < 0, denom, 1), 0.0)
    path = path + np.clip(frac, -0.5, 0.5) - 0.5  # the face lies between rows i-1 and i
    # Where the path runs through an excluded nodule there was no evidence: bridge it.
    blank = np.zeros(cols, dtype=bool) if ex is None else ex[ii, jj]
    if blank.any() and not blank.all():
        path = _bridge(path, blank, dx)
    return np.column_stack([jj.astype(np.float64), path])


def _bridge(path: NDArray, blank: NDArray, dx: float) -> NDArray:
    """Replace the path over blank columns by a quadratic fitted to 15 mm either side."""
    cols = len(path)
    x = np.arange(cols, dtype=np.float64)
    out = path.copy()
    lab, n = ndi.label(blank)
    reach = 15.0 / dx
    for k in range(1, n + 1):
        span = np.flatnonzero(lab == k)
        a, b = span[0], span[-1]
        near = ~blank & (x >= a - reach) & (x <= b + reach)
        if near.sum() < 3:
            near = ~blank
        # A curve needs the line on both sides; with one side short, a straight bridge.
        side = 5.0 / dx
        deg = 2 if min((near & (x < a)).sum(), (near & (x > b)).sum()) >= side else 1
        coef = np.polyfit(x[near], path[near], deg=min(deg, int(near.sum()) - 1))
        out[span] = np.polyval(coef, x[span])
    return out


def signed_distance_mm(
    line: NDArray, shape: tuple[int, int], *, spacing_mm: tuple[float, float]
) -> NDArray:
    """Signed distance of every pixel to a line: + above it (toward the skin), − below.

    Parameters
    ----------
    line : ndarray of shape (n, 2)
        ``(col, row)`` points (interpolated to every column).
    shape : (int, int)
        ``(rows, cols)`` of the image.
    spacing_mm : (float, float)
        ``(row, col)`` pixel size, mm (``(1, 1)``: the distance is in pixels).

    Returns
    -------
    ndarray of float32, shape (rows, cols)
        Euclidean distance to the line, drawn on a grid three times finer than
        the image (error below a sixth of a pixel), signed by the side.
    """
    rows, cols = shape
    dy, dx = spacing_mm
    sub = 3
    fine_cols = np.arange(cols * sub, dtype=np.float64) / sub - (sub - 1) / (2 * sub)
    p = np.asarray(line, dtype=np.float64)
    order = np.argsort(p[:, 0], kind="stable")
    fine_rows = np.interp(fine_cols, p[order, 0], p[order, 1])
    # The line on a grid 3x finer in both directions, then an exact EDT on that grid.
    grid = np.ones((rows * sub, cols * sub), dtype=bool)
    rr = np.clip(np.rint((fine_rows + 0.5) * sub - 0.5).astype(int), 0, rows * sub - 1)
    grid[rr, np.arange(cols * sub)] = False
    dist = ndi.distance_transform_edt(grid, sampling=(dy / sub, dx / sub))
    dist = dist[sub // 2 :: sub, sub // 2 :: sub][:rows, :cols]
    row_at = line_rows(p, cols)
    sign = np.where(np.arange(rows)[:, None] < row_at[None, :], 1.0, -1.0)
    return (dist * sign).astype(np.float32)
