"""The T1 fat score under a coil's fall-off within a thick subcutaneous layer."""

from __future__ import annotations

import numpy as np

from backmice.segment.body import distance_mm
from backmice.segment.fat import fat_signal_t1


def _thick_layer(seed: int = 0):
    """A slab body: 2 mm skin, 36 mm of fat darkening with depth, then muscle.

    A posterior coil: the fat under the skin reads 1500, the deepest fat 1000
    (a third less, as on real lumbar scans); muscle 520 near the fat, 470 deeper.
    The fat of the left two thirds lies far from the coil (at 60 %), so the
    study's own fat level is well below the fat under the coil.
    """
    rng = np.random.default_rng(seed)
    spacing = (4.0, 1.0, 1.0)
    rows, cols = 120, 300
    depth_row = np.arange(rows, dtype=np.float64)  # mm below the skin (row 0 is the skin)
    fat_signal = 1500.0 - 500.0 * np.clip((depth_row - 2.0) / 36.0, 0, 1)
    muscle_signal = 520.0 - 50.0 * np.clip((depth_row - 38.0) / 80.0, 0, 1)
    column = np.where(depth_row < 2, 700.0, np.where(depth_row < 38, fat_signal, muscle_signal))
    plane = np.repeat(column[:, None], cols, axis=1)
    far = np.zeros(plane.shape, dtype=bool)
    far[2:38, : 2 * cols // 3] = True
    plane[far] *= 0.6
    image = np.stack([plane + rng.normal(0, 20, plane.shape) for _ in range(4)]).astype(np.float32)
    body = np.ones(image.shape, dtype=bool)
    body[:, :1] = False  # the air above the skin
    depth = distance_mm(body, spacing)
    truth_fat = (depth_row >= 2) & (depth_row < 38)
    return image, body, depth, spacing, truth_fat


def test_deep_fat_of_a_thick_layer_is_fat_under_a_coil_fall_off():
    image, body, depth, spacing, truth_fat = _thick_layer()
    fat = fat_signal_t1(image, body, depth, spacing_mm=spacing)
    mask = fat.mask[:, 1:-1, 240:290]  # under the coil, away from the slab's edge
    fat_rows = truth_fat[1:-1]
    deep = np.zeros_like(fat_rows)
    deep[25:36] = True  # the deepest third of the layer
    assert mask[:, deep & fat_rows].mean() > 0.95, "the deep fat fell below the threshold"
    assert mask[:, ~fat_rows].mean() < 0.05
