"""The lower back at the sacroiliac level, as an analytic model in LPS millimetres.

The body is described in cylindrical coordinates about the z axis: a point
``(x, y, z)`` has angle ``θ = atan2(y, x)`` (posterior is ``θ = +90°``, the
patient's left ``θ = 0``) and radius ``r = hypot(x, y)``. The layers of the
body wall are radii that vary smoothly with ``(θ, z)``:

* the skin surface ``skin_r``; the dermis is the outer :attr:`Anatomy.skin_mm`;
* the **fascia** ``fascia_r``: the superficial face of the deep (lumbodorsal)
  fascia, the inner boundary of the subcutaneous fat, the surface every
  ``fascia_*`` truth value is measured from. The dark fascia sheet occupies
  the :attr:`Anatomy.fascia_mm` just deep to it;
* fibrous septa in the fat: open sheets, each a patch over ``(θ, z)`` at a
  depth between skin and fascia, none touching another, the skin or the
  fascia (so they never close into loops).

These radii are tables over a regular ``(z, θ)`` grid, interpolated
bilinearly; the interpolated function *is* the model, used alike for
rendering and for truth. Deep to the fascia: muscle, with the sacrum, iliac
wings, L5 and its disc above the sacrum, the sacral/spinal canal, visceral fat
and bowel in the pelvis, and optional fatty streaks in the multifidus.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

from backmice.phantom.shapes import Ellipsoid, ExtrudedEllipse
from backmice.phantom.tissues import Tissue

__all__ = ["Anatomy", "DeepSolid", "LongSeptum", "PolarTables", "build_anatomy"]

#: Columns of the stacked polar tables (``EPI_MM`` only in the wide family).
SKIN_R, FASCIA_R, SEPT_R, SEPT_HALF, SEPT_EDGE, SEPT_LIP, EPI_MM = range(7)
#: Range of the subcutaneous fat thickness (mm) in the wide family.
WIDE_FAT_MM = (6.0, 50.0)
#: Radius (mm) at which septum patch sizes are measured in θ (smaller than any
#: fat-layer radius, so edge distances are never overestimated).
_R_REF = 80.0


@dataclass(frozen=True)
class PolarTables:
    """Radii over a regular ``(z, θ)`` grid, interpolated bilinearly (periodic in θ).

    Attributes
    ----------
    z0, dz : float
        z of the first row and the row step, mm.
    n_theta : int
        Number of columns over ``[-π, π)``.
    values : ndarray of float64, shape (n_z, n_theta, 6)
        ``skin_r``, ``fascia_r``, septum mid-surface radius, septum half
        thickness, septum patch edge distance (mm, negative inside a patch) and
        a bound on the gradient of ``r - septum radius`` within the patch.
    """

    z0: float
    dz: float
    n_theta: int
    values: np.ndarray

    @property
    def n_z(self) -> int:
        """Number of z rows."""
        return self.values.shape[0]

    @property
    def theta(self) -> np.ndarray:
        """θ of the columns, rad, shape (n_theta,)."""
        return -math.pi + 2.0 * math.pi * np.arange(self.n_theta) / self.n_theta

    @property
    def z(self) -> np.ndarray:
        """z of the rows, mm, shape (n_z,)."""
        return self.z0 + self.dz * np.arange(self.n_z)

    def interpolate(
        self, theta: np.ndarray, z: np.ndarray, columns: slice | list[int] = slice(None)
    ) -> np.ndarray:
        """Bilinear values at angles ``theta`` (rad) and heights ``z`` (mm).

        Returns
        -------
        ndarray of shape (N, k)
            The selected table columns at each point (z is clamped to the grid).
        """
        theta = np.asarray(theta, dtype=np.float64).ravel()
        z = np.asarray(z, dtype=np.float64).ravel()
        t = (theta + math.pi) * (self.n_theta / (2.0 * math.pi))
        j0 = np.floor(t)
        ft = (t - j0)[:, None]
        j0 = j0.astype(np.intp) % self.n_theta
        j1 = j0 + 1
        j1[j1 == self.n_theta] = 0
        u = np.clip((z - self.z0) / self.dz, 0.0, self.n_z - 1.000001)
        i0 = np.floor(u)
        fz = (u - i0)[:, None]
        i0 = i0.astype(np.intp) * self.n_theta
        i1 = i0 + self.n_theta
        flat = self.values.reshape(-1, self.values.shape[2])

        def gather(k: np.ndarray) -> np.ndarray:
            rows = flat.take(k, axis=0)
            return (
                rows if isinstance(columns, slice) and columns == slice(None) else rows[:, columns]
            )

        a = gather(i0 + j0)
        a += (gather(i0 + j1) - a) * ft
        b = gather(i1 + j0)
        b += (gather(i1 + j1) - b) * ft
        a += (b - a) * fz
        return a

    def lipschitz(self, column: int, r_min: float) -> float:
        """A bound on ``|∇(r - table)|`` for one column, for points at radius ≥ r_min."""
        v = self.values[:, :, column]
        d_t = np.abs(np.diff(v, axis=1, append=v[:, :1]))
        d_z = np.abs(np.diff(v, axis=0))
        g_t = d_t.max(initial=0.0) * self.n_theta / (2 * math.pi)
        g_z = d_z.max(initial=0.0) / self.dz
        return math.sqrt(1.0 + (g_t / r_min) ** 2 + g_z**2)


@dataclass(frozen=True)
class DeepSolid:
    """A structure deep to the fascia: a solid, the tissue it paints, and what it may paint over.

    ``shape`` is an :class:`~backmice.phantom.shapes.ExtrudedEllipse` or an
    :class:`~backmice.phantom.shapes.Ellipsoid`. Bones are listed in
    :attr:`Anatomy.bones` instead (they get a cortex).
    """

    shape: ExtrudedEllipse | Ellipsoid
    tissue: Tissue
    over: tuple[Tissue, ...] = (Tissue.MUSCLE,)


@dataclass(frozen=True)
class LongSeptum:
    """Where a long septum of the wide family lies (its depth is in the tables).

    Attributes
    ----------
    theta_c, z_c : float
        Centre of the patch: angle (rad) and height (mm).
    half_theta, half_z : float
        Half size of the patch in θ (rad) and z (mm).
    """

    theta_c: float
    z_c: float
    half_theta: float
    half_z: float


@dataclass
class Anatomy:
    """The body wall and deep structures of one phantom (see the module docstring).

    Attributes
    ----------
    tables : PolarTables
        Skin, fascia and septa radii.
    skin_mm, fascia_mm, cortex_mm : float
        Thickness of the dermis, of the dark fascia sheet and of bone cortex.
    bones : list of ExtrudedEllipse
        Solids whose union is bone (cortex on its surface, marrow inside).
    bone_holes : list of ExtrudedEllipse
        Canals cut out of the bone (filled with CSF).
    deep : list of DeepSolid
        Visceral fat, bowel, disc, multifidus fat streaks, painted in order.
    sacrum_top_z_mm : float
        Height of the top of the sacrum (S1 endplate).
    seed : int
        The seed the anatomy was drawn from.
    params : dict
        Drawn parameters worth reporting (fat thicknesses, number of septa, ...).
    long_septa : list of LongSeptum
        The long septa (wide family only).
    wide : bool
        Drawn as the wide family (see :func:`build_anatomy`).
    """

    tables: PolarTables
    skin_mm: float
    fascia_mm: float
    cortex_mm: float
    bones: list[ExtrudedEllipse]
    bone_holes: list[ExtrudedEllipse]
    deep: list[DeepSolid]
    sacrum_top_z_mm: float
    seed: int
    params: dict = field(default_factory=dict)
    long_septa: list[LongSeptum] = field(default_factory=list)
    wide: bool = False

    # -- surfaces ---------------------------------------------------------------------
    def skin_radius(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Radius of the skin surface at ``(θ, z)``, mm, shape (N,)."""
        return self.tables.interpolate(theta, z, [SKIN_R])[:, 0]

    def fascia_radius(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Radius of the fascia surface at ``(θ, z)``, mm, shape (N,)."""
        return self.tables.interpolate(theta, z, [FASCIA_R])[:, 0]

    def surface_points(self, which: str, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Points of the ``"skin"`` or ``"fascia"`` surface at ``(θ, z)``, LPS mm, shape (N, 3)."""
        theta = np.asarray(theta, dtype=np.float64).ravel()
        z = np.asarray(z, dtype=np.float64).ravel()
        col = {"skin": SKIN_R, "fascia": FASCIA_R}[which]
        r = self.tables.interpolate(theta, z, [col])[:, 0]
        return np.column_stack([r * np.cos(theta), r * np.sin(theta), z])

    def theta_at_x(self, x: float, z: float, *, which: str = "fascia") -> float:
        """Angle of the posterior point of a surface whose x is ``x`` (mm), at height z."""
        theta = np.linspace(0.02, math.pi - 0.02, 20001)
        pts = self.surface_points(which, theta, np.full_like(theta, z))
        return float(theta[int(np.argmin(np.abs(pts[:, 0] - x)))])


def _superellipse(theta: np.ndarray, a: np.ndarray, b: np.ndarray, n: np.ndarray) -> np.ndarray:
    c = np.abs(np.cos(theta)) / a
    s = np.abs(np.sin(theta)) / b
    return (c**n + s**n) ** (-1.0 / n)


def _septa(
    rng: np.random.Generator,
    z: np.ndarray,
    inner_skin: np.ndarray,
    fascia: np.ndarray,
    count: int,
    *,
    long_rng: np.random.Generator | None = None,
    n_long: int = 0,
) -> tuple[np.ndarray, int, list[LongSeptum]]:
    """Tables of non-overlapping septum patches: mid radius, half thickness, edge distance.

    With ``n_long`` (and ``long_rng``), that many long septa (50–140 mm along
    the surface, 30–90 mm in z, 0.6–1.2 mm thick, anywhere from 0.1 to 0.9 of
    the way across the layer, centred over the lower back: θ 20°–160°,
    |z| < 45 mm) are placed first, from ``long_rng``; the short patches fill
    the rest from ``rng`` as before.

    Returns the tables, shape (n_z, n_theta, 4), the number of patches placed
    and the long septa.
    """
    n_z, n_t = inner_skin.shape
    dz = float(z[1] - z[0])
    dtheta = 2.0 * math.pi / n_t
    arc = _R_REF * dtheta  # mm per θ column at the reference radius
    occupied = np.zeros((n_z, n_t), dtype=bool)
    mid = np.zeros((n_z, n_t))
    half = np.zeros((n_z, n_t))
    edge = np.full((n_z, n_t), np.inf)
    lip = np.ones((n_z, n_t))
    gap_mm = 2.0
    placed = 0
    long_septa: list[LongSeptum] = []

    def patch(rng: np.random.Generator, long: bool) -> bool:
        if long:  # over the lower back, where the lesions are
            jc = int((rng.uniform(0.35, math.pi - 0.35) + math.pi) / dtheta) % n_t
            ic = int(np.clip(round((rng.uniform(-45.0, 45.0) - z[0]) / dz), 0, n_z - 1))
        else:
            jc = int(rng.integers(n_t))
            ic = int(rng.integers(n_z))
        # Half length along the surface (mm), expressed at the reference radius.
        half_len = rng.uniform(*((25.0, 70.0) if long else (4.0, 14.0))) * _R_REF
        half_len /= max(fascia[ic, jc], _R_REF)
        half_z = rng.uniform(*((15.0, 45.0) if long else (4.0, 20.0)))
        nj = math.ceil(half_len / arc)
        ni = math.ceil(half_z / dz)
        rows = np.arange(ic - ni, ic + ni + 1)
        rows = rows[(rows >= 0) & (rows < n_z)]
        cols = np.arange(jc - nj, jc + nj + 1) % n_t
        gi = math.ceil(gap_mm / dz)
        gj = math.ceil(gap_mm / arc)
        rows_g = np.arange(ic - ni - gi, ic + ni + gi + 1)
        rows_g = rows_g[(rows_g >= 0) & (rows_g < n_z)]
        cols_g = np.arange(jc - nj - gj, jc + nj + gj + 1) % n_t
        if rows.size == 0 or occupied[np.ix_(rows_g, cols_g)].any():
            return False
        # Depth u (0 at the dermis, 1 at the fascia): nearly parallel to the skin,
        # or oblique across the layer; always 0.2–0.8 (long septa 0.1–0.9) so it
        # touches neither.
        s_theta = (np.arange(-nj, nj + 1) * arc) / max(half_len, 1e-6)  # -1..1 along the patch
        s_z = (rows - ic) * dz / max(half_z, 1e-6)
        if long:
            u0, du_t = rng.uniform(0.3, 0.7), rng.uniform(-0.2, 0.2)
        elif rng.random() < 0.35:
            u0, du_t = rng.uniform(0.45, 0.55), rng.choice([-1.0, 1.0]) * rng.uniform(0.2, 0.3)
        else:
            u0, du_t = rng.uniform(0.25, 0.75), rng.uniform(-0.05, 0.05)
        du_z = rng.uniform(-0.05, 0.05)
        wave = rng.uniform(0.0, 0.04)
        u = u0 + du_t * s_theta[None, :] + du_z * s_z[:, None]
        u = u + wave * np.sin(3.0 * s_theta[None, :] + rng.uniform(0, 2 * math.pi))
        u = np.clip(u, *((0.1, 0.9) if long else (0.2, 0.8)))
        block = np.ix_(rows, cols)
        t = inner_skin[block] - fascia[block]
        mid[block] = inner_skin[block] - u * t
        half[block] = rng.uniform(*((0.3, 0.6) if long else (0.25, 0.45)))
        # Gradient bound of r - mid over the patch (points lie outside the fascia).
        m = mid[block]
        g_t = np.abs(np.diff(m, axis=1)).max(initial=0.0) / dtheta / fascia[block].min()
        g_z = np.abs(np.diff(m, axis=0)).max(initial=0.0) / dz
        lip[block] = 1.05 * math.sqrt(1.0 + g_t**2 + g_z**2)
        e_t = np.abs(np.arange(-nj, nj + 1) * arc)[None, :] - half_len
        e_z = np.abs((rows - ic) * dz)[:, None] - half_z
        edge[block] = np.maximum(e_t, e_z)
        occupied[block] = True
        if long:
            theta_c = -math.pi + jc * dtheta
            long_septa.append(LongSeptum(theta_c, float(z[ic]), half_len / _R_REF, half_z))
        return True

    if long_rng is not None:
        for _ in range(n_long * 20):
            if len(long_septa) >= n_long:
                break
            patch(long_rng, True)
    placed = len(long_septa)
    for _ in range(count * 20):
        if placed >= count + len(long_septa):
            break
        placed += patch(rng, False)
    if placed == 0:
        edge[:] = 1e6
        mid[:] = -1e6
        return np.stack([mid, half, edge, lip], axis=-1), 0, []
    # Outside the patches: the distance to the nearest patch (a lower bound on
    # the true distance), and mid/half copied from it so interpolation near an
    # edge stays meaningful.
    tiled = np.concatenate([occupied] * 3, axis=1)  # θ is periodic
    dist, (ii, jj) = ndimage.distance_transform_edt(~tiled, sampling=(dz, arc), return_indices=True)
    sl = slice(n_t, 2 * n_t)
    dist, ii, jj = dist[:, sl], ii[:, sl], jj[:, sl] % n_t
    outside = ~occupied
    mid[outside] = mid[ii[outside], jj[outside]]
    half[outside] = half[ii[outside], jj[outside]]
    lip[outside] = lip[ii[outside], jj[outside]]
    edge[outside] = dist[outside]
    return np.stack([mid, half, edge, lip], axis=-1), placed, long_septa


def build_anatomy(
    seed: int,
    *,
    z_range_mm: tuple[float, float] = (-160.0, 160.0),
    n_theta: int = 2048,
    dz_mm: float = 2.0,
    multifidus_fat: float = 0.5,
    septa: int = 600,
    wide: bool = False,
) -> Anatomy:
    """Draw the anatomy of one phantom.

    The *wide* family (``wide=True``) draws, from streams of its own, what the
    standard phantom never shows: a subcutaneous fat layer of 6–50 mm
    (:data:`WIDE_FAT_MM`; the body grows outward over the same deep anatomy),
    4–10 long septa through the layer, a thin epimuscular fat sheet (0.5–3 mm)
    between the fascia sheet and the muscle, and 6–18 long fatty streaks in
    the multifidus and erector spinae running 60–180 mm along z (with the
    short streaks of ``multifidus_fat`` drawn between 0.3 and 1).

    Parameters
    ----------
    seed : int
        Everything random is drawn from ``numpy.random.default_rng(seed)``.
    z_range_mm : (float, float)
        Heights (mm) the model is tabulated over; outside, it is constant in z.
    n_theta, dz_mm : int, float
        Table resolution in θ and z.
    multifidus_fat : float
        0 for none, 1 for marked fatty streaking of the multifidus.
    septa : int
        Number of septum patches to place (fewer if they do not fit).
    wide : bool
        Draw the wide family (see above).

    Returns
    -------
    Anatomy
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    rw = np.random.default_rng(np.random.SeedSequence([seed, 11])) if wide else None
    if rw is not None:
        multifidus_fat = float(rw.uniform(0.3, 1.0))
    z = np.arange(z_range_mm[0], z_range_mm[1] + 0.5 * dz_mm, dz_mm)
    theta = -math.pi + 2.0 * math.pi * np.arange(n_theta) / n_theta
    zz = z[:, None]
    tt = theta[None, :]

    # Outline: a superellipse, flatter behind, varying slowly with z.
    half_width = rng.uniform(155.0, 170.0) * (
        1.0 + 0.04 * np.sin(2 * math.pi * zz / rng.uniform(220, 320) + rng.uniform(0, 6.3))
    )
    post = rng.uniform(100.0, 108.0) + 3.5 * np.sin(
        2 * math.pi * zz / rng.uniform(160, 260) + rng.uniform(0, 6.3)
    )
    ant = rng.uniform(108.0, 118.0) + 3.0 * np.sin(
        2 * math.pi * zz / rng.uniform(200, 300) + rng.uniform(0, 6.3)
    )
    posterior = np.sin(tt) >= 0
    b = np.where(posterior, post, ant)
    n = np.where(posterior, rng.uniform(2.3, 2.6), rng.uniform(2.0, 2.3))
    skin = _superellipse(tt, half_width, b, n)
    for k in range(2, 7):
        amp = rng.uniform(1.0, 2.5) / k
        skin = skin + amp * np.cos(
            k * tt + rng.uniform(0, 2 * math.pi) + zz / rng.uniform(80.0, 200.0)
        )
    # A shallow midline groove over the spinous processes / median sacral crest.
    groove_depth, groove_width = rng.uniform(1.5, 3.5), rng.uniform(10.0, 16.0)
    arc = (tt - math.pi / 2) * 105.0
    skin = skin - groove_depth * np.exp(-((arc / groove_width) ** 2))

    # Subcutaneous fat: thin over the midline, thick over the buttocks and flanks.
    fat_mid = rng.uniform(11.0, 16.0)
    fat_lat = rng.uniform(22.0, 32.0)
    fat_ant = rng.uniform(15.0, 24.0)
    delta = np.angle(np.exp(1j * (tt - math.pi / 2)))  # angle from straight posterior
    fat_post = fat_mid + (fat_lat - fat_mid) * (1.0 - np.exp(-((delta / 0.45) ** 2)))
    w_post = (1.0 + np.sin(tt)) / 2.0
    fat = fat_ant + (fat_post - fat_ant) * w_post
    fat = fat * (
        1.0 + 0.10 * np.sin(2 * math.pi * zz / rng.uniform(120, 220) + rng.uniform(0, 6.3))
    )
    for k in range(1, 5):
        fat = fat + rng.uniform(0.5, 1.8) / k * np.cos(
            k * tt + rng.uniform(0, 2 * math.pi) + zz / rng.uniform(60.0, 150.0)
        )
    fat = np.maximum(fat, 8.0)
    skin_mm = 2.0
    fascia_mm = 1.2
    fascia = skin - skin_mm - fat
    if rw is not None:  # the same deep anatomy, a layer of any habitus over it
        fat, (fat_mid, fat_lat, fat_ant) = _wide_fat(rw, zz, tt)
        skin = fascia + skin_mm + fat
    # Smooth in θ a little (the Fourier terms are smooth; the superellipse's poles are not).
    skin = ndimage.gaussian_filter1d(skin, 2.0, axis=1, mode="wrap")
    fascia = ndimage.gaussian_filter1d(fascia, 2.0, axis=1, mode="wrap")

    sept, n_septa, long_septa = _septa(
        rng, z, skin - skin_mm, fascia, septa, long_rng=rw, n_long=0 if rw is None else 10
    )
    columns = [skin[..., None], fascia[..., None], sept]
    if rw is not None:
        columns.append(_epimuscular(rw, zz, tt)[..., None])
    values = np.concatenate(columns, axis=-1)
    tables = PolarTables(float(z[0]), float(dz_mm), n_theta, values)

    # Bones (fixed shapes with a small random jitter), sacrum top, L5 above it.
    j = rng.uniform(-1.0, 1.0, size=8)
    top = 10.0 + 3.0 * j[0]
    sac_y = 35.0 + 2.0 * j[1]
    bones = [
        ExtrudedEllipse((0.0, sac_y), (50.0 + 2 * j[2], 16.0), 0.0, (0.0, 0.08), z_max=top),
        ExtrudedEllipse((0.0, sac_y + 20.0), (5.0, 9.0), 0.0, (0.0, 0.08), z_max=top - 5.0),
    ]
    ilium_y = 20.0 + 2.0 * j[3]
    for side in (1.0, -1.0):
        bones.append(
            ExtrudedEllipse(
                (side * (85.0 + 2 * j[4]), ilium_y),
                (55.0, 10.0 + j[5]),
                -46.0 * side,
                (side * 0.05, 0.0),
                z_max=top + 45.0,
            )
        )
    l5_y = 12.0 + 2.0 * j[6]
    bones += [
        ExtrudedEllipse((0.0, l5_y), (25.0, 16.0), 0.0, z_min=top + 9.0),  # L5 body
        ExtrudedEllipse((0.0, l5_y + 32.0), (19.0, 12.0), 0.0, z_min=top + 12.0),  # lamina
        ExtrudedEllipse((0.0, l5_y + 50.0), (5.0, 11.0), 0.0, z_min=top + 16.0),  # spinous
    ]
    holes = [
        ExtrudedEllipse((0.0, sac_y + 6.0), (11.0, 4.5), 0.0, (0.0, 0.08), z_max=top + 12.0),
        ExtrudedEllipse((0.0, l5_y + 28.0), (11.0, 7.5), 0.0, z_min=top + 12.0 - 1e-6),
    ]
    deep: list[DeepSolid] = [
        DeepSolid(ExtrudedEllipse((0.0, -36.0), (76.0, 50.0)), Tissue.VISCERAL_FAT),
        DeepSolid(
            ExtrudedEllipse((0.0, l5_y), (25.0, 16.0), 0.0, z_min=top, z_max=top + 9.0),
            Tissue.DISC,
            (Tissue.MUSCLE, Tissue.VISCERAL_FAT),
        ),
    ]
    for _ in range(7):  # bowel loops: tubes drifting through the pelvis
        ang = rng.uniform(0, 2 * math.pi)
        rad = rng.uniform(0.0, 0.55)
        cx, cy = 76.0 * rad * math.cos(ang), -36.0 + 50.0 * rad * math.sin(ang)
        deep.append(
            DeepSolid(
                ExtrudedEllipse(
                    (cx, cy),
                    (rng.uniform(8.0, 14.0), rng.uniform(6.0, 10.0)),
                    rng.uniform(0, 180),
                    (rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2)),
                ),
                Tissue.BOWEL,
                (Tissue.VISCERAL_FAT,),
            )
        )
    n_streaks = round(max(0.0, min(1.0, multifidus_fat)) * 14)
    for _ in range(n_streaks):
        side = rng.choice([-1.0, 1.0])
        cx = side * rng.uniform(8.0, 38.0)
        cy = rng.uniform(sac_y + 29.0, sac_y + 45.0)
        cz = rng.uniform(z_range_mm[0] / 4, z_range_mm[1] / 4)
        ang = math.radians(rng.uniform(40.0, 140.0))
        rot = np.array(
            [[math.cos(ang), 0.0, math.sin(ang)], [math.sin(ang), 0.0, -math.cos(ang)], [0, 1, 0]]
        )
        deep.append(
            DeepSolid(
                Ellipsoid(
                    np.array([cx, cy, cz]),
                    np.array(
                        [rng.uniform(5.0, 11.0), rng.uniform(4.0, 9.0), rng.uniform(0.6, 1.1)]
                    ),
                    rot,
                ),
                Tissue.MUSCLE_FAT,
            )
        )
    params: dict = {
        "fat_midline_mm": round(float(fat_mid), 3),
        "fat_lateral_mm": round(float(fat_lat), 3),
        "fat_anterior_mm": round(float(fat_ant), 3),
        "multifidus_fat": float(multifidus_fat),
        "n_septa": n_septa,
    }
    if rw is not None:
        streaks = _long_streaks(rw, sac_y)
        deep += streaks
        upper_back = np.sin(tt) > 0.5
        layer = (skin - skin_mm - fascia)[np.broadcast_to(upper_back, skin.shape)]
        params.update(
            family="wide",
            fat_posterior_min_mm=round(float(layer.min()), 3),
            fat_posterior_max_mm=round(float(layer.max()), 3),
            n_long_septa=len(long_septa),
            epimuscular_max_mm=round(float(values[:, :, EPI_MM].max()), 3),
            n_long_streaks=len(streaks),
        )
    return Anatomy(
        tables=tables,
        skin_mm=skin_mm,
        fascia_mm=fascia_mm,
        cortex_mm=1.8,
        bones=bones,
        bone_holes=holes,
        deep=deep,
        sacrum_top_z_mm=float(top),
        seed=int(seed),
        params=params,
        long_septa=long_septa,
        wide=rw is not None,
    )


def _wide_fat(
    rng: np.random.Generator, zz: np.ndarray, tt: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Subcutaneous fat thickness (mm) of the wide family over the ``(z, θ)`` grid.

    Lean to obese: midline 6–22 mm, flanks 1.2–2.6 times that, front 6–40 mm,
    varying along z and θ, clipped to :data:`WIDE_FAT_MM`. Returns the
    thickness, shape (n_z, n_theta), and the drawn midline, lateral and
    anterior thicknesses.
    """
    fat_mid = rng.uniform(6.0, 22.0)
    fat_lat = min(WIDE_FAT_MM[1], fat_mid * rng.uniform(1.2, 2.6))
    fat_ant = rng.uniform(6.0, 40.0)
    delta = np.angle(np.exp(1j * (tt - math.pi / 2)))
    fat_post = fat_mid + (fat_lat - fat_mid) * (1.0 - np.exp(-((delta / 0.45) ** 2)))
    w_post = (1.0 + np.sin(tt)) / 2.0
    fat = fat_ant + (fat_post - fat_ant) * w_post
    period, phase = rng.uniform(100, 220), rng.uniform(0, 6.3)
    fat = fat * (1.0 + 0.12 * np.sin(2 * math.pi * zz / period + phase))
    scale = fat_mid / 13.0
    for k in range(1, 5):
        fat = fat + scale * rng.uniform(0.5, 1.8) / k * np.cos(
            k * tt + rng.uniform(0, 2 * math.pi) + zz / rng.uniform(60.0, 150.0)
        )
    return np.clip(fat, *WIDE_FAT_MM), (fat_mid, fat_lat, fat_ant)


def _epimuscular(rng: np.random.Generator, zz: np.ndarray, tt: np.ndarray) -> np.ndarray:
    """Thickness (mm) of the epimuscular fat sheet deep to the fascia sheet, (n_z, n_theta).

    Patchy, 0.5–3 mm where present, absent over the midline (where the
    thoracolumbar fascia is fixed to the spinous processes) and in about one
    phantom in five.
    """
    if rng.random() < 0.2:
        return np.zeros(np.broadcast_shapes(zz.shape, tt.shape))
    amp = rng.uniform(0.5, 3.0)
    f = np.zeros(np.broadcast_shapes(zz.shape, tt.shape))
    for k in range(2, 9):
        f = f + rng.uniform(0.3, 1.0) * np.cos(
            k * tt + rng.uniform(0, 2 * math.pi) + zz / rng.uniform(30.0, 90.0)
        )
    f = np.clip(f / np.abs(f).max() + rng.uniform(0.0, 0.5), 0.0, 1.0)
    arc = np.angle(np.exp(1j * (tt - math.pi / 2))) * 100.0
    return amp * f * (1.0 - np.exp(-((arc / 20.0) ** 2)))


def _long_streaks(rng: np.random.Generator, sac_y: float) -> list[DeepSolid]:
    """6–18 long fatty streaks in the multifidus and erector spinae (fatty infiltration).

    Flat bands 4–14 mm wide and 1–3 mm thick, 60–180 mm long in z, drifting
    slowly, so that they run through a whole stack of slices.
    """
    out = []
    for _ in range(int(rng.integers(6, 19))):
        side = rng.choice([-1.0, 1.0])
        cx = side * rng.uniform(6.0, 60.0)
        cy = rng.uniform(sac_y + 22.0, sac_y + 50.0)
        z0 = rng.uniform(-110.0, 20.0)
        out.append(
            DeepSolid(
                ExtrudedEllipse(
                    (cx, cy),
                    (rng.uniform(2.0, 7.0), rng.uniform(0.5, 1.5)),
                    rng.uniform(-60.0, 60.0),
                    (rng.uniform(-0.08, 0.08), rng.uniform(-0.08, 0.08)),
                    z_min=z0,
                    z_max=z0 + rng.uniform(60.0, 180.0),
                ),
                Tissue.MUSCLE_FAT,
            )
        )
    return out
