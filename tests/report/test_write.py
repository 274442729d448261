"""Result files: CSV/JSON columns, NIfTI geometry, atomic writes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import SimpleITK as sitk

from backmice._atomic import atomic_path, write_text
from backmice.io.writer import make_affine, rotation_matrix
from backmice.report import nodules_csv, write_json, write_nifti
from backmice.vocab import COLUMNS


def _row(**kw):
    row = dict.fromkeys(COLUMNS)
    row.update(nodule_id=1, volume_mm3=1234.56789, relation="subcutaneous", units="mm")
    row.update(kw)
    return row


def test_csv_has_every_spec_column_in_order():
    text = nodules_csv([_row(), _row(nodule_id=2, fat_fraction=float("nan"))])
    rows = list(csv.reader(text.splitlines()))
    assert tuple(rows[0]) == COLUMNS
    assert rows[1][COLUMNS.index("volume_mm3")] == "1234.568"
    assert rows[2][COLUMNS.index("fat_fraction")] == ""  # NaN and None are empty
    assert rows[1][COLUMNS.index("subtype")] == ""


def test_json_rows_match_columns(tmp_path):
    path = write_json(tmp_path / "n.json", [_row()], study="s1")
    doc = json.loads(path.read_text())
    assert doc["study"] == "s1"
    assert list(doc["nodules"][0]) == list(COLUMNS)


def test_nifti_keeps_the_patient_geometry(tmp_path):
    affine = make_affine(
        (4.0, 0.8, 0.7), origin=(10.0, -20.0, 30.0), rotation=rotation_matrix("x", 20)
    )
    data = np.arange(3 * 4 * 5, dtype=np.uint16).reshape(3, 4, 5)
    path = write_nifti(tmp_path / "labels.nii.gz", data, affine)
    image = sitk.ReadImage(str(path))
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), data)
    # Voxel (slice 2, row 3, col 4) lands where the affine says, in LPS.
    point = image.TransformIndexToPhysicalPoint((4, 3, 2))
    np.testing.assert_allclose(point, (affine @ [2, 3, 4, 1])[:3], atol=1e-4)


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    target = write_text(tmp_path / "a.csv", "old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]  # no temporary left behind
