"""The writer: a labels layer → NIfTI in its patient geometry."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

pytestmark = pytest.mark.gui


def _lps_of_index(image: sitk.Image, index_krc) -> np.ndarray:
    k, r, c = index_krc
    return np.array(image.TransformContinuousIndexToPhysicalPoint((c, r, k)))


def test_nodule_labels_saved_as_nifti_land_in_place(make_napari_viewer, t1_analysis, tmp_path):
    from napari_backmice._analyze import result_layers

    viewer = make_napari_viewer()
    data, kwargs, _ = result_layers(t1_analysis)[0]
    layer = viewer.add_labels(data, **kwargs)
    out = tmp_path / "nodules.nii.gz"
    written = viewer.layers.save(str(out), selected=False, plugin="backmice")
    assert written == [str(out)]
    image = sitk.ReadImage(str(out))  # SimpleITK reports LPS, like DICOM
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), layer.data)
    affine = t1_analysis.volume.affine
    for index in ([0, 0, 0], [7, 50, 200], [15, 191, 287]):
        expected = (affine @ np.append(np.asarray(index, float), 1.0))[:3]
        np.testing.assert_allclose(_lps_of_index(image, index), expected, atol=1e-4)


def test_a_labels_layer_made_elsewhere_takes_its_geometry_from_the_layer(
    make_napari_viewer, tmp_path
):
    from backmice.io.writer import rotation_matrix
    from napari_backmice._layers import layer_transform
    from napari_backmice._writer import write_labels

    affine = np.eye(4)
    affine[:3, :3] = rotation_matrix("z", 20.0) @ np.diag([3.0, 0.7, 0.9])
    affine[:3, 3] = [-40.0, 10.0, 25.0]
    labels = np.zeros((4, 10, 12), np.uint8)
    labels[1, 2:5, 3:7] = 2
    viewer = make_napari_viewer()
    layer = viewer.add_labels(labels, **layer_transform(affine))  # no backmice metadata
    data, attributes, _ = layer.as_layer_data_tuple()
    (path,) = write_labels(str(tmp_path / "drawn"), data, attributes)
    assert path.endswith(".nii.gz")
    image = sitk.ReadImage(path)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(image), labels)
    expected = (affine @ np.array([2.0, 3.0, 5.0, 1.0]))[:3]
    np.testing.assert_allclose(_lps_of_index(image, (2, 3, 5)), expected, atol=1e-4)


def test_nodules_saved_as_dicom_seg_read_back_onto_the_series(
    make_napari_viewer, t1_analysis, tmp_path
):
    from backmice.export import read_seg
    from napari_backmice._analyze import result_layers

    viewer = make_napari_viewer()
    data, kwargs, _ = result_layers(t1_analysis)[0]
    layer = viewer.add_labels(data.copy(), **kwargs)
    # A reader paints a missed nodule by hand: it gets a segment too.
    new_id = int(layer.data.max()) + 1
    layer.data[8, 20:26, 30:36] = new_id
    out = tmp_path / "nodules.dcm"
    written = viewer.layers.save(str(out), selected=False, plugin="backmice")
    assert written == [str(out)]
    volume = t1_analysis.volume
    seg = read_seg(out, shape=volume.shape, affine=volume.affine, series_uid=volume.series_uid)
    by_number = {s.number: s.nodule_id for s in seg.segments}
    assert sorted(by_number.values()) == [*range(1, new_id + 1)]
    relabelled = np.zeros_like(layer.data)
    for number, nid in by_number.items():
        relabelled[seg.labels == number] = nid
    np.testing.assert_array_equal(relabelled, layer.data)


def test_seg_of_a_layer_without_an_analysis_is_bad_input(tmp_path):
    from backmice.errors import InputError
    from napari_backmice._writer import write_seg

    with pytest.raises(InputError, match="backmice analysis"):
        write_seg(str(tmp_path / "x.dcm"), np.ones((2, 3, 3), np.uint8), {"metadata": {}})


def test_a_transposed_view_maps_back_to_the_series_order():
    from backmice.io.writer import make_affine
    from napari_backmice._layers import display_view, view_affine

    affine = make_affine((4.0, 0.9, 0.8), orientation="sagittal", origin=(1.0, 2.0, 3.0))
    array = np.arange(6 * 7 * 8).reshape(6, 7, 8)
    view, view_aff, axes = display_view(array, affine)
    assert axes != (0, 1, 2)
    back = tuple(int(i) for i in np.argsort(axes))
    np.testing.assert_array_equal(np.transpose(view, back), array)
    np.testing.assert_allclose(view_affine(view_aff, back), affine)
    # The same voxel, reached through either index, is at the same LPS point.
    k, r, c = 2, 5, 3
    vi = np.array([k, r, c])[list(axes)]
    np.testing.assert_allclose(view_aff @ np.append(vi, 1.0), affine @ np.array([k, r, c, 1.0]))
    assert view[tuple(vi)] == array[k, r, c]
