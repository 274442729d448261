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


def _rows(folder: Path, key: str, reader: str) -> dict[int, dict]:
    from backmice.store import Project

    with Project.open(folder, create=False) as p:
        return {r["nodule_id"]: r for r in p.nodules(key, reader=reader)}


@pytest.mark.parametrize("formats", [["seg"], ["sr"]], ids=["seg", "seg+sr"])
def test_project_seg_round_trip_gives_the_analysis_rows(t1_analysis, tmp_path, formats):
    """Issue 18: a SEG (with or without its SR) exported and imported back changes no column.

    In the project it is imported into, the reader has shrunk nodule 1 and erased
    nodule 2, so the import puts their masks back and the project measures them
    again: what it measures must be the analysis' row, every column.
    """
    from backmice.export import export_annotations, import_files
    from backmice.store import Action, Project
    from tests.conftest import assert_same_row

    source = tmp_path / "source"
    with Project.open(source) as p:
        key = p.add_analysis(t1_analysis)
    export_annotations(source, tmp_path / "out", formats=formats)
    files = sorted((tmp_path / "out" / key).glob("*.dcm"))
    target = tmp_path / "target"
    with Project.open(target) as p:
        assert p.add_analysis(t1_analysis) == key
        shrunk = p.mask(key, 1)
        shrunk[int(np.nonzero(shrunk)[0].max())] = False
        p.record(key, Action.EDIT_MASK, reader="anna", nodule_id=1, mask=shrunk)
        p.record(key, Action.DELETE_NODULE, reader="anna", nodule_id=2)
    import_files(files, into=target, reader="anna")
    got = _rows(target, key, "anna")
    assert sorted(got) == [r["nodule_id"] for r in t1_analysis.nodules]
    for want in t1_analysis.nodules:
        # status, reader, updated: the reader's review of the import, not measurements
        assert_same_row(got[want["nodule_id"]], want, skip=("status", "reader", "updated"))


def test_a_seg_into_a_result_folder_reads_the_fascia_as_the_analysis(analysed, t1_analysis):
    """A changed mask imported into a result folder (which keeps only the fascia map):
    its shape and fascia columns are the analysis' own (the fascia offset trilinear at
    the centroid, not at the nearest voxel)."""
    from backmice.export.pipeline import _measured_row
    from backmice.export.source import read_labels

    ann = from_result(analysed)
    fascia = read_labels(analysed / "fascia.nii.gz")[0]
    columns = [
        *(f"centroid_{a}_mm" for a in "xyz"),
        "max_diameter_mm",
        "long_axis_mm",
        "short_axis_mm",
        *(f"axis_{i}_mm" for i in (1, 2, 3)),
        "fascia_offset_mm",
        "fascia_min_mm",
        "fascia_max_mm",
        "relation",
    ]
    for want in t1_analysis.nodules:
        got = _measured_row(ann, ann.labels, want["nodule_id"], fascia)
        for c in columns:
            if isinstance(want[c], float):
                # fascia.nii.gz holds the analysis' float32 map
                assert got[c] == pytest.approx(want[c], rel=1e-6, abs=1e-6), c
            else:
                assert got[c] == want[c], c
