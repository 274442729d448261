"""Shared fixtures: real DICOM files from pydicom and pydicom-data."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file


def real_file(name: str) -> Path:
    """A real file from pydicom's test files or the pydicom-data package (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed: install the test extra (pip install -e '.[test]'), "
            "which brings pydicom-data"
        )
    return Path(path)


def ellipsoid(shape, centre, semi_px) -> np.ndarray:
    """Voxels whose index lies within the axis-aligned ellipsoid (semi-axes in voxels)."""
    k, r, c = np.indices(shape)
    return (
        ((k - centre[0]) / semi_px[0]) ** 2
        + ((r - centre[1]) / semi_px[1]) ** 2
        + ((c - centre[2]) / semi_px[2]) ** 2
    ) <= 1.0


@pytest.fixture
def copy_files(tmp_path):
    """Copy named test files into a fresh folder; returns the folder."""

    def _copy(*names: str, folder: str = "study") -> Path:
        out = tmp_path / folder
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(real_file(name), out / name)
        return out

    return _copy
