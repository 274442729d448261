"""Unusual but legitimate (or absurd) inputs that once crashed ``backmice`` (issue 16).

Each test failed before its fix: the command ended in exit code 1 (a bug), hung,
or analysed the wrong thing without a word.
"""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

from backmice.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
T1 = SAMPLES / "t1_axial" / "01_t1"


def _t1_slice(n: int = 8) -> Path:
    return T1 / f"S001_IM{n:04d}.dcm"


# --- item 1: one MR slice --------------------------------------------------------------------


def test_analyze_a_single_slice_file_in_2d(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["analyze", str(_t1_slice()), "--out", str(out), "--no-qc"]) == 0
    err = capsys.readouterr().err
    assert "a single slice: analysed in 2D (N4 bias correction in 2D)" in err
    rows = json.loads((out / "nodules.json").read_text())["nodules"]
    assert rows and all(r["units"] == "mm" for r in rows)


def test_analyze_slices_that_all_share_one_position(tmp_path, capsys):
    study = tmp_path / "study"
    study.mkdir()
    for i in range(3):
        ds = pydicom.dcmread(_t1_slice())
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = i + 1
        ds.save_as(study / f"copy{i}.dcm")
    assert main(["analyze", str(study), "--out", str(tmp_path / "out"), "--no-qc"]) == 0
    assert "a single slice" in capsys.readouterr().err


def test_n4_on_one_slice_returns_the_slice_shape():
    import numpy as np

    from backmice.segment.bias import n4_correct

    rng = np.random.default_rng(0)
    image = (100 + rng.random((1, 64, 80)) * 10).astype(np.float32)
    mask = np.zeros(image.shape, dtype=bool)
    mask[:, 8:56, 8:72] = True
    corrected, bias = n4_correct(image, mask, spacing_mm=(1.0, 0.8, 0.8))
    assert corrected.shape == bias.shape == image.shape
    assert np.all(np.isfinite(corrected))
