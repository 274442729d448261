"""The real analysis of the bundled T1 sample, exported and imported back through the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest

from backmice.cli import main
from backmice.export import from_result
from backmice.report import write_analysis
from backmice.vocab import COLUMNS


@pytest.fixture(scope="module")
def analysed(tmp_path_factory, t1_analysis) -> Path:
    """The session's analysis of the T1 sample (tests/conftest.py), written as a result."""
    out = tmp_path_factory.mktemp("sample") / "result"
    write_analysis(t1_analysis, out, qc=False)
    return out


def test_sample_exports_and_imports_back(analysed, tmp_path):
    original = from_result(analysed)
    assert len(original.rows) >= 2
    out = tmp_path / "export"
    args = ["export", str(analysed), "--out", str(out), "--anonymize"]
    assert main([*args, "--format", "sr", "--format", "csv", "--format", "json"]) == 0
    source = pydicom.dcmread(original.source_paths[0], stop_before_pixels=True)
    secrets = [str(source.PatientName), str(source.PatientID)]
    for path in out.rglob("*"):
        assert not any(s in str(path) for s in secrets)
        if path.is_file():
            assert not any(s.encode() in path.read_bytes() for s in secrets), path
    (study,) = [p for p in out.iterdir() if p.is_dir()]
    seg = pydicom.dcmread(study / "seg.dcm")
    assert len(seg.SegmentSequence) == len(original.rows)
    assert str(seg.PatientName).startswith("ANON-") and seg.PatientBirthDate == ""
    # An anonymised SEG references replaced UIDs (PS3.15): import the plain export
    # back into a copy of the result with its labels and rows forgotten.
    plain = tmp_path / "plain"
    assert main(["export", str(analysed), "--out", str(plain), "--format", "sr"]) == 0
    (study,) = [p for p in plain.iterdir() if p.is_dir()]
    target = tmp_path / "target"
    target.mkdir()
    for name in ("nodules.json", "labels.nii.gz", "fascia.nii.gz"):
        (target / name).write_bytes((analysed / name).read_bytes())
    from .test_roundtrip import _wipe

    _wipe(target)
    assert (
        main(["import", str(study / "seg.dcm"), str(study / "sr.dcm"), "--into", str(target)]) == 0
    )
    back = from_result(target)
    assert np.array_equal(back.labels, original.labels)
    for got, want in zip(back.rows, original.rows, strict=True):
        assert {c: got[c] for c in COLUMNS if c != "updated"} == {
            c: want[c] for c in COLUMNS if c != "updated"
        }
