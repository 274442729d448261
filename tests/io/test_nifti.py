"""NIfTI input: geometry (RAS to LPS, oblique and flipped), roles, and bad files.

The NIfTI files are built here: with SimpleITK from the DICOM samples (the
dcm2niix-like layouts), and byte by byte from a hand-written NIfTI-1 header
with a known RAS affine (nibabel's convention), so the geometry is checked
against an affine that no library wrote.
"""

from __future__ import annotations

import gzip
import json
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import backmice
from backmice.errors import InputError
from backmice.io.model import Role
from backmice.io.nifti import itk_affine, stack_layout
from backmice.report.write import _itk_image

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
#: NIfTI's RAS to DICOM's LPS.
RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


def write_nifti1(
    path: Path,
    array: np.ndarray,
    *,
    sform: np.ndarray | None = None,
    pixdim: tuple[float, float, float] = (1.0, 1.0, 1.0),
    qfac: float = 1.0,
    qoffset: tuple[float, float, float] = (0.0, 0.0, 0.0),
    dims: tuple[int, ...] | None = None,
) -> Path:
    """A NIfTI-1 file written byte by byte (little endian, int16 or float32 data).

    ``array`` is indexed ``(k, j, i)`` (or ``(t, k, j, i)``), so its C-order bytes
    run ``i`` fastest as NIfTI stores them. With ``sform`` (a 4x4 RAS affine of
    ``(i, j, k)``) the sform is set; without, only a qform of no rotation with
    ``qfac`` (the sign of the k axis) and ``qoffset``.
    """
    dims = dims or tuple(reversed(array.shape))
    if sform is not None:  # as nibabel writes it: pixdim agrees with the sform's scales
        pixdim = tuple(float(v) for v in np.linalg.norm(sform[:3, :3], axis=0))
    datatype, bitpix = (4, 16) if array.dtype == np.int16 else (16, 32)
    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    dim = [len(dims), *dims] + [1] * (7 - len(dims))
    struct.pack_into("<8h", header, 40, *dim)
    struct.pack_into("<hh", header, 70, datatype, bitpix)
    struct.pack_into("<8f", header, 76, qfac, *pixdim, 1.0, 1.0, 1.0, 1.0)
    struct.pack_into("<fff", header, 108, 352.0, 1.0, 0.0)  # vox_offset, scl_slope, scl_inter
    header[123] = 2  # xyzt_units: mm
    # qform code (only without an sform), sform code
    struct.pack_into("<hh", header, 252, 1 if sform is None else 0, 0 if sform is None else 1)
    struct.pack_into("<6f", header, 256, 0.0, 0.0, 0.0, *qoffset)
    if sform is not None:
        for row in range(3):
            struct.pack_into("<4f", header, 280 + 16 * row, *sform[row])
    header[344:348] = b"n+1\x00"
    data = bytes(header) + b"\x00" * 4 + array.astype("<" + array.dtype.str[1:]).tobytes()
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(data))
    else:
        path.write_bytes(data)
    return path


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    cx, sx, cy, sy, cz, sz = np.cos(ax), np.sin(ax), np.cos(ay), np.sin(ay), np.cos(az), np.sin(az)
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _ids(shape) -> np.ndarray:
    """Each voxel holds its own flat index (float32 is exact up to 2**24)."""
    return np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)


def _check_positions(volume, ras_affine: np.ndarray, shape) -> float:
    """Largest distance (mm) between where backmice and the RAS affine put each voxel."""
    ids = volume.array.astype(np.int64)
    k, j, i = np.unravel_index(ids.ravel(), shape)
    expected = (RAS_TO_LPS @ ras_affine @ np.stack([i, j, k, np.ones_like(i)]).astype(float))[:3]
    s, r, c = np.indices(volume.array.shape).reshape(3, -1)
    got = (volume.affine @ np.stack([s, r, c, np.ones_like(s)]).astype(float))[:3]
    return float(np.abs(got - expected).max())


