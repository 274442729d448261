"""Encapsulated fat nodules drawn into a real MRI study, with exact ground truth.

:func:`insert_nodules` reads a real T1, Dixon (fat + water) or in/opposed-phase
study, finds its anatomy with backmice's own analysis (body and skin,
subcutaneous fat, the fascia and its signed distance: never its candidates),
draws ``count`` encapsulated fat nodules there at random, paints them into the
images with partial volume, and writes the modified series as DICOM (the
source files with new pixel data and new UIDs, every geometry tag kept) plus a
``truth.json`` in the phantom's format (:mod:`backmice.phantom.truth`).

What is drawn, for each nodule (from anatomy and the literature, not from what
any detector needs):

- its *kind*: ``subcutaneous`` (in the fat layer, anywhere between the
  fascia and the dermis, touching either or neither), ``transfascial`` (through
  a defect of the fascia: its centre within a quarter of its thickness of the fascia)
  or ``subfascial`` (just under the fascia, in muscle);
- its *size*: largest diameter 8–50 mm, log-uniform (back mice are mostly
  1–3 cm); an ellipsoid flattened like a lipoma, middle axis 0.5–1 and short
  axis 0.3–0.7 of the long one; in a fat layer too thin for it the short axis
  is flattened further, down to a quarter of the long one;
- its *orientation*: the short axis near the fascia's normal (tilted up to
  20°), the long axis at any angle about it;
- its *capsule*: a fibrous shell 0.6–1.8 mm thick, missing over a cap of
  30–120° in about a third of the nodules (an incomplete capsule);
- its *position*: a random point of the subcutaneous fat over the back.

How it is painted: every voxel the nodule touches is supersampled
(:func:`backmice.phantom.render.sub_offsets`, through the slice thickness), and
its new value is ``(1 − c − k)·original + c·fat + k·capsule`` for the shares
``c`` of core and ``k`` of capsule in it. The *fat* is the subject's own
subcutaneous fat: its local mean (a smooth map that follows the coil shading)
plus the residual of a random fat voxel of the same subject nearby, the same
voxel in every image of the study (so a Dixon pair or two echoes stay
consistent), so the core has the real fat's signal, noise and texture, also
where it reaches into muscle. The *capsule* is the subject's own muscle signal
in the same way. On an opposed-phase echo fat and water signals cancel, so the
mixing is done on the signed signal (fat negative) and the magnitude written.

The truth is exact for the geometry (ellipsoid volume, centroid, axes, the
sections on each series' slice planes); distances to the fascia and the skin
are taken from backmice's analysis of the source study *before* insertion, so
they are as right as that fascia (see ``docs/insert.md``).
"""

from __future__ import annotations

import functools
import logging
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pydicom
import pydicom.errors
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from scipy import ndimage

from backmice.errors import InputError, PlacementError
from backmice.io import Role, Stack, Study, load, open_study
from backmice.phantom.lesions import Lesion, LesionKind
from backmice.phantom.render import Grid, sub_offsets
from backmice.phantom.shapes import Ellipsoid
from backmice.phantom.truth import (
    TRUTH_SCHEMA_VERSION,
    core_truth,
    series_sections,
    truth_samples,
    write_truth,
)
from backmice.vocab import Relation

if TYPE_CHECKING:
    from backmice.analysis import Analysis

__all__ = [
    "CAPSULE_MM",
    "DERMIS_MM",
    "INCOMPLETE_SHARE",
    "KIND_WEIGHTS",
    "SIZE_MM",
    "Anatomy",
    "InsertWritten",
    "Nodule",
    "draw_nodules",
    "insert_nodules",
    "paint",
]

log = logging.getLogger(__name__)

#: Largest diameter of the drawn nodules, mm (back mice are 1–3 cm; 8–50 mm
#: spans what a reader meets, short of the 5 cm red flag).
SIZE_MM = (8.0, 50.0)
#: Capsule thickness, mm (a thin fibrous capsule; the fascia it arises near is
#: 1.8–2.1 mm on MRI at L3–S1).
CAPSULE_MM = (0.6, 1.8)
#: Share of nodules whose capsule misses over a cap (an incomplete capsule).
INCOMPLETE_SHARE = 1.0 / 3.0
#: Half-angle of that cap, degrees.
GAP_HALF_ANGLE_DEG = (15.0, 60.0)
#: How often each kind is drawn.
KIND_WEIGHTS: dict[Relation, float] = {
    Relation.SUBCUTANEOUS: 0.5,
    Relation.TRANSFASCIAL: 0.25,
    Relation.SUBFASCIAL: 0.25,
}
#: Depth of the dermis' deep face below the skin surface, mm (the skin of the
#: back is about 2–4 mm thick): no nodule comes closer to the skin surface.
DERMIS_MM = 3.0
#: Least room between two nodules' outer surfaces, mm.
GAP_BETWEEN_MM = 3.0
#: Deepest a subfascial or transfascial nodule reaches below the fascia, mm.
MAX_DEEP_MM = 35.0
#: Largest tilt of the short axis from the fascia's normal, degrees.
MAX_TILT_DEG = 20.0
#: Placement attempts per nodule before giving up.
ATTEMPTS = 400

_FAR_MM = 40.0  # donors are taken within this distance of the nodule when enough are


