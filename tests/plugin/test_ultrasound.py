"""The Ultrasound widget, driven as a user would: find the fascia, click a nodule, edit, save.

Checked against the ultrasound sample's truth and against ``backmice analyze``
with the same seed (the command line's seed is in pixels of the stored frame;
the widget's click is in world mm and lands in the cropped tissue region).
"""

from __future__ import annotations

import colorsys
import csv
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def us_study():
    from napari_backmice._sample_data import sample_dir

    return sample_dir("us")


@pytest.fixture(scope="module")
def truth(us_study):
    """The rendered nodule of the frame (region pixels and mm), and the region's origin."""
    doc = json.loads((us_study / "truth.json").read_text())
    us = doc["ultrasound"][0]
    x0, y0 = us["plane"]["region"][:2]
    dy, dx = us["plane"]["delta_mm"]
    lesion = us["lesions"][0]
    return {
        "lesion": lesion,
        "origin_cr": (x0, y0),
        "spacing": (dy, dx),
        # (row, col) of the nodule's centre in the cropped region, whole pixels.
        "seed_rc": (round(lesion["depth_mm"] / dy), round(lesion["x_mm"] / dx)),
    }


@pytest.fixture(scope="module")
def cli_seeded(us_study, truth, tmp_path_factory):
    """``backmice analyze US --seed COL,ROW`` at the truth centre (stored-frame pixels)."""
    out = tmp_path_factory.mktemp("cli-us")
    row, col = truth["seed_rc"]
    seed = f"{col + truth['origin_cr'][0]},{row + truth['origin_cr'][1]}"
    args = [sys.executable, "-m", "backmice", "analyze", str(us_study), "--out", str(out)]
    result = subprocess.run(
        [*args, "--seed", seed, "--no-qc"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return out


@pytest.fixture
def opened(make_napari_viewer, us_study):
    """A viewer with the sample opened through the plugin's reader, and the widget."""
    from napari_backmice._ultrasound import UltrasoundWidget

    viewer = make_napari_viewer()
    viewer.open(str(us_study), plugin="backmice")
    return viewer, UltrasoundWidget(viewer)


class _Event:
    """A mouse event as napari hands it to drag callbacks: a proxy whose target moves on."""

    def __init__(self, **fields) -> None:
        self.__wrapped__ = SimpleNamespace(**fields)

    def __getattr__(self, name):
        return getattr(self.__wrapped__, name)


def _click(viewer, world):
    """A press and release at ``world`` without moving, through napari's callback machinery."""
    from napari.utils.interactions import mouse_press_callbacks, mouse_release_callbacks

    fields = {"is_dragging": False, "modifiers": [], "position": tuple(world), "handled": False}
    mouse_press_callbacks(viewer, _Event(type="mouse_press", **fields))
    mouse_release_callbacks(viewer, SimpleNamespace(type="mouse_release", **fields))


def _seeded(opened, truth, qtbot):
    """Click the truth centre; return the viewer, widget and the nodule row."""
    viewer, widget = opened
    row, col = truth["seed_rc"]
    dy, dx = truth["spacing"]
    viewer.layers.selection.active = viewer.layers[0]  # pan/zoom: a click seeds
    with qtbot.waitSignal(widget.changed, timeout=60_000):
        _click(viewer, (0.0, row * dy, col * dx))
    rows = widget.nodules()
    assert len(rows) == 1
    return viewer, widget, rows[0]


def test_fascia_path_overlays_the_pipeline_line(opened, qtbot):
    from backmice.io import load, open_study
    from backmice.ultrasound import analyze_frame, choose_ultrasound, line_rows
    from napari_backmice._ultrasound import (
        LAYER_US_LINES,
        line_from_world,
        line_to_world,
    )

    viewer, widget = opened
    image = viewer.layers[0]
    with qtbot.waitSignal(widget.changed, timeout=60_000):
        worker = widget.find_fascia()
        assert worker is not None  # a background worker: the viewer is not blocked
    volume = load(choose_ultrasound(open_study(image.metadata["study_path"])))
    spacing = tuple(float(v) for v in volume.spacing_mm[1:])
    expected = analyze_frame(volume.array[0], spacing_mm=spacing, candidates=False)
    layer = viewer.layers[LAYER_US_LINES]
    assert list(layer.shape_type) == ["path", "path"]
    assert layer.editable
    # The layer's vertices are world mm: napari's own transform of the image takes them back
    # to (frame, row, col) pixels of the region, where the pipeline's lines are.
    np.testing.assert_allclose(layer.scale, 1.0)
    cols = volume.array.shape[2]
    for k, line in enumerate((expected.skin, expected.fascia)):
        world = np.asarray(layer.data[k])
        index = np.array([image.world_to_data(p) for p in world])
        np.testing.assert_allclose(index[:, 0], 0.0, atol=1e-9)  # on frame 0
        shown = line_rows(index[:, [2, 1]], cols)
        assert np.max(np.abs(shown - line_rows(line, cols))) <= 0.5 + 1e-6
        # In mm: depth = row x pixel size.
        np.testing.assert_allclose(world[:, 1], index[:, 1] * spacing[0], atol=1e-9)
    # The conversion the widget uses agrees with napari's, both ways.
    fascia = expected.fascia
    world = line_to_world(fascia, 0, image.metadata["backmice_affine"])
    np.testing.assert_allclose(
        [image.world_to_data(p)[1:][::-1] for p in world[::50]], fascia[::50], atol=1e-9
    )
    back, frame = line_from_world(world, image.metadata["backmice_affine"])
    np.testing.assert_allclose(back, fascia, atol=1e-9)
    assert frame == 0.0
    assert "mm" in widget.units_label.text()


def test_click_at_the_nodule_measures_it_like_the_command_line(opened, truth, cli_seeded, qtbot):
    from napari_backmice._ultrasound import LAYER_US_NODULES

    viewer, widget, row = _seeded(opened, truth, qtbot)
    cli = json.loads((cli_seeded / "nodules.json").read_text())["nodules"]
    assert len(cli) == 1
    for key in ("long_axis_mm", "short_axis_mm", "area_mm2", "fascia_offset_mm", "skin_depth_mm"):
        assert row[key] == pytest.approx(cli[0][key], abs=0.05), key
    assert row["relation"] == cli[0]["relation"] == "subcutaneous"  # N1 of truth.json
    assert row["status"] == "accepted" and row["found_by"] == "seed"
    lesion = truth["lesion"]
    for key in ("long_axis_mm", "short_axis_mm"):
        assert abs(row[key] - lesion[key]) <= max(1.0, 0.1 * lesion[key]), key
    # The outline is on the image, where the nodule is.
    labels = viewer.layers[LAYER_US_NODULES]
    assert labels.data[0, truth["seed_rc"][0], truth["seed_rc"][1]] == row["nodule_id"]
    np.testing.assert_allclose(
        labels._data_to_world.affine_matrix, viewer.layers[0]._data_to_world.affine_matrix
    )
    # The table shows it, in mm.
    assert widget.table.rowCount() == 1
    assert widget.table.item(0, 2).text() == f"{row['long_axis_mm']:.1f}"
    assert widget.table.horizontalHeaderItem(2).text() == "long mm"


def test_moving_the_fascia_path_down_2mm_moves_the_offset(opened, truth, qtbot):
    from napari_backmice._ultrasound import LAYER_US_LINES

    viewer, widget, before = _seeded(opened, truth, qtbot)
    layer = viewer.layers[LAYER_US_LINES]
    paths = [np.asarray(p, dtype=float).copy() for p in layer.data]
    paths[1][:, 1] += 2.0  # world axis 1 is depth, mm
    with qtbot.waitSignal(widget.changed, timeout=5_000):
        layer.data = [(p, "path") for p in paths]  # what a drag of every vertex ends with
    after = widget.nodules()[0]
    assert after["fascia_offset_mm"] - before["fascia_offset_mm"] == pytest.approx(2.0, abs=0.15)
    assert after["fascia_min_mm"] - before["fascia_min_mm"] == pytest.approx(2.0, abs=0.15)
    assert after["long_axis_mm"] == pytest.approx(before["long_axis_mm"])
    # The edited line is now the one used: a second seed measures against it.
    fascia = widget.state.fascia
    assert widget.state.fixed
    np.testing.assert_allclose(fascia[:, 1] * truth["spacing"][0], paths[1][:, 1], atol=1e-6)


def test_save_writes_what_backmice_analyze_writes(opened, truth, cli_seeded, qtbot, tmp_path):
    _viewer, widget, _row = _seeded(opened, truth, qtbot)
    with qtbot.waitSignal(widget.changed, timeout=60_000):
        widget.save(tmp_path)
    cli_files = {p.name for p in cli_seeded.iterdir()}
    assert cli_files <= {p.name for p in tmp_path.iterdir()}
    assert (tmp_path / "qc.png").stat().st_size > 10_000
    with (tmp_path / "nodules.csv").open() as fh, (cli_seeded / "nodules.csv").open() as gh:
        ours, theirs = list(csv.DictReader(fh)), list(csv.DictReader(gh))
    assert list(ours[0]) == list(theirs[0])  # the same columns, in order
    assert float(ours[0]["long_axis_mm"]) == pytest.approx(
        float(theirs[0]["long_axis_mm"]), abs=0.05
    )
    assert ours[0]["units"] == "mm" and ours[0]["found_by"] == "seed"
    doc = json.loads((tmp_path / "nodules.json").read_text())
    assert doc["modality"] == "US" and doc["pixel_mm"] == list(truth["spacing"])


def test_frame_follows_the_slider_and_a_click_measures_that_frame(
    make_napari_viewer, us_study, truth, tmp_path, qtbot
):
    import pydicom

    from napari_backmice._ultrasound import LAYER_US_LINES, LAYER_US_NODULES, UltrasoundWidget

    # A two-frame cine: the second frame is the first moved 40 pixels to the right.
    ds = pydicom.dcmread(next((us_study / "01_us").glob("*.dcm")))
    first = ds.pixel_array
    ds.NumberOfFrames = 2
    ds.PixelData = np.stack([first, np.roll(first, 40, axis=1)]).tobytes()
    (tmp_path / "cine").mkdir()
    ds.save_as(tmp_path / "cine" / "US_0001.dcm")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "cine"), plugin="backmice")
    widget = UltrasoundWidget(viewer)
    assert widget.frame_spin.maximum() == 1
    viewer.dims.set_current_step(0, 1)
    assert widget.frame == 1
    widget.frame_spin.setValue(0)
    assert viewer.dims.current_step[0] == 0
    widget.frame_spin.setValue(1)
    assert viewer.dims.current_step[0] == 1
    row, col = truth["seed_rc"]
    dy, dx = truth["spacing"]
    viewer.layers.selection.active = viewer.layers[0]
    with qtbot.waitSignal(widget.changed, timeout=60_000):
        _click(viewer, (1.0, row * dy, (col + 40) * dx))
    (nodule,) = widget.nodules()
    labels = viewer.layers[LAYER_US_NODULES].data
    assert labels[1, row, col + 40] == nodule["nodule_id"] and not labels[0].any()
    assert all(np.allclose(np.asarray(p)[:, 0], 1.0) for p in viewer.layers[LAYER_US_LINES].data)
    assert widget.state.frame == 1
    assert nodule["x_mm"] == pytest.approx(truth["lesion"]["x_mm"] + 40 * dx, abs=0.5)
    lesion = truth["lesion"]
    assert abs(nodule["long_axis_mm"] - lesion["long_axis_mm"]) <= max(
        1.0, 0.1 * lesion["long_axis_mm"]
    )


