"""The Analyze widget, driven as a user would: preview the threshold, run, get layers."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def viewer_with(make_napari_viewer):
    """A viewer with a study opened through the plugin's reader, and an Analyze widget."""

    def _open(path):
        from napari_backmice._analyze import AnalyzeWidget

        viewer = make_napari_viewer()
        viewer.open(str(path), plugin="backmice")
        widget = AnalyzeWidget(viewer)
        return viewer, widget

    return _open


@pytest.mark.slow
def test_run_in_a_worker_adds_the_result_layers(viewer_with, t1_study, qtbot):
    from napari_backmice._state import LAYER_BODY, LAYER_FASCIA, LAYER_NODULES, state_for

    viewer, widget = viewer_with(t1_study)
    state = state_for(viewer)
    stages = []
    widget._relay.progress.connect(lambda stage, fraction: stages.append((stage, fraction)))
    with qtbot.waitSignal(state.analysis_ready, timeout=120_000) as ready:
        worker = widget.run()
        # The GUI thread is free while the worker runs: the button is disabled, not frozen.
        assert not widget.run_button.isEnabled()
    assert worker is not None
    analysis = ready.args[0]
    assert state.analysis is analysis
    assert state.study_path == str(t1_study)
    assert widget.progress.value() == 100
    assert widget.run_button.isEnabled()
    assert [s for s, _ in stages][-1] == "done"
    assert len(stages) >= 5
    nodules = viewer.layers[LAYER_NODULES]
    assert nodules.data.max() == len(analysis.nodules) > 0
    np.testing.assert_array_equal(nodules.data, analysis.labels)
    fascia = viewer.layers[LAYER_FASCIA]
    np.testing.assert_array_equal(fascia.data.astype(bool), analysis.fascia.deep)
    assert fascia.editable
    assert viewer.layers[LAYER_BODY].data.sum() == analysis.body.mask.sum()
    # Result layers overlay the image: same world transform.
    image = viewer.layers[0]
    for name in (LAYER_NODULES, LAYER_FASCIA, LAYER_BODY):
        np.testing.assert_allclose(
            viewer.layers[name]._data_to_world.affine_matrix,
            image._data_to_world.affine_matrix,
            atol=1e-9,
        )
    assert f"{len(analysis.nodules)} nodule(s)" in widget.status.text()


def _overlay_slices(layer) -> set[int]:
    return {int(k) for k in np.nonzero(layer.data.reshape(layer.data.shape[0], -1).any(1))[0]}


def test_threshold_slider_updates_the_overlay_on_the_current_slice(
    viewer_with, t1_study, t1_analysis, qtbot
):
    from napari_backmice._state import LAYER_PREVIEW

    viewer, widget = viewer_with(t1_study)
    widget._on_done(t1_analysis)  # the fat score comes with a finished analysis
    widget.preview_button.setChecked(True)
    preview = viewer.layers[LAYER_PREVIEW]
    viewer.dims.set_current_step(0, 6)
    k = widget.current_slice(preview)
    assert k == 6
    widget.slider.setValue(30)
    low = preview.data[k].astype(bool).copy()
    widget.slider.setValue(80)
    high = preview.data[k].astype(bool).copy()
    assert widget.threshold_label.text() == "0.80"
    np.testing.assert_array_equal(low, t1_analysis.fat.score[k] >= 0.30)
    np.testing.assert_array_equal(high, t1_analysis.fat.score[k] >= 0.80)
    assert low.sum() > high.sum() > 0
    # Only the current slice carries the overlay, and it follows the slider of the viewer.
    assert _overlay_slices(preview) == {6}
    viewer.dims.set_current_step(0, 9)
    assert _overlay_slices(preview) == {9}
    # The chosen threshold goes into the next run.
    assert widget.threshold == pytest.approx(0.80)