CASES = {
    # name: (RAS affine of (i, j, k), shape (k, j, i))
    "axial_ras": (np.diag([0.8, 0.8, 4.0, 1.0]), (6, 9, 11)),
    "axial_flipped_x_and_slices": (
        np.array([[-0.7, 0, 0, 40.0], [0, 0.7, 0, -12.0], [0, 0, -3.5, 20.0], [0, 0, 0, 1]]),
        (5, 8, 10),
    ),
    "sagittal_stored_ras": (  # slices along x (4 mm), rows along z, columns along y
        np.array([[0, 0, 4.0, -30.0], [0.9, 0, 0, -50.0], [0, -0.9, 0, 60.0], [0, 0, 0, 1]]),
        (7, 12, 10),
    ),
    "oblique_20_degrees": (
        np.c_[_rotation(0.35, -0.2, 0.1) @ np.diag([0.9, 1.1, 3.0]), [10.0, -5.0, 3.0]],
        (6, 10, 9),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_hand_built_sform_is_read_in_lps(tmp_path, name):
    ras, shape = CASES[name]
    ras = np.vstack([ras[:3], [0, 0, 0, 1]]) if ras.shape[0] == 3 else ras
    path = write_nifti1(tmp_path / f"{name}_T1w.nii.gz", _ids(shape), sform=ras)
    study = backmice.open_study(path)
    assert not study.skipped
    (stack,) = study.stacks
    volume = backmice.load(stack)
    assert _check_positions(volume, ras, shape) < 1e-3
    # SimpleITK puts voxel (i, j, k) of the file at the same LPS point.
    image = sitk.ReadImage(str(path))
    i, j, k = 2, 3, 4
    itk = np.array(image.TransformIndexToPhysicalPoint((i, j, k)))
    where = np.argwhere(volume.array == _ids(shape)[k, j, i])[0]
    assert np.allclose(volume.affine @ np.append(where, 1.0), np.append(itk, 1.0), atol=1e-3)
    # The slice axis is the thickest one, and the affine's columns point as DICOM's do.
    spacing = np.linalg.norm(volume.affine[:3, :3], axis=0)
    assert spacing[0] == pytest.approx(max(spacing), rel=1e-5)
    normal = np.cross(volume.affine[:3, 2], volume.affine[:3, 1])
    assert volume.affine[:3, 0] @ normal > 0


def test_qform_with_negative_qfac_flips_the_slices(tmp_path):
    shape = (5, 6, 7)
    path = write_nifti1(
        tmp_path / "q_T1w.nii",
        _ids(shape),
        pixdim=(0.5, 0.75, 2.0),
        qfac=-1.0,
        qoffset=(10.0, 20.0, 30.0),
    )
    ras = np.array(
        [[0.5, 0, 0, 10.0], [0, 0.75, 0, 20.0], [0, 0, -2.0, 30.0], [0, 0, 0, 1.0]]
    )  # qfac -1: k runs toward -z
    volume = backmice.load(backmice.open_study(path).stacks[0])
    assert _check_positions(volume, ras, shape) < 1e-4


@pytest.mark.parametrize(
    ("permute", "flip"),
    [((0, 1, 2), (False, True, False)), ((1, 0, 2), (True, False, True)), ((0, 1, 2), (True,) * 3)],
)
def test_dicom_converted_to_nifti_loads_as_the_dicom(tmp_path, permute, flip):
    """A dcm2niix-like layout (rows flipped, axes swapped) comes back as the DICOM series."""
    study = backmice.open_study(SAMPLES / "dixon")
    stack = study.by_role(Role.DIXON_FAT)[0]
    dicom = backmice.load(stack)
    image = sitk.Flip(sitk.PermuteAxes(_itk_image(dicom.array, dicom.affine), permute), flip)
    path = tmp_path / "fat.nii.gz"
    sitk.WriteImage(image, str(path))
    (nifti,) = backmice.open_study(tmp_path).stacks
    assert nifti.role is Role.DIXON_FAT
    assert nifti.series_uid == "fat.nii.gz"
    assert nifti.shape == stack.shape and nifti.orientation == "axial"
    assert np.allclose(nifti.affine, stack.affine, atol=1e-4)
    assert np.allclose(nifti.slice_positions_mm, stack.slice_positions_mm, atol=1e-4)
    volume = backmice.load(nifti)
    assert np.array_equal(volume.array, dicom.array)
    assert volume.series_uid == "fat.nii.gz" and not any(volume.sop_instance_uids)


def test_stack_layout_is_a_transpose_and_flips_only():
    rng = np.random.default_rng(0)
    for _ in range(20):
        rot = _rotation(*rng.uniform(-np.pi, np.pi, 3))
        affine = np.eye(4)
        affine[:3, :3] = rot @ np.diag(rng.uniform(0.5, 4.0, 3))
        affine[:3, 3] = rng.uniform(-50, 50, 3)
        shape = (4, 5, 6)
        axes, flips, out = stack_layout(affine, shape)
        assert sorted(axes) == [0, 1, 2]
        # Voxel (0, 0, 0) of the layout is a corner of the file's grid.
        corner = np.array([shape[a] - 1 if f else 0 for a, f in zip(axes, flips, strict=True)])
        index = np.zeros(3)
        index[list(axes)] = corner
        assert np.allclose(out[:3, 3], (affine @ np.append(index, 1.0))[:3])
        assert np.allclose(
            np.abs(np.linalg.det(out[:3, :3])), np.abs(np.linalg.det(affine[:3, :3]))
        )


def test_itk_affine_matches_simpleitk_on_a_4d_image():
    image = sitk.Image([4, 5, 6, 2], sitk.sitkFloat32)
    image.SetSpacing((0.5, 0.6, 3.0, 1.0))
    image.SetOrigin((1.0, 2.0, 3.0, 0.0))
    affine = itk_affine(image)
    for idx in [(0, 0, 0), (3, 4, 5), (1, 2, 3)]:
        point = image.TransformIndexToPhysicalPoint((*idx, 0))[:3]
        assert np.allclose(affine @ [idx[2], idx[1], idx[0], 1.0], [*point, 1.0])


# --------------------------------------------------------------------------- roles


def _small(path: Path, sidecar: dict | None = None) -> Path:
    write_nifti1(path, np.zeros((3, 4, 5), np.int16), pixdim=(1.0, 1.0, 3.0))
    if sidecar is not None:
        stem = path.name.removesuffix(".gz").removesuffix(".nii")
        (path.parent / f"{stem}.json").write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("sub-01_T1w.nii.gz", Role.T1),
        ("sub-01_acq-dixon_fat.nii.gz", Role.DIXON_FAT),
        ("Dixon_WATER.nii", Role.DIXON_WATER),
        ("t1_InPhase.nii.gz", Role.DIXON_IN),
        ("t1_outphase.nii.gz", Role.DIXON_OUT),
        ("T1_OPP.nii", Role.DIXON_OUT),
        ("t2_tse_fatsat.nii.gz", Role.FATSAT),
        ("sub-01_T2w.nii.gz", Role.T2),
        ("anat.nii.gz", Role.OTHER),
    ],
)
def test_role_from_the_file_name(tmp_path, name, role):
    _small(tmp_path / name)
    _small(tmp_path / "sub-01_localizer.nii.gz")  # in a folder, nothing is taken "alone"
    study = backmice.open_study(tmp_path)
    assert {s.series_uid: s.role for s in study.stacks}[name] is role


