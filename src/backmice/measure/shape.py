"""Size and shape of one labelled nodule, in millimetres and LPS patient coordinates.

Every function takes a boolean mask (or a label image and ``label=``) indexed
``(slice, row, col)`` and the volume's 4×4 ``affine`` from index to LPS mm
(:class:`backmice.Volume`). Columns 0, 1 and 2 of the affine are the slice, row
and column steps: they may be anisotropic and oblique, and every length is
measured in LPS mm through them. Nothing loops over voxels in Python.

Digitisation
------------
A mask says only which voxel *centres* lie inside the object. Distances between
voxel centres underestimate a diameter (the true boundary lies somewhere between
the last centre inside and the first outside), while distances between voxel
*corners* overestimate it. How much the centres fall short depends on the shape
at the two ends, measured along the diameter's direction ``u``:

- a flat end aligned with the grid (a box) is short by half a voxel extent on
  average, i.e. by ``w(u) = Σ_i |u·a_i|`` over both ends, where ``a_i`` are the
  affine's three columns (``w`` is the extent of one voxel along ``u``);
- a round end is short by almost nothing: a sphere's largest centre-to-centre
  distance is on average within 0.05·w of its diameter, because among the many directions
  one pair of centres almost always lies close to the surface at both ends;
- a pointed end (the tip of an elongated ellipsoid) is short by about
  ``0.3–0.9·w``.

So adding a fixed fraction of ``w`` cannot be unbiased for both spheres and
elongated ellipsoids (a full voxel extent, the "corner" estimate along ``u``,
overestimates spheres by 0.95·w; half of it by 0.45·w). The default
``correction="adaptive"`` adds ``k·w`` where ``k`` grows with how pointed the
object is at its ends relative to a voxel: the ends' Gaussian curvature ``K`` is
taken from the ellipsoid with the object's second moments, and

    k = min(c·m**p, 1),   m = sqrt(V·sqrt(K)) / w          (3D, V = voxel volume)
    k = min(c·m**p, 1),   m = (A²·κ)**(1/3) / w             (2D, A = pixel area)

(``m`` is the depth, in voxel extents, of the cap at the tip that holds about
one voxel's volume: how far the last centre is expected to sit below the
surface; ``k ≤ 1`` keeps the result at most the corner-to-corner extent along
``u``). ``c`` and ``p`` were fitted by ``python bench/bench_measure.py
--calibrate --n 3000`` on digitised ellipsoids (diameters 8–50 mm, axis ratios
0.4–1, random orientation, spacing 1×1×1, 4×0.8×0.8, 3×0.7×0.7 and 2×0.6×0.9
mm, half of them on oblique grids) and ellipses (pixels 1×1, 0.8×0.8, 0.6×0.9,
0.5×1 mm). Error = measured − true, in units of ``w`` (mean ± sd) and in mm:

=========  ==========  ==============  ==============  ==========
measure    correction  error / w       mean error mm   rms mm
=========  ==========  ==============  ==============  ==========
3D Feret   none        −0.34 ± 0.35    −0.62           0.83
3D Feret   half        +0.16 ± 0.35    +0.39           0.71
3D Feret   full        +0.66 ± 0.35    +1.39           1.62
3D Feret   adaptive    −0.02 ± 0.26    −0.05           0.43
2D long    none        −0.38 ± 0.22    −0.40           0.47
2D long    adaptive    +0.00 ± 0.17    +0.00           0.18
2D width   none        −0.26 ± 0.14    −0.27           0.31
2D width   adaptive    −0.00 ± 0.13    +0.00           0.14
=========  ==========  ==============  ==============  ==========

At 4×0.8×0.8 mm the 3D Feret error is −0.07 ± 0.42 w (rms 0.67 mm): the
spread comes from ellipsoids thinner than about a slice, whose tips fall
between slices; no correction can recover what the grid did not sample. For
ellipsoids at least 1.5 voxels thick in every direction it is +0.02 ± 0.12 w,
within 0.5 w for 99.5 % of them (worst −0.65 w). The model sees only the
curvature at the ends, so spheres, whose centres already reach the diameter,
come out +0.15 w long; flat or sharp-cornered ends (boxes) stay up to 0.6 w
short.
``correction="half"`` (add ``0.5·w``), ``"full"`` (add ``w``: the corner extent
along ``u``) and ``"none"`` (centre to centre, what SimpleITK's Feret diameter
reports) are available for comparison.

The second-moment (ellipsoid) axes come from the covariance of the voxel
centres. Averaged over the grid's position, a sum over the voxel centres inside
an object equals the object's integral exactly, so the centres' covariance is
unbiased except for the jitter of the centroid, which is negligible unless the
object spans a single layer of voxels along a grid axis (a nodule on one
slice), or a single line of voxels: there the centres say nothing about the
thickness, and the voxel's own second moment (``a_i a_iᵀ/12`` for a single
layer along axis ``i``) is added in that direction (``cell_moment="auto"``).
Adding it along every axis (``"always"``, the moments of the union of voxel
cells) biases every axis upward; on random ellipsoids (axes in mm, mean error
of axis 1 / 2 / 3):

==================  =======  ==================  ==================  ==================
spacing mm          c mm     auto (default)      always              never
==================  =======  ==================  ==================  ==================
1×1×1               3–6      +0.01 −0.00 −0.01   +0.04 +0.04 +0.09   +0.01 −0.00 −0.01
4×0.8×0.8           3–6      +0.11 −0.04 −0.10   +0.38 +0.18 +0.38   +0.11 −0.04 −0.14
4×0.8×0.8           1.5–3    +0.06 −0.16 +0.01   +0.27 +0.13 +0.88   +0.06 −0.17 −0.06
4×0.8×0.8, lens     1.5–3    −0.64 −1.55 +0.58   −0.61 −1.49 +1.38   −0.66 −1.60 −2.49
==================  =======  ==================  ==================  ==================

(``c`` = smallest semi-axis; "lens": flattened along the slice normal, so the
nodule is on one or two slices, where no estimate of the thickness is good;
from ``bench/bench_measure.py --calibrate``).
The ellipsoid axes are diameters of a fitted model, not distances between
points: ``axis_1_mm`` may differ from ``max_diameter_mm``.
Volume is the voxel count times the voxel volume, unbiased for centre-inside
digitisation.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

__all__ = [
    "InPlaneAxes",
    "NoduleShape",
    "axis_lengths_in_plane",
    "centroid_lps",
    "distance_stats",
    "ellipsoid_axes_mm",
    "feret_diameter_mm",
    "long_short_axes_mm",
    "measure_labels",
    "volume_mm3",
    "voxel_volume_mm3",
]

log = logging.getLogger(__name__)

Correction = Literal["adaptive", "half", "full", "none"]
_CORRECTIONS = ("adaptive", "half", "full", "none")
CellMoment = Literal["auto", "always", "never"]
_CELL_MOMENTS = ("auto", "always", "never")

# k = min(c * m**p, 1) for the adaptive digitisation correction, per measurement;
# fitted by ``python bench/bench_measure.py --calibrate`` (see module docstring).
_ADAPTIVE: dict[str, tuple[float, float]] = {
    "feret3d": (0.94, 1.04),
    "feret2d": (0.91, 1.05),
    "width2d": (0.85, 0.90),
}

# Point sets up to this size skip the convex hull (pairwise distances are cheaper).
_BRUTE_N = 48
# Elements of one block of the pairwise distance matrix (bounds memory to ~8 MB).
_PAIR_BLOCK = 1 << 20


class InPlaneAxes(NamedTuple):
    """Long and short axis of a nodule on one slice.

    Attributes
    ----------
    long_mm : float
        Longest diameter in the plane, mm (2D Feret, digitisation-corrected).
    short_mm : float
        Caliper width perpendicular to the long axis, mm (digitisation-corrected).
    angle_deg : float
        Direction of the long axis in ``[0, 180)`` degrees, measured in mm from
        the column direction (+col, across the image) toward the row direction
        (+row, down the image).
    """

    long_mm: float
    short_mm: float
    angle_deg: float


@dataclass(frozen=True, slots=True, eq=False)
class NoduleShape:
    """Everything :func:`measure_labels` measures on one label.

    Attributes
    ----------
    label : int
        The label value.
    n_voxels : int
        Number of voxels.
    volume_mm3 : float
        Volume, mm³.
    centroid_lps : ndarray of float64, shape (3,)
        Mean LPS position of the voxel centres, mm.
    max_diameter_mm : float
        3D Feret diameter, mm (SPEC ``max_diameter_mm``).
    max_diameter_end_points_lps : ndarray of float64, shape (2, 3)
        Ends of that diameter, LPS mm (the two extreme voxel centres pushed
        apart along the diameter by the digitisation correction).
    long_axis_mm, short_axis_mm : float
        On the slice with the largest cross-section (see :func:`long_short_axes_mm`).
    long_axis_angle_deg : float
        Direction of the long axis in that slice (see :class:`InPlaneAxes`).
    long_axis_slice : int
        Index (axis 0 of the array) of that slice.
    long_axis_end_points_lps, short_axis_end_points_lps : ndarray, shape (2, 3)
        Ends of the two in-plane axes, LPS mm, for drawing.
    axes_mm : ndarray of float64, shape (3,)
        Diameters of the ellipsoid with the same second moments, largest first
        (SPEC ``axis_1_mm`` … ``axis_3_mm``).
    axes_directions_lps : ndarray of float64, shape (3, 3)
        Unit LPS direction of each of those axes, one per column.
    bbox : tuple of 3 slice
        The label's bounding box in the array.
    """

    label: int
    n_voxels: int
    volume_mm3: float
    centroid_lps: NDArray[np.float64]
    max_diameter_mm: float
    max_diameter_end_points_lps: NDArray[np.float64]
    long_axis_mm: float
    short_axis_mm: float
    long_axis_angle_deg: float
    long_axis_slice: int
    long_axis_end_points_lps: NDArray[np.float64]
    short_axis_end_points_lps: NDArray[np.float64]
    axes_mm: NDArray[np.float64]
    axes_directions_lps: NDArray[np.float64]
    bbox: tuple[slice, slice, slice]

    def as_row(self) -> dict[str, float | int]:
        """The SPEC nodule columns this measures (``nodule_id`` is the label)."""
        return {
            "nodule_id": self.label,
            "centroid_x_mm": float(self.centroid_lps[0]),
            "centroid_y_mm": float(self.centroid_lps[1]),
            "centroid_z_mm": float(self.centroid_lps[2]),
            "volume_mm3": self.volume_mm3,
            "max_diameter_mm": self.max_diameter_mm,
            "long_axis_mm": self.long_axis_mm,
            "short_axis_mm": self.short_axis_mm,
            "axis_1_mm": float(self.axes_mm[0]),
            "axis_2_mm": float(self.axes_mm[1]),
            "axis_3_mm": float(self.axes_mm[2]),
        }


# ----------------------------------------------------------------------------- input


def _linear(affine: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The 3×3 linear part and the translation of a validated affine."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError("affine must be a finite 4x4 array")
    lin = a[:3, :3]
    if abs(np.linalg.det(lin)) <= 1e-12 * max(1.0, float(np.abs(lin).max()) ** 3):
        raise ValueError("affine is singular: its first three columns must be independent")
    return lin, a[:3, 3]


def _as_mask(mask: ArrayLike, label: int | None, ndim: int = 3) -> NDArray[np.bool_]:
    arr = np.asarray(mask)
    if arr.ndim != ndim:
        raise ValueError(f"mask must be a {ndim}D array, got shape {arr.shape}")
    if label is not None:
        return arr == label
    return arr if arr.dtype == np.bool_ else arr != 0


def _check_correction(correction: str) -> None:
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {_CORRECTIONS}, not {correction!r}")


def _crop(mask: NDArray[np.bool_]) -> tuple[NDArray[np.bool_], NDArray[np.int64]]:
    """The mask cut to its bounding box, and the box's first index."""
    objs = ndimage.find_objects(mask.view(np.uint8))
    if not objs or objs[0] is None:
        raise ValueError("mask is empty")
    box = objs[0]
    return mask[box], np.array([s.start for s in box], dtype=np.int64)