def test_a_preview_change_thresholds_only_the_slice_shown(
    viewer_with, t1_study, t1_analysis, monkeypatch
):
    """Slider and slice moves threshold one slice of the kept score; nothing is recomputed."""
    import napari_backmice._analyze as module
    from backmice.preview import threshold_slice

    viewer, widget = viewer_with(t1_study)
    widget._on_done(t1_analysis)
    calls = []

    def spy(score, index, threshold, *, out=None):
        calls.append((score, index, threshold, None if out is None else out.shape))
        return threshold_slice(score, index, threshold, out=out)

    def no_recompute(*args, **kwargs):
        raise AssertionError("the fat score was computed again")

    monkeypatch.setattr(module, "threshold_slice", spy)
    monkeypatch.setattr(module, "fat_score", no_recompute)
    monkeypatch.setattr(module, "analyze", no_recompute)
    widget.preview_button.setChecked(True)
    viewer.dims.set_current_step(0, 6)
    calls.clear()
    widget.slider.setValue(35)
    widget.slider.setValue(70)
    viewer.dims.set_current_step(0, 9)
    shape = t1_analysis.fat.score.shape
    assert [(c[1], c[2], c[3]) for c in calls] == [
        (6, 0.35, shape[1:]),
        (6, 0.70, shape[1:]),
        (9, 0.70, shape[1:]),
    ]
    # The score handed over is the analysis' own (a view for display, never a copy).
    assert all(np.shares_memory(c[0], t1_analysis.fat.score) for c in calls)


def test_preview_computes_the_fat_score_in_a_worker(viewer_with, qtbot):
    from napari_backmice._sample_data import sample_dir
    from napari_backmice._state import LAYER_PREVIEW

    viewer, widget = viewer_with(sample_dir("dixon"))
    widget.method_box.setCurrentText("dixon")
    with qtbot.waitSignal(widget_worker_started(widget), timeout=60_000):
        widget.preview_button.setChecked(True)
    qtbot.waitUntil(lambda: widget.fat_score is not None, timeout=60_000)
    assert str(widget.fat_score.method) == "dixon"
    preview = viewer.layers[LAYER_PREVIEW]
    assert preview.data.shape == widget.fat_score.score.shape
    assert preview.data.any()
    assert float(widget.fat_score.score.max()) <= 1.0


def widget_worker_started(widget):
    """The signal that says the preview layer was shown."""
    return widget.viewer.layers.events.inserted


def test_go_to_nodule_moves_the_viewer_to_its_slice(viewer_with, t1_study, t1_analysis):
    from napari_backmice._state import LAYER_NODULES

    viewer, widget = viewer_with(t1_study)
    widget._on_done(t1_analysis)
    row = t1_analysis.nodules[-1]
    widget.go_to_nodule(row["nodule_id"])
    layer = viewer.layers[LAYER_NODULES]
    k = widget.current_slice(layer)
    assert (layer.data[k] == row["nodule_id"]).any()
    assert viewer.dims.point[0] == pytest.approx(row["centroid_z_mm"], abs=2.5)


def test_choosing_a_dixon_stack_analyses_the_dixon_pair(make_napari_viewer):
    from napari_backmice._analyze import AnalyzeWidget
    from napari_backmice._sample_data import sample_dir

    viewer = make_napari_viewer()
    viewer.open(str(sample_dir("dixon")), plugin="backmice")
    widget = AnalyzeWidget(viewer)
    names = [widget.stack_box.itemText(i) for i in range(widget.stack_box.count())]
    water = next(i for i, n in enumerate(names) if n.startswith("dixon_water"))
    widget.stack_box.setCurrentIndex(water)
    path, method, series = widget._choices()
    assert (str(method), series) == ("dixon", None)
    assert path == str(sample_dir("dixon"))


def test_after_an_analysis_only_the_analysed_stack_is_visible(viewer_with, dixon_analysis):
    from pathlib import Path

    viewer, widget = viewer_with(Path(__file__).parents[2] / "sample_data" / "dixon")
    for layer in viewer.layers:
        layer.visible = True  # the reader hides the water image; the user showed it again
    widget._on_done(dixon_analysis)
    images = {
        layer.metadata["role"]: layer.visible
        for layer in viewer.layers
        if "role" in (layer.metadata or {}) and layer.metadata.get("study_path")
    }
    assert images == {"dixon_fat": True, "dixon_water": False}
