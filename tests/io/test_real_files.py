"""Loading real DICOM files that nobody here wrote (pydicom and pydicom-data)."""

from __future__ import annotations

import functools
import shutil

import numpy as np
import pydicom
import pytest

import backmice
from backmice import InputError, Role
from tests.conftest import real_file

MR_SMALL = [
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_expb.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "MR_small_padded.dcm",
]


def _only_stack(path):
    study = backmice.open_study(path)
    assert len(study.stacks) == 1, study.stacks
    return study.stacks[0]


def _reference(name: str) -> tuple[pydicom.Dataset, np.ndarray]:
    ds = pydicom.dcmread(real_file(name))
    arr = ds.pixel_array.astype(np.float64)
    return ds, arr * float(ds.get("RescaleSlope", 1)) + float(ds.get("RescaleIntercept", 0))


@pytest.mark.parametrize("name", MR_SMALL)
def test_mr_small_every_transfer_syntax(name):
    stack = _only_stack(real_file(name))
    assert stack.role is Role.T2  # Toshiba SE, TR 4000 ms, TE 240 ms
    assert stack.orientation == "axial"
    assert stack.spacing_mm == (None, 0.3125, 0.3125)
    vol = backmice.load(stack)
    _, ref = _reference("MR_small.dcm")
    assert vol.array.dtype == np.float32
    assert vol.array.shape == (1, 64, 64)
    np.testing.assert_array_equal(vol.array[0], ref)
    # The affine puts pixel (0, 0) at ImagePositionPatient and steps by PixelSpacing.
    np.testing.assert_allclose(vol.affine[:3, 3], [-83.9063, -91.2, 6.6406])
    np.testing.assert_allclose(vol.affine[:3, 2], [0.3125, 0, 0])
    np.testing.assert_allclose(vol.affine[:3, 1], [0, 0.3125, 0])
    assert vol.calibrated and vol.units == "mm"


@pytest.mark.parametrize("name", ["MR2_UNCR.dcm", "MR2_J2KR.dcm"])
def test_philips_rescale_slope_and_oblique_geometry(name):
    stack = _only_stack(real_file(name))
    assert stack.orientation == "oblique"
    vol = backmice.load(stack)
    ds, ref = _reference("MR2_UNCR.dcm")
    assert float(ds.RescaleSlope) == pytest.approx(3.774114)
    np.testing.assert_allclose(vol.array[0], ref, rtol=1e-6)
    iop = np.array(ds.ImageOrientationPatient, dtype=float)
    ps = np.array(ds.PixelSpacing, dtype=float)
    np.testing.assert_allclose(vol.affine[:3, 2], iop[:3] * ps[1])
    np.testing.assert_allclose(vol.affine[:3, 1], iop[3:] * ps[0])
    np.testing.assert_allclose(vol.affine[:3, 3], np.array(ds.ImagePositionPatient, dtype=float))
    own = pydicom.dcmread(real_file(name), stop_before_pixels=True)
    assert vol.sop_instance_uids == (own.SOPInstanceUID,)


def test_same_image_in_two_transfer_syntaxes_is_kept_once(copy_files):
    folder = copy_files("MR2_J2KR.dcm", "MR2_UNCR.dcm", "MR2_J2KI.dcm")
    stack = _only_stack(folder)
    assert stack.shape == (1, 1024, 1024)
    vol = backmice.load(stack)
    # The uncompressed lossless copy is preferred; the J2KR copy is identical,
    # the lossy J2KI copy differs and is said to.
    assert stack.frames[0].path.name == "MR2_UNCR.dcm"
    text = " ".join(vol.warnings)
    assert "MR2_J2KR.dcm is the same image as MR2_UNCR.dcm" in text
    assert "MR2_J2KI.dcm (a lossy copy) differs" in text
    _, ref = _reference("MR2_UNCR.dcm")
    np.testing.assert_allclose(vol.array[0], ref, rtol=1e-6)


def test_same_sop_instance_stored_twice(copy_files, tmp_path):
    folder = copy_files("MR_small.dcm")
    shutil.copy(real_file("MR_small_RLE.dcm"), folder / "copy_rle.dcm")
    stack = _only_stack(folder)
    assert stack.n_files == 1
    assert stack.frames[0].path.name == "MR_small.dcm"  # uncompressed preferred


