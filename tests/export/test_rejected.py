"""Rejected candidates stay out of SEG and SR unless asked for (viewers show them as findings)."""

from __future__ import annotations

import pydicom

from backmice.cli import main
from backmice.export import export_annotations


def _segments(folder) -> list[str]:
    [seg] = folder.rglob("seg.dcm")
    return [str(s.TrackingID) for s in pydicom.dcmread(seg).SegmentSequence]


def test_rejected_nodules_are_left_out_of_the_seg_by_default(result, tmp_path):
    # The fixture's nodule 2 is rejected by anna; 1 is accepted, 3 a candidate.
    export_annotations(result, tmp_path / "default", formats=["seg", "sr", "csv"])
    assert _segments(tmp_path / "default") == ["nodule 1", "nodule 3"]
    srs = list((tmp_path / "default").rglob("sr*.dcm"))
    assert srs and all(b"nodule 2" not in p.read_bytes() for p in srs)
    assert ",rejected," in (tmp_path / "default" / "nodules.csv").read_text()  # tables keep it


def test_include_rejected_keeps_them(result, tmp_path):
    out = tmp_path / "all"
    argv = ["export", str(result), "--format", "seg", "--out", str(out), "--include-rejected"]
    assert main(argv) == 0
    assert _segments(out) == ["nodule 1", "nodule 2", "nodule 3"]
