"""DICOM SEG: geometry and content of the SEG written, and SEGs made by other tools read back."""

from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.sr.codedict import codes

from backmice.errors import InputError
from backmice.export import build_seg, from_result, import_files, read_seg
from backmice.export.pipeline import save_dataset

from .conftest import make_result


@pytest.fixture
def ann(result):
    return from_result(result)


def test_seg_planes_are_the_source_planes(ann, tmp_path):
    seg = build_seg(ann)
    source = ann.source()
    by_uid = {ds.SOPInstanceUID: ds for ds in source.datasets}
    assert {s.SeriesInstanceUID for s in seg.ReferencedSeriesSequence} == {ann.series_uid}
    assert seg.FrameOfReferenceUID == source.frame_of_reference_uid
    assert seg.StudyInstanceUID == source.study_uid
    for frame in seg.PerFrameFunctionalGroupsSequence:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        position = frame.PlanePositionSequence[0].ImagePositionPatient
        np.testing.assert_allclose(position, by_uid[ref].ImagePositionPatient, atol=1e-6)
    iop = seg.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    np.testing.assert_allclose(
        iop.ImageOrientationPatient, source.datasets[0].ImageOrientationPatient, atol=1e-6
    )
    # Every slice holding a nodule is a frame; the mask of each slice is the labels'.
    ns = {
        int(f.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert ns == {1, 2, 3}
    path = save_dataset(tmp_path / "seg.dcm", seg)
    back = read_seg(path, shape=ann.labels.shape, affine=ann.affine, series_uid=ann.series_uid)
    assert np.array_equal(back.labels, ann.labels)


def test_segments_carry_codes_tracking_and_subtype(ann):
    seg = build_seg(ann)
    items = list(seg.SegmentSequence)
    assert [s.SegmentNumber for s in items] == [1, 2, 3]
    assert [s.SegmentLabel for s in items] == [
        "nodule 1: episacroiliac_lipoma",
        "nodule 2: suggested liposarcoma_suspected",
        "nodule 3: suggested other",
    ]
    assert [s.TrackingID for s in items] == ["nodule 1", "nodule 2", "nodule 3"]
    assert len({s.TrackingUID for s in items}) == 3
    # The same nodule keeps its tracking UID from one export to the next.
    assert [s.TrackingUID for s in build_seg(ann).SegmentSequence] == [s.TrackingUID for s in items]
    category = {s.SegmentedPropertyCategoryCodeSequence[0].CodeValue for s in items}
    assert category == {codes.SCT.MorphologicallyAbnormalStructure.value}
    types = [s.SegmentedPropertyTypeCodeSequence[0].CodeValue for s in items]
    assert types == [codes.SCT.Lipoma.value, codes.SCT.Nodule.value, codes.SCT.Nodule.value]
    assert seg.SegmentationType == "BINARY"
    # Anatomic region from SNOMED CT (the SR's finding site), a colour per nodule.
    regions = [s.AnatomicRegionSequence[0] for s in items]
    assert [(r.CodingSchemeDesignator, r.CodeValue) for r in regions] == [
        ("SCT", codes.SCT.SacroiliacJointStructure.value),
        ("SCT", codes.SCT.LumbarRegionBackStructure.value),
        ("SCT", codes.SCT.LumbarRegionBackStructure.value),
    ]
    colours = [tuple(s.RecommendedDisplayCIELabValue) for s in items]
    assert len(set(colours)) == 3
    rgb = [hd.color.CIELabColor.from_dicom_value(c).to_rgb() for c in colours]
    assert [tuple(round(v) for v in c) for c in rgb] == [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
    ]


def _foreign_seg(ann, *, order, seg_type="BINARY", omit_empty=True, reverse_sources=False):
    """A SEG made as another tool would: segments in ``order`` of nodule IDs, no tracking IDs."""
    source = ann.source()
    images = [source.datasets[i] for i, _ in source.frame_of_slice]
    masks = np.stack([ann.labels == nid for nid in order], axis=-1)
    if reverse_sources:
        images, masks = images[::-1], masks[::-1]
    if seg_type == "LABELMAP":
        pixels = np.zeros(masks.shape[:3], dtype=np.uint8)
        for i in range(masks.shape[-1]):
            pixels[masks[..., i]] = i + 1
    elif seg_type == "FRACTIONAL":
        rng = np.random.default_rng(0)
        pixels = np.where(masks, 0.8, rng.uniform(0, 0.45, masks.shape)).astype(np.float32)
    else:
        pixels = masks.astype(np.uint8)
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i,
            segment_label=f"Segment_{i}",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.AdiposeTissue,
            algorithm_type="MANUAL",
        )
        for i in range(1, len(order) + 1)
    ]
    return hd.seg.Segmentation(
        source_images=images,
        pixel_array=pixels,
        segmentation_type=seg_type,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=77,
        sop_instance_uid=hd.UID(),
        instance_number=3,
        manufacturer="Other",
        manufacturer_model_name="Slicer-like",
        software_versions="5",
        device_serial_number="1",
        omit_empty_frames=omit_empty,
        max_fractional_value=200,
    )


