"""No patient name, ID or birth date in what `backmice analyze` writes (issue 9)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest

from backmice.cli import main

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "t1_axial"
NAME, PATIENT_ID, BIRTH = "Zyxwvuts^Qponmlk", "PID-8675309", "19230405"


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """The T1 sample with a distinctive patient, analysed by the command line."""
    root = tmp_path_factory.mktemp("privacy")
    study = root / "study_a"
    shutil.copytree(SAMPLE, study)
    for path in study.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = NAME, PATIENT_ID, BIRTH
        ds.save_as(path)
    out = root / "out"
    assert main(["analyze", str(study), "--out", str(out)]) == 0
    return out


def test_every_output_file_is_free_of_patient_identifiers(written):
    files = sorted(p for p in written.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {
        "nodules.csv",
        "nodules.json",
        "labels.nii.gz",
        "fascia.nii.gz",
        "qc.png",
    }
    needles = [s.encode() for s in (NAME, *NAME.split("^"), PATIENT_ID, BIRTH)]
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip

            data = gzip.decompress(data)
        for needle in needles:
            assert needle not in data, f"{needle!r} in {path.name}"
