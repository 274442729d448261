"""Fixtures of the store tests: tiny synthetic analyses (the real one: tests/conftest.py)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backmice.vocab import COLUMNS


def tiny_analysis(name: str = "tiny", *, shape=(6, 20, 24), n: int = 3) -> SimpleNamespace:
    """An Analysis-shaped object with ``n`` box nodules on a small grid (1 x 0.5 x 0.5 mm).

    Only the attributes the store reads are there; enough for fast unit tests and
    for the subprocess tests (no DICOM needed).
    """
    affine = np.array(
        [[0, 0, 0.5, -5.0], [0, 0.5, 0, 10.0], [2.0, 0, 0, -3.0], [0, 0, 0, 1]], dtype=float
    )
    labels = np.zeros(shape, dtype=np.uint32)
    rows = []
    for i in range(1, n + 1):
        c0 = 2 + 7 * (i - 1)
        labels[1:4, 3:8, c0 : c0 + 4] = i
        row = dict.fromkeys(COLUMNS)
        row.update(
            study=name,
            series_uid="1.2.3",
            nodule_id=i,
            volume_mm3=float((labels == i).sum() * 0.5),
            max_diameter_mm=10.0 + i,
            long_axis_mm=8.0 + i,
            short_axis_mm=4.0 + i,
            fascia_offset_mm=2.0 * i,
            relation="subcutaneous",
            status="candidate",
            suggested_subtype="episacroiliac_lipoma",
            red_flags="",
            units="mm",
        )
        rows.append(row)
    k = np.arange(shape[1], dtype=np.float32)
    fascia = np.broadcast_to((10.0 - 0.5 * k)[None, :, None], shape).astype(np.float32)
    volume = SimpleNamespace(
        affine=affine, calibrated=True, units="mm", series_uid="1.2.3", spacing_mm=(2.0, 0.5, 0.5)
    )
    return SimpleNamespace(
        study=name,
        method="t1",
        stacks=(),
        volume=volume,
        fat=SimpleNamespace(threshold=0.5),
        fascia=SimpleNamespace(signed_mm=fascia),
        labels=labels,
        nodules=rows,
        warnings=[],
    )


@pytest.fixture
def tiny():
    return tiny_analysis
