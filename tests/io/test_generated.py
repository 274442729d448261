"""Loading generated series with known geometry, checked against SimpleITK where it reads them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import SimpleITK as sitk

import backmice
from backmice import Role
from backmice.io.writer import (
    make_affine,
    rotation_matrix,
    ultrasound_region,
    write_series,
    write_ultrasound,
)


def _volume(shape=(6, 20, 24), seed=0) -> np.ndarray:
    """Distinct values per slice (slice k holds 1000*k + noise) so any reordering shows."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 500, size=shape)
    return (np.arange(shape[0])[:, None, None] * 1000 + noise).astype(float)


def _only(folder, role=None):
    study = backmice.open_study(folder)
    stacks = [s for s in study.stacks if role is None or s.role is role]
    assert len(stacks) == 1, [(s.role, s.shape) for s in study.stacks]
    return stacks[0]


def _sitk(folder) -> sitk.Image:
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    return reader.Execute()


def _assert_matches_sitk(vol: backmice.Volume, image: sitk.Image) -> None:
    """Same voxels, origin, spacing and directions as SimpleITK (x, y, z = col, row, slice)."""
    np.testing.assert_array_equal(vol.array, sitk.GetArrayViewFromImage(image))
    np.testing.assert_allclose(vol.affine[:3, 3], image.GetOrigin(), atol=1e-4)
    sx, sy, sz = image.GetSpacing()
    assert vol.spacing_mm == pytest.approx((sz, sy, sx), abs=1e-4)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    np.testing.assert_allclose(vol.affine[:3, 2] / sx, direction[:, 0], atol=1e-5)
    np.testing.assert_allclose(vol.affine[:3, 1] / sy, direction[:, 1], atol=1e-5)
    np.testing.assert_allclose(vol.affine[:3, 0] / sz, direction[:, 2], atol=1e-5)


def test_shuffled_names_and_instance_numbers_spacing_not_from_slice_thickness(tmp_path):
    data = _volume()
    affine = make_affine((4.0, 0.8, 0.8), origin=(-100.0, -50.0, 20.0))
    write_series(data, tmp_path, affine=affine, shuffle=True, slice_thickness=3.0, seed=3)
    stack = _only(tmp_path)
    assert stack.spacing_mm == pytest.approx((4.0, 0.8, 0.8))
    assert stack.orientation == "axial"
    assert stack.role is Role.T1  # the writer's default MR is SE, TR 550 ms, TE 12 ms
    vol = backmice.load(stack)
    np.testing.assert_array_equal(vol.array, data)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
    assert len(set(vol.sop_instance_uids)) == data.shape[0]
    _assert_matches_sitk(vol, _sitk(tmp_path))


@pytest.mark.parametrize(
    ("orientation", "rotation", "label"),
    [
        ("sagittal", None, "sagittal"),
        ("coronal", None, "coronal"),
        ("axial", rotation_matrix("x", 25) @ rotation_matrix("y", 15), "oblique"),
        ("sagittal", rotation_matrix("z", 30), "oblique"),
        ("axial", rotation_matrix("x", 8), "axial"),  # within 10 degrees: still axial
    ],
)
def test_orientations_match_simpleitk(tmp_path, orientation, rotation, label):
    data = _volume((5, 16, 18))
    affine = make_affine(
        (1.2, 1.1, 0.9), origin=(30.0, -20.0, 5.0), orientation=orientation, rotation=rotation
    )
    write_series(data, tmp_path, affine=affine, shuffle=True)
    stack = _only(tmp_path)
    assert stack.orientation == label
    vol = backmice.load(stack)
    np.testing.assert_array_equal(vol.array, data)
    np.testing.assert_allclose(vol.affine, affine, atol=1e-4)
    _assert_matches_sitk(vol, _sitk(tmp_path))
    # A voxel's LPS position is affine @ index: the centre of slice 2, row 3, col 4.
    expected = affine[:3, 3] + 2 * affine[:3, 0] + 3 * affine[:3, 1] + 4 * affine[:3, 2]
    np.testing.assert_allclose((vol.affine @ [2, 3, 4, 1])[:3], expected, atol=1e-4)


def test_reversed_slice_order_on_disk(tmp_path):
    """Slices written top-down still load ordered along the normal (ascending)."""
    data = _volume((5, 8, 8))
    affine = make_affine((3.0, 1.0, 1.0), origin=(0.0, 0.0, 50.0))
    flipped = affine.copy()
    flipped[:3, 0] *= -1  # slice k at z = 50 - 3k
    write_series(data, tmp_path, affine=flipped)
    vol = backmice.load(_only(tmp_path))
    np.testing.assert_array_equal(vol.array, data[::-1])
    np.testing.assert_allclose(vol.affine[:3, 3], [0, 0, 38.0], atol=1e-4)
    np.testing.assert_allclose(vol.affine[:3, 0], [0, 0, 3.0], atol=1e-4)


