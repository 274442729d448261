"""Lesions of the phantom: what they are, and where they are placed.

Every lesion has an ellipsoidal *core* (the fat core of a nodule, the fat of a
prominence, the content of a cyst). Encapsulated nodules and cysts have a wall
of ``wall_mm`` around the core (the grown ellipsoid minus the core); a
liposarcoma-like nodule also has a non-fat solid component inside its core,
which is not part of the fat core. A fat prominence has no wall; it lifts the
skin above it by ``bump_mm``.

Placement puts the core's shortest axis along the fascia's normal and then
shifts the lesion along that normal until its relation to the fascia (by the
rule of ``docs/SPEC.md`` on the minimum and maximum signed distance over the core)
is the one asked for, with a margin.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from backmice.errors import PlacementError
from backmice.phantom.anatomy import Anatomy
from backmice.phantom.shapes import Ellipsoid
from backmice.phantom.surfaces import SurfacePatch
from backmice.vocab import Relation

__all__ = [
    "Lesion",
    "LesionKind",
    "PlacementError",
    "Relation",
    "fascia_frame",
    "layer_thickness",
    "place_in_layer",
    "place_lesion",
]


class LesionKind(enum.StrEnum):
    """What a lesion of the phantom is."""

    #: A fat core in a thin dark fibrous capsule (a back mouse).
    ENCAPSULATED_FAT_NODULE = "encapsulated_fat_nodule"
    #: Focal fat without a capsule, blending into the subcutaneous fat, lifting the skin.
    FAT_PROMINENCE = "fat_prominence"
    #: A non-fat (fluid) cyst with a thin wall just under the skin, sebaceous-cyst-like.
    CYST = "cyst"
    #: A large encapsulated fat nodule with a non-fat solid component (a red flag).
    LIPOSARCOMA_LIKE = "liposarcoma_like"


@dataclass(frozen=True)
class Lesion:
    """One lesion of a phantom.

    Attributes
    ----------
    id : str
        Stable name within the phantom (``N1``, ``P1``, ``C1``, ...).
    kind : LesionKind
    core : Ellipsoid
        The core (LPS mm).
    wall_mm : float
        Thickness of the capsule or cyst wall, mm (0 for none).
    solid : Ellipsoid or None
        Non-fat solid component, wholly inside the core.
    bump_mm : float
        Height of the skin bulge over the lesion, mm.
    intended : Relation
        The relation to the fascia it was placed for.
    gap_dir : ndarray of shape (3,) or None
        An incomplete capsule (wide family): unit direction, in the core's
        own frame scaled to a unit sphere, of the centre of the gap in the wall.
    gap_deg : float
        Half angle of the gap (about ``gap_dir``, in that scaled frame), degrees.
    placement : str or None
        How the lesion was placed in the wide family (``fascia``, ``dermis``,
        ``centred``, ``septum``, ``depth``, or the relation's name).
    """

    id: str
    kind: LesionKind
    core: Ellipsoid
    wall_mm: float = 0.0
    solid: Ellipsoid | None = None
    bump_mm: float = 0.0
    intended: Relation = Relation.SUBCUTANEOUS
    gap_dir: np.ndarray | None = field(default=None, compare=False)
    gap_deg: float = 0.0
    placement: str | None = None

    def in_gap(self, points: np.ndarray) -> np.ndarray:
        """Boolean mask of the points in the capsule's gap cone, shape (N,) (all False if none)."""
        if self.gap_dir is None:
            return np.zeros(len(points), dtype=bool)
        q = self.core.local(points) / self.core.semi_axes
        norm = np.linalg.norm(q, axis=1)
        return q @ self.gap_dir > math.cos(math.radians(self.gap_deg)) * norm

    @property
    def outer(self) -> Ellipsoid:
        """The core grown by the wall (the lesion's outer surface)."""
        return self.core.grown(self.wall_mm) if self.wall_mm > 0 else self.core

    @property
    def has_capsule(self) -> bool:
        """True for lesions with a fibrous capsule (encapsulated and liposarcoma-like)."""
        return self.kind in (LesionKind.ENCAPSULATED_FAT_NODULE, LesionKind.LIPOSARCOMA_LIKE)

    @property
    def is_fat(self) -> bool:
        """True when the core is fat."""
        return self.kind is not LesionKind.CYST


def fascia_frame(
    anatomy: Anatomy, theta: float, z: float, *, which: str = "fascia"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A point of a surface and an orthonormal frame there.

    Returns
    -------
    point, t_theta, t_z, normal : ndarray of shape (3,)
        The surface point (LPS mm); the unit tangent along increasing θ (in the
        axial plane); the unit tangent closest to +z; the outward unit normal.
    """
    h_t, h_z = 1e-3, 0.5
    pts = anatomy.surface_points(
        which,
        np.array([theta, theta - h_t, theta + h_t, theta, theta]),
        np.array([z, z, z, z - h_z, z + h_z]),
    )
    p = pts[0]
    t_theta = pts[2] - pts[1]
    t_z = pts[4] - pts[3]
    normal = np.cross(t_theta, t_z)
    normal /= np.linalg.norm(normal)
    if normal[0] * p[0] + normal[1] * p[1] < 0:
        normal = -normal
    t_theta /= np.linalg.norm(t_theta)
    t_z = np.cross(normal, t_theta)
    if t_z[2] < 0:
        t_z = -t_z
    return p, t_theta, t_z, normal


def _frame_rotation(
    t_theta: np.ndarray,
    t_z: np.ndarray,
    normal: np.ndarray,
    tilt_deg: float,
    pitch_deg: float = 0.0,
):
    """Rotation whose columns are (long axis, middle axis, short axis).

    The long axis makes ``tilt_deg`` with the axial tangent (toward +z) in the
    surface's tangent plane; ``pitch_deg`` then turns the long and short axes
    about the middle axis, out of the tangent plane (0: short axis along the
    normal).
    """
    a = math.radians(tilt_deg)
    e_a = math.cos(a) * t_theta + math.sin(a) * t_z
    e_c = normal
    e_b = np.cross(e_c, e_a)
    if pitch_deg:
        p = math.radians(pitch_deg)
        e_a, e_c = math.cos(p) * e_a + math.sin(p) * e_c, -math.sin(p) * e_a + math.cos(p) * e_c
    return np.column_stack([e_a, e_b, e_c])


def place_lesion(
    anatomy: Anatomy,
    lesion_id: str,
    kind: LesionKind,
    *,
    x_mm: float,
    z_mm: float,
    semi_axes_mm: tuple[float, float, float],
    relation: Relation,
    tilt_deg: float = 0.0,
    wall_mm: float = 0.0,
    depth_fraction: float = 0.0,
    solid_semi_axes_mm: tuple[float, float, float] | None = None,
    bump_mm: float = 0.0,
    skin_gap_mm: float | None = None,
    pitch_deg: float = 0.0,
    capsule_gap: tuple[np.ndarray, float] | None = None,
) -> Lesion:
    """Place a lesion over the posterior fascia near ``(x_mm, z_mm)``.

    Parameters
    ----------
    anatomy : Anatomy
    lesion_id : str
    kind : LesionKind
    x_mm, z_mm : float
        Where (LPS x and z, mm) on the posterior fascia to put it.
    semi_axes_mm : (float, float, float)
        Semi-axes of the core, largest first; the last one lies along the
        fascia's normal.
    relation : Relation
        Wanted relation to the fascia.
    tilt_deg : float
        Angle of the long axis from the axial plane, toward +z.
    wall_mm : float
        Capsule or cyst wall thickness, mm.
    depth_fraction : float
        For a transfascial lesion, the centre's offset from the fascia as a
        fraction of the normal semi-axis (−0.4 … 0.4).
    solid_semi_axes_mm : (float, float, float), optional
        A solid component of this size is put inside the core, off centre.
    bump_mm : float
        Skin bulge height over the lesion.
    skin_gap_mm : float, optional
        Instead of a margin from the fascia, put the lesion's outer surface
        this far under the dermis (a cyst just under the skin).

    Returns
    -------
    Lesion

    Raises
    ------
    PlacementError
        When the lesion would reach the skin or a bone.
    """
    theta = anatomy.theta_at_x(x_mm, z_mm)
    p, t_theta, t_z, normal = fascia_frame(anatomy, theta, z_mm)
    rot = _frame_rotation(t_theta, t_z, normal, tilt_deg, pitch_deg)
    semi = np.asarray(semi_axes_mm, dtype=np.float64)
    c = float(semi[2])
    fascia = SurfacePatch(anatomy.tables, "fascia", p, float(semi.max()) * 2 + 20.0, step_mm=0.6)
    margin = 1.0 + 0.6  # beyond the SPEC's ±1 mm rule
    if relation is Relation.SUBCUTANEOUS:
        offset, target, use_min = c + margin + wall_mm, margin + wall_mm, True
    elif relation is Relation.SUBFASCIAL:
        target = -(anatomy.fascia_mm + wall_mm + 0.6)
        offset, use_min = -c + target, False
    else:
        offset, target, use_min = depth_fraction * c, None, None

    core = Ellipsoid(p + offset * normal, semi, rot)
    if target is not None:
        for _ in range(4):
            d = fascia.signed_distance(core.surface_points(600))
            got = d.min() if use_min else d.max()
            if abs(got - target) < 0.02:
                break
            offset += target - got
            core = Ellipsoid(p + offset * normal, semi, rot)

    if skin_gap_mm is not None:
        for _ in range(4):
            pts = Ellipsoid(core.centre, semi + wall_mm, rot).surface_points(1500)
            r = np.hypot(pts[:, 0], pts[:, 1])
            inner = anatomy.skin_radius(np.arctan2(pts[:, 1], pts[:, 0]), pts[:, 2])
            gap = float((inner - anatomy.skin_mm - r).min())
            if abs(gap - skin_gap_mm) < 0.02:
                break
            offset += gap - skin_gap_mm
            core = Ellipsoid(p + offset * normal, semi, rot)

    solid = None
    if solid_semi_axes_mm is not None:
        s_semi = np.asarray(solid_semi_axes_mm, dtype=np.float64)
        # Off centre along the long axis, deep side, wholly inside the core with 1.5 mm to spare.
        shift = max(0.0, semi[0] - s_semi[0] - 1.5) * 0.5
        solid = Ellipsoid(core.centre + shift * rot[:, 0] - 0.2 * c * normal, s_semi, rot)
        inner_core = Ellipsoid(core.centre, semi - 1.5, rot)
        if not inner_core.contains(solid.surface_points(2000)).all():
            raise PlacementError(f"{lesion_id}: solid component does not fit inside the core")

    lesion = Lesion(
        lesion_id,
        kind,
        core,
        wall_mm=wall_mm,
        solid=solid,
        bump_mm=bump_mm,
        intended=relation,
        **_gap_fields(capsule_gap),
    )
    _check_clearance(anatomy, lesion)
    return lesion


def _gap_fields(gap: tuple[np.ndarray, float] | None) -> dict:
    if gap is None:
        return {}
    d = np.asarray(gap[0], dtype=np.float64)
    return {"gap_dir": d / np.linalg.norm(d), "gap_deg": float(gap[1])}


def _support(e: Ellipsoid, direction: np.ndarray) -> float:
    """Half extent of an ellipsoid along a unit direction, mm."""
    return float(np.linalg.norm((e.rotation.T @ direction) * e.semi_axes))


def _dermis_gap(anatomy: Anatomy, e: Ellipsoid) -> float:
    """Least radial room (mm) between an ellipsoid and the dermis (negative: it crosses)."""
    pts = e.surface_points(1500)
    r = np.hypot(pts[:, 0], pts[:, 1])
    inner = anatomy.skin_radius(np.arctan2(pts[:, 1], pts[:, 0]), pts[:, 2]) - anatomy.skin_mm
    return float((inner - r).min())


def layer_thickness(
    anatomy: Anatomy,
    theta: float,
    z_mm: float,
    *,
    skin_radius: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
) -> float:
    """Thickness (mm) of the subcutaneous fat at ``(theta, z_mm)``, along the fascia's normal.

    From the fascia surface to the inner face of the dermis (found by
    bisection to 0.001 mm). ``skin_radius`` replaces the anatomy's skin (a
    scene's, lifted over prominences).
    """
    skin = skin_radius or anatomy.skin_radius
    p, _, _, normal = fascia_frame(anatomy, theta, z_mm)

    def room(s: float) -> float:
        q = p + s * normal
        r_skin = float(skin(np.array([math.atan2(q[1], q[0])]), np.array([q[2]]))[0])
        return r_skin - anatomy.skin_mm - math.hypot(q[0], q[1])

    lo, hi = 0.0, 10.0
    while room(hi) > 0 and hi < 400.0:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if room(mid) > 0 else (lo, mid)
        if hi - lo < 1e-3:
            break
    return 0.5 * (lo + hi)


def place_in_layer(
    anatomy: Anatomy,
    lesion_id: str,
    kind: LesionKind,
    *,
    theta: float,
    z_mm: float,
    semi_axes_mm: tuple[float, float, float],
    where: str,
    value: float,
    tilt_deg: float = 0.0,
    pitch_deg: float = 0.0,
    wall_mm: float = 0.0,
    fill: float = 0.9,
    capsule_gap: tuple[np.ndarray, float] | None = None,
) -> Lesion:
    """Place a lesion anywhere in the subcutaneous fat layer (the wide family).

    The lesion is put on the fascia's normal at ``(theta, z_mm)``, oriented by
    ``tilt_deg`` (long axis in the tangent plane, from the axial direction)
    and ``pitch_deg`` (long axis out of the tangent plane, toward the normal),
    at a depth set by ``where``:

    * ``"fascia"``: the outer (capsule) surface ``value`` mm above the fascia;
    * ``"dermis"``: the outer surface ``value`` mm (radially) under the dermis;
    * ``"depth"``: the centre at fraction ``value`` of the free room across the
      layer (0 outer surface on the fascia, 0.5 centred, 1 on the dermis);
    * ``"radius"``: the centre at radius ``value`` mm (on a septum).

    A lesion thicker across the layer than ``fill`` times the layer's local
    thickness is scaled down to that (it fills most of a thin layer).

    Parameters
    ----------
    anatomy : Anatomy
    lesion_id : str
    kind : LesionKind
    theta, z_mm : float
        Where on the posterior fascia (rad, mm).
    semi_axes_mm : (float, float, float)
        Semi-axes of the core, largest first, mm.
    where : {"fascia", "dermis", "depth", "radius"}
    value : float
        See ``where``.
    tilt_deg, pitch_deg : float
        Orientation (see above), degrees.
    wall_mm : float
        Capsule thickness, mm.
    fill : float
        Largest share of the layer's thickness the lesion may take.
    capsule_gap : (ndarray of shape (3,), float), optional
        An incomplete capsule (see :class:`Lesion`).

    Returns
    -------
    Lesion

    Raises
    ------
    PlacementError
        When it leaves the layer, comes out smaller than 2 mm, or reaches a bone.
    """
    p, t_theta, t_z, normal = fascia_frame(anatomy, theta, z_mm)
    rot = _frame_rotation(t_theta, t_z, normal, tilt_deg, pitch_deg)
    semi = np.asarray(semi_axes_mm, dtype=np.float64)
    layer = layer_thickness(anatomy, theta, z_mm)
    h = _support(Ellipsoid(p, semi, rot), normal)
    if 2 * (h + wall_mm) > fill * layer:
        semi = semi * max(0.0, fill * layer / 2 - wall_mm) / h
    if semi.min() < 2.0:
        raise PlacementError(f"{lesion_id}: the layer ({layer:.1f} mm) is too thin here")
    h = _support(Ellipsoid(p, semi, rot), normal) + wall_mm
    if where == "fascia":
        offset = h + value
    elif where == "dermis":
        offset = layer - h - value
    elif where == "depth":
        offset = h + value * (layer - 2 * h)
    elif where == "radius":
        offset = value - math.hypot(p[0], p[1])
    else:
        raise ValueError(f"unknown placement {where!r}")
    core = Ellipsoid(p + offset * normal, semi, rot)
    fascia = SurfacePatch(anatomy.tables, "fascia", p, float(semi.max()) * 2 + 20.0, step_mm=0.6)
    for _ in range(5):
        outer = core.grown(wall_mm) if wall_mm > 0 else core
        if where == "fascia":
            miss = value - float(fascia.signed_distance(outer.surface_points(800)).min())
        elif where == "dermis":
            miss = _dermis_gap(anatomy, outer) - value
        else:
            break
        if abs(miss) < 0.02:
            break
        offset += miss
        core = Ellipsoid(p + offset * normal, semi, rot)
    outer = core.grown(wall_mm) if wall_mm > 0 else core
    if float(fascia.signed_distance(outer.surface_points(2000)).min()) < -0.05:
        raise PlacementError(f"{lesion_id}: crosses the fascia")
    if _dermis_gap(anatomy, outer) < -0.05:
        raise PlacementError(f"{lesion_id}: crosses the dermis")
    lesion = Lesion(
        lesion_id,
        kind,
        core,
        wall_mm=wall_mm,
        intended=Relation.SUBCUTANEOUS,
        placement=where,
        **_gap_fields(capsule_gap),
    )
    _check_clearance(anatomy, lesion, skin_room_mm=None)
    return lesion


def _check_clearance(
    anatomy: Anatomy, lesion: Lesion, *, skin_room_mm: float | None = -1.0
) -> None:
    """Raise PlacementError if the lesion reaches the dermis, a bone or the canal.

    ``skin_room_mm`` is the room kept under the dermis (default: 0.2 mm for a
    cyst, 1 mm otherwise; None: not checked here).
    """
    pts = lesion.outer.surface_points(3000)
    if skin_room_mm is not None:
        theta = np.arctan2(pts[:, 1], pts[:, 0])
        r = np.hypot(pts[:, 0], pts[:, 1])
        skin_r = anatomy.skin_radius(theta, pts[:, 2])
        room = (
            skin_room_mm if skin_room_mm >= 0 else (0.2 if lesion.kind is LesionKind.CYST else 1.0)
        )
        if np.any(r > skin_r - anatomy.skin_mm - room):
            raise PlacementError(f"{lesion.id}: reaches the skin")
    inner = lesion.outer.interior_points(1.5)
    allpts = np.concatenate([pts, inner])
    for bone in [*anatomy.bones, *anatomy.bone_holes]:
        if np.any(bone.field(allpts) < 2.0):
            raise PlacementError(f"{lesion.id}: reaches a bone")