@dataclass(frozen=True)
class Nodule:
    """One drawn nodule.

    Attributes
    ----------
    lesion : Lesion
        Core ellipsoid (LPS mm), capsule thickness ``wall_mm`` and the kind
        drawn (``intended``).
    gap_axis : ndarray of shape (3,) or None
        For an incomplete capsule: the LPS direction, from the centre, of the
        cap where it is missing.
    gap_half_angle_deg : float
        Half-angle of that cap (0 for a complete capsule).
    """

    lesion: Lesion
    gap_axis: np.ndarray | None = None
    gap_half_angle_deg: float = 0.0

    def shares(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Which points are core and which capsule.

        Parameters
        ----------
        points : ndarray of shape (N, 3)
            LPS mm.

        Returns
        -------
        core, capsule : ndarray of bool, shape (N,)
        """
        les = self.lesion
        core = les.core.normalized_radius(points) < 1.0
        capsule = (les.outer.normalized_radius(points) < 1.0) & ~core
        if self.gap_axis is not None and capsule.any():
            d = points[capsule] - les.core.centre
            cos = (d @ self.gap_axis) / np.maximum(np.linalg.norm(d, axis=1), 1e-9)
            keep = cos < math.cos(math.radians(self.gap_half_angle_deg))
            capsule[np.flatnonzero(capsule)[~keep]] = False
        return core, capsule


@dataclass
class Anatomy:
    """The maps of a study that nodules are placed by and painted with.

    Attributes
    ----------
    images : list of ndarray of float32, shape (slice, row, col)
        The images to paint (T1; Dixon fat, water; in-phase, opposed-phase).
    signs : list of float
        −1 for an opposed-phase echo (mixed as a signed signal), else +1.
    affine : ndarray of shape (4, 4)
        Index to LPS mm.
    slice_thickness_mm : float
        The slab each slice integrates over.
    fascia_mm : ndarray of float32
        Signed distance to the fascia, mm (+ toward the skin).
    skin_mm : ndarray of float32
        Depth below the skin surface, mm.
    body, fat, subcutaneous, back : ndarray of bool
        The body, fat, the subcutaneous fat, and the posterior half of the body.
    fat_dominant : ndarray of bool
        Voxels where fat outweighs water (sign of an opposed-phase echo).
    fat_fraction : ndarray of float32 or None
        Dixon or two-point fat fraction.
    midline_x_mm : float
    sacrum_top_z_mm : float or None
    method : str
    study_uid : str
        StudyInstanceUID of the source (mixed into the seed, see :attr:`key`).
    """

    images: list[np.ndarray]
    signs: list[float]
    affine: np.ndarray
    slice_thickness_mm: float
    fascia_mm: np.ndarray
    skin_mm: np.ndarray
    body: np.ndarray
    fat: np.ndarray
    subcutaneous: np.ndarray
    back: np.ndarray
    fat_dominant: np.ndarray
    fat_fraction: np.ndarray | None
    midline_x_mm: float
    sacrum_top_z_mm: float | None
    method: str
    study_uid: str = ""
    _inverse: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._inverse = np.linalg.inv(self.affine)

    @property
    def key(self) -> int:
        """A number of the source study (its StudyInstanceUID) that the draws are seeded with
        beside the seed: one seed draws different nodules in different studies."""
        return zlib.crc32(self.study_uid.encode())

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slice, row, col)``."""
        n_slices, rows, cols = self.fascia_mm.shape
        return (n_slices, rows, cols)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """``(slice, row, col)`` spacing, mm."""
        ds, dr, dc = (float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        return (ds, dr, dc)

    @property
    def grid(self) -> Grid:
        """The voxel grid (with the slab thickness)."""
        return Grid(self.shape, self.affine, self.slice_thickness_mm)

    def index_of(self, points: np.ndarray) -> np.ndarray:
        """Fractional ``(slice, row, col)`` of LPS points, shape (N, 3)."""
        p = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return p @ self._inverse[:3, :3].T + self._inverse[:3, 3]

    def lps_of(self, index: np.ndarray) -> np.ndarray:
        """LPS mm of ``(slice, row, col)`` indices, shape (N, 3)."""
        index = np.atleast_2d(np.asarray(index, dtype=np.float64))
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def inside(self, points: np.ndarray, *, margin: tuple[float, float, float]) -> np.ndarray:
        """Points within the volume, ``margin`` voxels from its outer voxel centres."""
        idx = self.index_of(points)
        lo = np.asarray(margin)
        hi = np.asarray(self.shape) - 1 - lo
        return np.all((idx >= lo) & (idx <= hi), axis=1)

    def sample(self, array: np.ndarray, points: np.ndarray, *, order: int = 1) -> np.ndarray:
        """A map at LPS points (linear; nearest voxel for masks), shape (N,)."""
        idx = self.index_of(points).T
        if array.dtype == bool:
            got = ndimage.map_coordinates(array.view(np.uint8), idx, order=0, mode="nearest")
            return got.astype(bool)
        return ndimage.map_coordinates(array, idx, order=order, mode="nearest")

    @functools.cached_property
    def sat_or_lean(self) -> np.ndarray:
        """Subcutaneous fat or non-fat tissue (what a subcutaneous nodule may cover)."""
        return self.subcutaneous | ~self.fat

    def normal(self, point: np.ndarray) -> np.ndarray | None:
        """Unit normal of the fascia near a point (toward the skin), or None where flat."""
        h = 0.75 * min(self.spacing_mm)
        offsets = np.vstack([np.eye(3) * h, -np.eye(3) * h])
        f = self.sample(self.fascia_mm, point[None, :] + offsets)
        g = (f[:3] - f[3:]) / (2 * h)
        n = float(np.linalg.norm(g))
        if not np.isfinite(n) or n < 0.5:
            return None
        return g / n


def anatomy_of(analysis: Analysis, *, images: list[np.ndarray] | None = None) -> Anatomy:
    """The :class:`Anatomy` of an analysed study.

    Parameters
    ----------
    analysis : backmice.analysis.Analysis
        Of the source study (it gives the body, fat, subcutaneous fat and
        fascia; its candidates are not used).
    images : list of ndarray, optional
        The images of ``analysis.stacks`` (loaded again when not given).

    Returns
    -------
    Anatomy
    """
    from backmice.analysis import midline_x_mm
    from backmice.segment.body import posterior_half

    stacks = list(analysis.stacks)
    if images is None:
        images = [analysis.volume.array] + [load(s).array for s in stacks[1:]]
    affine = np.asarray(analysis.volume.affine, dtype=np.float64)
    body = analysis.body.mask
    fat = analysis.fat.mask & body
    signs = [
        -1.0 if s.role is Role.DIXON_OUT and analysis.method == "inout" else 1.0 for s in stacks
    ]
    ff = analysis.fat.fat_fraction
    dominant = (ff >= 0.5) if ff is not None else fat
    midline = midline_x_mm(body, affine)
    return Anatomy(
        images=[np.asarray(a, dtype=np.float32) for a in images],
        signs=signs,
        affine=affine,
        slice_thickness_mm=_slice_thickness(stacks[0]),
        fascia_mm=np.nan_to_num(analysis.fascia.signed_mm, nan=1e3).astype(np.float32),
        skin_mm=analysis.body.skin_depth_mm.astype(np.float32),
        body=body,
        fat=fat,
        subcutaneous=analysis.subcutaneous & body,
        back=posterior_half(body, affine),
        fat_dominant=dominant & body,
        fat_fraction=ff,
        midline_x_mm=0.0 if midline is None else float(midline),
        sacrum_top_z_mm=analysis.sacrum_top_z_mm,
        method=str(analysis.method),
        study_uid=str(analysis.volume.study_uid),
    )


def _slice_thickness(stack: Stack) -> float:
    """SliceThickness of a stack's first file (the slice spacing when absent or odd)."""
    spacing = stack.spacing_mm[0] or 1.0
    try:
        ds = pydicom.dcmread(stack.frames[0].path, stop_before_pixels=True)
    except (OSError, pydicom.errors.InvalidDicomError):  # the spacing will do
        return float(spacing)
    value = ds.get("SliceThickness")
    if value is None and "SharedFunctionalGroupsSequence" in ds:
        try:
            value = ds.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness
        except (AttributeError, IndexError):
            value = None
    try:
        t = float(value) if value is not None else float(spacing)
    except (TypeError, ValueError):
        t = float(spacing)
    # A thickness far from the spacing is more likely wrong than a huge gap or overlap.
    return t if 0.3 * spacing <= t <= 3.0 * spacing else float(spacing)


# ----------------------------------------------------------------------------- drawing


def _frame(rng: np.random.Generator, normal: np.ndarray) -> np.ndarray:
    """Rotation (columns: long, middle, short axis) with the short axis near ``normal``."""
    helper = np.eye(3)[int(np.argmin(np.abs(normal)))]
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)
    tilt = math.radians(rng.uniform(0.0, MAX_TILT_DEG))
    psi = rng.uniform(0.0, 2 * math.pi)
    e_c = math.cos(tilt) * normal + math.sin(tilt) * (math.cos(psi) * u + math.sin(psi) * v)
    e_c /= np.linalg.norm(e_c)
    u2 = np.cross(e_c, helper if abs(e_c @ helper) < 0.9 else np.eye(3)[1])
    u2 /= np.linalg.norm(u2)
    v2 = np.cross(e_c, u2)
    phi = rng.uniform(0.0, math.pi)
    e_a = math.cos(phi) * u2 + math.sin(phi) * v2
    e_b = np.cross(e_c, e_a)
    return np.column_stack([e_a, e_b, e_c])


def _solve(fun, s0: float, target: float, *, iterations: int = 6) -> float:
    """``s`` with ``fun(s) ≈ target`` for a function of slope about 1 (secant steps)."""
    s, f = s0, fun(s0)
    step = target - f
    for _ in range(iterations):
        if not np.isfinite(f) or abs(f - target) < 0.03:
            break
        s_new = s + step
        f_new = fun(s_new)
        slope = (f_new - f) / (s_new - s) if s_new != s else 1.0
        if not np.isfinite(slope) or abs(slope) < 0.2:
            slope = 1.0
        s, f = s_new, f_new
        step = (target - f) / slope
    return s


def _place(
    anat: Anatomy,
    rng: np.random.Generator,
    kind: Relation,
    anchor: np.ndarray,
    semi: np.ndarray,
    wall: float,
) -> Ellipsoid | None:
    """An ellipsoid core of ``kind`` near ``anchor``, or None where it does not fit."""
    normal = anat.normal(anchor)
    if normal is None or normal[1] < 0.5:  # on the back: the fascia faces posterior
        return None
    on_fascia = anchor - float(anat.sample(anat.fascia_mm, anchor[None, :])[0]) * normal
    rot = _frame(rng, normal)
    semi = semi.copy()

    def core_at(s: float) -> Ellipsoid:
        return Ellipsoid(on_fascia + s * normal, semi, rot)

    def outer_pts(s: float) -> np.ndarray:
        return Ellipsoid(on_fascia + s * normal, semi + wall, rot).surface_points(500)

    def fmin(s: float) -> float:
        return float(anat.sample(anat.fascia_mm, outer_pts(s)).min())

    def fmax(s: float) -> float:
        return float(anat.sample(anat.fascia_mm, outer_pts(s)).max())

    def skin_min(s: float) -> float:
        return float(anat.sample(anat.skin_mm, outer_pts(s)).min())

    if kind is Relation.SUBCUTANEOUS:
        layer = float(anat.sample(anat.skin_mm, on_fascia[None, :])[0]) - DERMIS_MM
        if 2 * (semi[2] + wall) > layer:  # flatten to the layer, not below a quarter
            c = 0.95 * layer / 2 - wall
            if c < max(0.25 * semi[0], 2.0):
                return None
            semi[2] = c
            semi[1] = max(semi[1], c)
        s_lo = _solve(fmin, semi[2] + wall, 0.0)
        # The skin depth falls as the centre rises: solve on its negative (slope +1).
        s_hi = _solve(lambda s: -skin_min(s), layer - semi[2] - wall, -DERMIS_MM)
        if s_hi < s_lo:
            return None
        u = rng.uniform()
        s = s_lo if u < 0.25 else s_hi if u < 0.5 else rng.uniform(s_lo, s_hi)
        if fmin(s) < -0.15 or skin_min(s) < DERMIS_MM - 0.15:
            return None
    elif kind is Relation.TRANSFASCIAL:
        s = rng.uniform(-0.5, 0.5) * semi[2]
        core = core_at(s)
        d = anat.sample(anat.fascia_mm, truth_samples(core))
        if d.min() > -1.5 or d.max() < 1.5 or skin_min(s) < DERMIS_MM:
            return None
    else:
        target = -rng.uniform(0.3, 2.5)
        s = _solve(fmax, -(semi[2] + wall) + target, target)
        if fmax(s) > -0.2:
            return None
    core = core_at(s)
    return core if _room(anat, kind, core, wall) else None


def _room(anat: Anatomy, kind: Relation, core: Ellipsoid, wall: float) -> bool:
    """Whether a nodule lies whole in the image, in the body, in fat or lean tissue by kind."""
    outer = core.grown(wall)
    surface = outer.surface_points(800)
    if not anat.inside(surface, margin=(0.0, 1.0, 1.0)).all():
        return False
    if not anat.sample(anat.body, surface, order=0).all():
        return False
    inner = outer.interior_points(max(1.0, 0.5 * min(anat.spacing_mm)))
    if len(inner) == 0:
        return False
    f = anat.sample(anat.fascia_mm, inner)
    if f.min() < -MAX_DEEP_MM:
        return False
    deep = f < -1.0
    if deep.any():
        # Deep to the fascia the nodule lies in muscle: not in bone marrow, the canal's
        # fat, bowel or another fat compartment (lean tissue, mostly).
        lean = ~anat.sample(anat.fat, inner[deep], order=0)
        if lean.mean() < 0.75:
            return False
    superficial = f > 1.0
    if kind is Relation.SUBCUTANEOUS and superficial.any():
        sat = anat.sample(anat.sat_or_lean, inner[superficial], order=0)
        if sat.mean() < 0.9:
            return False
    return True


def _apart(outer: Ellipsoid, placed: list[Nodule]) -> bool:
    """Whether an outer surface keeps :data:`GAP_BETWEEN_MM` from every placed nodule."""
    pts = outer.surface_points(600)
    for other in placed:
        o = other.lesion.outer
        if (o.grown(GAP_BETWEEN_MM).normalized_radius(pts) < 1.0).any():
            return False
        if (outer.grown(GAP_BETWEEN_MM).normalized_radius(o.surface_points(600)) < 1.0).any():
            return False
    return True


def draw_nodules(
    anat: Anatomy,
    *,
    count: int,
    seed: int = 0,
    kinds: tuple[Relation, ...] | None = None,
) -> list[Nodule]:
    """Draw ``count`` encapsulated fat nodules in a study's anatomy.

    Parameters
    ----------
    anat : Anatomy
    count : int
        How many (at least 1).
    seed : int
        Seed of every draw (with the study's :attr:`Anatomy.key`).
    kinds : tuple of Relation, optional
        Draw only these kinds (weighted by :data:`KIND_WEIGHTS`); default all.

    Returns
    -------
    list of Nodule
        Ids ``N1``, ``N2``, ...

    Raises
    ------
    PlacementError
        When a nodule finds no room after :data:`ATTEMPTS` draws (no
        subcutaneous fat over the back, or none where the fascia was found).
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 15, anat.key]))
    kinds = tuple(kinds or KIND_WEIGHTS)
    weights = np.array([KIND_WEIGHTS[k] for k in kinds])
    weights /= weights.sum()
    pool = np.flatnonzero(anat.subcutaneous & anat.back)
    if pool.size == 0:
        raise PlacementError("no subcutaneous fat found over the back")
    placed: list[Nodule] = []
    for i in range(count):
        kind = kinds[int(rng.choice(len(kinds), p=weights))]
        for _ in range(ATTEMPTS):
            size = math.exp(rng.uniform(math.log(SIZE_MM[0]), math.log(SIZE_MM[1])))
            a = size / 2
            b = a * rng.uniform(0.5, 1.0)
            c = min(b, a * rng.uniform(0.3, 0.7))
            wall = rng.uniform(*CAPSULE_MM)
            k = int(rng.choice(pool))
            index = np.array(np.unravel_index(k, anat.shape), dtype=np.float64)
            anchor = anat.lps_of(index + rng.uniform(-0.5, 0.5, 3))[0]
            core = _place(anat, rng, kind, anchor, np.array([a, b, c]), wall)
            if core is None or not _apart(core.grown(wall), placed):
                continue
            gap_axis, half = None, 0.0
            if rng.uniform() < INCOMPLETE_SHARE:
                d = rng.standard_normal(3)
                gap_axis = d / np.linalg.norm(d)
                half = rng.uniform(*GAP_HALF_ANGLE_DEG)
            lesion = Lesion(
                f"N{i + 1}",
                LesionKind.ENCAPSULATED_FAT_NODULE,
                core,
                wall_mm=float(wall),
                intended=kind,
            )
            placed.append(Nodule(lesion, gap_axis, half))
            log.info(
                "N%d: %s, %.1f mm, capsule %.2f mm%s",
                i + 1,
                kind,
                2 * core.semi_axes[0],
                wall,
                " (incomplete)" if gap_axis is not None else "",
            )
            break
        else:
            raise PlacementError(
                f"no room for nodule N{i + 1} ({kind}) after {ATTEMPTS} draws: the "
                "subcutaneous fat over the back or the fascia under it is missing or too thin"
            )
    return placed


# ---------------------------------------------------------------------------- painting


class _LocalMean:
    """Mean of an image over a mask near each voxel (normalised Gaussian convolution).

    Computed on a grid coarsened in-plane (the mean is smooth), evaluated by
    linear interpolation. Where the mask is far, a wider kernel takes over, and
    beyond it the mask's median.
    """

    def __init__(self, image: np.ndarray, mask: np.ndarray, spacing: tuple[float, ...]):
        self.f = max(1, round(3.0 / max(spacing[1], 1e-3)))  # about 3 mm cells
        f = self.f
        n, r, c = image.shape
        rp, cp = -r % f, -c % f
        img = np.pad(np.where(mask, image, 0).astype(np.float64), ((0, 0), (0, rp), (0, cp)))
        m = np.pad(mask.astype(np.float64), ((0, 0), (0, rp), (0, cp)))
        img = img.reshape(n, (r + rp) // f, f, (c + cp) // f, f).sum(axis=(2, 4))
        m = m.reshape(n, (r + rp) // f, f, (c + cp) // f, f).sum(axis=(2, 4))
        cell = (spacing[0], spacing[1] * f, spacing[2] * f)
        fallback = float(np.median(image[mask])) if mask.any() else float(np.median(image))
        out = np.full(img.shape, np.nan)
        for sigma_mm in (8.0, 25.0, 60.0):
            sig = (min(sigma_mm / cell[0], 2.0), sigma_mm / cell[1], sigma_mm / cell[2])
            num = ndimage.gaussian_filter(img, sig, mode="nearest")
            den = ndimage.gaussian_filter(m, sig, mode="nearest")
            fill = np.isnan(out) & (den > 0.05)
            out[fill] = num[fill] / den[fill]
        out[np.isnan(out)] = fallback
        self.coarse = out.astype(np.float32)

    def at(self, index: np.ndarray) -> np.ndarray:
        """The mean at ``(slice, row, col)`` voxel indices, shape (N,)."""
        f = self.f
        idx = np.asarray(index, dtype=np.float64).T.copy()
        idx[1:] = (idx[1:] + 0.5) / f - 0.5
        return ndimage.map_coordinates(self.coarse, idx, order=1, mode="nearest")


def _donors(anat: Anatomy) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of clean subcutaneous fat voxels and of muscle voxels over the back."""
    plane = np.zeros((1, 3, 3), dtype=bool)
    plane[0, 1, :] = plane[0, :, 1] = True
    sat = ndimage.binary_erosion(anat.subcutaneous & anat.fat, structure=plane)
    fat_donors = np.flatnonzero(sat & anat.back)
    if fat_donors.size < 50:
        fat_donors = np.flatnonzero(anat.subcutaneous & anat.fat)
    lean = anat.body & ~ndimage.binary_dilation(anat.fat, structure=plane)
    muscle = lean & (anat.fascia_mm < -2.0) & (anat.fascia_mm > -25.0) & anat.back
    muscle_donors = np.flatnonzero(muscle)
    if muscle_donors.size < 50:
        muscle_donors = np.flatnonzero(lean & (anat.skin_mm > 8.0))
    if fat_donors.size == 0 or muscle_donors.size == 0:
        raise PlacementError("no subcutaneous fat or no muscle to take signals from")
    return fat_donors, muscle_donors


def _nearby(anat: Anatomy, donors: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """The donors within :data:`_FAR_MM` of a point, when there are enough; else all."""
    idx = np.array(np.unravel_index(donors, anat.shape)).T
    d = np.linalg.norm(anat.lps_of(idx) - centre, axis=1)
    near = donors[d < _FAR_MM]
    return near if near.size >= 200 else donors


def _sources(
    anat: Anatomy,
    rng: np.random.Generator,
    index: np.ndarray,
    centre: np.ndarray,
    donors: np.ndarray,
    mask: np.ndarray,
    *,
    tries: int = 40,
) -> np.ndarray:
    """For each voxel of a nodule, the donor voxel its residual signal is copied from.

    The nodule's voxels are shifted as one block onto the donor tissue (the shift,
    among ``tries`` random ones, that lands most of them on donors), so the copied
    residuals keep the texture and the spatial correlation of the noise; voxels that
    land off the donors take a random nearby donor each.

    Returns
    -------
    ndarray of int, shape (N,)
        Flat indices of donor voxels.
    """
    near = _nearby(anat, donors, centre)
    middle = np.rint(anat.index_of(centre[None, :])[0]).astype(int)
    shape = np.asarray(anat.shape)
    best, best_hit = None, -1.0
    for d in rng.choice(near, size=min(tries, near.size), replace=False):
        shift = np.array(np.unravel_index(d, anat.shape)) - middle
        moved = index + shift
        ok = np.all((moved >= 0) & (moved < shape), axis=1)
        hit = np.zeros(len(index), dtype=bool)
        hit[ok] = mask[tuple(moved[ok].T)]
        if hit.mean() > best_hit:
            best, best_hit = (moved, hit), float(hit.mean())
    source = rng.choice(near, size=len(index))
    if best is not None:
        moved, hit = best
        source[hit] = np.ravel_multi_index(moved[hit].T, anat.shape)
    return source


def _voxel_shares(anat: Anatomy, nodule: Nodule) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Voxels a nodule touches and the share of core and capsule in each.

    Returns
    -------
    index : ndarray of int, shape (N, 3)
    core, capsule : ndarray of float32, shape (N,)
    """
    grid = anat.grid
    outer = nodule.lesion.outer
    idx = anat.index_of(outer.surface_points(2000))
    lo = np.maximum(np.floor(idx.min(axis=0)) - 1, 0).astype(int)
    hi = np.minimum(np.ceil(idx.max(axis=0)) + 1, np.asarray(anat.shape) - 1).astype(int)
    axes = [np.arange(lo[j], hi[j] + 1) for j in range(3)]
    index = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    centres = anat.lps_of(index)
    extent = np.array([grid.thickness_mm, *grid.spacing_mm[1:]])
    rho = 0.5 * float(np.sqrt((extent**2).sum()))
    f_outer = outer.field(centres)
    f_core = nodule.lesion.core.field(centres)
    core = np.zeros(len(index), dtype=np.float32)
    capsule = np.zeros(len(index), dtype=np.float32)
    wholly_core = f_core < -rho
    core[wholly_core] = 1.0
    mixed = np.flatnonzero((f_outer < rho) & ~wholly_core)
    offsets = sub_offsets(grid, grid.auto_supersample())
    k = len(offsets)
    step = max(1, 300_000 // k)
    for start in range(0, mixed.size, step):
        sel = mixed[start : start + step]
        pts = (centres[sel, None, :] + offsets[None, :, :]).reshape(-1, 3)
        c, s = nodule.shares(pts)
        core[sel] = c.reshape(len(sel), k).mean(axis=1)
        capsule[sel] = s.reshape(len(sel), k).mean(axis=1)
    touched = (core > 0) | (capsule > 0)
    return index[touched], core[touched], capsule[touched]


@dataclass
class Painted:
    """Images with nodules painted in.

    Attributes
    ----------
    images : list of ndarray of float32
        One per source image, same shapes.
    core_share, capsule_share : ndarray of float32, shape (slice, row, col)
        Share of each voxel in a nodule's core, in a capsule.
    """

    images: list[np.ndarray]
    core_share: np.ndarray
    capsule_share: np.ndarray


def paint(anat: Anatomy, nodules: list[Nodule], *, seed: int = 0) -> Painted:
    """Paint nodules into a study's images with partial volume and the subject's signals.

    Parameters
    ----------
    anat : Anatomy
    nodules : list of Nodule
    seed : int
        Seed of the donor voxels.

    Returns
    -------
    Painted
        Voxels no nodule touches keep their values exactly.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 15, 2, anat.key]))
    spacing = anat.spacing_mm
    fat_donors, muscle_donors = _donors(anat)
    fat_mask = np.zeros(anat.shape, dtype=bool)
    fat_mask.flat[fat_donors] = True
    muscle_mask = np.zeros(anat.shape, dtype=bool)
    muscle_mask.flat[muscle_donors] = True
    means = [
        (_LocalMean(img, fat_mask, spacing), _LocalMean(img, muscle_mask, spacing))
        for img in anat.images
    ]
    out = [img.copy() for img in anat.images]
    core_share = np.zeros(anat.shape, dtype=np.float32)
    capsule_share = np.zeros(anat.shape, dtype=np.float32)
    for nodule in nodules:
        index, c, k = _voxel_shares(anat, nodule)
        flat = np.ravel_multi_index(index.T, anat.shape)
        centre = nodule.lesion.core.centre
        f_from = _sources(anat, rng, index, centre, fat_donors, fat_mask)
        m_from = _sources(anat, rng, index, centre, muscle_donors, muscle_mask)
        f_idx = np.array(np.unravel_index(f_from, anat.shape)).T
        m_idx = np.array(np.unravel_index(m_from, anat.shape)).T
        rest = np.clip(1.0 - c - k, 0.0, 1.0)
        for j, (img, sign) in enumerate(zip(anat.images, anat.signs, strict=True)):
            fat_mean, muscle_mean = means[j]
            fat = fat_mean.at(index) + (img.flat[f_from] - fat_mean.at(f_idx))
            lean = muscle_mean.at(index) + (img.flat[m_from] - muscle_mean.at(m_idx))
            original = out[j].flat[flat]
            if sign < 0:  # opposed phase: fat's signal is opposed to water's
                own = np.where(anat.fat_dominant.flat[flat], -original, original)
                value = np.abs(rest * own - c * fat + k * lean)
            else:
                value = rest * original + c * fat + k * lean
            out[j].flat[flat] = value.astype(np.float32)
        core_share.flat[flat] += c
        capsule_share.flat[flat] += k
    return Painted(out, core_share, capsule_share)


