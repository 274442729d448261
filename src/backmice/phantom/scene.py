"""A phantom scene: anatomy plus lesions, and the tissue class at any point.

:func:`make_scene` draws a scene from a seed; :meth:`Scene.classify` gives the
tissue class (:class:`~backmice.phantom.tissues.Tissue`) and lesion number of
any set of LPS points, and optionally a lower bound on each point's distance
to the nearest tissue boundary, which lets the renderer supersample only the
voxels that straddle one.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from backmice.phantom.anatomy import (
    EPI_MM,
    FASCIA_R,
    SEPT_EDGE,
    SEPT_HALF,
    SEPT_LIP,
    SEPT_R,
    SKIN_R,
    Anatomy,
    PolarTables,
    build_anatomy,
)
from backmice.phantom.lesions import (
    Lesion,
    LesionKind,
    PlacementError,
    Relation,
    place_in_layer,
    place_lesion,
)
from backmice.phantom.shapes import Ellipsoid, ExtrudedEllipse
from backmice.phantom.tissues import Tissue

__all__ = ["Classified", "Scene", "make_scene"]

log = logging.getLogger(__name__)

#: Lesion centres and extents stay within these heights (mm) so that every
#: sample's field of view holds every lesion whole.
LESION_Z_LIMITS = (-28.0, 28.0)

_BODY_WALL = (Tissue.SKIN, Tissue.FAT, Tissue.SEPTUM, Tissue.FASCIA)


@dataclass(slots=True)
class Classified:
    """Tissue classes of a set of points.

    Attributes
    ----------
    labels : ndarray of uint8, shape (N,)
        :class:`Tissue` value of each point.
    instance : ndarray of uint8, shape (N,)
        1 + index of the lesion whose core holds the point, 0 elsewhere.
    margin : ndarray of float32, shape (N,), or None
        A lower bound (mm) on the distance to the nearest tissue boundary (see
        :meth:`Scene.classify`).
    """

    labels: np.ndarray
    instance: np.ndarray
    margin: np.ndarray | None = None


@dataclass
class Scene:
    """Anatomy and lesions of one phantom.

    Attributes
    ----------
    anatomy : Anatomy
    lesions : list of Lesion
    seed : int
    tables : PolarTables
        The anatomy's tables with the skin lifted over fat prominences.

    A scene is not meant to be changed once made: build a new one instead.
    """

    anatomy: Anatomy
    lesions: list[Lesion]
    seed: int
    tables: PolarTables = field(init=False)
    #: Results computed from the scene and kept (lesion truth), by key.
    cache: dict = field(init=False, default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        values = self.anatomy.tables.values.copy()
        theta = self.anatomy.tables.theta[None, :]
        z = self.anatomy.tables.z[:, None]
        for lesion in self.lesions:
            if lesion.bump_mm <= 0:
                continue
            c = lesion.core.centre
            th_c = math.atan2(c[1], c[0])
            r_c = math.hypot(c[0], c[1])
            half = lesion.core.half_extent
            sigma_arc = max(math.hypot(half[0], half[1]), 4.0) * 0.8
            sigma_z = max(half[2], 4.0) * 0.8
            arc = np.angle(np.exp(1j * (theta - th_c))) * r_c
            bump = lesion.bump_mm * np.exp(
                -0.5 * ((arc / sigma_arc) ** 2 + ((z - c[2]) / sigma_z) ** 2)
            )
            values[:, :, SKIN_R] += bump
        t = self.anatomy.tables
        self.tables = PolarTables(t.z0, t.dz, t.n_theta, values)
        # Margins matter only within a few mm of the skin and fascia, so the radius
        # bound can be taken just inside the fascia.
        r_min = float(values[:, :, FASCIA_R].min()) - 10.0
        self._l_skin = self.tables.lipschitz(SKIN_R, r_min)
        self._l_fascia = self.tables.lipschitz(FASCIA_R, r_min)
        # The epimuscular fat's deep surface is fascia_r - fascia_mm - epi (wide family).
        self._epi = values.shape[2] > EPI_MM
        if self._epi:
            self._l_epi = self._l_fascia + self.tables.lipschitz(EPI_MM, r_min)

    # -- surfaces ---------------------------------------------------------------------
    def skin_radius(self, theta: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Radius of the skin surface (with bulges) at ``(θ, z)``, mm, shape (N,)."""
        return self.tables.interpolate(theta, z, [SKIN_R])[:, 0]

    def lesion(self, lesion_id: str) -> Lesion:
        """The lesion with this id."""
        for lesion in self.lesions:
            if lesion.id == lesion_id:
                return lesion
        raise KeyError(lesion_id)

    # -- classification ---------------------------------------------------------------
    def classify(self, points: np.ndarray, *, margin_mm: float | None = None) -> Classified:
        """Tissue class of each point.

        Parameters
        ----------
        points : ndarray of shape (N, 3)
            LPS mm.
        margin_mm : float, optional
            If given, also compute :attr:`Classified.margin`. Values below
            ``margin_mm`` are lower bounds on the distance to the nearest tissue
            boundary; a value at or above it means only that the point is at
            least ``margin_mm`` from every boundary.

        Returns
        -------
        Classified
        """
        points = np.asarray(points, dtype=np.float64)
        n = len(points)
        x, y, z = points[:, 0], points[:, 1], points[:, 2]
        r = np.hypot(x, y)
        theta = np.arctan2(y, x)
        v = self.tables.interpolate(theta, z)
        an = self.anatomy
        lab = np.zeros(n, dtype=np.uint8)
        d_skin = r - v[:, SKIN_R]
        d_derm = d_skin + an.skin_mm
        d_fasc = r - v[:, FASCIA_R]
        d_musc = d_fasc + an.fascia_mm
        lab[d_skin < 0] = Tissue.SKIN
        lab[d_derm < 0] = Tissue.FAT
        lab[d_fasc < 0] = Tissue.FASCIA
        lab[d_musc < 0] = Tissue.MUSCLE
        if self._epi:
            d_epi = d_musc + v[:, EPI_MM]
            lab[(d_musc < 0) & (d_epi >= 0)] = Tissue.EPIMUSCULAR_FAT
        edge = v[:, SEPT_EDGE]
        f_sept = np.maximum(np.abs(r - v[:, SEPT_R]) - v[:, SEPT_HALF], edge)
        lab[(f_sept < 0) & (lab == Tissue.FAT)] = Tissue.SEPTUM
        want_margin = margin_mm is not None
        margin = None
        if want_margin:
            m = np.minimum(np.abs(d_skin), np.abs(d_derm)) / self._l_skin
            m = np.minimum(m, np.minimum(np.abs(d_fasc), np.abs(d_musc)) / self._l_fascia)
            if self._epi:
                m = np.minimum(m, np.abs(d_epi) / self._l_epi)
            # Septa lie between the fascia and the dermis: the distance to that band
            # bounds the distance to any of them. Outside every patch the edge
            # distance does too; inside one, the field over its gradient bound.
            band = np.maximum(-d_fasc / self._l_fascia, d_derm / self._l_skin)
            m_sept = np.where(edge > 0, np.maximum(edge, band), np.abs(f_sept) / v[:, SEPT_LIP])
            margin = np.minimum(m, m_sept).astype(np.float32)
        reach = 0.0 if margin_mm is None else float(margin_mm)
        instance = np.zeros(n, dtype=np.uint8)

        deep = np.flatnonzero(d_musc < reach)
        if deep.size:
            self._classify_deep(points[deep], lab, margin, deep, reach)
        bounds = self._bounds(points)
        for k, lesion in enumerate(self.lesions):
            self._classify_lesion(k, lesion, points, bounds, lab, instance, margin, reach)
        return Classified(lab, instance, margin)

    @staticmethod
    def _bounds(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper corner of the points' bounding box."""
        lo = np.array([points[:, k].min() for k in range(3)]) if len(points) else np.zeros(3)
        hi = np.array([points[:, k].max() for k in range(3)]) if len(points) else np.zeros(3)
        return lo, hi

    @staticmethod
    def _select(
        points: np.ndarray,
        bounds: tuple[np.ndarray, np.ndarray],
        shape: ExtrudedEllipse | Ellipsoid,
        reach: float,
    ):
        """Indices (into points) of the points within the shape's bounding box + reach.

        ``bounds`` is the points' own bounding box (:meth:`_bounds`).
        """
        p_lo, p_hi = bounds
        if isinstance(shape, Ellipsoid):
            lo = shape.centre - shape.half_extent - reach
            hi = shape.centre + shape.half_extent + reach
        else:
            z0, z1 = max(p_lo[2], shape.z_min - reach), min(p_hi[2], shape.z_max + reach)
            if z0 > z1:
                return np.empty(0, dtype=np.intp)
            bx0, bx1, by0, by1 = shape.bounds_xy(z0, z1)
            lo = np.array([bx0 - reach, by0 - reach, z0])
            hi = np.array([bx1 + reach, by1 + reach, z1])
        if np.any(p_hi < lo) or np.any(p_lo > hi):
            return np.empty(0, dtype=np.intp)
        inside: np.ndarray | None = None
        for axis in range(3):  # test only the axes the points are not all within
            if p_lo[axis] >= lo[axis] and p_hi[axis] <= hi[axis]:
                continue
            ok = (points[:, axis] >= lo[axis]) & (points[:, axis] <= hi[axis])
            inside = ok if inside is None else inside & ok
        if inside is None:
            return np.arange(len(points))
        return np.flatnonzero(inside)

    def _classify_deep(
        self,
        pts: np.ndarray,
        lab: np.ndarray,
        margin: np.ndarray | None,
        index: np.ndarray,
        reach: float,
    ) -> None:
        an = self.anatomy
        bounds = self._bounds(pts)
        sub = lab[index]
        deep_ok = sub == Tissue.MUSCLE  # only what lies under the fascia sheet
        m_sub = None if margin is None else margin[index]
        for solid in an.deep:
            sel = self._select(pts, bounds, solid.shape, reach)
            if sel.size == 0:
                continue
            f = solid.shape.field(pts[sel])
            s = sub[sel]
            paint = (f < 0) & np.isin(s, solid.over)
            s[paint] = solid.tissue
            sub[sel] = s
            if m_sub is not None:
                m_sub[sel] = np.minimum(m_sub[sel], np.abs(f))
        # Bone: union of solids minus canals. Marrow is the union of the solids shrunk
        # by the cortex thickness, minus the canals grown by it; cortex is the rest.
        t = an.cortex_mm
        f_bone = np.full(len(pts), np.inf)
        f_marrow = np.full(len(pts), np.inf)
        for bone in an.bones:
            sel = self._select(pts, bounds, bone, reach)
            if sel.size:
                p = pts[sel]
                f_bone[sel] = np.minimum(f_bone[sel], bone.field(p))
                f_marrow[sel] = np.minimum(f_marrow[sel], bone.grown(-t).field(p))
        f_hole = np.full(len(pts), np.inf)
        f_hole_out = np.full(len(pts), np.inf)
        for hole in an.bone_holes:
            sel = self._select(pts, bounds, hole, reach + t)
            if sel.size:
                p = pts[sel]
                f_hole[sel] = np.minimum(f_hole[sel], hole.field(p))
                f_hole_out[sel] = np.minimum(f_hole_out[sel], hole.grown(t).field(p))
        bone = (f_bone < 0) & (f_hole > 0) & deep_ok
        sub[bone] = Tissue.CORTEX
        sub[bone & (f_marrow < 0) & (f_hole_out > 0)] = Tissue.MARROW
        sub[(f_hole < 0) & deep_ok] = Tissue.CSF
        lab[index] = sub
        if margin is not None and m_sub is not None:
            for f in (f_bone, f_marrow, f_hole, f_hole_out):
                m_sub = np.minimum(m_sub, np.abs(f))
            margin[index] = m_sub

    def _classify_lesion(
        self,
        k: int,
        lesion: Lesion,
        points: np.ndarray,
        bounds: tuple[np.ndarray, np.ndarray],
        lab: np.ndarray,
        instance: np.ndarray,
        margin: np.ndarray | None,
        reach: float,
    ) -> None:
        outer = lesion.outer
        sel = self._select(points, bounds, outer, reach)
        if sel.size == 0:
            return
        p = points[sel]
        s = lab[sel]
        f_core = lesion.core.field(p)
        core = f_core < 0
        m = None if margin is None else np.abs(f_core)
        if lesion.kind is LesionKind.FAT_PROMINENCE:
            s[core & np.isin(s, (Tissue.FAT, Tissue.SEPTUM))] = Tissue.PROMINENCE_FAT
            core &= s == Tissue.PROMINENCE_FAT
        else:
            inside_body = s != Tissue.AIR
            wall_tissue, core_tissue = (
                (Tissue.CYST_WALL, Tissue.CYST)
                if lesion.kind is LesionKind.CYST
                else (Tissue.CAPSULE, Tissue.LESION_FAT)
            )
            if lesion.wall_mm > 0:
                f_wall = outer.field(p)
                wall = (f_wall < 0) & inside_body
                if lesion.gap_dir is not None:
                    # The gap's edges lie within the shell: every shell point is
                    # supersampled; outside the shell |f| bounds the distance to it.
                    s[wall & ~lesion.in_gap(p)] = wall_tissue
                    if m is not None:
                        m = np.minimum(m, np.abs(f_wall))
                        m[(f_wall < 0) & (f_core >= 0)] = 0.0
                else:
                    s[wall] = wall_tissue
                    if m is not None:
                        m = np.minimum(m, np.abs(f_wall))
            core &= inside_body
            s[core] = core_tissue
            if lesion.solid is not None:
                f_solid = lesion.solid.field(p)
                solid = f_solid < 0
                s[solid] = Tissue.SOLID
                core &= ~solid
                if m is not None:
                    m = np.minimum(m, np.abs(f_solid))
        lab[sel] = s
        inst = instance[sel]
        inst[core] = k + 1
        instance[sel] = inst
        if margin is not None and m is not None:
            margin[sel] = np.minimum(margin[sel], m)


# -- drawing a scene ------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    lesion_id: str
    kind: LesionKind
    relation: Relation
    side: float  # +1 patient left, -1 right, 0 either
    abs_x: tuple[float, float]
    z: tuple[float, float]  # absolute, or relative to the sacrum top when rel_top
    semi: tuple[tuple[float, float], tuple[float, float], tuple[float, float]]
    wall_mm: float = 0.0
    rel_top: bool = False
    bump_mm: float = 0.0
    solid: tuple[float, float, float] | None = None
    skin_gap_mm: float | None = None


_STANDARD = (
    _Plan(
        "N1",
        LesionKind.ENCAPSULATED_FAT_NODULE,
        Relation.SUBCUTANEOUS,
        -1.0,
        (45.0, 65.0),
        (-20.0, -6.0),
        ((11.0, 15.0), (7.0, 9.5), (4.0, 5.5)),
        wall_mm=1.2,
    ),
    _Plan(
        "N2",
        LesionKind.ENCAPSULATED_FAT_NODULE,
        Relation.TRANSFASCIAL,
        1.0,
        (28.0, 48.0),
        (7.0, 12.0),
        ((9.0, 11.0), (6.5, 8.0), (5.5, 6.5)),
        wall_mm=1.0,
        rel_top=True,
    ),
    _Plan(
        "N3",
        LesionKind.ENCAPSULATED_FAT_NODULE,
        Relation.SUBFASCIAL,
        1.0,
        (60.0, 85.0),
        (-20.0, -6.0),
        ((7.0, 9.0), (5.0, 6.0), (3.5, 4.5)),
        wall_mm=1.0,
    ),
    _Plan(
        "N4",
        LesionKind.ENCAPSULATED_FAT_NODULE,
        Relation.SUBCUTANEOUS,
        -1.0,
        (15.0, 35.0),
        (6.0, 18.0),
        ((4.2, 5.0), (3.6, 4.2), (3.0, 3.4)),
        wall_mm=1.0,
    ),
    _Plan(
        "P1",
        LesionKind.FAT_PROMINENCE,
        Relation.SUBCUTANEOUS,
        1.0,
        (68.0, 90.0),
        (-4.0, 10.0),
        ((13.0, 17.0), (9.0, 11.0), (4.0, 5.5)),
        bump_mm=3.0,
    ),
    _Plan(
        "C1",
        LesionKind.CYST,
        Relation.SUBCUTANEOUS,
        0.0,
        (55.0, 95.0),
        (2.0, 16.0),
        ((5.0, 7.0), (4.5, 6.0), (3.5, 4.5)),
        wall_mm=1.0,
        skin_gap_mm=0.3,
    ),
)

_RED_FLAG = _Plan(
    "X1",
    LesionKind.LIPOSARCOMA_LIKE,
    Relation.TRANSFASCIAL,
    -1.0,
    (95.0, 120.0),
    (-12.0, 4.0),
    ((26.0, 28.0), (17.0, 19.0), (11.0, 12.0)),
    wall_mm=1.5,
    solid=(9.0, 7.0, 6.0),
)


def _overlaps(a: Lesion, b: Lesion, gap_mm: float) -> bool:
    ga, gb = a.outer.grown(gap_mm), b.outer.grown(gap_mm)
    if np.linalg.norm(ga.centre - gb.centre) > ga.semi_axes[0] + gb.semi_axes[0]:
        return False
    return bool(
        gb.contains(ga.surface_points(2000)).any() or ga.contains(gb.surface_points(2000)).any()
    )


def _within_z(lesion: Lesion) -> bool:
    c, h = lesion.outer.centre[2], lesion.outer.half_extent[2]
    return LESION_Z_LIMITS[0] <= c - h and c + h <= LESION_Z_LIMITS[1]


#: Subcutaneous nodules of the wide family: id, side (0 either), |x| range (mm),
#: semi-axis ranges (mm).
_WIDE_SUBCUT = (
    ("N1", -1.0, (30.0, 95.0), ((8.0, 18.0), (5.0, 12.0), (3.0, 8.0))),
    ("N5", 0.0, (15.0, 100.0), ((5.0, 14.0), (4.0, 10.0), (3.0, 7.0))),
    ("N4", -1.0, (15.0, 95.0), ((4.2, 6.0), (3.6, 5.0), (3.0, 4.0))),
)
#: Where a subcutaneous nodule of the wide family sits in the layer, and how often.
_WIDE_WHERE = (
    ("fascia", 0.25),
    ("dermis", 0.2),
    ("centred", 0.2),
    ("septum", 0.2),
    ("depth", 0.15),
)
#: Capsule thickness range (mm) and the share of incomplete capsules, wide family.
WIDE_WALL_MM = (0.6, 1.8)
WIDE_GAP_SHARE = 0.3


def _wide_orientation(rng: np.random.Generator) -> tuple[float, float]:
    """Tilt (any direction in the tangent plane) and pitch (half near-parallel, half any)."""
    tilt = rng.uniform(-90.0, 90.0)
    pitch = rng.uniform(-90.0, 90.0) if rng.random() < 0.5 else rng.uniform(-20.0, 20.0)
    return float(tilt), float(pitch)


def _wide_capsule(rng: np.random.Generator) -> tuple[float, tuple[np.ndarray, float] | None]:
    """Capsule thickness and, for some, a gap (direction, half angle)."""
    wall = float(rng.uniform(*WIDE_WALL_MM))
    if rng.random() < WIDE_GAP_SHARE:
        return wall, (rng.normal(size=3), float(rng.uniform(15.0, 45.0)))
    return wall, None


def _semi_axes(
    rng: np.random.Generator, ranges: Sequence[tuple[float, float]]
) -> tuple[float, float, float]:
    """Three semi-axes (mm) drawn from their ``(low, high)`` ranges, longest first."""
    a, b, c = sorted((rng.uniform(*r) for r in ranges), reverse=True)
    return (a, b, c)


def _wide_subcutaneous(
    anatomy: Anatomy, rng: np.random.Generator, plan: tuple, tables: PolarTables
) -> Lesion:
    """One subcutaneous nodule of the wide family (raises PlacementError if it misses)."""
    lesion_id, side, abs_x, semi_r = plan
    semi = _semi_axes(rng, semi_r)
    tilt, pitch = _wide_orientation(rng)
    wall, gap = _wide_capsule(rng)
    names = [w for w, _ in _WIDE_WHERE]
    where = str(rng.choice(names, p=[p for _, p in _WIDE_WHERE]))
    value = 0.0
    septa = [s for s in anatomy.long_septa if abs(s.z_c) < LESION_Z_LIMITS[1] - 8.0]
    if where == "septum" and septa:
        sep = septa[int(rng.integers(len(septa)))]
        theta = sep.theta_c + rng.uniform(-0.7, 0.7) * sep.half_theta
        z = float(np.clip(sep.z_c + rng.uniform(-0.7, 0.7) * sep.half_z, -18.0, 18.0))
        value = float(tables.interpolate(np.array([theta]), np.array([z]), [SEPT_R])[0, 0])
        kind_where = "radius"
    else:
        if where == "septum":
            where = "centred"
        z = float(rng.uniform(-20.0, 20.0))
        side = side or float(rng.choice([-1.0, 1.0]))
        theta = anatomy.theta_at_x(side * rng.uniform(*abs_x), z)
        kind_where = {"centred": "depth"}.get(where, where)
        value = {
            "fascia": rng.uniform(0.0, 0.3),
            "dermis": rng.uniform(0.0, 0.3),
            "centred": 0.5,
            "depth": rng.uniform(0.0, 1.0),
        }[where]
    lesion = place_in_layer(
        anatomy,
        lesion_id,
        LesionKind.ENCAPSULATED_FAT_NODULE,
        theta=float(theta),
        z_mm=z,
        semi_axes_mm=semi,
        where=kind_where,
        value=float(value),
        tilt_deg=tilt,
        pitch_deg=pitch,
        wall_mm=wall,
        fill=float(rng.uniform(0.7, 0.95)),
        capsule_gap=gap,
    )
    return dataclasses.replace(lesion, placement=where)


def _wide_lesions(anatomy: Anatomy, seed: int) -> list[Lesion]:
    """The lesions of the wide family (see :func:`make_scene`)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 12]))
    placed: list[Lesion] = []

    def fits(lesion: Lesion) -> bool:
        return _within_z(lesion) and not any(_overlaps(lesion, o, 2.0) for o in placed)

    def deep_plan(plan: _Plan, depth: tuple[float, float]) -> Lesion:
        semi = _semi_axes(rng, plan.semi)
        tilt, pitch = _wide_orientation(rng)
        wall, gap = _wide_capsule(rng)
        z_off = anatomy.sacrum_top_z_mm if plan.rel_top else 0.0
        lesion = place_lesion(
            anatomy,
            plan.lesion_id,
            plan.kind,
            x_mm=plan.side * rng.uniform(*plan.abs_x),
            z_mm=z_off + rng.uniform(*plan.z),
            semi_axes_mm=semi,
            relation=plan.relation,
            tilt_deg=tilt,
            pitch_deg=pitch,
            wall_mm=wall,
            depth_fraction=rng.uniform(*depth),
            capsule_gap=gap,
        )
        return dataclasses.replace(lesion, placement=str(plan.relation))

    n2, n3 = _STANDARD[1], _STANDARD[2]
    attempts: list = [
        lambda: deep_plan(
            dataclasses.replace(n2, z=(-8.0, 6.0), semi=((8.0, 14.0), (6.0, 10.0), (5.0, 8.0))),
            (-0.5, 0.6),
        ),
        lambda: deep_plan(dataclasses.replace(n3, abs_x=(20.0, 85.0)), (0.0, 0.0)),
        *[
            (lambda plan=plan: _wide_subcutaneous(anatomy, rng, plan, anatomy.tables))
            for plan in _WIDE_SUBCUT
        ],
    ]
    for lesion_id, make in zip(("N2", "N3", *(p[0] for p in _WIDE_SUBCUT)), attempts, strict=True):
        last: Exception | None = None
        for _attempt in range(80):
            try:
                lesion = make()
            except PlacementError as exc:
                last = exc
                continue
            if fits(lesion):
                placed.append(lesion)
                break
            last = PlacementError("outside the z range or overlapping another lesion")
        else:
            raise PlacementError(f"seed {seed} (wide): could not place {lesion_id} ({last})")
    # The fat prominence and the cyst as in the standard set, over a wider area.
    p1 = dataclasses.replace(_STANDARD[4], abs_x=(40.0, 110.0), z=(-15.0, 15.0))
    for plan in (p1, _STANDARD[5]):
        last = None
        for _attempt in range(80):
            side = plan.side or float(rng.choice([-1.0, 1.0]))
            semi = _semi_axes(rng, plan.semi)
            try:
                lesion = place_lesion(
                    anatomy,
                    plan.lesion_id,
                    plan.kind,
                    x_mm=side * rng.uniform(*plan.abs_x),
                    z_mm=rng.uniform(*plan.z),
                    semi_axes_mm=semi,
                    relation=plan.relation,
                    tilt_deg=rng.uniform(-25.0, 25.0),
                    wall_mm=plan.wall_mm,
                    bump_mm=plan.bump_mm,
                    skin_gap_mm=plan.skin_gap_mm,
                )
            except PlacementError as exc:
                last = exc
                continue
            if fits(lesion):
                placed.append(dataclasses.replace(lesion, placement=str(plan.relation)))
                break
        else:
            raise PlacementError(f"seed {seed} (wide): could not place {plan.lesion_id} ({last})")
    order = ["N1", "N2", "N3", "N4", "N5", "P1", "C1"]
    placed.sort(key=lambda les: order.index(les.id))
    return placed


def make_scene(
    seed: int = 0,
    *,
    red_flag: bool = False,
    multifidus_fat: float = 0.5,
    lesions: bool = True,
    wide: bool = False,
) -> Scene:
    """Draw a phantom: anatomy and the standard set of lesions.

    The standard set (ids are stable; sizes and positions vary with the seed):
    ``N1`` subcutaneous encapsulated nodule (episacroiliac lipoma) on the
    right; ``N2`` transfascial nodule above the sacrum on the left; ``N3``
    subfascial nodule on the left; ``N4`` small (8–10 mm) subcutaneous nodule
    on the right; ``P1`` non-encapsulated fat prominence on the left; ``C1``
    sebaceous-like cyst under the skin on either side; with ``red_flag``, ``X1``,
    a large (> 50 mm) transfascial nodule with a solid component on the right.

    Parameters
    ----------
    seed : int
        Determines everything.
    red_flag : bool
        Add the liposarcoma-like nodule.
    multifidus_fat : float
        Fatty streaking of the multifidus, 0–1.
    lesions : bool
        False for anatomy only.
    wide : bool
        Draw the *wide* family (``docs/phantom.md``): the anatomy of
        :func:`~backmice.phantom.anatomy.build_anatomy` with ``wide=True``, and
        nodules with capsules of 0.6–1.8 mm (a third of them with a gap), any
        orientation, anywhere in the layer (touching the fascia, touching the
        dermis, centred, on a long septum, at any depth): ``N1`` (16–36 mm),
        ``N5`` (10–28 mm) and ``N4`` (8–12 mm) subcutaneous, ``N2``
        transfascial and ``N3`` subfascial, plus ``P1`` and ``C1`` as in the
        standard set. ``red_flag`` is ignored. Each nodule too thick for the
        layer where it falls is scaled down to fill 70–95 % of it.

    Returns
    -------
    Scene

    Raises
    ------
    PlacementError
        If a lesion finds no room (try another seed).
    """
    if wide:
        anatomy = build_anatomy(seed, wide=True)
        return Scene(anatomy, _wide_lesions(anatomy, seed) if lesions else [], int(seed))
    anatomy = build_anatomy(seed, multifidus_fat=multifidus_fat)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 2]))
    plans = (([_RED_FLAG] if red_flag else []) + list(_STANDARD)) if lesions else []
    placed: list[Lesion] = []
    for plan in plans:
        last: Exception | None = None
        for _attempt in range(40):
            z_off = anatomy.sacrum_top_z_mm if plan.rel_top else 0.0
            semi = _semi_axes(rng, plan.semi)
            side = plan.side or float(rng.choice([-1.0, 1.0]))
            try:
                lesion = place_lesion(
                    anatomy,
                    plan.lesion_id,
                    plan.kind,
                    x_mm=side * rng.uniform(*plan.abs_x),
                    z_mm=z_off + rng.uniform(*plan.z),
                    semi_axes_mm=semi,
                    relation=plan.relation,
                    tilt_deg=rng.uniform(-25.0, 25.0),
                    wall_mm=plan.wall_mm,
                    depth_fraction=rng.uniform(-0.3, 0.3),
                    solid_semi_axes_mm=plan.solid,
                    bump_mm=plan.bump_mm,
                    skin_gap_mm=plan.skin_gap_mm,
                )
            except PlacementError as exc:
                last = exc
                continue
            if not _within_z(lesion):
                last = PlacementError(f"{plan.lesion_id}: outside the lesion z range")
                continue
            if any(_overlaps(lesion, other, 4.0) for other in placed):
                last = PlacementError(f"{plan.lesion_id}: overlaps another lesion")
                continue
            placed.append(lesion)
            break
        else:
            raise PlacementError(f"seed {seed}: could not place {plan.lesion_id} ({last})")
    order = {p.lesion_id: i for i, p in enumerate((_RED_FLAG, *_STANDARD))}
    placed.sort(key=lambda les: order[les.id])
    return Scene(anatomy, placed, int(seed))
