"""Sample a scene on a voxel grid, with partial volume, bias field and Rician noise.

:func:`render` samples the scene at the voxel centres of any affine grid. A
voxel whose centre is farther from every tissue boundary than half the
voxel's diagonal is wholly one tissue; every other voxel is supersampled on a
regular ``(n_slice, n_row, n_col)`` lattice of points inside it (through the
slice thickness), and its value is the mean over those points. This gives
exact partial volume up to the lattice's resolution, at a fraction of the cost
of supersampling everything.

:func:`acquire` turns the noise-free quantities into a contrast, multiplies by
a smooth surface-coil bias field (:func:`coil_bias`) and adds Rician noise:
the magnitude of the signal plus complex Gaussian noise of standard deviation
``σ = reference / snr`` per channel (the reference is given per contrast in
:data:`NOISE_REFERENCE`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from backmice.io.writer import make_affine
from backmice.phantom.scene import Scene
from backmice.phantom.tissues import TISSUE_PROPERTIES, Contrast, Tissue, linear_table

__all__ = [
    "NOISE_REFERENCE",
    "Grid",
    "Rendered",
    "acquire",
    "coil_bias",
    "quantities_for",
    "render",
    "sub_offsets",
]

log = logging.getLogger(__name__)

#: Linear quantities :func:`render` can produce, and what each contrast needs.
_QUANTITIES_FOR: dict[Contrast, tuple[str, ...]] = {
    Contrast.T1: ("t1",),
    Contrast.T2_FATSAT: ("t2_fatsat",),
    Contrast.DIXON_FAT: ("fat", "water"),
    Contrast.DIXON_WATER: ("fat", "water"),
    Contrast.DIXON_IN: ("fat", "water"),
    Contrast.DIXON_OUT: ("fat", "water"),
}

#: The noise-free signal the SNR refers to, per contrast (σ = reference / snr):
#: subcutaneous fat on T1 and on the Dixon in-phase image (used for all four
#: Dixon images, which come from one acquisition), muscle on T2 fat-sat.
NOISE_REFERENCE: dict[Contrast, float] = {
    Contrast.T1: TISSUE_PROPERTIES[Tissue.FAT].t1,
    Contrast.T2_FATSAT: TISSUE_PROPERTIES[Tissue.MUSCLE].t2_fatsat,
    **{
        c: TISSUE_PROPERTIES[Tissue.FAT].pd
        for c in (Contrast.DIXON_FAT, Contrast.DIXON_WATER, Contrast.DIXON_IN, Contrast.DIXON_OUT)
    },
}

#: Largest distance (mm) between supersampling points chosen automatically,
#: in-plane and through the slice.
_SUB_STEP_IN_PLANE = 0.45
_SUB_STEP_THROUGH = 1.0
_MAX_SUB = 6
_CHUNK_POINTS = 400_000


def quantities_for(contrast: Contrast | str) -> tuple[str, ...]:
    """The linear quantities :func:`render` must produce for a contrast."""
    return _QUANTITIES_FOR[Contrast(contrast)]


@dataclass(frozen=True)
class Grid:
    """A voxel grid in patient space.

    Attributes
    ----------
    shape : (int, int, int)
        ``(slice, row, col)``.
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col, 1)`` to LPS mm (the convention of
        :func:`backmice.io.writer.make_affine`).
    slice_thickness_mm : float or None
        Thickness of the slab each slice integrates over; None for the slice
        spacing (contiguous slices). Smaller than the spacing means gaps.
    """

    shape: tuple[int, int, int]
    affine: np.ndarray
    slice_thickness_mm: float | None = None

    @classmethod
    def centred(
        cls,
        shape: tuple[int, int, int],
        spacing_mm: tuple[float, float, float],
        *,
        centre: tuple[float, float, float] = (0.0, 40.0, 0.0),
        rotation: np.ndarray | None = None,
        orientation: str = "axial",
        slice_thickness_mm: float | None = None,
    ) -> Grid:
        """A grid of the given shape and spacing whose middle is at ``centre``.

        Parameters
        ----------
        shape : (int, int, int)
            ``(slice, row, col)``.
        spacing_mm : (float, float, float)
            ``(slice, row, col)`` spacing, mm.
        centre : (float, float, float)
            LPS position of the volume's centre, mm.
        rotation : ndarray of shape (3, 3), optional
            Rotation of the directions (an oblique grid); see
            :func:`backmice.io.writer.rotation_matrix`.
        orientation : {"axial", "sagittal", "coronal"}
            Base directions before the rotation.
        slice_thickness_mm : float, optional
            See the class attributes.
        """
        affine = make_affine(spacing_mm, rotation=rotation, orientation=orientation)
        middle = (np.asarray(shape, dtype=np.float64) - 1.0) / 2.0
        affine[:3, 3] = np.asarray(centre, dtype=np.float64) - affine[:3, :3] @ middle
        n_slices, rows, cols = (int(s) for s in shape)
        return cls((n_slices, rows, cols), affine, slice_thickness_mm)

    @property
    def spacing_mm(self) -> tuple[float, float, float]:
        """``(slice, row, col)`` spacing, mm."""
        ds, dr, dc = (float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))
        return (ds, dr, dc)

    @property
    def thickness_mm(self) -> float:
        """The slab thickness each slice integrates over, mm."""
        return self.slice_thickness_mm if self.slice_thickness_mm else self.spacing_mm[0]

    @property
    def voxel_volume_mm3(self) -> float:
        """Volume of one voxel (spacing product), mm³."""
        s = self.spacing_mm
        return s[0] * s[1] * s[2]

    def slice_centres(self, k: int) -> np.ndarray:
        """LPS centres of the voxels of slice ``k``, row-major, shape (rows·cols, 3)."""
        _, rows, cols = self.shape
        r, c = np.meshgrid(np.arange(rows, dtype=np.float64), np.arange(cols), indexing="ij")
        a = self.affine
        base = a[:3, 3] + k * a[:3, 0]
        return base + r.reshape(-1, 1) * a[:3, 1] + c.reshape(-1, 1) * a[:3, 2]

    def index_to_lps(self, index: np.ndarray) -> np.ndarray:
        """LPS mm of ``(slice, row, col)`` indices, shape (N, 3)."""
        index = np.atleast_2d(np.asarray(index, dtype=np.float64))
        return index @ self.affine[:3, :3].T + self.affine[:3, 3]

    def plane_normal(self) -> np.ndarray:
        """Unit normal of the image planes (direction of increasing slice), shape (3,)."""
        col = self.affine[:3, 2] / np.linalg.norm(self.affine[:3, 2])
        row = self.affine[:3, 1] / np.linalg.norm(self.affine[:3, 1])
        return np.cross(col, row)

    def auto_supersample(self) -> tuple[int, int, int]:
        """The supersampling lattice chosen by default for this grid."""
        s = self.spacing_mm
        n_s = math.ceil(self.thickness_mm / _SUB_STEP_THROUGH)
        n_r = math.ceil(s[1] / _SUB_STEP_IN_PLANE)
        n_c = math.ceil(s[2] / _SUB_STEP_IN_PLANE)
        a, b, c = (int(min(max(n, 1), _MAX_SUB)) for n in (n_s, n_r, n_c))
        return (a, b, c)


@dataclass
class Rendered:
    """Noise-free quantities of a scene sampled on a grid.

    Attributes
    ----------
    grid : Grid
    quantities : dict of str to ndarray of float32, shape (slice, row, col)
        Fraction-weighted means of linear tissue quantities (``t1``,
        ``t2_fatsat``, ``fat``, ``water``; see
        :func:`~backmice.phantom.tissues.linear_table`).
    labels : ndarray of uint8, shape (slice, row, col)
        Tissue at each voxel centre.
    core_id : ndarray of uint8, shape (slice, row, col)
        1 + index of the lesion (in ``scene.lesions``) whose core the voxel
        touches, 0 for none.
    core_fraction : ndarray of float32, shape (slice, row, col)
        Fraction of the voxel inside that core.
    mixed_fraction : float
        Fraction of voxels that were supersampled.
    """

    grid: Grid
    quantities: dict[str, np.ndarray]
    labels: np.ndarray
    core_id: np.ndarray
    core_fraction: np.ndarray
    mixed_fraction: float


def sub_offsets(grid: Grid, n: tuple[int, int, int]) -> np.ndarray:
    """Offsets (LPS mm) of the supersampling points from a voxel centre, shape (K, 3).

    ``n`` points along slice (through the slab thickness), row and column, each
    at the centre of its share of the voxel.
    """
    s = grid.spacing_mm
    frac = [(np.arange(k) + 0.5) / k - 0.5 for k in n]
    frac[0] = frac[0] * (grid.thickness_mm / s[0])
    g = np.stack(np.meshgrid(*frac, indexing="ij"), axis=-1).reshape(-1, 3)
    return g @ grid.affine[:3, :3].T


def render(
    scene: Scene,
    grid: Grid,
    *,
    quantities: tuple[str, ...] = ("t1",),
    supersample: tuple[int, int, int] | None = None,
) -> Rendered:
    """Sample a scene on a grid with partial volume.

    Parameters
    ----------
    scene : Scene
    grid : Grid
    quantities : tuple of str
        Linear quantities to produce (``t1``, ``t2_fatsat``, ``fat``, ``water``).
    supersample : (int, int, int), optional
        Points per voxel along slice, row and column for boundary voxels;
        default :meth:`Grid.auto_supersample`.

    Returns
    -------
    Rendered
    """
    n_sub = supersample or grid.auto_supersample()
    tables = {q: linear_table(q) for q in quantities}
    n_slices, rows, cols = grid.shape
    out = {q: np.zeros(grid.shape, dtype=np.float32) for q in quantities}
    labels = np.zeros(grid.shape, dtype=np.uint8)
    core_id = np.zeros(grid.shape, dtype=np.uint8)
    core_fraction = np.zeros(grid.shape, dtype=np.float32)
    offsets = sub_offsets(grid, n_sub)
    # Half the voxel's diagonal (the slab thickness along the slice axis): a centre
    # farther than this from every boundary means the whole voxel is one tissue.
    extent = np.array([grid.thickness_mm, *grid.spacing_mm[1:]])
    rho = 0.5 * float(np.sqrt((extent**2).sum()))
    n_mixed = 0
    k_sub = len(offsets)
    per_chunk = max(1, _CHUNK_POINTS // k_sub)
    for k in range(n_slices):
        centres = grid.slice_centres(k)
        c = scene.classify(centres, margin_mm=rho)
        assert c.margin is not None  # classify computes it when given margin_mm
        lab = c.labels
        mixed = np.flatnonzero(c.margin < rho)
        n_mixed += mixed.size
        values = {q: t[lab] for q, t in tables.items()}
        cid = c.instance.copy()
        cfrac = (cid > 0).astype(np.float32)
        for start in range(0, mixed.size, per_chunk):
            idx = mixed[start : start + per_chunk]
            pts = (centres[idx, None, :] + offsets[None, :, :]).reshape(-1, 3)
            sub = scene.classify(pts)
            sl = sub.labels.reshape(len(idx), k_sub)
            si = sub.instance.reshape(len(idx), k_sub)
            for q, t in tables.items():
                values[q][idx] = t[sl].mean(axis=1)
            cid[idx] = si.max(axis=1)
            cfrac[idx] = (si > 0).mean(axis=1)
        for q in quantities:
            out[q][k] = values[q].reshape(rows, cols)
        labels[k] = lab.reshape(rows, cols)
        core_id[k] = cid.reshape(rows, cols)
        core_fraction[k] = cfrac.reshape(rows, cols)
    total = n_slices * rows * cols
    log.debug(
        "rendered %s: %.1f%% of voxels supersampled %s", grid.shape, 100 * n_mixed / total, n_sub
    )
    return Rendered(grid, out, labels, core_id, core_fraction, n_mixed / max(total, 1))


def coil_bias(
    points: np.ndarray,
    *,
    strength: float = 1.0,
    depth_mm: float = 85.0,
    lateral_mm: float = 230.0,
    centre_x_mm: float = 0.0,
    plane_y_mm: float = 118.0,
) -> np.ndarray:
    """Smooth multiplicative receive field of a posterior surface coil.

    About 1 at the skin of the back, falling off anteriorly (to about 0.45 at
    the body's centre with the defaults) and slowly to the sides and along z.

    Parameters
    ----------
    points : ndarray of shape (N, 3)
        LPS mm.
    strength : float
        0 for a flat field, 1 for the default falloff.
    depth_mm : float
        Decay length of the sensitivity with depth below the coil, mm
        (shorter: stronger shading).
    lateral_mm : float
        Gaussian width of the sensitivity across x, mm.
    centre_x_mm : float
        x of the coil's centre (an off-centre coil shades one side), mm.
    plane_y_mm : float
        y of the coil's plane (behind the patient's back), mm; the field is 1
        18 mm in front of it.

    Returns
    -------
    ndarray of float64, shape (N,)
    """

    def raw(p: np.ndarray) -> np.ndarray:
        d = np.clip(plane_y_mm - p[:, 1], 0.0, None)  # depth below the coil plane
        lateral = np.exp(-(((p[:, 0] - centre_x_mm) / lateral_mm) ** 2)) * np.exp(
            -((p[:, 2] / 260.0) ** 2)
        )
        return 0.2 + 0.9 * np.exp(-d / depth_mm) * lateral

    b = raw(points) / raw(np.array([[0.0, plane_y_mm - 18.0, 0.0]]))[0]
    return 1.0 + strength * (b - 1.0)


def acquire(
    rendered: Rendered,
    contrast: Contrast | str,
    *,
    snr: float | None = 30.0,
    bias: float = 1.0,
    seed: int = 0,
    coil: dict[str, float] | None = None,
) -> np.ndarray:
    """One MR image from rendered quantities: contrast, bias field, Rician noise.

    Parameters
    ----------
    rendered : Rendered
        Must hold the quantities the contrast needs (``t1``; ``t2_fatsat``;
        ``fat`` and ``water`` for the Dixon images).
    contrast : Contrast
    snr : float or None
        Reference signal over the per-channel noise σ (see
        :data:`NOISE_REFERENCE`); None for no noise.
    bias : float
        Strength of the coil bias field (0 none, 1 default).
    seed : int
        Seed of the noise (the contrast is mixed in, so each image of a study
        gets its own noise).
    coil : dict, optional
        Shape of the coil field: keyword arguments of :func:`coil_bias`
        (``depth_mm``, ``lateral_mm``, ``centre_x_mm``).

    Returns
    -------
    ndarray of float32, shape (slice, row, col)
        Non-negative signal, arbitrary units.
    """
    contrast = Contrast(contrast)
    q = rendered.quantities
    missing = [name for name in _QUANTITIES_FOR[contrast] if name not in q]
    if missing:
        raise ValueError(f"{contrast} needs rendered quantities {missing}")
    if contrast is Contrast.T1:
        img = q["t1"].astype(np.float64)
    elif contrast is Contrast.T2_FATSAT:
        img = q["t2_fatsat"].astype(np.float64)
    elif contrast is Contrast.DIXON_FAT:
        img = q["fat"].astype(np.float64)
    elif contrast is Contrast.DIXON_WATER:
        img = q["water"].astype(np.float64)
    elif contrast is Contrast.DIXON_IN:
        img = q["fat"] + q["water"].astype(np.float64)
    else:
        img = np.abs(q["water"].astype(np.float64) - q["fat"])
    grid = rendered.grid
    if bias:
        field = np.empty(grid.shape)
        for k in range(grid.shape[0]):
            field[k] = coil_bias(grid.slice_centres(k), strength=bias, **(coil or {})).reshape(
                grid.shape[1:]
            )
        img = img * field
    if snr:
        sigma = NOISE_REFERENCE[contrast] / float(snr)
        index = list(Contrast).index(contrast)
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 3, index]))
        n1 = rng.standard_normal(grid.shape, dtype=np.float32)
        n2 = rng.standard_normal(grid.shape, dtype=np.float32)
        img = np.hypot(img + sigma * n1, sigma * n2)
    return img.astype(np.float32)