# ----------------------------------------------------------------------------- writing


def _uid(*parts: object) -> str:
    return str(generate_uid(entropy_srcs=["backmice.phantom.insert", *map(str, parts)]))


def _stored_range(ds: pydicom.Dataset) -> tuple[int, int]:
    bits = int(ds.get("BitsStored", ds.BitsAllocated))
    if int(ds.get("PixelRepresentation", 0)) == 1:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _write_files(
    stacks: list[Stack],
    painted: list[np.ndarray],
    originals: list[np.ndarray],
    out: Path,
    *,
    seed: int,
    count: int,
    overwrite: bool,
) -> tuple[list[Path], dict[str, str], str, list[str]]:
    """Copy the stacks' files with the painted pixels and new UIDs.

    Returns
    -------
    files : list of Path
    series_map : dict of str to str
        Source SeriesInstanceUID to the new one.
    study_uid : str
    folders : list of str
        The folder (under ``out``) of each stack.
    """
    study_uid = _uid(stacks[0].study_uid, seed, "study")
    series_map = {s.series_uid: _uid(s.series_uid, seed, "series") for s in stacks}
    folders = [f"{i + 1:02d}_{s.role}" for i, s in enumerate(stacks)]
    by_path: dict[Path, list[tuple[int, int]]] = {}
    for j, stack in enumerate(stacks):
        for k, ref in enumerate(stack.frames):
            by_path.setdefault(ref.path, []).append((j, k))
    files: list[Path] = []
    names: set[Path] = set()
    for path, uses in by_path.items():
        ds = pydicom.dcmread(path)
        arr = ds.pixel_array
        frames = arr[None] if arr.ndim == 2 else arr
        frames = np.array(frames, dtype=frames.dtype.newbyteorder("="))  # a native copy
        lo, hi = _stored_range(ds)
        for j, k in uses:
            ref = stacks[j].frames[k]
            changed = painted[j][k] != originals[j][k]
            if not changed.any():
                continue
            stored = np.rint((painted[j][k].astype(np.float64) - ref.intercept) / ref.slope)
            f = ref.frame or 0
            frames[f][changed] = np.clip(stored[changed], lo, hi).astype(frames.dtype)
        ts = ds.file_meta.TransferSyntaxUID
        pixels = frames if "NumberOfFrames" in ds else frames[0]
        if ts.is_compressed or not ts.is_little_endian or ts.is_deflated:
            # Written uncompressed, little endian: the painted pixels are never
            # degraded again by a lossy codec.
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
            if not ts.is_little_endian:
                ds.walk(lambda _ds, _elem: None)  # decode every element from big endian
                ds.set_original_encoding(False, True, ds.original_character_set)
        if pixels.dtype.itemsize in (1, 2):
            ds.set_pixel_data(
                pixels,
                str(ds.PhotometricInterpretation),
                int(ds.get("BitsStored", ds.BitsAllocated)),
                generate_instance_uid=False,
            )
        else:
            little = pixels.dtype.newbyteorder("<")
            ds.PixelData = np.ascontiguousarray(pixels, dtype=little).tobytes()
        old_sop = str(ds.SOPInstanceUID)
        ds.SOPInstanceUID = _uid(old_sop, seed, "sop")
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesInstanceUID = series_map.get(str(ds.SeriesInstanceUID), ds.SeriesInstanceUID)
        ds.StudyInstanceUID = study_uid
        ds.DerivationDescription = (
            f"backmice.phantom.insert: {count} synthetic encapsulated fat nodule(s), seed {seed}"
        )[:1024]
        target = out / folders[uses[0][0]] / path.name
        if target in names:
            target = target.with_name(f"{len(names):05d}_{path.name}")
        names.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not overwrite:
            raise InputError("exists (use --force to replace it)", path=target)
        ds.save_as(target, enforce_file_format=True)
        files.append(target)
    return files, series_map, study_uid, folders


