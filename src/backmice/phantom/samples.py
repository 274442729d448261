"""Named sample studies: what ``backmice sample NAME`` writes.

Every sample is the phantom of one seed (``make_scene(seed)``; the ``redflag``
samples add the liposarcoma-like nodule) seen through one or more series.
The MR fields of view hold every lesion whole. ``sample_data/`` in the
repository holds the samples marked ``committed``, written with seed 0.

The ``*_wide`` samples are the *wide* family (``make_scene(seed, wide=True)``,
``docs/phantom.md``), and their geometry is drawn from the seed too
(:func:`wide_grid`): 3–6 mm slices (sometimes with a gap), the whole body in
view or a field of view that cuts it, and a stronger, off-centre coil field.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backmice.errors import InputError, PlacementError
from backmice.io.writer import rotation_matrix
from backmice.phantom.render import Grid
from backmice.phantom.scene import Scene, make_scene
from backmice.phantom.study import MRSeries, StudyWritten, UltrasoundSeries, write_study
from backmice.phantom.tissues import Contrast
from backmice.phantom.ultrasound import plane_over

__all__ = [
    "SAMPLES",
    "Sample",
    "get_sample",
    "sample_names",
    "sample_scene",
    "wide_grid",
    "write_sample",
]

log = logging.getLogger(__name__)

_Build = Callable[[Scene], tuple[list[MRSeries], list[UltrasoundSeries]]]


@dataclass(frozen=True)
class Sample:
    """A named sample study.

    Attributes
    ----------
    name : str
    description : str
        One line, for ``backmice sample list``.
    build : callable
        Scene → (MR series, ultrasound series) to write.
    red_flag : bool
        Whether the scene has the liposarcoma-like nodule.
    committed : bool
        Whether ``sample_data/`` in the repository holds it (seed 0).
    wide : bool
        Whether the scene is of the wide family.
    """

    name: str
    description: str
    build: _Build
    red_flag: bool = False
    committed: bool = False
    wide: bool = False


def t1_axial_grid() -> Grid:
    """2D axial T1: 16 slices of 192×288 at 0.8×0.8 mm, 4 mm thick (z −30…30)."""
    return Grid.centred((16, 192, 288), (4.0, 0.8, 0.8), centre=(0.0, 62.0, 0.0))


def dixon_grid() -> Grid:
    """2D axial Dixon: 22 slices of 104×152 at 1.5×1.5 mm, 3 mm thick (the issue's geometry)."""
    return Grid.centred((22, 104, 152), (3.0, 1.5, 1.5), centre=(0.0, 62.0, 0.0))


def oblique_grid() -> Grid:
    """3D T1, 1.2 mm isotropic, tilted 12° about x and 8° about z: 64×140×196."""
    rot = rotation_matrix("z", 8.0) @ rotation_matrix("x", 12.0)
    return Grid.centred((64, 140, 196), (1.2, 1.2, 1.2), centre=(0.0, 55.0, 0.0), rotation=rot)


def redflag_grid() -> Grid:
    """2D axial T1 with a wider field: 20 slices of 224×352 at 0.8×0.8 mm, 4 mm thick."""
    return Grid.centred((20, 224, 352), (4.0, 0.8, 0.8), centre=(0.0, 50.0, 0.0))


def wide_grid(scene: Scene, *, matrix: tuple[int, int], tag: int) -> tuple[Grid, dict]:
    """A field of view for a wide-family scene, drawn from its seed.

    Slice thickness 3–6 mm (in 0.5 mm steps), contiguous or with a gap of 10 or
    20 % (one time in four each); in-plane pixel from ``pixel_mm``; slices
    covering every lesion with 4 mm to spare. Half the time the whole body is
    in view (5–20 mm of air around it); otherwise a field of view 200–300 mm
    wide (wider if a lesion needs it), its posterior edge 5–25 mm behind the
    skin, that cuts the flanks and the front of the body. The square in-plane
    pixel is the field of view's width over a matrix drawn from ``matrix``. The coil field's
    decay length with depth is 45–85 mm (85 for the standard samples), its
    width 150–260 mm (230), off centre by up to 30 mm; its plane lies 5–15
    mm behind the skin of the back (the standard samples: y = 118 mm, 10–18
    mm behind it), wherever the layer's thickness puts the skin.

    Parameters
    ----------
    scene : Scene
    matrix : (int, int)
        Range of the number of columns (frequency-encoding matrix).
    tag : int
        Mixed into the seed (one grid per series kind).

    Returns
    -------
    Grid
    dict
        ``coil`` keyword arguments of :func:`~backmice.phantom.render.coil_bias`
        and ``snr``.
    """
    rng = np.random.default_rng(np.random.SeedSequence([scene.seed, 5, tag]))
    thick = round(rng.uniform(3.0, 6.0) * 2.0) / 2.0
    spacing = thick * float(rng.choice([1.0, 1.0, 1.1, 1.2]))
    lo = np.min([les.outer.centre - les.outer.half_extent for les in scene.lesions], axis=0)
    hi = np.max([les.outer.centre + les.outer.half_extent for les in scene.lesions], axis=0)
    z0, z1 = lo[2] - 4.0, hi[2] + 4.0
    n_slices = math.ceil((z1 - z0) / spacing) + 1
    n_cols = int(rng.integers(matrix[0], matrix[1] + 1))
    theta = np.linspace(-math.pi, math.pi, 721)
    zc = 0.5 * (z0 + z1)
    body = np.concatenate(
        [scene.anatomy.surface_points("skin", theta, np.full_like(theta, z)) for z in (z0, zc, z1)]
    )
    bx0, by0 = body[:, 0].min(), body[:, 1].min()
    bx1, by1 = body[:, 0].max(), body[:, 1].max()
    if rng.random() < 0.5:
        m = rng.uniform(5.0, 20.0)
        x0, x1, y0, y1 = bx0 - m, bx1 + m, by0 - m, by1 + m
    else:
        need = max(abs(lo[0]), abs(hi[0])) + 8.0
        half_w = max(need, rng.uniform(100.0, 150.0))
        y1 = by1 + rng.uniform(5.0, 25.0)
        y0 = min(y1 - 2.0 * half_w * rng.uniform(0.7, 1.0), lo[1] - 8.0)
        x0, x1 = -half_w, half_w
    pixel = (x1 - x0) / n_cols
    rows = math.ceil((y1 - y0) / pixel)
    cols = math.ceil((x1 - x0) / pixel)
    grid = Grid.centred(
        (n_slices, rows, cols),
        (spacing, pixel, pixel),
        centre=(0.5 * (x0 + x1), 0.5 * (y0 + y1), zc),
        slice_thickness_mm=thick if thick != spacing else None,
    )
    extra = {
        "coil": {
            "depth_mm": float(rng.uniform(45.0, 85.0)),
            "lateral_mm": float(rng.uniform(150.0, 260.0)),
            "centre_x_mm": float(rng.uniform(-30.0, 30.0)),
            "plane_y_mm": float(by1 + rng.uniform(5.0, 15.0)),
        },
        "snr": float(rng.uniform(18.0, 40.0)),
    }
    return grid, extra


def _t1_wide(scene: Scene):
    grid, extra = wide_grid(scene, matrix=(256, 448), tag=1)
    return [MRSeries(Contrast.T1, grid, snr=extra["snr"], coil=extra["coil"])], []


def _dixon_wide(scene: Scene):
    grid, extra = wide_grid(scene, matrix=(160, 256), tag=2)
    return [
        MRSeries(c, grid, snr=extra["snr"], coil=extra["coil"])
        for c in (Contrast.DIXON_FAT, Contrast.DIXON_WATER)
    ], []


def _t1(scene: Scene):
    return [MRSeries(Contrast.T1, t1_axial_grid())], []


def _t2(scene: Scene):
    return [MRSeries(Contrast.T2_FATSAT, t1_axial_grid())], []


def _oblique(scene: Scene):
    return [MRSeries(Contrast.T1, oblique_grid(), snr=40.0, rescale=(0.35, -50.0))], []


def _dixon(scene: Scene):
    grid = dixon_grid()
    return [MRSeries(Contrast.DIXON_FAT, grid), MRSeries(Contrast.DIXON_WATER, grid)], []


def _full(scene: Scene):
    t1, dx = t1_axial_grid(), dixon_grid()
    series = [MRSeries(Contrast.T1, t1), MRSeries(Contrast.T2_FATSAT, t1)]
    series += [
        MRSeries(c, dx)
        for c in (Contrast.DIXON_FAT, Contrast.DIXON_WATER, Contrast.DIXON_IN, Contrast.DIXON_OUT)
    ]
    return series, [UltrasoundSeries(plane_over(scene, scene.lesion("N1").core.centre))]


def _redflag(scene: Scene):
    return [MRSeries(Contrast.T1, redflag_grid())], []


def _us(scene: Scene):
    return [], [UltrasoundSeries(plane_over(scene, scene.lesion("N1").core.centre))]


def _us_cine(scene: Scene):
    plane = plane_over(scene, scene.lesion("N1").core.centre, frame_shift_mm=0.32)
    return [], [UltrasoundSeries(plane, frames=12, description="US BACK TRANS CINE")]


#: Every sample, by name.
SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample("t1_axial", "2D axial T1, 0.8x0.8x4 mm, 16 slices", _t1, committed=True),
        Sample(
            "t1_oblique_iso",
            "3D T1, 1.2 mm isotropic, oblique (12° about x, 8° about z), rescaled",
            _oblique,
        ),
        Sample("dixon", "2D axial Dixon fat and water, 1.5x1.5x3 mm", _dixon, committed=True),
        Sample("t2_fatsat", "2D axial T2 fat-saturated, 0.8x0.8x4 mm", _t2),
        Sample(
            "mr_full",
            "T1, T2 fat-sat, Dixon fat/water/in/opposed and a B-mode frame, one study",
            _full,
        ),
        Sample(
            "t1_redflag",
            "2D axial T1 with a large nodule that has a solid component (red flag)",
            _redflag,
            red_flag=True,
        ),
        Sample(
            "t1_wide",
            "wide family: 2D axial T1, 256-448 matrix, 3-6 mm slices, whole or cut body",
            _t1_wide,
            wide=True,
        ),
        Sample(
            "dixon_wide",
            "wide family: 2D axial Dixon fat and water, 160-256 matrix, 3-6 mm slices",
            _dixon_wide,
            wide=True,
        ),
        Sample("us", "B-mode ultrasound frame over the episacroiliac lipoma", _us, committed=True),
        Sample("us_cine", "B-mode cine, 12 frames, probe sliding 0.32 mm per frame", _us_cine),
    )
}


