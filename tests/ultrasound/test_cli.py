"""``backmice analyze`` on ultrasound: the seed in original pixels, the files, exit codes."""

from __future__ import annotations

import csv
import json

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from backmice.cli import main
from backmice.ultrasound import EXTRA_COLUMNS
from backmice.vocab import COLUMNS
from tests.conftest import real_file


@pytest.fixture(scope="module")
def seeded(sample_file, sample_truth, tmp_path_factory):
    """The committed sample analysed from a seed given in the stored frame's pixels."""
    plane, lesion, _ = sample_truth
    x0, y0 = plane["region"][0], plane["region"][1]
    col, row = x0 + lesion["x_mm"] / 0.08, y0 + lesion["depth_mm"] / 0.08
    out = tmp_path_factory.mktemp("us_seeded")
    code = main(["analyze", str(sample_file), "--out", str(out), "--seed", f"{col:.0f},{row:.0f}"])
    return code, out


def test_writes_the_same_files_as_mri(seeded):
    code, out = seeded
    assert code == 0
    for name in ("nodules.csv", "nodules.json", "labels.nii.gz", "fascia.nii.gz", "qc.png"):
        assert (out / name).stat().st_size > 0, name


def test_csv_has_every_spec_column_then_the_extras(seeded, sample_truth):
    _, lesion, _ = sample_truth
    with (seeded[1] / "nodules.csv").open() as fh:
        reader = csv.DictReader(fh)
        assert tuple(reader.fieldnames) == (*COLUMNS, *EXTRA_COLUMNS)
        (row,) = list(reader)
    assert row["units"] == "mm"
    assert row["volume_mm3"] == "" and row["centroid_x_mm"] == ""  # 2D, no patient frame
    assert float(row["long_axis_mm"]) == pytest.approx(lesion["long_axis_mm"], abs=1.0)
    assert float(row["short_axis_mm"]) == pytest.approx(lesion["short_axis_mm"], abs=1.0)
    assert float(row["area_mm2"]) > 100
    assert row["relation"] == "subcutaneous"
    assert (row["status"], row["found_by"], row["frame"]) == ("accepted", "seed", "0")
    assert row["side"] == ""  # the phantom's header names no side


def test_json_says_units_pixel_size_and_lines(seeded):
    doc = json.loads((seeded[1] / "nodules.json").read_text())
    assert doc["modality"] == "US" and doc["units"] == "mm"
    assert doc["pixel_mm"] == [0.08, 0.08]
    assert doc["region_origin_px"] == [40, 70]
    assert len(doc["lines"]["fascia"]) == 500
    assert doc["nodules"][0]["area_mm2"] > 100


def test_nifti_maps_are_2d_in_mm(seeded):
    _, out = seeded
    labels = sitk.ReadImage(str(out / "labels.nii.gz"))
    assert labels.GetSize() == (500, 400, 1)
    assert labels.GetSpacing()[:2] == pytest.approx((0.08, 0.08))
    lab = sitk.GetArrayFromImage(labels)
    doc = json.loads((out / "nodules.json").read_text())
    assert (lab == 1).sum() * 0.08**2 == pytest.approx(doc["nodules"][0]["area_mm2"], abs=0.01)
    fascia = sitk.GetArrayFromImage(sitk.ReadImage(str(out / "fascia.nii.gz")))[0]
    assert fascia[0].min() > 20  # the top of the image is 20+ mm above the fascia
    assert fascia[-1].max() < 0  # the bottom is deep to it


def test_without_a_seed_the_candidates_are_marked(sample_file, tmp_path, capsys):
    assert main(["analyze", str(sample_file), "--out", str(tmp_path)]) == 0
    doc = json.loads((tmp_path / "nodules.json").read_text())
    assert [n["status"] for n in doc["nodules"]] == ["candidate"]
    assert doc["nodules"][0]["found_by"] == "automatic"
    assert any("automatically" in w for w in doc["warnings"])
    assert "automatically" in capsys.readouterr().err


def test_seed_outside_the_region_is_bad_input(sample_file, tmp_path, capsys):
    code = main(["analyze", str(sample_file), "--out", str(tmp_path), "--seed", "5,5"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "outside the image's tissue region" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv", [["--frame", "3"], ["--seed", "nonsense"]])
def test_bad_ultrasound_options_are_bad_input(sample_file, tmp_path, argv):
    with pytest.raises(SystemExit) as exc:  # argparse's own errors exit 2 too
        code = main(["analyze", str(sample_file), "--out", str(tmp_path), *argv])
        raise SystemExit(code)
    assert exc.value.code == 2


def test_ultrasound_options_on_mri_are_bad_input(tmp_path, capsys):
    from pathlib import Path

    t1 = Path(__file__).resolve().parents[2] / "sample_data" / "t1_axial"
    assert main(["analyze", str(t1), "--out", str(tmp_path), "--seed", "10,10"]) == 2
    assert "for ultrasound" in capsys.readouterr().err


def test_uncalibrated_real_file_is_in_pixels_loudly(tmp_path, capsys):
    # GE, no SequenceOfUltrasoundRegions; the seed is inside the left lymph node.
    path = real_file("US1_UNCR.dcm")
    assert main(["analyze", str(path), "--out", str(tmp_path), "--seed", "260,230"]) == 0
    captured = capsys.readouterr()
    assert "UNCALIBRATED" in captured.out and "PIXELS" in captured.out
    doc = json.loads((tmp_path / "nodules.json").read_text())
    assert doc["units"] == "px" and doc["pixel_mm"] is None
    assert any("UNCALIBRATED" in w for w in doc["warnings"])
    assert [n["units"] for n in doc["nodules"]] == ["px"]


@pytest.mark.parametrize(
    "name",
    [
        # A 1024 x 768 lossless JPEG: seconds to analyse, in the full run only.
        pytest.param("JPGLosslessP14SV1_1s_1f_8b.dcm", marks=pytest.mark.slow),
        "OBXXXX1A.dcm",
        "gdcm-US-ALOKA-16.dcm",
    ],
)
def test_real_files_are_measured_with_the_regions_pixel_size(name, tmp_path):
    path = real_file(name)
    region = pydicom.dcmread(path, stop_before_pixels=True).SequenceOfUltrasoundRegions[0]
    assert main(["analyze", str(path), "--out", str(tmp_path), "--no-qc"]) == 0
    doc = json.loads((tmp_path / "nodules.json").read_text())
    assert doc["units"] == "mm"
    assert doc["pixel_mm"] == pytest.approx(
        [float(region.PhysicalDeltaY) * 10, float(region.PhysicalDeltaX) * 10]
    )
    assert doc["region_origin_px"] == [region.RegionLocationMinY0, region.RegionLocationMinX0]
    fascia = sitk.ReadImage(str(tmp_path / "fascia.nii.gz"))
    assert fascia.GetSpacing()[:2] == pytest.approx(doc["pixel_mm"][::-1])
    assert np.isfinite(sitk.GetArrayFromImage(fascia)).all()
