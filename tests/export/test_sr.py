"""The TID 1500 SR: measurement groups, codes, units, observer, and the segment they reference."""

from __future__ import annotations

import highdicom as hd
import pytest
from pydicom.sr.codedict import codes
from pydicom.uid import Comprehensive3DSRStorage

from backmice.errors import InputError
from backmice.export import build_seg, build_sr, from_result, read_sr
from backmice.export.pipeline import save_dataset
from backmice.export.sr import CRITERION_NAMES, MEASUREMENTS
from backmice.vocab import RedFlag


@pytest.fixture
def ann(result):
    return from_result(result)


def test_groups_hold_the_rows(ann, tmp_path):
    seg = build_seg(ann)
    sr = build_sr(ann, seg, reader="anna")
    path = save_dataset(tmp_path / "sr.dcm", sr)
    doc = hd.sr.srread(path)
    assert doc.SOPClassUID == Comprehensive3DSRStorage
    groups = doc.content.get_volumetric_roi_measurement_groups()
    assert [str(g.tracking_identifier) for g in groups] == ["nodule 1", "nodule 2", "nodule 3"]
    seg_numbers = {str(s.TrackingUID): int(s.SegmentNumber) for s in seg.SegmentSequence}
    for group in groups:
        ref = group.referenced_segment
        assert ref.referenced_sop_instance_uid == seg.SOPInstanceUID
        assert ref.referenced_segment_numbers == [seg_numbers[str(group.tracking_uid)]]
    first = groups[0]
    by_name = {(m.name.value, m.name.scheme_designator): m for m in first.get_measurements()}
    volume = by_name[(codes.SCT.Volume.value, "SCT")]
    assert volume.unit.value == "mm3" and volume.unit.scheme_designator == "UCUM"
    assert float(volume.value) == ann.rows[0]["volume_mm3"]
    long_axis = by_name[(codes.SCT.LongAxis.value, "SCT")]
    assert long_axis.unit.value == "mm"
    assert by_name[(codes.SCT.Diameter.value, "SCT")].derivation.value == codes.SCT.Maximum.value
    # Every unit is UCUM.
    assert {m.unit.scheme_designator for g in groups for m in g.get_measurements()} == {"UCUM"}
    evaluations = {e.name.meaning: e.value.meaning for e in first.get_qualitative_evaluations()}
    assert evaluations["subtype"] == "episacroiliac_lipoma"
    assert evaluations["status"] == "accepted"
    site = first.finding_sites[0]
    assert site.value.value == codes.SCT.SacroiliacJointStructure.value
    assert site.laterality.value == codes.SCT.Right.value
    assert first.finding_type.value == codes.SCT.Lipoma.value
    assert groups[1].finding_sites[0].laterality.value == codes.SCT.Left.value
    assert groups[2].finding_sites[0].laterality.value == codes.SCT.Median.value


def test_mr_axes_are_polylines_on_their_source_slice(ann, tmp_path):
    """TID 1501 groups ``nodule N axes``: each axis a two-point SCOORD POLYLINE on the
    source image of its slice, in pixels, whose length in mm is the row's value."""
    import numpy as np

    seg = build_seg(ann)
    path = save_dataset(tmp_path / "sr.dcm", build_sr(ann, seg, reader="anna"))
    doc = hd.sr.srread(path)
    groups = doc.content.get_image_measurement_groups()
    assert [str(g.tracking_identifier) for g in groups] == [
        "nodule 1 axes",
        "nodule 2 axes",
        "nodule 3 axes",
    ]
    source = ann.source()
    by_uid = {str(ds.SOPInstanceUID): ds for ds in source.datasets}
    rows = {int(r["nodule_id"]): r for r in ann.rows}
    for nid, group in enumerate(groups, start=1):
        values = {}
        for m in group.get_measurements():
            assert m.unit.value == "mm" and m.unit.scheme_designator == "UCUM"
            (line,) = m.referenced_coordinates
            assert line.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
            (image,) = line.ContentSequence
            ds = by_uid[str(image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)]
            (x0, y0), (x1, y1) = np.asarray(line.GraphicData, dtype=float).reshape(2, 2)
            dy, dx = (float(v) for v in ds.PixelSpacing)
            assert min(x0, x1) >= 0 and max(x0, x1) <= ds.Columns
            assert min(y0, y1) >= 0 and max(y0, y1) <= ds.Rows
            length = float(np.hypot((x1 - x0) * dx, (y1 - y0) * dy))
            values[m.name.meaning] = (float(m.value), length)
        row = rows[nid]
        assert values["Long axis"][0] == pytest.approx(row["long_axis_mm"])
        assert values["Short axis"][0] == pytest.approx(row["short_axis_mm"])
        # The drawn end points are the measured ones: the line is as long as the value.
        assert values["Long axis"][1] == pytest.approx(row["long_axis_mm"], abs=0.05)
        assert values["Short axis"][1] == pytest.approx(row["short_axis_mm"], abs=0.05)
    # The reader ignores the axes groups: one nodule each, as before.
    assert [r["nodule_id"] for r in read_sr(path)[0]] == [1, 2, 3]


def test_reader_is_the_person_observer(ann, tmp_path):
    seg = build_seg(ann)
    path = save_dataset(tmp_path / "sr.dcm", build_sr(ann, seg, reader="Smith^Anna"))
    rows, reader = read_sr(path)
    assert reader == "Smith^Anna"
    assert {r["reader"] for r in rows} == {"Smith^Anna"}
    # Without a reader, backmice is a device observer and no reader is read back.
    path = save_dataset(tmp_path / "sr2.dcm", build_sr(ann.with_rows(ann.rows[2:]), seg))
    rows, reader = read_sr(path)
    assert reader is None and [r["nodule_id"] for r in rows] == [3]


def test_every_measurement_column_round_trips(ann, tmp_path):
    seg = build_seg(ann)
    rows, _ = read_sr(save_dataset(tmp_path / "sr.dcm", build_sr(ann, seg, reader="anna")))
    for got, want in zip(rows, ann.rows, strict=True):
        for column, *_ in MEASUREMENTS:
            assert got.get(column) == want[column], column
        for column in ("subtype", "suggested_subtype", "status", "relation", "side"):
            assert got.get(column) == want[column], column
        assert got["red_flags"] == want["red_flags"]


def test_each_red_flag_names_its_criterion(ann, tmp_path):
    """A red flag is a qualitative evaluation named by its criterion, its value measured."""
    seg = build_seg(ann)
    doc = hd.sr.srread(save_dataset(tmp_path / "sr.dcm", build_sr(ann, seg, reader="anna")))
    second = doc.content.get_volumetric_roi_measurement_groups()[1]
    evaluations = {e.name.meaning: e.value.meaning for e in second.get_qualitative_evaluations()}
    assert evaluations["septa thicker than 2 mm"] == "thick_septa"
    assert evaluations["lesion less than 75% fat"] == "fat<75%"
    names = {e.name.value for e in second.get_qualitative_evaluations()}
    assert CRITERION_NAMES[RedFlag.THICK_SEPTA].value in names
    by_name = {m.name.meaning: m for m in second.get_measurements()}
    assert float(by_name["Width of the septa"].value) == 3.25
    assert by_name["Width of the septa"].unit.value == "mm"
    assert float(by_name["Share of the lesion that is fat"].value) == 0.62


def test_not_an_sr_is_bad_input(ann, tmp_path):
    path = save_dataset(tmp_path / "seg.dcm", build_seg(ann))
    with pytest.raises(InputError, match="Structured Report"):
        read_sr(path)