def test_role_from_the_dcm2niix_sidecar(tmp_path):
    _small(
        tmp_path / "5_a.nii.gz",
        {
            "Modality": "MR",
            "SeriesDescription": "t1_vibe_dixon_tra",
            "ImageType": ["DERIVED", "PRIMARY", "DIXON", "WATER"],
        },
    )
    _small(tmp_path / "6_b.nii.gz", {"SeriesDescription": "Ax T1 FSE", "SeriesNumber": 6})
    # The sidecar names nothing: the file name decides.
    _small(tmp_path / "7_fat.nii.gz", {"SeriesDescription": "series 7"})
    # Two echoes written as two files of one series: told apart by their echo times.
    for e, te in ((1, 0.0023), (2, 0.0046)):
        _small(
            tmp_path / f"8_t1_dual_e{e}.nii.gz",
            {
                "SeriesDescription": "T1 DUAL",
                "SeriesNumber": 8,
                "EchoNumber": e,
                "EchoTime": te,
                "MagneticFieldStrength": 1.5,
                "ScanningSequence": "GR",
            },
        )
    roles = {s.series_uid: s.role for s in backmice.open_study(tmp_path).stacks}
    assert roles == {
        "5_a.nii.gz": Role.DIXON_WATER,
        "6_b.nii.gz": Role.T1,
        "7_fat.nii.gz": Role.DIXON_FAT,
        "8_t1_dual_e1.nii.gz": Role.DIXON_OUT,
        "8_t1_dual_e2.nii.gz": Role.DIXON_IN,
    }


def test_4d_file_with_one_echo_time_per_volume_is_two_echoes(tmp_path):
    path = tmp_path / "t1_dual.nii.gz"
    write_nifti1(path, np.zeros((2, 3, 4, 5), np.int16), pixdim=(1.0, 1.0, 3.0))
    (tmp_path / "t1_dual.json").write_text(
        json.dumps({"EchoTime": [0.0023, 0.0046], "MagneticFieldStrength": 1.5})
    )
    study = backmice.open_study(tmp_path)
    assert [(s.role, s.echo_number) for s in study.stacks] == [
        (Role.DIXON_OUT, 1),
        (Role.DIXON_IN, 2),
    ]
    assert backmice.load(study.stacks[1]).shape == (3, 4, 5)


