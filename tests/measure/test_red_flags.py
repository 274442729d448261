"""Red flags on synthetic nodules with known interiors (thick septa, solid parts)."""

from __future__ import annotations

import numpy as np
import pytest

from backmice.measure.nodules import SiteMaps, measure_nodules
from backmice.vocab import RedFlag


def _nodule(*, septum_px: int = 0, ball_mm: float = 0.0):
    """A 40x24 mm ellipsoidal fat nodule (1 mm voxels) with a septum or a solid ball inside."""
    z, y, x = np.mgrid[:20, :60, :80].astype(float)
    core = ((x - 40) / 20) ** 2 + ((y - 30) / 12) ** 2 + ((z - 10) / 8) ** 2 <= 1
    fat = core.copy()
    if septum_px:
        fat &= ~(np.abs(x - 40) <= (septum_px - 1) / 2)  # a plane across the nodule
    if ball_mm:
        fat &= ~(((x - 46) ** 2 + (y - 30) ** 2 + (z - 10) ** 2) <= ball_mm**2)
    labels = fat.astype(np.uint32)
    shape = fat.shape
    site = SiteMaps(
        signed_fascia_mm=np.full(shape, 10.0, np.float32),
        skin_depth_mm=np.full(shape, 8.0, np.float32),
        image=np.where(fat, 1.0, 0.2).astype(np.float32),
        subcutaneous=~core,
        fat=fat | ~core,
        midline_x_mm=None,
    )
    site.image[~core] = 1.0
    return labels, site


@pytest.mark.parametrize(
    ("septum_px", "ball_mm", "thick", "nonfat"),
    [(0, 0.0, False, False), (1, 0.0, False, False), (3, 0.0, True, False), (0, 6.0, False, True)],
)
def test_thick_septa_and_nonfat_component(septum_px, ball_mm, thick, nonfat):
    labels, site = _nodule(septum_px=septum_px, ball_mm=ball_mm)
    (row,) = measure_nodules(labels, np.eye(4), site)
    flags = set(filter(None, row["red_flags"].split(";")))
    assert (str(RedFlag.THICK_SEPTA) in flags) is thick, flags
    assert (str(RedFlag.NONFAT_COMPONENT) in flags) is nonfat, flags