@dataclass
class InsertWritten:
    """What :func:`insert_nodules` wrote.

    Attributes
    ----------
    path : Path
        The study folder written.
    files : list of Path
        The DICOM files.
    truth_path : Path
    truth : dict
    nodules : list of Nodule
    painted : Painted
        The images and the per-voxel shares (for checks).
    """

    path: Path
    files: list[Path]
    truth_path: Path
    truth: dict[str, Any] = field(repr=False)
    nodules: list[Nodule] = field(repr=False)
    painted: Painted = field(repr=False)


def _nodule_truth(anat: Anatomy, nodule: Nodule) -> dict[str, Any]:
    les = nodule.lesion
    core = les.core
    samples = truth_samples(core)
    ff = None
    if anat.fat_fraction is not None:
        ff = float(np.median(anat.fat_fraction[anat.subcutaneous & anat.fat]))
    t = core_truth(
        les,
        d_fascia=anat.sample(anat.fascia_mm, samples),
        fascia_offset_mm=float(anat.sample(anat.fascia_mm, core.centre[None, :])[0]),
        skin_depth_mm=float(anat.sample(anat.skin_mm, samples).min()),
        midline_x_mm=anat.midline_x_mm,
        below_sacrum_top=anat.sacrum_top_z_mm is not None
        and bool(core.centre[2] < anat.sacrum_top_z_mm),
        fat_fraction=ff,
    )
    t["capsule"] = {
        "complete": nodule.gap_axis is None,
        "gap_axis_lps": None if nodule.gap_axis is None else [float(v) for v in nodule.gap_axis],
        "gap_half_angle_deg": round(float(nodule.gap_half_angle_deg), 3),
    }
    return t