def test_missing_slice_is_reported(tmp_path):
    data = _volume((6, 8, 8))
    affine = make_affine((2.5, 1.0, 1.0))
    positions = [affine[:3, 3] + k * affine[:3, 0] for k in (0, 1, 2, 4, 5, 6)]
    write_series(data, tmp_path, affine=affine, positions=positions)
    stack = _only(tmp_path)
    assert stack.spacing_mm[0] == pytest.approx(2.5)
    text = " ".join(stack.warnings)
    assert "about 1 slice(s) missing" in text
    assert stack.slice_positions_mm == pytest.approx((0, 2.5, 5, 10, 12.5, 15))


def test_non_uniform_spacing_is_reported(tmp_path):
    data = _volume((6, 8, 8))
    affine = make_affine((2.0, 1.0, 1.0))
    z = [0.0, 2.0, 4.0, 6.3, 8.0, 10.0]
    write_series(data, tmp_path, affine=affine, positions=[(0, 0, v) for v in z])
    stack = _only(tmp_path)
    assert any("non-uniform slice spacing" in w for w in stack.warnings)


def test_localizer_series_mixed_in(tmp_path):
    data = _volume((6, 16, 16))
    write_series(
        data,
        tmp_path / "t1",
        affine=make_affine((4, 0.8, 0.8)),
        series_description="t1_tse_tra",
        series_number=3,
    )
    # A 3-plane localizer: three orientations in one series.
    loc_uid = "1.2.826.0.1.3680043.8.498.1"
    for i, orientation in enumerate(("axial", "sagittal", "coronal")):
        write_series(
            _volume((1, 16, 16)),
            tmp_path / f"loc{i}",
            affine=make_affine((5, 2, 2), orientation=orientation),
            series_description="localizer",
            series_number=1,
            series_uid=loc_uid,
            image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"),
            seed=10 + i,
        )
    study = backmice.open_study(tmp_path)
    roles = [(s.role, s.orientation) for s in study.stacks]
    assert sorted(roles) == sorted(
        [
            (Role.LOCALIZER, "axial"),
            (Role.LOCALIZER, "sagittal"),
            (Role.LOCALIZER, "coronal"),
            (Role.T1, "axial"),
        ]
    )
    t1 = study.by_role("t1")[0]
    assert t1.shape == (6, 16, 16)


def test_dixon_components_in_one_series_are_split(tmp_path):
    fat, water = _volume((4, 10, 10), 1), _volume((4, 10, 10), 2)
    affine = make_affine((3, 1.5, 1.5))
    uids = {"study_uid": "1.2.3.4", "series_uid": "1.2.3.4.5", "frame_of_reference_uid": "1.2.3.6"}
    write_series(
        fat,
        tmp_path,
        affine=affine,
        image_type=("DERIVED", "PRIMARY", "DIXON", "FAT"),
        series_description="t1_vibe_dixon",
        filename_pattern="F{index:03d}.dcm",
        seed=1,
        **uids,
    )
    write_series(
        water,
        tmp_path,
        affine=affine,
        image_type=("DERIVED", "PRIMARY", "DIXON", "WATER"),
        series_description="t1_vibe_dixon",
        filename_pattern="W{index:03d}.dcm",
        seed=2,
        **uids,
    )
    study = backmice.open_study(tmp_path)
    assert sorted(s.role for s in study.stacks) == [Role.DIXON_FAT, Role.DIXON_WATER]
    np.testing.assert_array_equal(backmice.load(study.by_role("dixon_fat")[0]).array, fat)
    np.testing.assert_array_equal(backmice.load(study.by_role("dixon_water")[0]).array, water)


def test_enhanced_multiframe_matches_classic(tmp_path):
    data = _volume((5, 12, 14))
    affine = make_affine(
        (2.0, 0.7, 0.7), rotation=rotation_matrix("y", 20), origin=(10.0, 20.0, 30.0)
    )
    write_series(data, tmp_path / "classic", affine=affine)
    write_series(
        data,
        tmp_path / "enhanced",
        affine=affine,
        enhanced=True,
        shuffle=True,
        rescale_slope=2.0,
        rescale_intercept=-10.0,
    )
    classic = backmice.load(_only(tmp_path / "classic"))
    stack = _only(tmp_path / "enhanced")
    assert stack.n_files == 1
    enhanced = backmice.load(stack)
    np.testing.assert_allclose(enhanced.array, classic.array, atol=1.0)
    np.testing.assert_allclose(enhanced.affine, classic.affine, atol=1e-4)
    assert enhanced.spacing_mm == pytest.approx(classic.spacing_mm)
    # Frames were stored shuffled: frame numbers say where each slice came from.
    assert sorted(enhanced.frame_numbers) == [1, 2, 3, 4, 5]
    assert list(enhanced.frame_numbers) != [1, 2, 3, 4, 5]