def test_a_drag_or_an_editing_mode_does_not_seed(opened, truth, qtbot):
    from napari.utils.interactions import (
        mouse_move_callbacks,
        mouse_press_callbacks,
        mouse_release_callbacks,
    )

    viewer, widget = opened
    row, col = truth["seed_rc"]
    dy, dx = truth["spacing"]
    viewer.layers.selection.active = viewer.layers[0]
    fields = {"modifiers": [], "handled": False}
    mouse_press_callbacks(
        viewer,
        _Event(type="mouse_press", is_dragging=False, position=(0, row * dy, col * dx), **fields),
    )
    moved = SimpleNamespace(
        type="mouse_move", is_dragging=True, position=(0, row * dy + 3, col * dx), **fields
    )
    mouse_move_callbacks(viewer, moved)
    mouse_release_callbacks(viewer, SimpleNamespace(**{**vars(moved), "type": "mouse_release"}))
    assert not widget._workers and widget.state is None  # a pan, not a seed
    shapes = viewer.add_shapes(ndim=3)
    shapes.mode = "add_rectangle"
    viewer.layers.selection.active = shapes
    _click(viewer, (0.0, row * dy, col * dx))
    assert not widget._workers and widget.state is None  # drawing, not a seed


def test_an_uncalibrated_image_says_px(make_napari_viewer, us_study, tmp_path, qtbot):
    import pydicom

    from napari_backmice._ultrasound import UltrasoundWidget

    src = next((us_study / "01_us").glob("*.dcm"))
    ds = pydicom.dcmread(src)
    del ds.SequenceOfUltrasoundRegions
    (tmp_path / "us").mkdir()
    ds.save_as(tmp_path / "us" / "US_0001.dcm")
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "us"), plugin="backmice")
    widget = UltrasoundWidget(viewer)
    assert "UNCALIBRATED" in widget.units_label.text()
    assert widget.table.horizontalHeaderItem(2).text() == "long px"
    widget.find_fascia(blocking=True)
    assert widget.state.units == "px" and not widget.state.calibrated