@pytest.mark.parametrize(
    ("seg_type", "omit_empty", "reverse_sources"),
    [
        ("BINARY", True, True),
        ("BINARY", False, False),
        ("FRACTIONAL", True, False),
        ("LABELMAP", True, True),
    ],
)
def test_foreign_segs_are_read_onto_the_grid(
    ann, result, tmp_path, seg_type, omit_empty, reverse_sources
):
    order = [3, 1, 2]
    seg = _foreign_seg(
        ann, order=order, seg_type=seg_type, omit_empty=omit_empty, reverse_sources=reverse_sources
    )
    path = save_dataset(tmp_path / "other.dcm", seg)
    back = read_seg(path, shape=ann.labels.shape, affine=ann.affine, series_uid=ann.series_uid)
    for number, nid in enumerate(order, start=1):
        assert np.array_equal(back.labels == number, ann.labels == nid), (number, nid)
    # Imported alone (no SR): nodules numbered by segment, measured from their masks.
    imported = import_files([path], into=result, write=False)
    by_id = {r["nodule_id"]: r for r in ann.rows}
    for number, nid in enumerate(order, start=1):
        assert np.array_equal(imported.labels == number, ann.labels == nid)
        row = imported.rows[number - 1]
        assert row["volume_mm3"] == pytest.approx(by_id[nid]["volume_mm3"], abs=1e-3)
        assert row["centroid_x_mm"] == pytest.approx(by_id[nid]["centroid_x_mm"], abs=1e-3)
        assert row["status"] == "candidate" and row["subtype"] is None
        assert row["relation"] in {"subcutaneous", "subfascial", "transfascial"}


def test_own_seg_without_sr_keeps_ids_rows_and_tagged_subtype(ann, result, tmp_path):
    path = save_dataset(tmp_path / "seg.dcm", build_seg(ann))
    imported = import_files([path], into=result, write=False)
    assert np.array_equal(imported.labels, ann.labels)
    assert imported.rows == ann.rows  # masks unchanged: the folder's rows are kept


def test_a_seg_over_another_series_is_bad_input(ann, tmp_path):
    seg = build_seg(ann)
    seg.ReferencedSeriesSequence[0].SeriesInstanceUID = "1.2.3.4"
    path = save_dataset(tmp_path / "seg.dcm", seg)
    with pytest.raises(InputError, match=r"a SEG over series 1\.2\.3\.4") as err:
        read_seg(path, shape=ann.labels.shape, affine=ann.affine, series_uid=ann.series_uid)
    assert str(path) in str(err.value)


