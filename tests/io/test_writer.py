"""The synthetic DICOM writer writes what it says.

Checked independently of backmice's loader: geometry through SimpleITK (GDCM),
tags and pixels through pydicom.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    MRImageStorage,
    RLELossless,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from backmice.io.writer import (
    WRITABLE_TRANSFER_SYNTAXES,
    make_affine,
    rotation_matrix,
    ultrasound_region,
    write_series,
    write_ultrasound,
)

SHAPE = (5, 24, 20)  # (slice, row, col): rows != cols so a transpose would show


def _volume(shape: tuple[int, int, int] = SHAPE, *, low: int = -200, seed: int = 0) -> np.ndarray:
    """Integer-valued test volume with a gradient along every axis (so flips show)."""
    rng = np.random.default_rng(seed)
    k, r, c = np.indices(shape)
    return (low + 100 * k + 7 * r + 3 * c + rng.integers(0, 3, shape)).astype(np.int16)


def _read_sitk(folder: Path) -> sitk.Image:
    series_ids = sitk.ImageSeriesReader.GetGDCMSeriesIDs(str(folder))
    assert len(series_ids) == 1, series_ids
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def _oblique() -> np.ndarray:
    return rotation_matrix("x", 25.0) @ rotation_matrix("y", 25.0)


# --------------------------------------------------------------------------- affine


def test_make_affine_axial_columns() -> None:
    a = make_affine((3.0, 0.7, 0.8), origin=(1.0, 2.0, 3.0))
    np.testing.assert_allclose(a[:3, 0], [0, 0, 3.0])  # slice step along +z
    np.testing.assert_allclose(a[:3, 1], [0, 0.7, 0])  # rows along +y
    np.testing.assert_allclose(a[:3, 2], [0.8, 0, 0])  # columns along +x
    np.testing.assert_allclose(a[:3, 3], [1, 2, 3])
    np.testing.assert_allclose(a[3], [0, 0, 0, 1])


@pytest.mark.parametrize(
    ("orientation", "iop", "normal"),
    [
        ("sagittal", [0, 1, 0, 0, 0, -1], [-1, 0, 0]),
        ("coronal", [1, 0, 0, 0, 0, -1], [0, 1, 0]),
    ],
)
def test_make_affine_orientations(orientation: str, iop: list[float], normal: list[float]) -> None:
    a = make_affine((2.0, 1.0, 1.0), orientation=orientation)
    np.testing.assert_allclose(np.r_[a[:3, 2], a[:3, 1]], iop, atol=1e-12)
    np.testing.assert_allclose(a[:3, 0], np.array(normal) * 2.0, atol=1e-12)


def test_rotation_matrix() -> None:
    r = rotation_matrix("z", 90.0)
    np.testing.assert_allclose(r @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    o = _oblique()
    np.testing.assert_allclose(o @ o.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(o) == pytest.approx(1.0)
    np.testing.assert_allclose(rotation_matrix([0, 0, 5], 30.0), rotation_matrix("z", 30.0))
    a = make_affine((2.0, 0.5, 0.6), rotation=o)
    np.testing.assert_allclose(np.linalg.norm(a[:3, :3], axis=0), [2.0, 0.5, 0.6])
    with pytest.raises(ValueError, match="orientation"):
        make_affine((1, 1, 1), orientation="transverse")


# --------------------------------------------------------------------------- SimpleITK geometry


@pytest.mark.parametrize(
    ("name", "affine", "shuffle"),
    [
        ("axial", make_affine((3.0, 0.7, 0.8), origin=(-20.0, 15.5, 102.0)), False),
        (
            "sagittal",
            make_affine((4.0, 0.9, 0.6), orientation="sagittal", origin=(30, -5, 80)),
            False,
        ),
        (
            "coronal",
            make_affine((3.5, 0.8, 0.75), orientation="coronal", origin=(-9, 40, 7)),
            False,
        ),
        ("oblique", make_affine((2.5, 0.7, 0.8), rotation=_oblique(), origin=(5, 6, 7)), False),
        ("oblique_shuffled", make_affine((2.5, 0.7, 0.8), rotation=_oblique()), True),
    ],
)
def test_series_geometry_matches_simpleitk(
    tmp_path: Path, name: str, affine: np.ndarray, shuffle: bool
) -> None:
    vol = _volume()
    paths = write_series(vol, tmp_path, affine=affine, shuffle=shuffle, seed=7)
    assert len(paths) == SHAPE[0]
    img = _read_sitk(tmp_path)
    # SimpleITK is (x, y, z) = (col, row, slice).
    assert img.GetSize() == (SHAPE[2], SHAPE[1], SHAPE[0])
    np.testing.assert_allclose(img.GetOrigin(), affine[:3, 3], atol=1e-6)
    np.testing.assert_allclose(img.GetSpacing(), np.linalg.norm(affine[:3, [2, 1, 0]], axis=0))
    direction = np.array(img.GetDirection()).reshape(3, 3)
    expected = affine[:3, [2, 1, 0]] / np.linalg.norm(affine[:3, [2, 1, 0]], axis=0)
    np.testing.assert_allclose(direction, expected, atol=1e-6)
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(img), vol.astype(np.float32))
    # Every voxel maps to the same point through the affine and through SimpleITK.
    idx = (4, 23, 19)
    lps = affine @ [*idx, 1.0]
    np.testing.assert_allclose(img.TransformIndexToPhysicalPoint(idx[::-1]), lps[:3], atol=1e-6)


def test_shuffled_names_and_instance_numbers_hide_slice_order(tmp_path: Path) -> None:
    n = 8
    vol = _volume((n, 16, 16))
    paths = write_series(vol, tmp_path, affine=make_affine((2.0, 1.0, 1.0)), shuffle=True)
    assert all(p.suffix == "" and p.name.startswith("IM_") for p in paths)
    by_name = np.argsort([p.name for p in paths])
    assert not np.array_equal(by_name, np.arange(n))
    assert not np.array_equal(by_name, np.arange(n)[::-1])
    instance = [int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in paths]
    assert sorted(instance) == list(range(1, n + 1))
    assert instance != sorted(instance)
    assert instance != sorted(instance, reverse=True)
    # Slice k (in returned order) still holds array slice k, at position k.
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        np.testing.assert_array_equal(ds.pixel_array, vol[k])
        assert float(ds.ImagePositionPatient[2]) == pytest.approx(2.0 * k)


# --------------------------------------------------------------------------- tags


def test_every_tag_is_written(tmp_path: Path) -> None:
    affine = make_affine((3.0, 0.7, 0.8), rotation=rotation_matrix("z", 10.0), origin=(1, 2, 3))
    vol = _volume()
    paths = write_series(
        vol,
        tmp_path,
        affine=affine,
        series_description="t1_tse_tra",
        series_number=4,
        extra_tags={"ScanOptions": "FS", "EchoTime": 90.0, "SliceLocation": None},
    )
    study, series, frame_of_ref, sops = set(), set(), set(), set()
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)  # no force: preamble, DICM and file meta are valid
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.MediaStorageSOPClassUID == ds.SOPClassUID == MRImageStorage
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.Modality == "MR"
        assert ds.SeriesDescription == "t1_tse_tra"
        assert ds.SeriesNumber == 4
        assert ds.InstanceNumber == k + 1
        assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY", "M", "NONE"]
        np.testing.assert_allclose(
            [float(v) for v in ds.ImagePositionPatient], affine[:3, 3] + k * affine[:3, 0]
        )
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        np.testing.assert_allclose(iop[:3] * 0.8, affine[:3, 2], atol=1e-9)
        np.testing.assert_allclose(iop[3:] * 0.7, affine[:3, 1], atol=1e-9)
        assert [float(v) for v in ds.PixelSpacing] == [0.7, 0.8]
        assert float(ds.SliceThickness) == 3.0
        assert float(ds.SpacingBetweenSlices) == 3.0
        assert "SliceLocation" not in ds  # deleted through extra_tags
        assert (ds.Rows, ds.Columns) == SHAPE[1:]
        assert (ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (16, 16, 15)
        assert ds.PixelRepresentation == 1  # negative values -> int16
        assert ds.SamplesPerPixel == 1
        assert ds.PhotometricInterpretation == "MONOCHROME2"
        assert "RescaleSlope" not in ds and "RescaleIntercept" not in ds
        assert ds.ScanOptions == "FS"
        assert float(ds.EchoTime) == 90.0
        for keyword in ("RepetitionTime", "ScanningSequence", "SequenceVariant"):
            assert keyword in ds
        assert float(ds.MagneticFieldStrength) == 1.5
        np.testing.assert_array_equal(ds.pixel_array, vol[k])
        study.add(ds.StudyInstanceUID)
        series.add(ds.SeriesInstanceUID)
        frame_of_ref.add(ds.FrameOfReferenceUID)
        sops.add(ds.SOPInstanceUID)
    assert len(study) == len(series) == len(frame_of_ref) == 1
    assert len(sops) == len(paths)


def test_slice_location_and_thickness_override(tmp_path: Path) -> None:
    affine = make_affine((2.0, 1.0, 1.0), origin=(0, 0, -10))
    paths = write_series(_volume(), tmp_path, affine=affine, slice_thickness=5.0)
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        assert float(ds.SliceThickness) == 5.0
        assert float(ds.SpacingBetweenSlices) == 2.0
        assert float(ds.SliceLocation) == pytest.approx(-10 + 2.0 * k)


def test_explicit_positions(tmp_path: Path) -> None:
    z = [0.0, 2.0, 4.0, 9.0, 11.0]  # a gap
    positions = np.array([[0.0, 0.0, v] for v in z])
    paths = write_series(
        _volume(), tmp_path, affine=make_affine((2.0, 1.0, 1.0)), positions=positions
    )
    got = [float(pydicom.dcmread(p).ImagePositionPatient[2]) for p in paths]
    assert got == z


def test_uids_are_deterministic(tmp_path: Path) -> None:
    affine = make_affine((2.0, 1.0, 1.0))
    vol = _volume((2, 8, 8))
    a = pydicom.dcmread(write_series(vol, tmp_path / "a", affine=affine, seed=3)[0])
    b = pydicom.dcmread(write_series(vol, tmp_path / "b", affine=affine, seed=3)[0])
    c = pydicom.dcmread(
        write_series(vol, tmp_path / "c", affine=affine, seed=3, series_number=2)[0]
    )
    assert a.SOPInstanceUID == b.SOPInstanceUID
    assert a.StudyInstanceUID == c.StudyInstanceUID
    assert a.FrameOfReferenceUID == c.FrameOfReferenceUID
    assert a.SeriesInstanceUID != c.SeriesInstanceUID
    for ds in (a, c):
        assert ds.StudyInstanceUID.is_valid
        assert ds.SOPInstanceUID.is_valid


def test_shared_series_uid_gives_distinct_instances(tmp_path: Path) -> None:
    affine = make_affine((2.0, 1.0, 1.0))
    vol = _volume((3, 8, 8))
    uid = "1.2.826.0.1.3680043.8.498.1"
    fat = write_series(
        vol, tmp_path / "f", affine=affine, series_uid=uid, image_type=("DERIVED", "FAT")
    )
    water = write_series(
        vol, tmp_path / "w", affine=affine, series_uid=uid, image_type=("DERIVED", "WATER")
    )
    other_seed = write_series(vol, tmp_path / "s", affine=affine, series_uid=uid, seed=1)
    sops = {pydicom.dcmread(p).SOPInstanceUID for p in fat + water + other_seed}
    assert len(sops) == 9


def test_existing_files_are_not_overwritten(tmp_path: Path) -> None:
    affine = make_affine((2.0, 1.0, 1.0))
    write_series(_volume((2, 8, 8)), tmp_path, affine=affine)
    with pytest.raises(FileExistsError):
        write_series(_volume((2, 8, 8)), tmp_path, affine=affine)
    write_series(_volume((2, 8, 8)), tmp_path, affine=affine, overwrite=True)


# --------------------------------------------------------------------------- values


def test_rescale_inverted_and_unsigned(tmp_path: Path) -> None:
    real = np.linspace(-100.0, 700.0, 2 * 12 * 10).reshape(2, 12, 10)
    paths = write_series(
        real, tmp_path, affine=make_affine((1, 1, 1)), rescale_slope=0.5, rescale_intercept=-100
    )
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        assert ds.PixelRepresentation == 0  # stored values are >= 0
        assert (float(ds.RescaleSlope), float(ds.RescaleIntercept)) == (0.5, -100.0)
        back = ds.pixel_array * 0.5 - 100.0
        np.testing.assert_allclose(back, real[k], atol=0.25)


def test_rescale_per_slice(tmp_path: Path) -> None:
    real = np.full((3, 8, 8), 300.0)
    slopes = [1.0, 2.0, 4.0]
    paths = write_series(real, tmp_path, affine=make_affine((1, 1, 1)), rescale_slope=slopes)
    for p, s in zip(paths, slopes, strict=True):
        ds = pydicom.dcmread(p)
        assert float(ds.RescaleSlope) == s
        assert float(ds.RescaleIntercept) == 0.0
        assert int(ds.pixel_array[0, 0]) == 300 / s


def test_values_that_do_not_fit_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="fit"):
        write_series(np.full((1, 4, 4), 70000.0), tmp_path, affine=make_affine((1, 1, 1)))


@pytest.mark.parametrize(
    "transfer_syntax",
    [
        RLELossless,
        JPEGLSLossless,
        JPEG2000Lossless,
        ExplicitVRBigEndian,
        ImplicitVRLittleEndian,
        DeflatedExplicitVRLittleEndian,
    ],
)
def test_lossless_round_trip(tmp_path: Path, transfer_syntax: str) -> None:
    vol = _volume((2, 40, 36))  # JPEG 2000 needs >= 32 rows and columns
    paths = write_series(
        vol, tmp_path, affine=make_affine((2.0, 1.0, 1.0)), transfer_syntax=transfer_syntax
    )
    for k, p in enumerate(paths):
        ds = pydicom.dcmread(p)
        assert ds.file_meta.TransferSyntaxUID == transfer_syntax
        assert "LossyImageCompression" not in ds
        np.testing.assert_array_equal(ds.pixel_array, vol[k])
    img = _read_sitk(tmp_path)  # GDCM reads them too
    np.testing.assert_array_equal(sitk.GetArrayViewFromImage(img), vol)


@pytest.mark.parametrize("transfer_syntax", [JPEGLSNearLossless, JPEG2000])
def test_lossy_is_flagged(tmp_path: Path, transfer_syntax: str) -> None:
    vol = _volume((1, 40, 36), low=0)
    [p] = write_series(
        vol, tmp_path, affine=make_affine((1, 1, 1)), transfer_syntax=transfer_syntax
    )
    ds = pydicom.dcmread(p)
    assert ds.LossyImageCompression == "01"
    assert ds.pixel_array.shape == vol.shape[1:]


def test_writable_transfer_syntaxes() -> None:
    assert RLELossless in WRITABLE_TRANSFER_SYNTAXES
    with pytest.raises(ValueError, match="32"):
        write_series(
            _volume(), "unused", affine=make_affine((1, 1, 1)), transfer_syntax=JPEG2000Lossless
        )


# --------------------------------------------------------------------------- enhanced


def _frame_info(ds: pydicom.Dataset) -> list[tuple[int, int, np.ndarray]]:
    out = []
    for item in ds.PerFrameFunctionalGroupsSequence:
        fc = item.FrameContentSequence[0]
        ipp = np.array([float(v) for v in item.PlanePositionSequence[0].ImagePositionPatient])
        out.append((int(fc.StackID), int(fc.InStackPositionNumber), ipp))
    return out


@pytest.mark.parametrize("shuffle", [False, True])
def test_enhanced_frames_and_positions(tmp_path: Path, shuffle: bool) -> None:
    n = 6
    vol = _volume((n, 16, 12))
    affine = make_affine((2.5, 0.7, 0.8), rotation=_oblique(), origin=(1, 2, 3))
    paths = write_series(
        vol,
        tmp_path,
        affine=affine,
        enhanced=True,
        shuffle=shuffle,
        rescale_slope=2.0,
        rescale_intercept=-400.0,
    )
    assert len(paths) == 1
    ds = pydicom.dcmread(paths[0])
    assert ds.SOPClassUID == EnhancedMRImageStorage
    assert ds.NumberOfFrames == n
    assert "ImagePositionPatient" not in ds and "PixelSpacing" not in ds
    shared = ds.SharedFunctionalGroupsSequence[0]
    measures = shared.PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [0.7, 0.8]
    assert float(measures.SpacingBetweenSlices) == pytest.approx(2.5)
    iop = np.array([float(v) for v in shared.PlaneOrientationSequence[0].ImageOrientationPatient])
    np.testing.assert_allclose(iop[:3] * 0.8, affine[:3, 2], atol=1e-9)
    transform = shared.PixelValueTransformationSequence[0]
    slope, intercept = float(transform.RescaleSlope), float(transform.RescaleIntercept)
    assert (slope, intercept) == (2.0, -400.0)
    assert list(shared.MRImageFrameTypeSequence[0].FrameType) == list(ds.ImageType)

    info = _frame_info(ds)
    in_stack = [pos for _, pos, _ in info]
    assert sorted(in_stack) == list(range(1, n + 1))
    assert (in_stack != sorted(in_stack)) == shuffle
    frames = ds.pixel_array * slope + intercept
    for f, (stack_id, pos, ipp) in enumerate(info):
        assert stack_id == 1
        np.testing.assert_allclose(ipp, affine[:3, 3] + (pos - 1) * affine[:3, 0], atol=1e-6)
        np.testing.assert_allclose(frames[f], vol[pos - 1], atol=1.0)


def test_enhanced_dixon_frame_types(tmp_path: Path) -> None:
    fat_type = ("DERIVED", "PRIMARY", "FAT", "NONE")
    water_type = ("DERIVED", "PRIMARY", "WATER", "NONE")
    fat, water = _volume((3, 8, 8), low=0), _volume((3, 8, 8), low=0, seed=1)
    affine = make_affine((4.0, 1.0, 1.0))
    [p] = write_series(
        np.concatenate([fat, water]),
        tmp_path,
        affine=affine,
        enhanced=True,
        frame_types=[fat_type] * 3 + [water_type] * 3,
        transfer_syntax=RLELossless,
    )
    ds = pydicom.dcmread(p)
    assert ds.NumberOfFrames == 6
    assert "MRImageFrameTypeSequence" not in ds.SharedFunctionalGroupsSequence[0]
    arr = ds.pixel_array
    for f, item in enumerate(ds.PerFrameFunctionalGroupsSequence):
        frame_type = tuple(item.MRImageFrameTypeSequence[0].FrameType)
        fc = item.FrameContentSequence[0]
        stack, pos = int(fc.StackID), int(fc.InStackPositionNumber)
        assert [int(v) for v in fc.DimensionIndexValues] == [stack, pos]
        assert frame_type == (fat_type if stack == 1 else water_type)
        z = float(item.PlanePositionSequence[0].ImagePositionPatient[2])
        assert z == 4.0 * (pos - 1)
        np.testing.assert_array_equal(arr[f], (fat if stack == 1 else water)[pos - 1])


# --------------------------------------------------------------------------- ultrasound


def test_ultrasound_region_only_calibration(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 256, (120, 160), dtype=np.uint8)
    p = write_ultrasound(
        image, tmp_path / "us.dcm", region=(10, 20, 150, 110), delta_mm=(0.2, 0.25)
    )
    ds = pydicom.dcmread(p)
    assert ds.SOPClassUID == UltrasoundImageStorage
    assert ds.Modality == "US"
    for keyword in ("PixelSpacing", "ImagerPixelSpacing", "ImagePositionPatient", "NumberOfFrames"):
        assert keyword not in ds
    [region] = ds.SequenceOfUltrasoundRegions
    assert (region.RegionSpatialFormat, region.RegionDataType) == (1, 1)
    assert (region.PhysicalUnitsXDirection, region.PhysicalUnitsYDirection) == (3, 3)
    assert region.PhysicalDeltaX == pytest.approx(0.02)  # cm
    assert region.PhysicalDeltaY == pytest.approx(0.025)
    bounds = (
        region.RegionLocationMinX0,
        region.RegionLocationMinY0,
        region.RegionLocationMaxX1,
        region.RegionLocationMaxY1,
    )
    assert bounds == (10, 20, 150, 110)
    assert (region.ReferencePixelX0, region.ReferencePixelY0) == (70, 0)
    assert (ds.BitsAllocated, ds.SamplesPerPixel, ds.PhotometricInterpretation) == (
        8,
        1,
        "MONOCHROME2",
    )
    np.testing.assert_array_equal(ds.pixel_array, image)


def test_ultrasound_cine_with_extra_regions(tmp_path: Path) -> None:
    cine = np.random.default_rng(1).integers(0, 256, (4, 64, 80), dtype=np.uint8)
    doppler = ultrasound_region(
        (0, 50, 79, 63), delta=(0.01, 2.0), units=(4, 7), spatial_format=3, data_type=3
    )
    disagreeing = ultrasound_region((0, 0, 79, 40), delta_mm=(0.3, 0.3))
    ecg = {"RegionSpatialFormat": 4, "RegionDataType": 10, "PhysicalUnitsXDirection": 4}
    p = write_ultrasound(
        cine,
        tmp_path / "cine",
        region=(0, 0, 79, 40),
        delta_mm=(0.2, 0.2),
        extra_regions=[doppler, disagreeing, ecg],
        frame_time_ms=25.0,
        transfer_syntax=RLELossless,
    )
    ds = pydicom.dcmread(p)
    assert ds.SOPClassUID == UltrasoundMultiFrameImageStorage
    assert ds.NumberOfFrames == 4
    assert float(ds.FrameTime) == 25.0
    assert ds.FrameIncrementPointer == 0x00181063
    regions = ds.SequenceOfUltrasoundRegions
    assert [r.RegionSpatialFormat for r in regions] == [1, 3, 1, 4]
    assert regions[1].PhysicalUnitsXDirection == 4
    assert regions[2].PhysicalDeltaX == pytest.approx(0.03)
    assert regions[3].RegionDataType == 10
    np.testing.assert_array_equal(ds.pixel_array, cine)


def test_ultrasound_uncalibrated_and_colour(tmp_path: Path) -> None:
    rgb = np.random.default_rng(2).integers(0, 256, (40, 48, 3), dtype=np.uint8)
    p = write_ultrasound(rgb, tmp_path / "rgb.dcm", photometric="RGB")
    ds = pydicom.dcmread(p)
    assert "SequenceOfUltrasoundRegions" not in ds
    assert (ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration) == (
        3,
        "RGB",
        0,
    )
    np.testing.assert_array_equal(ds.pixel_array, rgb)

    p = write_ultrasound(rgb, tmp_path / "ybr.dcm", photometric="YBR_FULL")
    ds = pydicom.dcmread(p)
    assert ds.PhotometricInterpretation == "YBR_FULL"
    assert np.abs(ds.pixel_array.astype(int) - rgb).max() <= 2  # pydicom converts back to RGB

    index = rgb[..., 0]
    p = write_ultrasound(index, tmp_path / "pal.dcm", photometric="PALETTE COLOR")
    ds = pydicom.dcmread(p)
    assert ds.PhotometricInterpretation == "PALETTE COLOR"
    colour = pydicom.pixels.apply_color_lut(ds.pixel_array, ds)
    assert colour.shape == (*index.shape, 3)


def test_ultrasound_region_needs_delta(tmp_path: Path) -> None:
    image = np.zeros((8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="delta_mm"):
        write_ultrasound(image, tmp_path / "x.dcm", region=(0, 0, 7, 7))
    with pytest.raises(ValueError, match="exactly one"):
        ultrasound_region((0, 0, 7, 7))