def test_analyze_hands_an_ultrasound_study_to_the_ultrasound_widget(opened):
    from napari_backmice._analyze import AnalyzeWidget
    from napari_backmice._ultrasound import UltrasoundWidget

    viewer, _widget = opened
    analyze = AnalyzeWidget(viewer)
    docked = analyze.run()
    assert isinstance(docked, UltrasoundWidget)
    assert "Ultrasound widget" in analyze.status.text()
    assert analyze.run_button.isEnabled()


def test_widget_names_for_ultrasound_studies():
    from napari_backmice._view import US_WIDGETS, WIDGETS, widget_names

    us = (None, {"metadata": {"role": "us"}}, "image")
    mr = (None, {"metadata": {"role": "t1"}}, "image")
    assert widget_names([us]) == US_WIDGETS
    assert widget_names([mr]) == WIDGETS
    assert widget_names([mr, us]) == (*WIDGETS, "Ultrasound")


@pytest.mark.slow
def test_screenshot_of_an_ultrasound_study_shows_the_outline(us_study, tmp_path):
    from PIL import Image

    from napari_backmice._ultrasound import FASCIA_COLOUR, NODULE_COLOUR

    out = tmp_path / "us.png"
    result = subprocess.run(
        [sys.executable, "-m", "backmice", "view", str(us_study), "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rgb = np.asarray(Image.open(out).convert("RGB")).reshape(-1, 3).astype(float) / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in rgb[:: max(1, len(rgb) // 300_000)]])
    hue, sat, val = hsv.T

    def near(colour):
        h = colorsys.rgb_to_hsv(*colour[:3])[0]
        return ((np.abs(hue - h) < 0.03) & (sat > 0.6) & (val > 0.5)).sum()

    fascia = tuple(int(FASCIA_COLOUR[i : i + 2], 16) / 255 for i in (1, 3, 5))
    assert near(NODULE_COLOUR) > 100  # the cyan outline of the nodule
    assert near(fascia) > 100  # the orange fascia path
