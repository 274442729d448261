"""SEG and SR export from anonymised sources: type 2 attributes emptied or removed (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from backmice.cli import main
from backmice.export import export_annotations

from .conftest import make_result

#: What anonymisers routinely empty or remove (type 2: present, may be empty).
REMOVED = ("PatientBirthDate", "PatientSex", "PatientID", "PatientName", "StudyDate", "StudyID")


@pytest.fixture(scope="module")
def anonymised(tmp_path_factory) -> Path:
    result = make_result(tmp_path_factory.mktemp("anonymised"))
    files = [p for p in (result.parent / "dicom").rglob("*") if p.is_file()]
    assert files
    for path in files:
        ds = pydicom.dcmread(path)
        for name in REMOVED:
            if name in ds:
                del ds[name]
        ds.save_as(path)
    return result


@pytest.mark.parametrize("anonymize", [False, True])
def test_seg_and_sr_export_from_a_source_without_patient_attributes(
    anonymised, tmp_path, anonymize
):
    written = export_annotations(anonymised, tmp_path, formats=["seg", "sr"], anonymize=anonymize)
    assert {p.name for p in written} >= {"seg.dcm"}
    for path in written:
        ds = pydicom.dcmread(path)
        assert "PatientID" in ds and "PatientBirthDate" in ds and "PatientSex" in ds
        assert ds.PatientBirthDate == "" and ds.PatientSex == ""


def test_the_command_line_exports_an_anonymised_study(anonymised, tmp_path):
    out = tmp_path / "out"
    assert (
        main(["export", str(anonymised), "--format", "seg", "--format", "sr", "--out", str(out)])
        == 0
    )
    assert list(out.rglob("seg.dcm"))