def insert_nodules(
    study: str | Path | Study,
    out_dir: str | Path,
    *,
    seed: int = 0,
    count: int = 3,
    series_uid: str | None = None,
    analysis: Analysis | None = None,
    overwrite: bool = False,
) -> InsertWritten:
    """Draw nodules into a real study and write it with its ``truth.json``.

    Parameters
    ----------
    study : path-like or Study
        The source study (a folder, file or DICOMDIR): T1, a Dixon fat and
        water pair, or in/opposed-phase echoes (the stacks the analysis would
        choose are the ones painted and written).
    out_dir : path-like
        The study folder to write (one sub-folder per series, ``truth.json``).
    seed : int
        Seed of every draw.
    count : int
        Number of nodules (at least 1).
    series_uid : str, optional
        Paint this series (as the analysis' ``--series``).
    analysis : backmice.analysis.Analysis, optional
        The analysis of the source study, when already run (its anatomy is
        used; saves a run).
    overwrite : bool
        Replace files already in ``out_dir``.

    Returns
    -------
    InsertWritten

    Raises
    ------
    InputError
        Bad input (no such study, no usable series, a bad count), or no room
        for the nodules in this study's anatomy.
    """
    from backmice.analysis import analyze

    if count < 1:
        raise InputError(f"the number of nodules must be at least 1, not {count}")
    if seed < 0:
        raise InputError(f"the seed must be 0 or more, not {seed}")
    opened = study if isinstance(study, Study) else open_study(study)
    if analysis is None:
        analysis = analyze(opened, series_uid=series_uid)
    stacks = list(analysis.stacks)
    for s in stacks:
        if s.photometric not in ("MONOCHROME1", "MONOCHROME2") or not s.calibrated:
            raise InputError(
                f"series {s.description!r} is not a calibrated greyscale MR image",
                path=opened.path,
            )
    anat = anatomy_of(analysis)
    try:
        nodules = draw_nodules(anat, count=count, seed=seed)
        painted = paint(anat, nodules, seed=seed)
    except PlacementError as exc:
        raise InputError(f"{exc} (try another --seed or fewer nodules)", path=opened.path) from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files, series_map, study_uid, folders = _write_files(
        stacks,
        painted.images,
        anat.images,
        out,
        seed=seed,
        count=count,
        overwrite=overwrite,
    )
    grid = anat.grid
    lesions = []
    for nodule in nodules:
        t = _nodule_truth(anat, nodule)
        for uid in dict.fromkeys(series_map.values()):
            sec = series_sections(nodule.lesion, grid)
            if sec is not None:
                t["sections"][uid] = sec
        lesions.append(t)
    series = []
    for j, stack in enumerate(stacks):
        series.append(
            {
                "series_number": j + 1,
                "series_uid": series_map[stack.series_uid],
                "source_series_uid": stack.series_uid,
                "folder": folders[j],
                "modality": "MR",
                "role": str(stack.role),
                "description": stack.description,
                "shape": list(anat.shape),
                "spacing_mm": [round(v, 6) for v in grid.spacing_mm],
                "slice_thickness_mm": round(grid.thickness_mm, 6),
                "affine": [[round(float(v), 6) for v in row] for row in anat.affine],
                "n_files": len({f.path for f in stack.frames}),
            }
        )
    doc = {
        "schema_version": TRUTH_SCHEMA_VERSION,
        "generator": "backmice.phantom.insert",
        "sample": f"insert:{Path(opened.path).name}",
        "source": str(opened.path),
        "seed": int(seed),
        "coordinates": "LPS mm (DICOM patient coordinates); +x patient left, +y posterior, +z up",
        "method": anat.method,
        "anatomy": {
            "from": "backmice analysis of the source study before insertion",
            "midline_x_mm": round(anat.midline_x_mm, 4),
            "sacrum_top_z_mm": anat.sacrum_top_z_mm,
            "dermis_mm": DERMIS_MM,
        },
        "draw": {
            "count": int(count),
            "size_mm": list(SIZE_MM),
            "capsule_mm": list(CAPSULE_MM),
            "incomplete_share": round(INCOMPLETE_SHARE, 4),
            "kind_weights": {str(k): v for k, v in KIND_WEIGHTS.items()},
        },
        "study_uid": study_uid,
        "series": series,
        "lesions": lesions,
    }
    truth_path = write_truth(doc, out / "truth.json")
    log.info("wrote %d file(s) with %d nodule(s) to %s", len(files), len(nodules), out)
    return InsertWritten(out, files, truth_path, doc, nodules, painted)
