"""Synthetic editing cases with exact answers (the T1 sample's analysis: tests/conftest.py)."""

from __future__ import annotations

import numpy as np

from backmice.edit import Editor, fascia_signed_mm
from backmice.measure.nodules import SiteMaps

#: (slice, row, col) spacing of the synthetic grid, mm.
SPACING = (2.0, 1.0, 1.0)
SHAPE = (12, 64, 64)
#: Rows below this index are deep to the flat synthetic fascia.
FASCIA_ROW = 30


def ball(center, radius_mm, shape=SHAPE, spacing=SPACING) -> np.ndarray:
    """Voxels whose centre lies within ``radius_mm`` of ``center`` (an index)."""
    grid = np.indices(shape, dtype=np.float64)
    d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, center, spacing, strict=True))
    return d2 <= radius_mm**2


def synthetic_editor(labels: np.ndarray, *, score: np.ndarray | None = None) -> Editor:
    """An editor on a flat fascia (deep: rows < FASCIA_ROW), uniform fat, identity directions."""
    affine = np.diag([*SPACING, 1.0])
    deep = np.zeros(SHAPE, dtype=bool)
    deep[:, :FASCIA_ROW, :] = True
    if score is None:
        score = np.ones(SHAPE, dtype=np.float32)
    rows = np.arange(SHAPE[1], dtype=np.float32)[None, :, None]
    site = SiteMaps(
        signed_fascia_mm=fascia_signed_mm(deep, SPACING),
        skin_depth_mm=np.broadcast_to(SHAPE[1] - 1 - rows, SHAPE).astype(np.float32),
        image=score.astype(np.float32),
        subcutaneous=~deep,
        fat=score >= 0.5,
        midline_x_mm=32.0,
    )
    return Editor(
        labels=labels,
        affine=affine,
        spacing_mm=SPACING,
        site=site,
        deep=deep,
        score=score,
        threshold=0.5,
        study="synthetic",
        series_uid="1.2.3",
    )
