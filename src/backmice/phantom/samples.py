"""Named sample studies: what ``backmice sample NAME`` writes.

Every sample is the phantom of one seed (``make_scene(seed)``; the ``redflag``
samples add the liposarcoma-like nodule) seen through one or more series.
The MR fields of view hold every lesion whole. ``sample_data/`` in the
repository holds the samples marked ``committed``, written with seed 0.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backmice.errors import InputError
from backmice.io.writer import rotation_matrix
from backmice.phantom.lesions import PlacementError
from backmice.phantom.render import Grid
from backmice.phantom.scene import Scene, make_scene
from backmice.phantom.study import MRSeries, StudyWritten, UltrasoundSeries, write_study
from backmice.phantom.tissues import Contrast
from backmice.phantom.ultrasound import plane_over

__all__ = ["SAMPLES", "Sample", "get_sample", "sample_names", "write_sample"]

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
    """

    name: str
    description: str
    build: _Build
    red_flag: bool = False
    committed: bool = False


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
        Sample("us", "B-mode ultrasound frame over the episacroiliac lipoma", _us, committed=True),
        Sample("us_cine", "B-mode cine, 12 frames, probe sliding 0.32 mm per frame", _us_cine),
    )
}


@functools.lru_cache(maxsize=2)
def _scene(seed: int, red_flag: bool) -> Scene:
    """The scene of a seed, kept for the next sample of the same seed (it is never changed)."""
    try:
        return make_scene(seed, red_flag=red_flag)
    except PlacementError as exc:
        # A few seeds leave a lesion no room (about 1 in 10): say so, don't crash.
        raise InputError(
            f"seed {seed} cannot hold every lesion ({exc}); try another seed"
        ) from None


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
    scene = _scene(int(seed), sample.red_flag)
    mr, us = sample.build(scene)
    log.info("writing sample %s (seed %d) to %s", name, seed, out_dir)
    return write_study(
        scene, out_dir, name=name, mr=mr, ultrasound=us, shuffle=shuffle, overwrite=overwrite
    )