# ------------------------------------------------------------------------ geometry


def _hull_candidates(x: NDArray[np.float64]) -> NDArray[np.intp]:
    """Indices of points of ``x`` (n, d) that include every extreme point.

    The convex hull's vertices, computed in the span of the points so that flat
    (one slice) and collinear sets work; tiny sets are returned whole.
    """
    n = len(x)
    if n <= _BRUTE_N:
        return np.arange(n)
    xc = x - x.mean(axis=0)
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    keep = evals > evals[-1] * 1e-10
    y = xc @ evecs[:, keep]
    if y.shape[1] == 1:
        return np.array([np.argmin(y[:, 0]), np.argmax(y[:, 0])])
    try:
        return ConvexHull(y).vertices
    except QhullError:
        log.debug("qhull failed on %d points; retrying with joggle", n)
    try:
        return ConvexHull(y, qhull_options="QJ").vertices
    except QhullError:  # pragma: no cover - qhull joggle practically always succeeds
        log.warning("convex hull failed on %d points; using all of them", n)
        return np.arange(n)


def _farthest_pairs(x: NDArray[np.float64]) -> tuple[NDArray[np.intp], float]:
    """The pairs of points of ``x`` (n, d) farthest apart, and their distance.

    Returns every pair within a relative 1e-9 of the largest distance (a
    symmetric grid often has several, told apart only by rounding), as an
    ``(k, 2)`` array of indices into ``x`` with ``k <= 64``.
    """
    n = len(x)
    if n == 1:
        return np.zeros((1, 2), dtype=np.intp), 0.0
    cand = _hull_candidates(x)
    y = x[cand]
    if len(y) <= _BRUTE_N:
        d2 = ((y[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1)
        best = float(d2.max())
        pairs = np.argwhere(np.triu(d2 >= best * (1 - 1e-9), k=1))
        return cand[pairs[:64]], math.sqrt(best)
    # A lower bound from a double sweep, then drop points that cannot beat it.
    centre = y.mean(axis=0)
    r = np.linalg.norm(y - centre, axis=1)
    a = int(np.argmax(r))
    lower = float(np.linalg.norm(y - y[a], axis=1).max())
    keep = np.flatnonzero(r + r.max() >= lower * (1 - 1e-9))
    z = y[keep]
    sq = np.einsum("ij,ij->i", z, z)
    step = max(1, _PAIR_BLOCK // len(z))

    def blocks():
        for s in range(0, len(z), step):
            yield s, sq[s : s + step, None] + sq[None, :] - 2.0 * (z[s : s + step] @ z.T)

    best = max(float(d2.max()) for _, d2 in blocks())
    found = []
    for s, d2 in blocks():
        ij = np.argwhere(d2 >= best * (1 - 1e-9))
        ij[:, 0] += s
        found.append(ij[ij[:, 0] < ij[:, 1]])
    pairs = np.concatenate(found)[:64]
    # exact distances (the expanded form above loses a few digits)
    dist = np.linalg.norm(z[pairs[:, 0]] - z[pairs[:, 1]], axis=1)
    return cand[keep[pairs]], float(dist.max())


def _tip_ratio(
    u: NDArray[np.float64],
    lin: NDArray[np.float64],
    moment_shape: NDArray[np.float64],
    cell: float,
) -> tuple[float, float]:
    """Voxel extent ``w`` along ``u`` (mm) and the tip ratio ``m`` of the module docstring.

    ``lin`` maps index to mm (its columns are the voxel edges), ``moment_shape``
    is ``S`` of the moment ellipsoid ``{x : xᵀ S⁻¹ x ≤ 1}`` (or ellipse), ``cell``
    the voxel volume (3D) or pixel area (2D).
    """
    w = float(np.abs(u @ lin).sum())
    h2 = float(u @ moment_shape @ u)
    det = float(np.linalg.det(moment_shape))
    if det <= 0.0 or h2 <= 0.0:  # degenerate moments: treat the ends as sharp
        return w, math.inf
    if len(u) == 3:
        gauss = h2 * h2 / det  # Gaussian curvature of the ellipsoid where its normal is u
        m = math.sqrt(cell * math.sqrt(gauss)) / w
    else:
        kappa = h2**1.5 / det  # curvature of the ellipse where its normal is u
        m = (cell * cell * kappa) ** (1.0 / 3.0) / w
    return w, m


def _correction_mm(
    u: NDArray[np.float64],
    lin: NDArray[np.float64],
    moment_shape: NDArray[np.float64],
    cell: float,
    correction: str,
    kind: str,
    *,
    length: float,
) -> float:
    """Digitisation correction (both ends together), mm, for a diameter along ``u``.

    ``length`` is the centre-to-centre length; when it is 0 (one voxel along
    ``u``) every correction but ``"none"`` adds the voxel's whole extent.
    """
    if correction == "none":
        return 0.0
    w, m = _tip_ratio(u, lin, moment_shape, cell)
    if correction == "full" or length <= 1e-9 * w:
        return w
    if correction == "half":
        return 0.5 * w
    c, p = _ADAPTIVE[kind]
    return min(c * m**p, 1.0) * w


_FACES = {d: ndimage.generate_binary_structure(d, 1) for d in (2, 3)}


def _boundary(mask: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Voxels with at least one face neighbour outside (the array border is outside)."""
    return mask & ~ndimage.binary_erosion(mask, structure=_FACES[mask.ndim])


# ------------------------------------------------------------------ core, on a crop


class _Moments(NamedTuple):
    n: int
    mean_index: NDArray[np.float64]  # (d,), in crop index
    cov_mm: NDArray[np.float64]  # (d, d), mm²


def _moments(
    points: NDArray[np.intp], lin: NDArray[np.float64], *, cell_moment: str = "auto"
) -> _Moments:
    """Count, mean index and covariance in mm² of integer index points (n, d).

    ``cell_moment`` adds the cells' own second moment (``I/12`` in index units,
    ``a_i a_iᵀ / 12`` in mm) along every grid axis (``"always"``), only along the
    directions in which the points do not spread at all (``"auto"``: a single
    layer along a grid axis, a line of voxels, a single voxel), or never
    (``"never"``); see the module docstring.
    """
    n = len(points)
    mean = points.mean(axis=0)
    xc = points - mean
    cov_idx = (xc.T @ xc) / n
    if cell_moment == "always":
        cov_idx = cov_idx + np.eye(len(mean)) / 12.0
    elif cell_moment == "auto":
        # Integer points that spread at all have a variance of at least ~1/n.
        evals, evecs = np.linalg.eigh(cov_idx)
        flat = evecs[:, evals <= 1e-9]
        cov_idx = cov_idx + (flat @ flat.T) / 12.0
    return _Moments(n, mean, lin @ cov_idx @ lin.T)


class _Diameter(NamedTuple):
    length_mm: float
    centre_mm: float  # centre-to-centre length
    u: NDArray[np.float64]  # unit direction in the mm frame of the points
    ends: NDArray[np.float64]  # (2, d) end points in that frame


def _feret(
    boundary_points: NDArray[np.intp],
    lin: NDArray[np.float64],
    cov_mm: NDArray[np.float64],
    correction: str,
    kind: str,
) -> _Diameter:
    """Largest diameter of the cells whose centres are ``boundary_points`` (n, d).

    Among equally long centre-to-centre pairs, the one with the largest
    corrected length (so the result does not depend on rounding).
    """
    x = boundary_points @ lin.T
    pairs, d = _farthest_pairs(x)
    scale = 5.0 if lin.shape[0] == 3 else 4.0
    cell = abs(float(np.linalg.det(lin)))
    best: _Diameter | None = None
    for i, j in pairs:
        if d > 0:
            u = (x[i] - x[j]) / np.linalg.norm(x[i] - x[j])
        else:  # a single voxel: along its longest axis, all of its extent
            u = np.linalg.eigh(cov_mm)[1][:, -1]
        extra = _correction_mm(u, lin, scale * cov_mm, cell, correction, kind, length=d)
        if best is None or d + extra > best.length_mm:
            ends = np.stack([x[i] + 0.5 * extra * u, x[j] - 0.5 * extra * u])
            best = _Diameter(d + extra, d, u, ends)
    assert best is not None
    return best


class _Axes2D(NamedTuple):
    long: _Diameter
    short_mm: float
    short_centre_mm: float
    short_ends: NDArray[np.float64]  # (2, 2), mm frame of the slice
    angle_deg: float
    n: int


def _axes_2d(mask2d: NDArray[np.bool_], lin2: NDArray[np.float64], correction: str) -> _Axes2D:
    """Long axis (2D Feret) and perpendicular caliper width of one slice's mask.

    ``lin2`` (2, 2) maps the pixel index ``(row, col)`` to orthonormal in-plane
    mm coordinates ``(x, y)`` with ``x`` along the columns.
    """
    pts = np.argwhere(mask2d)
    mom = _moments(pts, lin2)
    bpts = np.argwhere(_boundary(mask2d))
    long = _feret(bpts, lin2, mom.cov_mm, correction, "feret2d")
    u = long.u
    v = np.array([-u[1], u[0]])
    xb = bpts @ lin2.T
    cand = xb[_hull_candidates(xb)]
    proj = cand @ v
    lo, hi = int(np.argmin(proj)), int(np.argmax(proj))
    width = float(proj[hi] - proj[lo])
    cell = abs(float(np.linalg.det(lin2)))
    extra = _correction_mm(v, lin2, 4.0 * mom.cov_mm, cell, correction, "width2d", length=width)
    # Drawn where the two touching points are, halfway along the long axis between them.
    t = 0.5 * float((cand[lo] + cand[hi]) @ u)
    short_ends = np.stack(
        [t * u + (proj[lo] - 0.5 * extra) * v, t * u + (proj[hi] + 0.5 * extra) * v]
    )
    angle = math.degrees(math.atan2(u[1], u[0])) % 180.0
    if angle >= 180.0 - 1e-9:
        angle = 0.0
    return _Axes2D(long, width + extra, width, short_ends, angle, len(pts))


def _in_plane_frame(lin: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Orthonormal in-plane LPS axes (x along columns, y toward rows) and (row, col) → (x, y)."""
    a_row, a_col = lin[:, 1], lin[:, 2]
    ex = a_col / np.linalg.norm(a_col)
    ey = a_row - (a_row @ ex) * ex
    ey /= np.linalg.norm(ey)
    frame = np.stack([ex, ey], axis=1)  # (3, 2)
    lin2 = frame.T @ np.stack([a_row, a_col], axis=1)  # (2, 2)
    return frame, lin2


class _LongShort(NamedTuple):
    axes: _Axes2D
    slice_index: int  # in the crop
    long_ends_lps: NDArray[np.float64]
    short_ends_lps: NDArray[np.float64]


def _long_short(
    crop: NDArray[np.bool_],
    slice_counts: NDArray[np.intp],
    lin: NDArray[np.float64],
    origin: NDArray[np.float64],
    correction: str,
    plane: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> _LongShort:
    """In-plane axes on the crop's slice of largest area; ends in LPS (``origin`` = crop[0,0,0]).

    ``plane`` is :func:`_in_plane_frame` of ``lin``, when already computed.
    """
    frame, lin2 = _in_plane_frame(lin) if plane is None else plane
    tied = np.flatnonzero(slice_counts == slice_counts.max())
    best: tuple[int, _Axes2D] | None = None
    for t in tied:
        axes = _axes_2d(crop[t], lin2, correction)
        if best is None or axes.long.length_mm > best[1].long.length_mm:
            best = (int(t), axes)
    assert best is not None
    k, axes = best
    plane0 = origin + lin[:, 0] * k
    return _LongShort(
        axes,
        k,
        plane0 + axes.long.ends @ frame.T,
        plane0 + axes.short_ends @ frame.T,
    )


def _ellipsoid(cov_mm: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Diameters (largest first) and unit directions (columns) of the moment ellipsoid."""
    evals, evecs = np.linalg.eigh(cov_mm)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    return 2.0 * np.sqrt(5.0 * np.clip(evals, 0.0, None)), evecs


# ----------------------------------------------------------------- public functions


def voxel_volume_mm3(affine: ArrayLike) -> float:
    """Volume of one voxel.

    Parameters
    ----------
    affine : array_like of shape (4, 4)
        Index ``(slice, row, col, 1)`` to LPS mm.

    Returns
    -------
    float
        ``|det affine[:3, :3]|``, mm³.
    """
    lin, _ = _linear(affine)
    return abs(float(np.linalg.det(lin)))


def volume_mm3(mask: ArrayLike, affine: ArrayLike, *, label: int | None = None) -> float:
    """Volume of a mask: voxel count times voxel volume.

    Parameters
    ----------
    mask : array_like of shape (slice, row, col)
        Boolean mask (any non-zero value counts), or a label image with ``label``.
    affine : array_like of shape (4, 4)
        Index to LPS mm.
    label : int, optional
        Measure ``mask == label``.

    Returns
    -------
    float
        Volume, mm³ (0 for an empty mask).
    """
    return float(np.count_nonzero(_as_mask(mask, label))) * voxel_volume_mm3(affine)


def centroid_lps(
    mask: ArrayLike, affine: ArrayLike, *, label: int | None = None
) -> NDArray[np.float64]:
    """Mean LPS position of the mask's voxel centres.

    Parameters
    ----------
    mask : array_like of shape (slice, row, col)
        Boolean mask, or a label image with ``label``.
    affine : array_like of shape (4, 4)
        Index to LPS mm.
    label : int, optional
        Measure ``mask == label``.

    Returns
    -------
    ndarray of float64, shape (3,)
        ``(x, y, z)`` LPS, mm.

    Raises
    ------
    ValueError
        If the mask is empty.
    """
    lin, t = _linear(affine)
    m = _as_mask(mask, label)
    n = np.count_nonzero(m)
    if n == 0:
        raise ValueError("mask is empty")
    # Mean index from the three marginal sums: no coordinate arrays of size n.
    mean = np.array(
        [
            np.arange(m.shape[ax]) @ m.sum(axis=tuple(a for a in range(3) if a != ax)) / n
            for ax in range(3)
        ]
    )
    return lin @ mean + t


def ellipsoid_axes_mm(
    mask: ArrayLike,
    affine: ArrayLike,
    *,
    label: int | None = None,
    cell_moment: CellMoment = "auto",
) -> NDArray[np.float64]:
    """Diameters of the ellipsoid with the mask's second moments, largest first.

    From the covariance ``C`` of the LPS voxel-centre positions: a solid
    ellipsoid with semi-axis ``a`` has variance ``a²/5`` along it, so each
    diameter is ``2·sqrt(5·λ)`` for an eigenvalue ``λ`` of ``C``.

    Parameters
    ----------
    mask : array_like of shape (slice, row, col)
        Boolean mask, or a label image with ``label``.
    affine : array_like of shape (4, 4)
        Index to LPS mm.
    label : int, optional
        Measure ``mask == label``.
    cell_moment : {"auto", "always", "never"}, default "auto"
        Whether to add a voxel's own second moment ``a_i a_iᵀ / 12`` (``a_i``
        the affine's columns) to ``C``: only in the directions in which the
        voxel centres do not spread at all (``"auto"``: a single layer along a
        grid axis, e.g. a nodule on one slice, or a line of voxels; there the
        centres say nothing about the extent); along all axes (``"always"``: the
        moments of the union of voxel cells, which overestimates digitised
        ellipsoids, see the module docstring); or never (``"never"``: the
        moments of the centres, as SimpleITK's ``PrincipalMoments`` and
        pyradiomics' axis lengths use).

    Returns
    -------
    ndarray of float64, shape (3,)
        SPEC ``axis_1_mm``, ``axis_2_mm``, ``axis_3_mm``, mm.

    Raises
    ------
    ValueError
        If the mask is empty or ``cell_moment`` is unknown.
    """
    if cell_moment not in _CELL_MOMENTS:
        raise ValueError(f"cell_moment must be one of {_CELL_MOMENTS}, not {cell_moment!r}")
    lin, _ = _linear(affine)
    crop, _ = _crop(_as_mask(mask, label))
    mom = _moments(np.argwhere(crop), lin, cell_moment=cell_moment)
    return _ellipsoid(mom.cov_mm)[0]


def feret_diameter_mm(
    mask: ArrayLike,
    affine: ArrayLike,
    *,
    label: int | None = None,
    correction: Correction = "adaptive",
) -> float:
    """Largest 3D diameter (Feret diameter), SPEC ``max_diameter_mm``.

    The largest distance between two boundary voxel centres, in LPS mm through
    the affine (exact: convex hull of the centres, then all pairs of hull
    vertices), plus the digitisation correction (module docstring).

    Parameters
    ----------
    mask : array_like of shape (slice, row, col)
        Boolean mask, or a label image with ``label``.
    affine : array_like of shape (4, 4)
        Index to LPS mm; anisotropic and oblique grids are measured correctly.
    label : int, optional
        Measure ``mask == label``.
    correction : {"adaptive", "half", "full", "none"}, default "adaptive"
        How much of the voxel extent along the diameter to add: adaptive to the
        shape at the ends (unbiased for ellipsoids), half, all (corner to
        corner), or none (centre to centre, equal to SimpleITK's Feret diameter).

    Returns
    -------
    float
        Diameter, mm. A single voxel gives its own extent along its longest axis.

    Raises
    ------
    ValueError
        If the mask is empty or ``correction`` is unknown.
    """
    _check_correction(correction)
    lin, _ = _linear(affine)
    crop, _ = _crop(_as_mask(mask, label))
    mom = _moments(np.argwhere(crop), lin)
    return _feret(np.argwhere(_boundary(crop)), lin, mom.cov_mm, correction, "feret3d").length_mm


def axis_lengths_in_plane(
    mask2d: ArrayLike,
    *,
    row_mm: float,
    col_mm: float,
    correction: Correction = "adaptive",
) -> InPlaneAxes:
    """Long and short axis of a nodule on one slice, as a radiologist measures them.

    The long axis is the largest diameter (2D Feret: convex hull of the
    boundary pixel centres, all pairs of hull vertices, plus the digitisation
    correction). The short axis is the shape's caliper width perpendicular to
    the long axis: the distance between the two tangent lines parallel to the
    long axis, plus the correction. For an ellipse this is its minor axis; for
    any convex shape it is at least as long as every chord perpendicular to the
    long axis, and it does not depend on where such a chord is placed.

    Parameters
    ----------
    mask2d : array_like of shape (row, col)
        Boolean mask of the slice (any non-zero value counts).
    row_mm, col_mm : float
        Distance between rows and between columns, mm (PixelSpacing).
    correction : {"adaptive", "half", "full", "none"}, default "adaptive"
        As in :func:`feret_diameter_mm`.

    Returns
    -------
    InPlaneAxes
        ``(long_mm, short_mm, angle_deg)``; the angle is from the column
        direction toward the row direction.

    Raises
    ------
    ValueError
        If the mask is empty, spacing is not positive, or ``correction`` is unknown.
    """
    _check_correction(correction)
    if not (row_mm > 0 and col_mm > 0 and math.isfinite(row_mm) and math.isfinite(col_mm)):
        raise ValueError(f"row_mm and col_mm must be positive, not {row_mm!r}, {col_mm!r}")
    m = _as_mask(mask2d, None, ndim=2)
    if not m.any():
        raise ValueError("mask is empty")
    lin2 = np.array([[0.0, col_mm], [row_mm, 0.0]])
    axes = _axes_2d(m, lin2, correction)
    return InPlaneAxes(axes.long.length_mm, axes.short_mm, axes.angle_deg)


def long_short_axes_mm(
    mask: ArrayLike,
    affine: ArrayLike,
    *,
    label: int | None = None,
    correction: Correction = "adaptive",
) -> dict:
    """Long and short axis on the acquisition-plane slice where the nodule is largest.

    The slice (index along axis 0) with the most voxels; among equal slices,
    the one with the longest long axis, then the first. Measured as
    :func:`axis_lengths_in_plane` with the in-plane geometry taken from the
    affine's columns 1 (row step) and 2 (column step), which may differ.

    Parameters
    ----------
    mask : array_like of shape (slice, row, col)
        Boolean mask, or a label image with ``label``.
    affine : array_like of shape (4, 4)
        Index to LPS mm.
    label : int, optional
        Measure ``mask == label``.
    correction : {"adaptive", "half", "full", "none"}, default "adaptive"
        As in :func:`feret_diameter_mm`.

    Returns
    -------
    dict
        ``long_axis_mm``, ``short_axis_mm`` (float, mm); ``slice_index`` (int);
        ``angle_deg`` (float, see :class:`InPlaneAxes`); ``area_mm2`` (float,
        the cross-section on that slice); ``long_axis_end_points_lps`` and
        ``short_axis_end_points_lps`` (ndarray of shape (2, 3), LPS mm, for
        drawing: the long axis between its two extreme pixel centres pushed
        apart by the correction, the short axis perpendicular to it, halfway
        along it between the two pixels that touch the caliper).
    """
    _check_correction(correction)
    lin, t = _linear(affine)
    crop, lo = _crop(_as_mask(mask, label))
    counts = np.count_nonzero(crop, axis=(1, 2))
    ls = _long_short(crop, counts, lin, lin @ lo + t, correction)
    _, lin2 = _in_plane_frame(lin)
    return {
        "long_axis_mm": ls.axes.long.length_mm,
        "short_axis_mm": ls.axes.short_mm,
        "slice_index": int(lo[0] + ls.slice_index),
        "angle_deg": ls.axes.angle_deg,
        "area_mm2": ls.axes.n * abs(float(np.linalg.det(lin2))),
        "long_axis_end_points_lps": ls.long_ends_lps,
        "short_axis_end_points_lps": ls.short_ends_lps,
    }


def _measure_crop(
    crop: NDArray[np.bool_],
    box: tuple[slice, slice, slice],
    label: int,
    lin: NDArray[np.float64],
    t: NDArray[np.float64],
    correction: str,
    plane: tuple[NDArray[np.float64], NDArray[np.float64]],
) -> NoduleShape:
    lo = np.array([s.start for s in box], dtype=np.int64)
    origin = lin @ lo + t
    pts = np.argwhere(crop)
    mom = _moments(pts, lin)
    feret = _feret(np.argwhere(_boundary(crop)), lin, mom.cov_mm, correction, "feret3d")
    counts = np.bincount(pts[:, 0], minlength=crop.shape[0])
    ls = _long_short(crop, counts, lin, origin, correction, plane)
    axes, dirs = _ellipsoid(mom.cov_mm)
    return NoduleShape(
        label=int(label),
        n_voxels=mom.n,
        volume_mm3=mom.n * abs(float(np.linalg.det(lin))),
        centroid_lps=origin + lin @ mom.mean_index,
        max_diameter_mm=feret.length_mm,
        max_diameter_end_points_lps=origin + feret.ends,
        long_axis_mm=ls.axes.long.length_mm,
        short_axis_mm=ls.axes.short_mm,
        long_axis_angle_deg=ls.axes.angle_deg,
        long_axis_slice=int(lo[0] + ls.slice_index),
        long_axis_end_points_lps=ls.long_ends_lps,
        short_axis_end_points_lps=ls.short_ends_lps,
        axes_mm=axes,
        axes_directions_lps=dirs,
        bbox=box,
    )


def measure_labels(
    labels: ArrayLike,
    affine: ArrayLike,
    *,
    ids: ArrayLike | None = None,
    correction: Correction = "adaptive",
) -> list[NoduleShape]:
    """Measure every label of a label image (or the given ones).

    Each label is measured on its own bounding box (``scipy.ndimage.find_objects``),
    so the cost is one pass over the image plus work proportional to each
    label's size.

    Parameters
    ----------
    labels : array_like of int, shape (slice, row, col)
        Label image; 0 (and negative values) is background.
    affine : array_like of shape (4, 4)
        Index to LPS mm.
    ids : array_like of int, optional
        Labels to measure, in this order; default every label present, ascending.
    correction : {"adaptive", "half", "full", "none"}, default "adaptive"
        As in :func:`feret_diameter_mm`.

    Returns
    -------
    list of NoduleShape
        One per label, in the order of ``ids``.

    Raises
    ------
    ValueError
        If a requested label is not in the image, or the input is not 3D integer.
    """
    _check_correction(correction)
    lin, t = _linear(affine)
    lab = np.asarray(labels)
    if lab.ndim != 3:
        raise ValueError(f"labels must be a 3D array, got shape {lab.shape}")
    if lab.dtype == np.bool_:
        lab = lab.view(np.uint8)
    if not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"labels must be integers, not {lab.dtype}")
    if ids is None:
        objs = ndimage.find_objects(lab)
        wanted = [i + 1 for i, box in enumerate(objs) if box is not None]
    else:
        wanted = [int(i) for i in np.atleast_1d(np.asarray(ids))]
        if any(i <= 0 for i in wanted):
            raise ValueError("ids must be positive labels")
        objs = ndimage.find_objects(lab, max_label=max(wanted, default=0))
        missing = [i for i in wanted if objs[i - 1] is None]
        if missing:
            raise ValueError(f"labels not in the image: {missing[:10]}")
    plane = _in_plane_frame(lin)
    out = []
    for i in wanted:
        box = objs[i - 1]
        out.append(_measure_crop(lab[box] == i, box, i, lin, t, correction, plane))
    log.debug("measured %d labels", len(out))
    return out


def distance_stats(
    labels: ArrayLike, values: ArrayLike, ids: ArrayLike | None = None
) -> dict[str, NDArray]:
    """Per-label count, min, max, mean and median of a float map (e.g. a signed distance).

    One sort of the labelled voxels (by label, then value); no per-label loop.
    NaN values are ignored.

    Parameters
    ----------
    labels : array_like of int, shape (...)
        Label image; 0 is background.
    values : array_like of float, same shape as ``labels``
        The map, e.g. a signed fascia distance in mm.
    ids : array_like of int, optional
        Labels to report, in this order; default every label present, ascending.

    Returns
    -------
    dict
        ``ids`` (int64), ``count`` (int64), ``min``, ``max``, ``mean``, ``median``
        (float64, NaN for a label with no voxels), each of shape ``(len(ids),)``.
    """
    lab = np.asarray(labels)
    val = np.asarray(values)
    if lab.shape != val.shape:
        raise ValueError(f"labels {lab.shape} and values {val.shape} differ in shape")
    flat = np.flatnonzero(lab)
    lv = lab.ravel()[flat].astype(np.int64, copy=False)
    vv = val.ravel()[flat].astype(np.float64, copy=False)
    ok = ~np.isnan(vv)
    if not ok.all():
        lv, vv = lv[ok], vv[ok]
    if ids is None:
        ids_arr = np.unique(lv)
    else:
        ids_arr = np.atleast_1d(np.asarray(ids, dtype=np.int64))
        sel = np.isin(lv, ids_arr)
        if not sel.all():
            lv, vv = lv[sel], vv[sel]
    order = np.lexsort((vv, lv))
    lv, vv = lv[order], vv[order]
    start = np.searchsorted(lv, ids_arr, side="left")
    stop = np.searchsorted(lv, ids_arr, side="right")
    count = stop - start
    has = count > 0
    nan = np.full(len(ids_arr), np.nan)
    vmin, vmax, vmean, vmed = nan.copy(), nan.copy(), nan.copy(), nan.copy()
    s, e, c = start[has], stop[has], count[has]
    vmin[has] = vv[s]
    vmax[has] = vv[e - 1]
    csum = np.concatenate([[0.0], np.cumsum(vv)])
    vmean[has] = (csum[e] - csum[s]) / c
    vmed[has] = 0.5 * (vv[s + (c - 1) // 2] + vv[s + c // 2])
    return {
        "ids": ids_arr,
        "count": count.astype(np.int64),
        "min": vmin,
        "max": vmax,
        "mean": vmean,
        "median": vmed,
    }
