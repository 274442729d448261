"""The reader and the sample data: layers in mm, in patient coordinates, one per stack."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import backmice
from tests.conftest import real_file

pytestmark = pytest.mark.gui


def _composite(layer) -> np.ndarray:
    """The layer's full data-to-world matrix (4x4 for 3D data)."""
    return np.asarray(layer._data_to_world.affine_matrix, dtype=float)


def _read(path):
    from napari_backmice._reader import get_reader

    reader = get_reader(str(path))
    assert reader is not None, path
    return reader(str(path))


def test_reader_declines_what_is_not_dicom(tmp_path):
    from napari_backmice._reader import get_reader

    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    png = tmp_path / "picture.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 300)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert get_reader(str(text)) is None
    assert get_reader(str(png)) is None
    assert get_reader(str(empty)) is None
    assert get_reader(str(tmp_path / "missing")) is None
    # A folder of non-DICOM files only is not ours either.
    assert get_reader(str(tmp_path)) is None


def test_reader_declines_a_result_folder_but_takes_a_nifti_study(tmp_path):
    from backmice.report import write_nifti
    from napari_backmice._reader import get_reader

    results = tmp_path / "results"
    results.mkdir()
    write_nifti(results / "labels.nii.gz", np.zeros((3, 4, 5), np.uint16), np.eye(4))
    write_nifti(results / "fascia.nii.gz", np.zeros((3, 4, 5), np.float32), np.eye(4))
    assert get_reader(str(results)) is None
    study = tmp_path / "study"
    study.mkdir()
    write_nifti(study / "sub-01_T1w.nii.gz", np.ones((3, 4, 5), np.float32), np.eye(4))
    assert get_reader(str(study)) is not None


def test_mr_small_layer_scale_is_the_spacing():
    (data, kwargs, kind) = _read(real_file("MR_small.dcm"))[0]
    assert kind == "image"
    assert data.shape == (1, 64, 64)
    assert kwargs["name"].startswith("t2: ")
    assert kwargs["scale"][1:] == pytest.approx((0.3125, 0.3125))
    # World (z, y, x): pixel (0, 0) lies at ImagePositionPatient (LPS) reversed.
    np.testing.assert_allclose(kwargs["translate"], [6.6406, -91.2, -83.9063], atol=1e-4)
    assert kwargs["units"] == ("mm", "mm", "mm")


def test_oblique_series_layer_affine_equals_the_volume_affine(make_napari_viewer):
    from napari_backmice._layers import lps_from_world, world_affine

    path = real_file("MR2_UNCR.dcm")  # Philips, coronal-oblique, one slice
    volume = backmice.load(backmice.open_study(path).stacks[0])
    assert volume.orientation == "oblique"
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="backmice")
    axes = layer.metadata["axes"]
    np.testing.assert_array_equal(layer.data, np.transpose(volume.array, axes))
    np.testing.assert_allclose(layer.metadata["volume_affine"], volume.affine)
    # The layer's transform is the volume's affine (for the transposed view of its array).
    index = np.array([0.0, 700.0, 123.0])  # (slice, row, col) of the volume
    expected = (volume.affine @ np.append(index, 1.0))[:3]
    view_index = index[list(axes)]
    np.testing.assert_allclose(lps_from_world(layer.data_to_world(view_index)), expected, atol=1e-6)
    np.testing.assert_allclose(
        _composite(layer), world_affine(layer.metadata["backmice_affine"]), atol=1e-9
    )
    # The layer's scale is the spacing of the volume axis each layer axis shows.
    spacing = (1.0, *volume.spacing_mm[1:])  # one slice: a unit normal
    assert tuple(layer.scale) == pytest.approx([spacing[a] for a in axes])
    viewer.screenshot(canvas_only=True)  # napari can draw it


def test_oblique_axial_sample_is_not_transposed_and_keeps_its_affine(make_napari_viewer):
    from napari_backmice._layers import world_affine
    from napari_backmice._sample_data import sample_dir

    path = sample_dir("t1_oblique_iso")  # 12° about x, 8° about z
    volume = backmice.load(backmice.open_study(path).stacks[0])
    viewer = make_napari_viewer()
    (layer,) = viewer.open(str(path), plugin="backmice")
    assert layer.metadata["axes"] == (0, 1, 2)
    np.testing.assert_allclose(_composite(layer), world_affine(volume.affine), atol=1e-9)
    assert tuple(layer.scale) == pytest.approx(volume.spacing_mm)
    viewer.screenshot(canvas_only=True)