def test_a_seg_in_another_geometry_is_bad_input(ann, tmp_path):
    seg = build_seg(ann)
    pos = seg.PerFrameFunctionalGroupsSequence[0].PlanePositionSequence[0]
    pos.ImagePositionPatient = [float(v) + 1.5 for v in pos.ImagePositionPatient]
    path = save_dataset(tmp_path / "seg.dcm", seg)
    with pytest.raises(InputError, match="not on the series' grid"):
        read_seg(path, shape=ann.labels.shape, affine=ann.affine)
    with pytest.raises(InputError, match="frames are"):
        read_seg(path, shape=(7, 40, 40), affine=ann.affine)


def test_not_a_seg_is_bad_input(ann, result):
    mr = ann.source_paths[0]
    with pytest.raises(InputError, match="neither a DICOM Segmentation nor a Structured Report"):
        import_files([mr], into=result)
    with pytest.raises(InputError, match="not a DICOM Segmentation"):
        read_seg(mr, shape=ann.labels.shape, affine=ann.affine)
    junk = result / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    with pytest.raises(InputError, match=r"junk\.dcm"):
        import_files([junk], into=result)


def test_seg_file_is_valid_dicom(ann, tmp_path):
    path = save_dataset(tmp_path / "seg.dcm", build_seg(ann))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID
    assert hd.seg.segread(path).number_of_segments == 3


def test_dixon_components_in_one_series_reference_the_analysed_image(tmp_path):
    folder = make_result(tmp_path, dixon_one_series=True)
    ann = from_result(folder)
    source = ann.source()
    assert len(source.datasets) == ann.labels.shape[0]
    assert {tuple(ds.ImageType)[-1] for ds in source.datasets} == {"FAT"}
    seg = build_seg(ann)
    refs = {
        f.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        for f in seg.PerFrameFunctionalGroupsSequence
    }
    assert refs <= {ds.SOPInstanceUID for ds in source.datasets}


def test_a_frame_without_position_is_placed_by_its_source_image(ann, result, tmp_path):
    seg = build_seg(ann)
    for frame in seg.PerFrameFunctionalGroupsSequence:
        del frame.PlanePositionSequence
    path = save_dataset(tmp_path / "seg.dcm", seg)
    with pytest.raises(InputError, match="no ImagePositionPatient"):
        read_seg(path, shape=ann.labels.shape, affine=ann.affine)
    imported = import_files([path], into=result, write=False)
    assert np.array_equal(imported.labels, ann.labels)


def test_overlapping_segments_are_kept_whole(ann, result, tmp_path):
    """A SEG whose segments overlap (as a reader may draw them in Slicer): each keeps its mask."""
    source = ann.source()
    images = [source.datasets[i] for i, _ in source.frame_of_slice]
    one = ann.labels == 1
    two = (ann.labels == 2) | one  # segment 2 covers nodule 1 as well
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=i,
            segment_label=f"Segment_{i}",
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.AdiposeTissue,
            algorithm_type="MANUAL",
        )
        for i in (1, 2)
    ]
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=np.stack([one, two], axis=-1).astype(np.uint8),
        segmentation_type="BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=78,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="Other",
        manufacturer_model_name="Slicer-like",
        software_versions="5",
        device_serial_number="1",
    )
    path = save_dataset(tmp_path / "overlap.dcm", seg)
    back = read_seg(path, shape=ann.labels.shape, affine=ann.affine, series_uid=ann.series_uid)
    assert back.overlap_voxels == int(one.sum())
    assert np.array_equal(back.mask(1), one) and np.array_equal(back.mask(2), two)
    assert np.array_equal(back.labels == 2, two & ~one)  # the label map: lowest number
    imported = import_files([path], into=result, write=False)
    assert np.array_equal(imported.mask(2), two)
    assert any("more than one segment" in w for w in imported.warnings)
    # Nodule 2 is measured on its whole mask, overlap included.
    voxel = float(abs(np.linalg.det(ann.affine[:3, :3])))
    assert imported.rows[1]["volume_mm3"] >= (two.sum() - 1) * voxel * 0.5
    assert imported.rows[1]["volume_mm3"] > imported.rows[0]["volume_mm3"]