def test_siemens_mr_with_overlays():
    stack = _only_stack(real_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert stack.role is Role.FATSAT  # t1_vibe_fs, ScanOptions FS
    assert stack.spacing_mm[1:] == pytest.approx((0.72314049586777, 0.72314049586777))
    vol = backmice.load(stack)
    _, ref = _reference("MR-SIEMENS-DICOM-WithOverlays.dcm")
    np.testing.assert_array_equal(vol.array[0], ref)


@pytest.mark.parametrize(
    "name",
    [
        "emri_small.dcm",
        "emri_small_RLE.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "emri_small_jpeg_ls_lossless.dcm",
    ],
)
def test_enhanced_multiframe_without_geometry(name):
    stack = _only_stack(real_file(name))
    assert stack.shape == (10, 64, 64)
    assert stack.spacing_mm == (None, None, None)
    assert not stack.calibrated
    assert any("no geometry" in w for w in stack.warnings)
    vol = backmice.load(stack)
    assert vol.units == "px"
    _, ref = _reference("emri_small.dcm")
    np.testing.assert_array_equal(vol.array, ref)
    assert vol.frame_numbers == tuple(range(1, 11))


def test_undecodable_frames_name_the_file():
    path = real_file("emri_small_jpeg_2k_lossless_too_short.dcm")
    stack = _only_stack(path)
    with pytest.raises(InputError) as err:
        backmice.load(stack)
    assert err.value.path == str(path)
    assert "JPEG 2000" in err.value.problem


def test_truncated_file_is_skipped_with_reason(copy_files):
    folder = copy_files("MR_small.dcm", "MR_truncated.dcm")
    (folder / "notes.txt").write_text("not dicom")
    study = backmice.open_study(folder)
    assert len(study.stacks) == 1
    reasons = {s.path.name: s.reason for s in study.skipped}
    assert "truncated" in reasons["MR_truncated.dcm"]
    assert reasons["notes.txt"] == "not a DICOM file"


# --- ultrasound -------------------------------------------------------------------------------


def _region(ds):
    r = ds.SequenceOfUltrasoundRegions[0]
    return r, (
        r.RegionLocationMinY0,
        r.RegionLocationMaxY1,
        r.RegionLocationMinX0,
        r.RegionLocationMaxX1,
    )


@pytest.mark.parametrize(
    ("name", "frames"),
    [
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", 1),  # Philips, greyscale, JPEG lossless
        ("OBXXXX1A.dcm", 1),  # Philips, palette colour, with a spectral strip
        ("OBXXXX1A_2frame.dcm", 2),
        ("OBXXXX1A_rle.dcm", 1),
        ("OBXXXX1A_expb.dcm", 1),
        ("color3d_jpeg_baseline.dcm", 120),  # SonoSite cine, YBR JPEG
    ],
)
def test_ultrasound_spacing_comes_from_the_tissue_region(name, frames):
    ds = pydicom.dcmread(real_file(name), stop_before_pixels=True)
    region, (y0, y1, x0, x1) = _region(ds)
    stack = _only_stack(real_file(name))
    assert stack.role is Role.US
    assert stack.calibrated
    x1, y1 = min(x1, ds.Columns - 1), min(y1, ds.Rows - 1)
    assert stack.spacing_mm[1] == pytest.approx(float(region.PhysicalDeltaY) * 10)
    assert stack.spacing_mm[2] == pytest.approx(float(region.PhysicalDeltaX) * 10)
    assert stack.shape == (frames, y1 - y0 + 1, x1 - x0 + 1)
    vol = _color3d() if name == "color3d_jpeg_baseline.dcm" else backmice.load(stack)
    assert vol.array.shape == stack.shape
    assert vol.origin_px == (y0, x0)
    # Depth runs down the rows from the top of the region, in mm.
    np.testing.assert_allclose(vol.affine[:3, 1], [0, float(region.PhysicalDeltaY) * 10, 0])


def test_ultrasound_palette_colour_is_kept_and_luminance_computed():
    stack = _only_stack(real_file("OBXXXX1A.dcm"))
    vol = backmice.load(stack)
    assert vol.color is not None and vol.color.dtype == np.uint8
    assert vol.color.shape == (*vol.array.shape, 3)
    luma = vol.color.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    np.testing.assert_allclose(vol.array, luma, atol=1e-3)
    # The big-endian copy decodes to the same picture.
    big = backmice.load(_only_stack(real_file("OBXXXX1A_expb.dcm")))
    np.testing.assert_array_equal(big.color, vol.color)


@functools.cache
def _color3d():
    """The 120-frame YBR JPEG cine, decoded once per process (seconds): read, do not change."""
    return backmice.load(_only_stack(real_file("color3d_jpeg_baseline.dcm")))


def test_ultrasound_ycbcr_cine_is_converted_to_rgb():
    vol = _color3d()
    assert vol.color.shape[0] == 120
    assert vol.spacing_mm[0] is None  # frames are time, not space
    assert vol.array.max() > 50


def test_ultrasound_two_agreeing_regions_use_the_first():
    stack = _only_stack(real_file("gdcm-US-ALOKA-16.dcm"))
    assert stack.calibrated
    assert stack.spacing_mm[1] == pytest.approx(0.3826530650258064)
    assert (stack.region.x0, stack.region.x1) == (32, 335)
    assert any("2 2D tissue regions" in w for w in stack.warnings)


@pytest.mark.parametrize("name", ["US1_UNCR.dcm", "US1_J2KR.dcm"])
def test_ultrasound_without_regions_is_in_pixels(name):
    stack = _only_stack(real_file(name))  # GE: no SequenceOfUltrasoundRegions
    assert not stack.calibrated
    assert stack.units == "px"
    assert stack.spacing_mm == (None, None, None)
    assert stack.shape == (1, 480, 640)
    assert any("px" in w for w in stack.warnings)
    vol = backmice.load(stack)
    assert vol.color.shape == (1, 480, 640, 3)


@pytest.mark.parametrize("name", ["examples_ybr_color.dcm", "examples_palette.dcm"])
def test_ultrasound_region_outside_a_resized_image_is_not_trusted(name):
    stack = _only_stack(real_file(name))
    assert not stack.calibrated
    assert any("does not fit" in w for w in stack.warnings)


# --- SEG, SR and what is not an image --------------------------------------------------------


def test_segmentation_is_listed_not_loaded():
    stack = _only_stack(real_file("liver.dcm"))
    assert stack.role is Role.SEG
    assert stack.shape == (3, 512, 512)
    with pytest.raises(InputError, match="Segmentation"):
        backmice.load(stack)


def test_structured_report_is_listed():
    stack = _only_stack(real_file("test-SR.dcm"))
    assert stack.role is Role.SR
    with pytest.raises(InputError):
        backmice.load(stack)


def test_non_image_dicom_is_skipped_with_its_kind():
    study = backmice.open_study(real_file("rtplan.dcm"))
    assert not study.stacks
    assert "not an image (RT Plan Storage)" in study.skipped[0].reason


def test_file_without_preamble_is_read():
    vol = backmice.load(_only_stack(real_file("OT-PAL-8-face.dcm")))
    assert vol.color.shape == (1, 480, 640, 3)


# --- DICOMDIR and localizers ----------------------------------------------------------------


def test_dicomdir_is_followed(tmp_path):
    src = real_file("DICOMDIR").parent
    study = backmice.open_study(src / "DICOMDIR")
    assert len(study.stacks) > 10
    roles = {s.role for s in study.stacks}
    assert Role.LOCALIZER in roles
    # The three orientations of the T/S/C pilot become separate stacks.
    pilot = {s.orientation for s in study.stacks if "PILOT" in s.description}
    assert pilot == {"axial", "coronal", "sagittal"}
    ct = next(s for s in study.stacks if s.description == "Routine Brain")
    assert ct.shape[0] == 4 and ct.orientation == "axial"


def test_dicomdir_with_a_missing_file(tmp_path):
    src = real_file("DICOMDIR").parent
    dst = tmp_path / "media"
    shutil.copytree(src, dst)
    victim = next(p for p in (dst / "77654033" / "CR1").iterdir())
    victim.unlink()
    study = backmice.open_study(dst / "DICOMDIR")
    missing = [s for s in study.skipped if "missing" in s.reason]
    assert [s.path.name for s in missing] == [victim.name]
    assert study.stacks  # everything else still there


@pytest.mark.parametrize(
    "name", ["MR_small.dcm", "MR2_UNCR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm", "CT_small.dcm"]
)
def test_single_files_agree_with_simpleitk(name):
    import SimpleITK as sitk

    image = sitk.ReadImage(str(real_file(name)), sitk.sitkFloat32)
    vol = backmice.load(_only_stack(real_file(name)))
    np.testing.assert_allclose(vol.array, sitk.GetArrayViewFromImage(image), rtol=1e-6)
    np.testing.assert_allclose(vol.affine[:3, 3], image.GetOrigin(), atol=1e-4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    sx, sy, _ = image.GetSpacing()
    assert vol.spacing_mm[1:] == pytest.approx((sy, sx))
    np.testing.assert_allclose(vol.affine[:3, 2] / sx, direction[:, 0], atol=1e-5)
    np.testing.assert_allclose(vol.affine[:3, 1] / sy, direction[:, 1], atol=1e-5)
    # A single slice has no slice spacing: None, not SimpleITK's 1 mm or SliceThickness.
    assert vol.spacing_mm[0] is None
