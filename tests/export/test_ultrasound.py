"""Ultrasound results exported as SEG and SR and imported back (issue 17, item 3).

The labels of an ultrasound result are on the cropped tissue region of one
frame; the SEG puts them back in the stored frame they came from (pixel for
pixel: ultrasound has no patient geometry), the SR carries the measurements in
mm and the long and short axes as SCOORD lines on the source image, and
``backmice import`` crops them back. A project mixing MR and ultrasound
exports as a whole.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest

import backmice
from backmice.cli import main
from backmice.errors import InputError
from backmice.export import export_annotations, from_project, from_result, import_files
from backmice.io.writer import write_ultrasound as write_us_file
from backmice.store import Action, Project
from backmice.ultrasound import analyze_ultrasound, mask_axes, write_ultrasound
from backmice.vocab import COLUMNS
from tests.conftest import real_file

from .conftest import make_result
from .test_roundtrip import _wipe

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = next((ROOT / "sample_data" / "us" / "01_us").glob("*.dcm"))
#: A seed inside the sample's lipoma, in pixels of the stored frame (col, row).
SEED = (395, 249)


def _analyse(path: Path, out: Path, **options) -> Path:
    study = backmice.open_study(path)
    stack = study.stacks[0]
    result = analyze_ultrasound(backmice.load(stack), study=path.stem, stack=stack, **options)
    write_ultrasound(result, out, qc=False)
    return out


@pytest.fixture(scope="module")
def us_template(tmp_path_factory) -> Path:
    return _analyse(SAMPLE, tmp_path_factory.mktemp("us") / "result", seed=SEED)


@pytest.fixture
def us_result(us_template, tmp_path) -> Path:
    out = tmp_path / "us_result"
    shutil.copytree(us_template, out)
    return out


@pytest.fixture(scope="module")
def cine(tmp_path_factory) -> Path:
    """A three-frame cine of the sample, the lipoma moved 12 px right on frame 2 (0-based)."""
    ds = pydicom.dcmread(SAMPLE)
    frame = ds.pixel_array
    frames = np.stack([frame, frame, np.roll(frame, 12, axis=1)])
    (region,) = ds.SequenceOfUltrasoundRegions
    box = [int(region[k].value) for k in ("RegionLocationMinX0", "RegionLocationMinY0")]
    box += [int(region[k].value) for k in ("RegionLocationMaxX1", "RegionLocationMaxY1")]
    delta = (float(region.PhysicalDeltaX) * 10, float(region.PhysicalDeltaY) * 10)
    folder = tmp_path_factory.mktemp("cine")
    path = write_us_file(frames, folder / "cine.dcm", region=box, delta_mm=delta, seed=7)
    return _analyse(path, folder / "result", seed=(SEED[0] + 12, SEED[1]), frame=2)


def _full_frame_labels(result: Path) -> tuple[np.ndarray, dict]:
    """The result's labels placed in its stored frame by hand (the expected SEG)."""
    doc = json.loads((result / "nodules.json").read_text())
    ann = from_result(result)
    ds = pydicom.dcmread(doc["source_files"][0], stop_before_pixels=True)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    full = np.zeros((frames, int(ds.Rows), int(ds.Columns)), dtype=np.uint32)
    r0, c0 = doc["region_origin_px"]
    h, w = ann.labels.shape[1:]
    full[doc["frame"], r0 : r0 + h, c0 : c0 + w] = ann.labels[0]
    return full, doc


def test_seg_puts_the_labels_back_in_the_stored_frame(us_result, tmp_path):
    written = export_annotations(us_result, tmp_path / "out", formats=["seg"])
    (seg_path,) = [p for p in written if p.name == "seg.dcm"]
    seg = pydicom.dcmread(seg_path)
    full, doc = _full_frame_labels(us_result)
    assert (seg.Rows, seg.Columns) == full.shape[1:]  # 480 x 640, not the 400 x 500 region
    pixels = seg.pixel_array
    assert np.array_equal(pixels > 0, full[0] > 0)
    (ref,) = seg.ReferencedSeriesSequence
    assert ref.SeriesInstanceUID == doc["series_uid"]
    source = pydicom.dcmread(SAMPLE, stop_before_pixels=True)
    assert ref.ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID


