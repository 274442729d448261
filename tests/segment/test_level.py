"""The top of the sacrum, on synthetic slices with a known level."""

from __future__ import annotations

import numpy as np

from backmice.io.writer import make_affine, rotation_matrix
from backmice.segment.level import sacrum_top_z_mm


def _scene(*, top_slice: int, n: int = 12, rotation=None):
    """Axial slices of 1 mm pixels, 4 mm apart, z = 4k mm; fascia at row 20 (y = 20 mm).

    Below ``top_slice`` a 100 mm wide marrow block lies just deep to the fascia
    in the midline (the sacrum); from it up, a 10 mm wide one (a spinous process).
    """
    rows, cols = 80, 160
    affine = make_affine((4.0, 1.0, 1.0), origin=(-80.0, 0.0, 0.0), rotation=rotation)
    y = np.arange(rows, dtype=np.float32)[:, None] * np.ones((1, cols), np.float32)
    signed = np.broadcast_to(y - 20.0, (n, rows, cols)).copy()  # + toward row 0 ... deep is y > 20
    signed = -signed
    fat = np.zeros((n, rows, cols), dtype=bool)
    for k in range(n):
        half = 50 if k < top_slice else 5
        fat[k, 25:40, 80 - half : 80 + half] = True
    return fat, signed, affine


def test_step_between_wide_and_narrow_midline_bone():
    fat, signed, affine = _scene(top_slice=5)
    top = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert top is not None
    z = affine[2, 3] + affine[2, 0] * np.arange(fat.shape[0])
    assert abs(top - (z[4] + z[5]) / 2) < 1e-6


def test_all_sacral_or_all_lumbar_or_noisy_is_unknown():
    for top_slice in (0, 12):
        fat, signed, affine = _scene(top_slice=top_slice)
        assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None
    fat, signed, affine = _scene(top_slice=6)
    fat[[1, 3], 25:40, 30:130] = False  # fragmented marrow: sacral slices read as lumbar
    fat[[1, 3], 25:40, 75:85] = True
    fat[[8, 10], 25:40, 30:130] = True  # and lumbar ones as sacral
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None


def test_oblique_slices_are_not_read():
    fat, signed, affine = _scene(top_slice=5, rotation=rotation_matrix("x", 20.0))
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None
