"""``backmice analyze`` and ``batch`` on NIfTI files, and the SEG/SR export that needs DICOM."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import backmice
from backmice.analysis import choose
from backmice.cli import main
from backmice.io.model import Role
from backmice.report.write import _itk_image
from backmice.segment import Method

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def nifti_dixon(folder: Path) -> Path:
    """The Dixon sample as dcm2niix would write it: one file per series, rows stored flipped."""
    folder.mkdir(parents=True)
    for stack in backmice.open_study(SAMPLES / "dixon").stacks:
        volume = backmice.load(stack)
        image = sitk.Flip(_itk_image(volume.array, volume.affine), [False, True, False])
        name = {Role.DIXON_FAT: "fat", Role.DIXON_WATER: "water"}[stack.role]
        sitk.WriteImage(image, str(folder / f"sub-01_{name}.nii.gz"))
    return folder


@pytest.fixture(scope="module")
def nifti_result(tmp_path_factory):
    """``backmice analyze`` of the NIfTI Dixon study: (study folder, result folder)."""
    root = tmp_path_factory.mktemp("nifti")
    study = nifti_dixon(root / "dixon")
    out = root / "out"
    assert main(["analyze", str(study), "--out", str(out), "--no-qc"]) == 0
    return study, out


def _rows(folder: Path) -> list[dict]:
    with (folder / "nodules.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_nifti_study_gives_the_dicom_study_rows_with_file_names(nifti_result, dixon_analysis):
    _, out = nifti_result
    rows = _rows(out)
    assert len(rows) == len(dixon_analysis.nodules) > 0
    for row, ref in zip(rows, dixon_analysis.nodules, strict=True):
        assert row["series_uid"] == "sub-01_fat.nii.gz"
        for key in ("centroid_x_mm", "centroid_y_mm", "centroid_z_mm", "volume_mm3"):
            assert float(row[key]) == pytest.approx(ref[key], abs=1e-3)
        assert row["relation"] == ref["relation"] and row["side"] == ref["side"]


def test_series_names_a_nifti_file_by_its_path(nifti_result):
    study_folder, _ = nifti_result
    study = backmice.open_study(study_folder)
    fat = study_folder / "sub-01_fat.nii.gz"
    for given in (str(fat), "sub-01_fat.nii.gz"):
        choice = choose(study, series_uid=given)
        assert choice.method is Method.T1
        assert [s.series_uid for s in choice.stacks] == ["sub-01_fat.nii.gz"]


def test_seg_export_of_a_nifti_result_says_it_needs_dicom(nifti_result, tmp_path, capsys):
    _, out = nifti_result
    for fmt in ("seg", "sr"):
        assert main(["export", str(out), "--format", fmt, "--out", str(tmp_path / fmt)]) == 2
        err = capsys.readouterr().err
        assert "sub-01_fat.nii.gz" in err and "DICOM" in err and "Traceback" not in err
    # The tables and labels still export.
    assert main(["export", str(out), "--format", "csv", "--out", str(tmp_path / "csv")]) == 0


def test_batch_over_nifti_studies_one_of_them_broken(nifti_result, tmp_path):
    study_folder, _ = nifti_result
    cohort = tmp_path / "cohort"
    shutil.copytree(study_folder, cohort / "p1")
    (cohort / "p2").mkdir()
    whole = (study_folder / "sub-01_fat.nii.gz").read_bytes()
    (cohort / "p2" / "sub-02_T1w.nii.gz").write_bytes(whole[: len(whole) // 3])
    out = tmp_path / "out"
    code = main(["batch", str(cohort), "--out", str(out), "--workers", "0", "--no-qc", "--quiet"])
    assert code == 3
    with (out / "studies.csv").open() as fh:
        studies = {r["study"]: r for r in csv.DictReader(fh)}
    assert studies["p1"]["status"] == "ok"
    assert studies["p1"]["series_uid"] == "sub-01_fat.nii.gz;sub-01_water.nii.gz"
    assert studies["p2"]["status"] != "ok"
    assert "sub-02_T1w.nii.gz" in studies["p2"]["message"]
    assert "truncated" in studies["p2"]["message"]
    assert {r["study"] for r in _rows(out)} == {"p1"}
    assert np.isfinite([float(r["volume_mm3"]) for r in _rows(out)]).all()