@pytest.mark.parametrize("orientation", ["sagittal", "coronal"])
def test_sagittal_and_coronal_series_draw_in_their_own_plane(orientation, tmp_path):
    from backmice.io.writer import make_affine, write_series
    from napari_backmice._view import open_viewer

    array = np.zeros((6, 40, 50), np.int16)
    array[:, 5:12, 4:10] = 900  # top-left of every slice: superior, and anterior or right
    affine = make_affine((4.0, 0.9, 0.8), orientation=orientation, origin=(10.0, -20.0, 30.0))
    write_series(array, tmp_path / "s", affine=affine, series_description=orientation)
    viewer, _ = open_viewer(tmp_path / "s", show=True, dock_width=None)
    try:
        (layer,) = [lyr for lyr in viewer.layers if lyr.name.endswith(orientation)]
        volume_index = np.array([2.0, 8.0, 7.0])
        expected = (affine @ np.append(volume_index, 1.0))[:3]
        view_index = volume_index[list(layer.metadata["axes"])]
        np.testing.assert_allclose(layer.data_to_world(view_index)[::-1], expected, atol=1e-6)
        # The slider walks along the slices; the plane shown is the acquired one.
        slider = viewer.dims.order[0]
        assert layer.metadata["axes"][slider] == 0
        shot = viewer.screenshot(canvas_only=True)  # draws (napari cannot draw a permuted one)
        assert shot[..., :3].max() > 100
    finally:
        viewer.close()


def test_ultrasound_is_in_mm_with_frames_first():
    ((data, kwargs, _),) = _read(real_file("OBXXXX1A_2frame.dcm"))
    stack = backmice.open_study(real_file("OBXXXX1A_2frame.dcm")).stacks[0]
    assert kwargs["rgb"] is True
    assert data.shape == (2, *stack.shape[1:], 3)
    assert kwargs["scale"][1:] == pytest.approx(stack.spacing_mm[1:])
    assert kwargs["scale"][0] == pytest.approx(1.0)  # frames are counted, not mm
    assert kwargs["axis_labels"][0] == "frame"
    assert kwargs["units"] == ("dimensionless", "mm", "mm")


def test_uncalibrated_ultrasound_is_in_pixels():
    ((_, kwargs, _),) = _read(real_file("US1_UNCR.dcm"))
    assert kwargs["scale"] == pytest.approx((1.0, 1.0, 1.0))
    assert kwargs["units"][1:] == ("pixel", "pixel")
    assert kwargs["metadata"]["units"] == "px"


def test_one_layer_per_stack_named_by_role(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    shutil.copy(real_file("MR_small.dcm"), folder / "a.dcm")
    shutil.copy(real_file("OBXXXX1A.dcm"), folder / "b")  # no extension: found by preamble
    (folder / "readme.txt").write_text("skipped, not DICOM")
    layers = _read(folder)
    roles = sorted(kw["metadata"]["role"] for _, kw, _ in layers)
    assert roles == ["t2", "us"]
    assert all(kw["metadata"]["study_path"] == str(folder) for _, kw, _ in layers)


@pytest.mark.parametrize(
    ("name", "roles"), [("t1_axial", ["t1"]), ("dixon", ["dixon_fat", "dixon_water"])]
)
def test_mr_samples_open_with_their_spacing(name, roles, make_napari_viewer):
    from napari_backmice._sample_data import sample_dir

    viewer = make_napari_viewer()
    layers = viewer.open_sample("backmice", name)
    assert sorted(layer.metadata["role"] for layer in layers) == roles
    spacing = {s.series_uid: s.spacing_mm for s in backmice.open_study(sample_dir(name)).stacks}
    for layer in layers:
        assert tuple(layer.scale) == pytest.approx(spacing[layer.metadata["series_uid"]])
        assert layer.metadata["units"] == "mm"
        assert layer.ndim == 3


def test_ultrasound_sample_opens_in_mm(make_napari_viewer):
    viewer = make_napari_viewer()
    (layer,) = viewer.open_sample("backmice", "us")
    assert layer.metadata["role"] == "us"
    assert layer.metadata["units"] == "mm"
    assert 0.05 < layer.scale[1] < 1.0


def test_a_multi_stack_study_opens_with_only_the_analysed_stack_visible(t1_study):
    """Dixon fat + water: the fat image (what the analysis measures on) shows, the water
    image is in the layer list, hidden; a single-stack or unanalysable study shows all."""
    from pathlib import Path

    layers = _read(Path(__file__).parents[2] / "sample_data" / "dixon")
    visible = {kw["metadata"]["role"]: kw["visible"] for _, kw, _ in layers}
    assert visible == {"dixon_fat": True, "dixon_water": False}
    assert [kw["metadata"]["analysed"] for _, kw, _ in layers].count(True) == 1
    (t1,) = _read(t1_study)
    assert t1[1].get("visible", True)