@functools.lru_cache(maxsize=2)
def _scene(seed: int, red_flag: bool, wide: bool = False) -> Scene:
    """The scene of a seed, kept for the next sample of the same seed (it is never changed)."""
    try:
        return make_scene(seed, red_flag=red_flag, wide=wide)
    except PlacementError as exc:
        # A few seeds leave a lesion no room (about 1 in 10): say so, don't crash.
        raise InputError(
            f"seed {seed} cannot hold every lesion ({exc}); try another seed"
        ) from None


def sample_scene(name: str, seed: int) -> Scene:
    """The phantom scene a sample of this name and seed is drawn from.

    Raises
    ------
    InputError
        For an unknown name, or a seed that cannot hold every lesion.
    """
    sample = get_sample(name)
    return _scene(int(seed), sample.red_flag, sample.wide)


def sample_names() -> list[str]:
    """The names of all samples, in listing order."""
    return list(SAMPLES)


def get_sample(name: str) -> Sample:
    """The sample called ``name``.

    Raises
    ------
    InputError
        For an unknown name (the message lists the known ones).
    """
    try:
        return SAMPLES[name]
    except KeyError:
        raise InputError(
            f"no sample called {name!r}; choose one of: {', '.join(SAMPLES)}"
        ) from None


def write_sample(
    name: str,
    out_dir: str | Path,
    *,
    seed: int = 0,
    shuffle: bool = False,
    overwrite: bool = False,
) -> StudyWritten:
    """Write a sample study (DICOM files and ``truth.json``) into ``out_dir``.

    Parameters
    ----------
    name : str
        A key of :data:`SAMPLES`.
    out_dir : str or Path
        The study folder; created if missing.
    seed : int
        Phantom seed (the committed samples use 0).
    shuffle : bool
        Random file names and InstanceNumbers.
    overwrite : bool
        Replace existing files.

    Returns
    -------
    StudyWritten
    """
    sample = get_sample(name)
    scene = sample_scene(name, seed)
    mr, us = sample.build(scene)
    log.info("writing sample %s (seed %d) to %s", name, seed, out_dir)
    return write_study(
        scene, out_dir, name=name, mr=mr, ultrasound=us, shuffle=shuffle, overwrite=overwrite
    )