def test_sr_has_the_measurements_in_mm_and_the_axes_as_lines(us_result, tmp_path):
    export_annotations(us_result, tmp_path / "out", formats=["sr"])
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    sr = hd.sr.srread(folder / "sr.dcm")
    (row,) = json.loads((us_result / "nodules.json").read_text())["nodules"]
    (group,) = sr.content.get_planar_roi_measurement_groups()
    assert str(group.tracking_identifier) == "nodule 1"
    values = {m.name.meaning: (m.value, m.unit.value) for m in group.get_measurements()}
    assert values["Long axis"] == (pytest.approx(row["long_axis_mm"]), "mm")
    assert values["Short axis"] == (pytest.approx(row["short_axis_mm"]), "mm")
    assert values["Area"] == (pytest.approx(row["area_mm2"]), "mm2")
    (axes,) = sr.content.get_image_measurement_groups()
    assert str(axes.tracking_identifier) == "nodule 1 axes"
    doc = json.loads((us_result / "nodules.json").read_text())
    dy, dx = doc["pixel_mm"]
    r0, c0 = doc["region_origin_px"]
    source_uid = pydicom.dcmread(SAMPLE, stop_before_pixels=True).SOPInstanceUID
    ann = from_result(us_result)
    expected = mask_axes(ann.labels[0] == 1, spacing_mm=(dy, dx))
    for m in axes.get_measurements():
        (line,) = m.referenced_coordinates
        assert line.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
        (image,) = line.ContentSequence  # SELECTED FROM the source image
        assert image.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == source_uid
        (x0, y0), (x1, y1) = np.asarray(line.GraphicData, dtype=float).reshape(2, 2)
        # The line is in pixels of the stored frame: its length in mm is the value.
        assert np.hypot((x1 - x0) * dx, (y1 - y0) * dy) == pytest.approx(m.value, abs=0.05)
        key = "long_axis_ends_rc" if m.name.meaning == "Long axis" else "short_axis_ends_rc"
        ends = expected[key][:, ::-1] + [c0 + 0.5, r0 + 0.5]
        np.testing.assert_allclose(np.sort([[x0, y0], [x1, y1]], 0), np.sort(ends, 0), atol=1e-3)
    assert sr.ContentTemplateSequence[0].TemplateIdentifier == "1500"


def test_seg_and_sr_import_back_into_an_emptied_result(us_result, tmp_path):
    original = from_result(us_result)
    before = json.loads((us_result / "nodules.json").read_text())
    export_annotations(us_result, tmp_path / "out", formats=["sr"])
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    _wipe(us_result)
    assert not from_result(us_result).labels.any()
    args = [str(folder / "seg.dcm"), str(folder / "sr.dcm"), "--into", str(us_result)]
    assert main(["import", *args]) == 0
    back = from_result(us_result)
    assert np.array_equal(back.labels, original.labels)
    (got,), (want,) = back.rows, original.rows
    for column in COLUMNS:
        if column != "updated":  # the analysis writes "" where an import has None
            assert (got[column] or None) == (want[column] or None), column
    assert got["area_mm2"] == pytest.approx(want["area_mm2"])
    after = json.loads((us_result / "nodules.json").read_text())
    assert after["modality"] == "US" and after["lines"] == before["lines"]
    header = (us_result / "nodules.csv").read_text().splitlines()[0]
    assert header.endswith("area_mm2,x_mm,depth_mm,fascia_depth_mm,frame,found_by")


def test_a_seg_alone_is_measured_on_the_frame(us_result, tmp_path):
    export_annotations(us_result, tmp_path / "out", formats=["seg"])
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    want = from_result(us_result).rows[0]
    _wipe(us_result)
    result = import_files([folder / "seg.dcm"], into=us_result)
    (row,) = result.rows
    assert row["long_axis_mm"] == pytest.approx(want["long_axis_mm"], abs=1e-3)
    assert row["short_axis_mm"] == pytest.approx(want["short_axis_mm"], abs=1e-3)
    assert row["area_mm2"] == pytest.approx(want["area_mm2"], abs=1e-3)
    assert row["relation"] == want["relation"]
    assert row["volume_mm3"] is None  # a frame has no volume