def test_enhanced_dixon_pair_in_one_file(tmp_path):
    fat, water = _volume((3, 8, 8), 1), _volume((3, 8, 8), 2)
    write_series(
        np.concatenate([fat, water]),
        tmp_path,
        affine=make_affine((3, 1, 1)),
        enhanced=True,
        frame_types=[("DERIVED", "PRIMARY", "FAT", "NONE")] * 3
        + [("DERIVED", "PRIMARY", "WATER", "NONE")] * 3,
    )
    study = backmice.open_study(tmp_path)
    assert sorted(s.role for s in study.stacks) == [Role.DIXON_FAT, Role.DIXON_WATER]
    np.testing.assert_array_equal(backmice.load(study.by_role("dixon_fat")[0]).array, fat)
    np.testing.assert_array_equal(backmice.load(study.by_role("dixon_water")[0]).array, water)


def test_per_slice_rescale(tmp_path):
    data = _volume((4, 8, 8)) / 7.0
    slopes = [0.5, 0.25, 1.0, 0.125]
    write_series(
        data, tmp_path, affine=make_affine((3, 1, 1)), rescale_slope=slopes, rescale_intercept=-3.0
    )
    vol = backmice.load(_only(tmp_path))
    for k, slope in enumerate(slopes):
        np.testing.assert_allclose(vol.array[k], data[k], atol=slope / 2 + 1e-4)


def test_duplicate_instance_is_kept_once(tmp_path):
    data = _volume((4, 8, 8))
    paths = write_series(data, tmp_path / "s", affine=make_affine((3, 1, 1)))
    shutil.copy(paths[2], tmp_path / "s" / "copy_of_slice_2")
    stack = _only(tmp_path / "s")
    assert stack.shape == (4, 8, 8)
    assert any("stored twice" in w for w in stack.warnings)
    np.testing.assert_array_equal(backmice.load(stack).array, data)


def test_truncated_file_in_a_folder(tmp_path):
    data = _volume((6, 16, 16))
    paths = write_series(data, tmp_path, affine=make_affine((2, 1, 1)))
    victim = paths[3]
    victim.write_bytes(victim.read_bytes()[:-100])
    study = backmice.open_study(tmp_path)
    assert [s.path for s in study.skipped] == [victim]
    assert "truncated" in study.skipped[0].reason
    stack = study.stacks[0]
    assert stack.shape == (5, 16, 16)
    assert any("missing" in w for w in stack.warnings)
    vol = backmice.load(stack)
    np.testing.assert_array_equal(vol.array, np.delete(data, 3, axis=0))


def test_compressed_series_loads_like_uncompressed(tmp_path):
    data = _volume((3, 16, 16))
    affine = make_affine((3, 1, 1))
    write_series(data, tmp_path, affine=affine, transfer_syntax="1.2.840.10008.1.2.5")  # RLE
    vol = backmice.load(_only(tmp_path))
    np.testing.assert_array_equal(vol.array, data)


# --- generated ultrasound -----------------------------------------------------------------------


def _us_image(rows=120, cols=160):
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, size=(rows, cols)).astype(np.uint8)


def test_ultrasound_region_crop_and_spacing(tmp_path):
    image = _us_image()
    # A spectral Doppler strip (time along x, in seconds): never a calibration.
    spectral = ultrasound_region(
        (0, 100, 159, 119), delta=(0.01, 0.0), units=(4, 0), spatial_format=4, data_type=10
    )
    path = write_ultrasound(
        image,
        tmp_path / "us.dcm",
        region=(10, 5, 149, 94),
        delta_mm=(0.2, 0.25),
        extra_regions=[spectral],
    )
    stack = _only(path)
    assert stack.calibrated
    assert stack.spacing_mm == pytest.approx((None, 0.25, 0.2), abs=1e-9)
    vol = backmice.load(stack)
    np.testing.assert_array_equal(vol.array[0], image[5:95, 10:150])
    assert vol.origin_px == (5, 10)
    # Depth of the bottom row is 89 rows x 0.25 mm from the transducer face.
    assert (vol.affine @ [0, 89, 0, 1])[1] == pytest.approx(89 * 0.25)


def test_ultrasound_regions_that_disagree_are_not_trusted(tmp_path):
    image = _us_image()
    other = ultrasound_region((80, 0, 159, 119), delta_mm=(0.5, 0.5))
    path = write_ultrasound(
        image,
        tmp_path / "us.dcm",
        region=(0, 0, 79, 119),
        delta_mm=(0.2, 0.2),
        extra_regions=[other],
    )
    stack = _only(path)
    assert not stack.calibrated and stack.units == "px"
    assert any("different pixel sizes" in w for w in stack.warnings)


def test_ultrasound_without_region_is_in_pixels(tmp_path):
    stack = _only(write_ultrasound(_us_image(), tmp_path / "us.dcm", region=None))
    assert not stack.calibrated
    assert stack.shape == (1, 120, 160)


def test_ultrasound_cine(tmp_path):
    frames = np.stack([_us_image()] * 4)
    path = write_ultrasound(
        frames,
        tmp_path / "cine.dcm",
        region=(0, 0, 159, 119),
        delta_mm=(0.3, 0.3),
        frame_time_ms=33.3,
    )
    vol = backmice.load(_only(path))
    assert vol.array.shape == (4, 120, 160)
    assert vol.spacing_mm[0] is None
