"""The Measure widget: ruler lengths in mm, fat per side in an ROI."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def test_line_lengths_use_the_affine_for_anisotropic_and_oblique_grids():
    from backmice.io.writer import rotation_matrix
    from napari_backmice._measure import line_lengths_mm

    spacing = np.diag([4.0, 0.8, 0.5])
    line = [np.array([[0.0, 0.0, 0.0], [1.0, 10.0, 20.0]])]
    affine = np.eye(4)
    affine[:3, :3] = spacing
    expected = np.sqrt(4.0**2 + 8.0**2 + 10.0**2)
    assert line_lengths_mm(line, affine)[0] == pytest.approx(expected)
    oblique = affine.copy()
    oblique[:3, :3] = rotation_matrix("x", 17.0) @ rotation_matrix("z", 8.0) @ spacing
    oblique[:3, 3] = [12.0, -40.0, 7.0]
    assert line_lengths_mm(line, oblique)[0] == pytest.approx(expected)


@pytest.fixture
def measured(make_napari_viewer, t1_study, t1_analysis):
    from napari_backmice._analyze import AnalyzeWidget
    from napari_backmice._measure import MeasureWidget

    viewer = make_napari_viewer()
    viewer.open(str(t1_study), plugin="backmice")
    AnalyzeWidget(viewer)._on_done(t1_analysis)
    return viewer, MeasureWidget(viewer)


def test_ruler_shows_its_length_in_mm_and_follows_edits(measured):
    viewer, widget = measured
    layer = widget.ruler_layer()
    assert layer.mode == "add_line"
    viewer.dims.set_current_step(0, 5)
    # 100 columns, on slice 5 (the one shown).
    layer.add_lines(np.array([[5.0, 40.0, 20.0], [5.0, 40.0, 120.0]]))
    spacing = viewer.layers[0].scale
    assert widget.ruler_lengths()[0] == pytest.approx(100 * spacing[2])
    assert layer.features["length_mm"].iloc[0] == pytest.approx(100 * spacing[2])
    assert layer._view_text[0] == f"{100 * spacing[2]:.1f} mm"
    # Move an end point: the length and its text follow.
    data = [d.copy() for d in layer.data]
    data[0][1] = [5.0, 70.0, 60.0]  # 30 rows and 40 columns
    layer.data = data
    expected = float(np.hypot(30 * spacing[1], 40 * spacing[2]))
    assert layer.features["length_mm"].iloc[0] == pytest.approx(expected)
    assert layer._view_text[0] == f"{expected:.1f} mm"
    # The ruler overlays the image: same world.
    np.testing.assert_allclose(
        layer._data_to_world.affine_matrix, viewer.layers[0]._data_to_world.affine_matrix
    )


def _rect(k, r0, c0, r1, c1):
    return np.array([[k, r0, c0], [k, r0, c1], [k, r1, c1], [k, r1, c0]], dtype=float)


def test_roi_gives_fat_score_per_side(measured, t1_analysis):
    from backmice.vocab import Side
    from napari_backmice._measure import midline_x_mm

    _viewer, widget = measured
    layer = widget.roi_layer()
    k = 8
    shape = t1_analysis.labels.shape
    r0, r1, c0, c1 = 60, 140, 40, shape[2] - 40  # wide: across the midline
    layer.add_rectangles(_rect(k, r0, c0, r1, c1))
    stats = widget.stats
    assert {s.side for s in stats} == {Side.LEFT, Side.RIGHT}
    # Check against the maps directly: LPS +x (the patient's left) grows with the column here.
    affine = t1_analysis.volume.affine
    midline = midline_x_mm(t1_analysis)
    rows, cols = np.mgrid[0 : shape[1], 0 : shape[2]]
    inside = (rows >= r0) & (rows <= r1) & (cols >= c0) & (cols <= c1)
    x = affine[0, 3] + affine[0, 1] * rows + affine[0, 2] * cols + affine[0, 0] * k
    score = t1_analysis.fat.score[k]
    for s in stats:
        part = inside & ((x > midline) if s.side is Side.LEFT else (x <= midline))
        assert s.quantity == "fat_score"
        assert s.slice == k
        assert s.n_pixels == pytest.approx(part.sum(), rel=0.03)
        assert s.mean == pytest.approx(float(score[part].mean()), abs=0.01)
        assert s.median == pytest.approx(float(np.median(score[part])), abs=0.01)
    assert widget.table.rowCount() == 2
    # An ROI on the patient's left only (high columns) reports that side only.
    layer.add_rectangles(_rect(k, r0, shape[2] - 60, r1, shape[2] - 20))
    second = [s for s in widget.stats if s.roi == 2]
    assert [s.side for s in second] == [Side.LEFT]


def test_roi_on_dixon_reports_the_fat_fraction(make_napari_viewer, dixon_analysis):
    from napari_backmice._analyze import AnalyzeWidget
    from napari_backmice._measure import MeasureWidget
    from napari_backmice._sample_data import sample_dir

    path = sample_dir("dixon")
    analysis = dixon_analysis  # of the committed sample_data/dixon: the same study
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="backmice")
    AnalyzeWidget(viewer)._on_done(analysis)
    widget = MeasureWidget(viewer)
    layer = widget.roi_layer()
    n = analysis.labels.shape
    layer.add_rectangles(_rect(5, 10, 10, n[1] - 10, n[2] - 10))
    assert {s.quantity for s in widget.stats} == {"fat_fraction"}
    assert all(0.0 <= s.mean <= 1.0 for s in widget.stats)
