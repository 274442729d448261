"""Ground truth of a phantom, computed from the model (never from voxels).

:func:`lesion_truth` gives, for one lesion, every quantity ``docs/SPEC.md`` asks
the analysis to measure, computed exactly where the geometry allows it (an
ellipsoid's volume, diameters, moments and plane sections) and by dense
sampling of the model otherwise (fascia and skin distances, to about
0.01 mm). :func:`truth_document` assembles the ``truth.json`` written beside
every study; its fields are described in ``docs/phantom.md``.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from backmice.phantom.lesions import (
    Lesion,
    LesionKind,
    Relation,
    fascia_frame,
    layer_thickness,
)
from backmice.phantom.render import Grid
from backmice.phantom.scene import Scene
from backmice.phantom.shapes import Ellipsoid
from backmice.phantom.surfaces import SurfacePatch
from backmice.phantom.tissues import TISSUE_PROPERTIES, Tissue
from backmice.vocab import RedFlag

__all__ = [
    "MIDLINE_TOLERANCE_MM",
    "TRUTH_SCHEMA_VERSION",
    "core_truth",
    "lesion_truth",
    "read_truth",
    "series_sections",
    "truth_document",
    "truth_samples",
    "write_truth",
]

#: Version of the truth.json layout; bumped on any incompatible change.
TRUTH_SCHEMA_VERSION = 1
#: ``side`` is ``midline`` within this distance of the midsagittal plane (SPEC).
MIDLINE_TOLERANCE_MM = 5.0
#: The body's midsagittal plane is x = 0 (spine and sacrum are centred on it).
MIDLINE_X_MM = 0.0

_DECIMALS = 4


def _r(value: float, decimals: int = _DECIMALS) -> float:
    return round(float(value), decimals) + 0.0


def _rl(values: Any, decimals: int = _DECIMALS) -> list:
    return [
        _r(v, decimals) if np.ndim(v) == 0 else _rl(v, decimals)
        for v in np.asarray(values, dtype=np.float64)
    ]


def _core_moments(lesion: Lesion) -> tuple[float, np.ndarray, np.ndarray]:
    """Volume (mm³), centroid (LPS mm) and second moment about it (mm⁵) of the core.

    The core is the ellipsoid minus the solid component, if any (exact: the
    solid lies wholly inside).
    """
    e = lesion.core
    vol, cen, mom = e.volume_mm3, e.centre, e.second_moment()
    if lesion.solid is None:
        return vol, cen.copy(), mom
    s = lesion.solid
    v = vol - s.volume_mm3
    c = (vol * cen - s.volume_mm3 * s.centre) / v

    def about(m: np.ndarray, volume: float, centre: np.ndarray) -> np.ndarray:
        d = centre - c
        return m + volume * np.outer(d, d)

    m = about(mom, vol, cen) - about(s.second_moment(), s.volume_mm3, s.centre)
    return v, c, m


def _relation_subtype(lesion: Lesion, relation: Relation, below_sacrum_top: bool) -> str:
    if lesion.kind is LesionKind.LIPOSARCOMA_LIKE:
        return "liposarcoma_suspected"
    if lesion.kind is LesionKind.CYST:
        return "sebaceous_cyst"
    if relation is not Relation.SUBCUTANEOUS:
        return "lumbosacral_fat_herniation" if below_sacrum_top else "lumbar_fascial_fat_herniation"
    if lesion.has_capsule:
        return "episacroiliac_lipoma"
    return "non_encapsulated_fat_prominence"


def series_sections(lesion: Lesion, grid: Grid) -> dict[str, Any] | None:
    """Where a lesion's core is largest on a series' slice planes, and its axes there.

    Each slice is represented by its central plane. ``long_axis_mm`` and
    ``short_axis_mm`` are the major and minor diameters of the core's exact
    section by the plane with the largest section (for an ellipse, the
    longest diameter and the longest one perpendicular to it). For a
    liposarcoma-like nodule they are those of the outer core ellipsoid.

    Returns
    -------
    dict or None
        ``slice_index``, ``long_axis_mm``, ``short_axis_mm``, ``slices`` (first
        and last slice index whose plane cuts the core); None if no slice does.
    """
    normal = grid.plane_normal()
    best: tuple[float, int, tuple[float, float]] | None = None
    cut: list[int] = []
    for k in range(grid.shape[0]):
        centre = grid.index_to_lps(
            np.array([[k, (grid.shape[1] - 1) / 2, (grid.shape[2] - 1) / 2]])
        )[0]
        sec = lesion.core.section(centre, normal)
        if sec is None:
            continue
        cut.append(k)
        area = sec[0] * sec[1]
        if best is None or area > best[0]:
            best = (area, k, sec)
    if best is None:
        return None
    return {
        "slice_index": best[1],
        "long_axis_mm": _r(2 * best[2][0]),
        "short_axis_mm": _r(2 * best[2][1]),
        "slices": [cut[0], cut[-1]],
    }


def lesion_truth(scene: Scene, lesion: Lesion) -> dict[str, Any]:
    """Every truth value of one lesion (see ``docs/phantom.md`` for the fields).

    The result is computed once per scene and lesion; each call returns a copy.
    """
    key = ("lesion_truth", lesion.id)
    if key not in scene.cache:
        scene.cache[key] = _lesion_truth(scene, lesion)
    return copy.deepcopy(scene.cache[key])


def truth_samples(core: Ellipsoid) -> np.ndarray:
    """Points of a core at which its fascia and skin distances are taken (LPS mm).

    About one surface point per 0.2 mm² plus the interior on a 2 mm lattice.

    Returns
    -------
    ndarray of shape (N, 3)
    """
    a = float(core.semi_axes.max())
    area = 4.0 * math.pi * a * a
    n_surface = int(np.clip(area / 0.2, 2000, 30000))
    return np.concatenate([core.surface_points(n_surface), core.interior_points(2.0)])


def core_truth(
    lesion: Lesion,
    *,
    d_fascia: np.ndarray,
    fascia_offset_mm: float,
    skin_depth_mm: float,
    midline_x_mm: float,
    below_sacrum_top: bool,
    fat_fraction: float | None,
) -> dict[str, Any]:
    """The truth record of one lesion, from its geometry and its distances to the anatomy.

    The one place that turns a lesion into the fields of ``truth.json`` (the
    phantom takes the distances from its analytic surfaces, nodules inserted
    into a real study from that study's maps: :mod:`backmice.phantom.insert`).

    Parameters
    ----------
    lesion : Lesion
    d_fascia : ndarray of shape (N,)
        Signed fascia distance (mm, + superficial) at :func:`truth_samples` of
        the core.
    fascia_offset_mm : float
        Signed fascia distance of the core's centroid, mm.
    skin_depth_mm : float
        Least distance from the skin surface to the core, mm.
    midline_x_mm : float
        LPS x of the midsagittal plane, mm.
    below_sacrum_top : bool
        Whether the centroid lies below the top of the sacrum.
    fat_fraction : float or None
        Fat fraction of the core's tissue.

    Returns
    -------
    dict
        JSON-ready; ``sections`` is empty (see :func:`series_sections`).
    """
    core = lesion.core
    volume, centroid, moment = _core_moments(lesion)
    cov = moment / volume
    eig = np.sort(np.linalg.eigvalsh(cov))[::-1]
    # Diameters of the ellipsoid with the same second moments (largest first).
    axes = 2.0 * np.sqrt(5.0 * np.clip(eig, 0.0, None))
    a = float(core.semi_axes.max())
    fmin, fmax = float(np.min(d_fascia)), float(np.max(d_fascia))
    relation = Relation.from_extent(fmin, fmax)
    x_off = float(centroid[0] - midline_x_mm)
    side = "midline" if abs(x_off) <= MIDLINE_TOLERANCE_MM else ("left" if x_off > 0 else "right")
    # The published criteria (backmice.vocab.RedFlag), from the model: larger
    # than 10 cm, a nodular non-fat (solid) area, less than 75 % fat.
    red_flags = []
    if 2 * a > 100.0:
        red_flags.append(str(RedFlag.SIZE_OVER_100MM))
    if lesion.solid is not None:
        red_flags.append(str(RedFlag.NONFAT_COMPONENT))
        if volume / core.volume_mm3 < 0.75:
            red_flags.append(str(RedFlag.FAT_UNDER_75PCT))
    if not lesion.is_fat:
        red_flags.append(str(RedFlag.NOT_FAT))
    truth: dict[str, Any] = {
        "id": lesion.id,
        "kind": str(lesion.kind),
        "relation": str(relation),
        "intended_relation": str(lesion.intended),
        "expected_subtype": _relation_subtype(lesion, relation, below_sacrum_top),
        "red_flags": red_flags,
        "encapsulated": lesion.has_capsule,
        "wall_mm": _r(lesion.wall_mm),
        "centre_lps_mm": _rl(core.centre),
        "centroid_lps_mm": _rl(centroid),
        "semi_axes_mm": _rl(core.semi_axes),
        "rotation": _rl(core.rotation, 8),
        "core_volume_mm3": _r(volume),
        "max_diameter_mm": _r(2 * a),
        "axes_mm": _rl(axes),
        "fascia_offset_mm": _r(fascia_offset_mm),
        "fascia_min_mm": _r(fmin),
        "fascia_max_mm": _r(fmax),
        "skin_depth_mm": _r(skin_depth_mm),
        "side": side,
        "midline_distance_mm": _r(abs(x_off)),
        "below_sacrum_top": bool(below_sacrum_top),
        "fat_fraction": None if fat_fraction is None else _r(fat_fraction),
        "skin_bump_mm": _r(lesion.bump_mm),
        "solid": None,
        "sections": {},
    }
    if lesion.solid is not None:
        s = lesion.solid
        truth["solid"] = {
            "centre_lps_mm": _rl(s.centre),
            "semi_axes_mm": _rl(s.semi_axes),
            "rotation": _rl(s.rotation, 8),
            "volume_mm3": _r(s.volume_mm3),
        }
    return truth


def _lesion_truth(scene: Scene, lesion: Lesion) -> dict[str, Any]:
    core = lesion.core
    _, centroid, _ = _core_moments(lesion)
    samples = truth_samples(core)
    reach = 3.0 * float(core.semi_axes.max()) + 15.0
    fascia = SurfacePatch(scene.tables, "fascia", core.centre, reach, step_mm=1.5)
    skin = SurfacePatch(scene.tables, "skin", core.centre, reach, step_mm=1.5)
    tissue = {
        LesionKind.ENCAPSULATED_FAT_NODULE: Tissue.LESION_FAT,
        LesionKind.LIPOSARCOMA_LIKE: Tissue.LESION_FAT,
        LesionKind.FAT_PROMINENCE: Tissue.PROMINENCE_FAT,
        LesionKind.CYST: Tissue.CYST,
    }[lesion.kind]
    truth = core_truth(
        lesion,
        d_fascia=fascia.signed_distance(samples),
        fascia_offset_mm=float(fascia.signed_distance(centroid[None, :])[0]),
        skin_depth_mm=float(skin.distance(samples).min()),
        midline_x_mm=MIDLINE_X_MM,
        below_sacrum_top=bool(centroid[2] < scene.anatomy.sacrum_top_z_mm),
        fat_fraction=TISSUE_PROPERTIES[tissue].fat_fraction,
    )
    if scene.anatomy.wide:
        truth["wide"] = _wide_truth(scene, lesion, fascia)
    return truth


def _wide_truth(scene: Scene, lesion: Lesion, fascia: SurfacePatch) -> dict[str, Any]:
    """What the wide family varies, for one lesion (``truth.json`` ``lesions[].wide``).

    ``placement``; the capsule's gap (half angle, and the LPS point at the
    middle of the gap on the outer surface); the outer surface's least
    distance to the fascia (signed) and radial room under the dermis; the
    local layer thickness (along the fascia's normal, at the centre's θ and z); whether a septum,
    and whether a long one, touches the lesion (septum tissue within 0.3 mm of
    its outer surface); and the angle of the short axis from the fascia's normal at the centre.
    """
    outer = lesion.outer
    surface = outer.surface_points(4000)
    theta = np.arctan2(surface[:, 1], surface[:, 0])
    r = np.hypot(surface[:, 0], surface[:, 1])
    skin_r = scene.skin_radius(theta, surface[:, 2])
    c = lesion.core.centre
    th_c = np.array([math.atan2(c[1], c[0])])
    z_c = np.array([c[2]])
    layer = layer_thickness(
        scene.anatomy, float(th_c[0]), float(z_c[0]), skin_radius=scene.skin_radius
    )
    shell = outer.grown(0.3).surface_points(6000)
    on_septum = scene.classify(shell).labels == Tissue.SEPTUM
    th_s = np.arctan2(shell[:, 1], shell[:, 0])
    on_long = np.zeros_like(on_septum)
    for sep in scene.anatomy.long_septa:
        d_theta = np.abs(np.angle(np.exp(1j * (th_s - sep.theta_c))))
        on_long |= (
            on_septum & (d_theta <= sep.half_theta) & (np.abs(shell[:, 2] - sep.z_c) <= sep.half_z)
        )
    gap = None
    if lesion.gap_dir is not None:
        mid = c + lesion.core.rotation @ (lesion.gap_dir * outer.semi_axes)
        gap = {"half_angle_deg": _r(lesion.gap_deg), "centre_lps_mm": _rl(mid)}
    _, _, _, normal = fascia_frame(scene.anatomy, float(th_c[0]), float(c[2]))
    short = lesion.core.rotation[:, 2]
    tilt = math.degrees(math.acos(min(1.0, abs(float(short @ normal)))))
    return {
        "placement": lesion.placement,
        "capsule_gap": gap,
        "outer_fascia_min_mm": _r(float(fascia.signed_distance(surface).min())),
        "outer_dermis_room_mm": _r(float((skin_r - scene.anatomy.skin_mm - r).min())),
        "layer_mm": _r(layer),
        "touches_septum": bool(on_septum.any()),
        "touches_long_septum": bool(on_long.any()),
        "short_axis_from_normal_deg": _r(tilt, 2),
    }


def truth_document(
    scene: Scene,
    *,
    sample: str,
    series: list[dict[str, Any]],
    grids: dict[str, Grid] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole ``truth.json`` of a study.

    Parameters
    ----------
    scene : Scene
    sample : str
        Name of the sample (or a free name).
    series : list of dict
        One entry per written series (geometry and acquisition; see
        :mod:`backmice.phantom.study`). Each needs ``series_uid``.
    grids : dict of str to Grid, optional
        Grid of each MR series by series UID, for per-series lesion sections.
    extra : dict, optional
        More top-level fields (e.g. the ultrasound plane).

    Returns
    -------
    dict
        JSON-ready.
    """
    lesions = []
    for lesion in scene.lesions:
        t = lesion_truth(scene, lesion)
        for uid, grid in (grids or {}).items():
            sec = series_sections(lesion, grid)
            if sec is not None:
                t["sections"][uid] = sec
        lesions.append(t)
    an = scene.anatomy
    doc: dict[str, Any] = {
        "schema_version": TRUTH_SCHEMA_VERSION,
        "generator": "backmice.phantom",
        "sample": sample,
        "seed": scene.seed,
        "coordinates": "LPS mm (DICOM patient coordinates); +x patient left, +y posterior, +z up",
        "anatomy": {
            "midline_x_mm": MIDLINE_X_MM,
            "sacrum_top_z_mm": _r(an.sacrum_top_z_mm),
            "skin_mm": _r(an.skin_mm),
            "fascia_sheet_mm": _r(an.fascia_mm),
            "cortex_mm": _r(an.cortex_mm),
            **{k: v for k, v in an.params.items()},
        },
        "series": series,
        "lesions": lesions,
    }
    if extra:
        doc.update(extra)
    return doc


def write_truth(doc: dict[str, Any], path: str | Path) -> Path:
    """Write a truth document as indented, key-sorted JSON; returns the path."""
    path = Path(path)
    path.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def read_truth(path: str | Path) -> dict[str, Any]:
    """Read a ``truth.json`` (a file, or a study folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / "truth.json"
    return json.loads(path.read_text(encoding="utf-8"))