def test_a_file_given_alone_without_a_role_is_analysed_as_t1_and_says_so(tmp_path):
    path = _small(tmp_path / "anat.nii.gz")
    (stack,) = backmice.open_study(path).stacks
    assert stack.role is Role.T1
    assert any("given alone" in w for w in stack.warnings)


# --------------------------------------------------------------------------- bad files


def test_bad_files_are_skipped_with_the_reason_and_never_sink_the_folder(tmp_path):
    _small(tmp_path / "sub-01_T1w.nii.gz")
    noise = np.random.default_rng(1).integers(0, 1000, (8, 16, 16)).astype(np.int16)
    whole = write_nifti1(tmp_path / "noise.nii.gz", noise).read_bytes()
    (tmp_path / "noise.nii.gz").unlink()
    (tmp_path / "cut.nii.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "nohead.nii.gz").write_bytes(whole[:100])
    (tmp_path / "cut.nii").write_bytes(gzip.decompress(whole)[:-20])
    (tmp_path / "junk.nii").write_bytes(b"not a nifti file at all")
    write_nifti1(tmp_path / "flat.nii.gz", np.zeros((4, 5), np.int16))
    write_nifti1(tmp_path / "fmri.nii.gz", np.zeros((3, 2, 4, 5), np.int16))
    (tmp_path / "sub-01_T1w.json").write_text("{ not json")
    study = backmice.open_study(tmp_path)
    assert [s.series_uid for s in study.stacks] == ["sub-01_T1w.nii.gz"]
    assert any("not readable JSON" in w for w in study.stacks[0].warnings)
    reasons = {s.path.name: s.reason for s in study.skipped}
    assert set(reasons) == {
        "cut.nii.gz",
        "nohead.nii.gz",
        "cut.nii",
        "junk.nii",
        "flat.nii.gz",
        "fmri.nii.gz",
    }
    for name in ("cut.nii.gz", "nohead.nii.gz", "cut.nii"):
        assert "truncated" in reasons[name], reasons[name]
    assert "2D" in reasons["flat.nii.gz"]
    assert "4D" in reasons["fmri.nii.gz"] and "EchoTime" in reasons["fmri.nii.gz"]
    assert "NIfTI" in reasons["junk.nii"]


def test_a_file_cut_after_it_was_opened_is_an_input_error_naming_it(tmp_path):
    path = _small(tmp_path / "sub-01_T1w.nii.gz")
    (stack,) = backmice.open_study(tmp_path).stacks
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(InputError) as err:
        backmice.load(stack)
    assert err.value.path == str(path)


# --------------------------------------------------------------------------- beside DICOM


def test_a_result_folder_inside_a_dicom_study_is_not_read_as_images(tmp_path):
    from backmice.report import write_nifti

    study = tmp_path / "study"
    shutil.copytree(SAMPLES / "dixon", study)
    results = study / "results"
    results.mkdir()
    write_nifti(results / "labels.nii.gz", np.zeros((3, 4, 5), np.uint16), np.eye(4))
    write_nifti(results / "fascia.nii.gz", np.zeros((3, 4, 5), np.float32), np.eye(4))
    (results / "nodules.json").write_text("{}")
    opened = backmice.open_study(study)
    assert all(s.nifti is None for s in opened.stacks) and len(opened.stacks) == 2
    reasons = {s.path.name: s.reason for s in opened.skipped}
    assert "analysis result" in reasons["labels.nii.gz"]


def test_dcm2niix_output_beside_its_dicom_is_the_same_study_and_dicom_comes_first(tmp_path):
    from backmice.analysis import choose

    study = tmp_path / "study"
    shutil.copytree(SAMPLES / "dixon", study)
    (study / "nifti").mkdir()
    for stack in backmice.open_study(SAMPLES / "dixon").stacks:
        volume = backmice.load(stack)
        name = "fat" if stack.role is Role.DIXON_FAT else "water"
        sitk.WriteImage(
            _itk_image(volume.array, volume.affine), str(study / "nifti" / f"{name}.nii")
        )
    opened = backmice.open_study(study)
    assert len(opened.stacks) == 4 and len({s.study_uid for s in opened.stacks}) == 1
    choice = choose(opened)
    assert all(s.nifti is None for s in choice.stacks)  # the DICOM: SEG and SR can refer to it
    assert choose(opened, series_uid="nifti/fat.nii").stacks[0].series_uid == "nifti/fat.nii"