def test_cine_frame_round_trips_on_its_own_frame(cine, tmp_path):
    full, doc = _full_frame_labels(cine)
    assert doc["frame"] == 2 and full.shape[0] == 3
    export_annotations(cine, tmp_path / "out", formats=["sr"])
    (folder,) = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    seg = pydicom.dcmread(folder / "seg.dcm")
    (frame,) = seg.PerFrameFunctionalGroupsSequence  # empty frames are left out
    (src,) = frame.DerivationImageSequence[0].SourceImageSequence
    assert int(src.ReferencedFrameNumber) == 3  # 1-based
    assert np.array_equal(seg.pixel_array > 0, full[2] > 0)
    sr = hd.sr.srread(folder / "sr.dcm")
    (axes,) = sr.content.get_image_measurement_groups()
    for m in axes.get_measurements():
        (line,) = m.referenced_coordinates
        (image,) = line.ContentSequence
        assert int(image.ReferencedSOPSequence[0].ReferencedFrameNumber) == 3
    original = from_result(cine)
    _wipe(cine)
    import_files([folder / "seg.dcm", folder / "sr.dcm"], into=cine)
    assert np.array_equal(from_result(cine).labels, original.labels)


def test_uncalibrated_ultrasound_gets_a_seg_but_no_sr(tmp_path):
    result = _analyse(real_file("US1_UNCR.dcm"), tmp_path / "ge", seed=(260, 230))
    written = export_annotations(result, tmp_path / "seg", formats=["seg"])
    seg = pydicom.dcmread(next(p for p in written if p.name == "seg.dcm"))
    assert (seg.Rows, seg.Columns) == (480, 640)
    with pytest.raises(InputError, match="not calibrated"):
        export_annotations(result, tmp_path / "sr", formats=["sr"])


@pytest.mark.slow  # three analyses, a project and its export: end to end
def test_mixed_mr_and_ultrasound_project_exports_as_a_whole(us_result, tmp_path):
    mr = make_result(tmp_path / "mr")
    ge = _analyse(real_file("US1_UNCR.dcm"), tmp_path / "ge", seed=(260, 230))
    folder = tmp_path / "project"
    with Project.open(folder) as p:
        mr_key = p.add_result_dir(mr)
        us_key = p.add_result_dir(us_result)
        ge_key = p.add_result_dir(ge, study="ge_uncalibrated")
        p.record(us_key, Action.ACCEPT, reader="anna", nodule_id=1)
    out = tmp_path / "out"
    args = ["export", str(folder), "--format", "sr", "--format", "csv", "--out", str(out)]
    assert main(args) == 0
    for key in (mr_key, us_key):
        assert (out / key / "seg.dcm").is_file() and (out / key / "sr.dcm").is_file(), key
    # The uncalibrated one gets its SEG; its SR (in mm) is skipped, named, not a failure.
    assert (out / ge_key / "seg.dcm").is_file() and not (out / ge_key / "sr.dcm").exists()
    seg = pydicom.dcmread(out / us_key / "seg.dcm")
    assert (seg.Rows, seg.Columns) == (480, 640)
    (ann,) = from_project(folder, studies=[us_key])
    assert ann.ultrasound and ann.placement.origin_px == (40, 70)
    # A reader's SEG and SR of the ultrasound study import back into the project.
    import_files([out / us_key / "seg.dcm", out / us_key / "sr.dcm"], into=folder, reader="ben")
    with Project.open(folder, create=False) as p:
        labels, _ = p.labels(us_key, reader="ben")
        rows = p.nodules(us_key, reader="ben")
    assert np.array_equal(labels, from_result(us_result).labels)
    assert rows[0]["status"] == "accepted"


def test_a_study_whose_source_is_gone_does_not_block_the_others(us_result, tmp_path):
    mr = make_result(tmp_path / "mr")
    moved = tmp_path / "moved"
    shutil.copytree(SAMPLE.parent, moved)
    doc = json.loads((us_result / "nodules.json").read_text())
    doc["source_files"] = [str(next(moved.glob("*.dcm")))]
    (us_result / "nodules.json").write_text(json.dumps(doc))
    folder = tmp_path / "project"
    with Project.open(folder) as p:
        mr_key = p.add_result_dir(mr)
        us_key = p.add_result_dir(us_result)
    shutil.rmtree(moved)
    written = export_annotations(folder, tmp_path / "out", formats=["seg"])
    assert tmp_path / "out" / mr_key / "seg.dcm" in written
    assert not (tmp_path / "out" / us_key).exists()
