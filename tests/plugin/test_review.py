"""The Review widget, driven as a user would; every action checked in the project on disk."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytestmark = pytest.mark.gui


@pytest.fixture
def settings_dir(tmp_path):
    """Plugin settings in a temporary folder, with a reader and a project folder set."""
    from qtpy.QtCore import QSettings

    for fmt in (QSettings.NativeFormat, QSettings.IniFormat):
        QSettings.setPath(fmt, QSettings.UserScope, str(tmp_path / "settings"))
    settings = QSettings("backmice", "backmice")
    settings.clear()
    settings.setValue("reader", "anna")
    settings.setValue("project", str(tmp_path / "project"))
    settings.sync()
    return tmp_path


def show_analysis(viewer, analysis, study_path=None):
    """Add the layers as the Analyze widget does, and announce the analysis."""
    from napari_backmice._analyze import result_layers
    from napari_backmice._layers import image_layer_data
    from napari_backmice._state import state_for

    data, kwargs, _ = image_layer_data(analysis.volume)
    viewer.add_image(data, **kwargs)
    for data, kwargs, _ in result_layers(analysis):
        viewer.add_labels(data.copy(), **kwargs)
    state = state_for(viewer)
    state.study_path = None if study_path is None else str(study_path)
    state.set_analysis(analysis)
    return state


@pytest.fixture
def reviewing(make_napari_viewer, t1_analysis, settings_dir, qtbot):
    """A viewer with the T1 sample analysed and a docked Review widget."""
    from napari_backmice._review import ReviewWidget

    def _make(analysis=None):
        analysis = analysis or copy.deepcopy(t1_analysis)
        viewer = make_napari_viewer()
        widget = ReviewWidget(viewer)
        viewer.window.add_dock_widget(widget)
        state = show_analysis(viewer, analysis)
        return viewer, widget, state

    return _make


def stored_rows(settings_dir, study, reader="anna"):
    from backmice.store import Project

    with Project.open(settings_dir / "project", create=False) as project:
        return {r["nodule_id"]: r for r in project.nodules(study, reader=reader)}


def click_row(qtbot, widget, nodule_id):
    from qtpy.QtCore import Qt

    r = widget._row_of(nodule_id)
    rect = widget.table.visualRect(widget.table.model().index(r, 0))
    qtbot.mouseClick(widget.table.viewport(), Qt.LeftButton, pos=rect.center())


def test_table_lists_every_nodule_and_sorts_by_number(reviewing):
    from backmice.review import REVIEW_COLUMNS
    from napari_backmice._review import TABLE_COLUMNS

    _viewer, widget, state = reviewing()
    assert widget.session is not None and widget.session.reader == "anna"
    table = widget.table
    assert table.rowCount() == len(state.analysis.nodules) == 4
    headers = [table.horizontalHeaderItem(c).text() for c in range(table.columnCount())]
    # What a reader decides on leads; every review column is there.
    assert headers[:6] == ["id", "relation", "size mm", "depth mm", "status", "subtype"]
    assert sorted(TABLE_COLUMNS) == sorted(REVIEW_COLUMNS)
    tips = [table.horizontalHeaderItem(c).toolTip() for c in range(table.columnCount())]
    assert tips == list(TABLE_COLUMNS)
    # Several rows fit without scrolling.
    assert table.minimumHeight() >= 6 * table.verticalHeader().defaultSectionSize()
    col = TABLE_COLUMNS.index("volume_mm3")
    table.sortItems(col)
    volumes = [table.item(r, col).value for r in range(table.rowCount())]
    assert volumes == sorted(volumes)  # 342 < 740 < 1652 < 1967: numeric, not text order
    assert volumes[0] < 1000 < volumes[-1]


def test_row_click_moves_the_viewer_to_the_nodule(reviewing, qtbot):
    from napari_backmice._state import LAYER_NODULES, camera

    viewer, widget, state = reviewing()
    layer = viewer.layers[LAYER_NODULES]
    selected = []
    state.nodule_selected.connect(selected.append)
    for nodule_id in (2, 4):
        click_row(qtbot, widget, nodule_id)
        assert selected[-1] == nodule_id
        row = widget.session.row(nodule_id)
        # The displayed slice holds the nodule, and is its centroid's slice.
        index = np.asarray(layer.world_to_data(viewer.dims.point))
        k = round(index[0])
        inverse = np.linalg.inv(state.analysis.volume.affine)
        centroid = inverse @ [row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"], 1]
        assert k == round(centroid[0])
        assert (layer.data[k] == nodule_id).any()
        # Centred on it in the slice (world y, x) and zoomed in.
        world = layer.data_to_world(centroid[:3])
        np.testing.assert_allclose(camera(viewer).center[-2:], world[-2:], atol=1e-6)
        assert layer.selected_label == nodule_id
    assert camera(viewer).zoom > 1.0


def test_accept_reject_tag_and_note_land_in_the_store(reviewing, qtbot, settings_dir):
    from qtpy.QtCore import Qt

    from backmice.vocab import Subtype

    _viewer, widget, state = reviewing()
    study = state.analysis.study
    click_row(qtbot, widget, 1)
    # The suggestion is pre-selected and marked as such until the reader confirms.
    combo = widget.subtype_combo
    suggested = widget.session.row(1)["suggested_subtype"]
    assert combo.currentData() == suggested
    assert combo.currentText() == f"{suggested} (suggested)"
    assert "suggestion" in widget.suggestion_label.text()
    qtbot.keyClick(widget.table, Qt.Key_T)  # confirm the suggestion
    assert combo.currentText() == suggested
    qtbot.keyClick(widget.table, Qt.Key_A)  # accept; moves on to the next unreviewed
    assert widget.current_id() == 2
    qtbot.keyClick(widget.table, Qt.Key_R)
    assert widget.current_id() == 3
    # Choose another subtype from the drop-down, and write a note.
    index = combo.findData(str(Subtype.SEBACEOUS_CYST))
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    widget.note_edit.setFocus()
    widget.note_edit.selectAll()
    qtbot.keyClicks(widget.note_edit, "punctum visible")
    qtbot.keyClick(widget.note_edit, Qt.Key_Return)
    qtbot.keyClick(widget.table, Qt.Key_N)  # next unreviewed: 3 is still a candidate -> 4
    assert widget.current_id() == 4

    rows = stored_rows(settings_dir, study)
    assert rows[1]["status"] == "accepted" and rows[1]["subtype"] == suggested
    assert rows[1]["reader"] == "anna" and rows[1]["updated"]
    assert rows[2]["status"] == "rejected"
    assert rows[3]["status"] == "candidate" and rows[3]["subtype"] == "sebaceous_cyst"
    assert rows[3]["note"] == "punctum visible"
    assert rows[4]["subtype"] is None
    # The table shows it too.
    widget.select(1, move=False)
    assert "accepted" in widget.suggestion_label.text()


def test_reopening_restores_the_review_exactly(reviewing, qtbot, t1_analysis):
    from qtpy.QtCore import Qt

    from napari_backmice._state import LAYER_FASCIA, LAYER_NODULES

    viewer, widget, _state = reviewing()
    click_row(qtbot, widget, 2)
    qtbot.keyClick(widget.table, Qt.Key_R)
    widget.session.set_subtype(4, "other")
    widget.session.note(4, "check on T2")
    erase = np.zeros(widget.session.editor.labels.shape, dtype=bool)
    erase[:, :, : int(np.nonzero(widget.session.editor.mask(1))[2].mean())] = True
    widget.session.paint(erase & widget.session.editor.mask(1), 0)  # half of nodule 1 erased
    deep = widget.session.editor.deep.copy()
    deep[:, 1:] |= deep[:, :-1]
    widget.session.set_fascia(deep)
    before = widget.session.rows
    labels, deep = widget.session.editor.labels.copy(), widget.session.editor.deep.copy()
    widget.session.project.close()
    viewer.close()

    viewer2, widget2, _state2 = reviewing(copy.deepcopy(t1_analysis))
    assert widget2.session.rows == before
    # The layers show the edited masks and fascia, not the analysis' own.
    np.testing.assert_array_equal(viewer2.layers[LAYER_NODULES].data, labels)
    np.testing.assert_array_equal(viewer2.layers[LAYER_FASCIA].data != 0, deep)
    col = widget2.table.horizontalHeaderItem
    status_col = [col(c).text() for c in range(widget2.table.columnCount())].index("status")
    shown = {
        widget2.table.item(r, 0).value: widget2.table.item(r, status_col).value
        for r in range(widget2.table.rowCount())
    }
    assert shown == {1: "candidate", 2: "rejected", 3: "candidate", 4: "candidate"}


def test_a_failed_save_is_shown_and_retried(reviewing, qtbot, monkeypatch, settings_dir):
    from backmice.store import StoreError

    _viewer, widget, state = reviewing()
    project = widget.session.project
    real = project._transaction

    def read_only(fn):
        raise StoreError("attempt to write a readonly database", path=project.path)

    monkeypatch.setattr(project, "_transaction", read_only)
    widget.select(1)
    widget.accept()
    assert "NOT SAVED" in widget.status_label.text()
    assert widget.session.row(1)["status"] == "accepted"  # kept in memory
    monkeypatch.setattr(project, "_transaction", real)
    assert widget.save()
    assert "Saved" in widget.status_label.text()
    assert stored_rows(settings_dir, state.analysis.study)[1]["status"] == "accepted"


def test_export_csv(reviewing, tmp_path):
    import csv

    _viewer, widget, _state = reviewing()
    widget.session.accept(3)
    out = widget.export_csv(tmp_path / "out" / "nodules.csv")
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["nodule_id"] for r in rows] == ["1", "2", "3", "4"]
    assert rows[2]["status"] == "accepted" and rows[2]["reader"] == "anna"


def test_export_seg_and_sr(reviewing, tmp_path):
    import pydicom

    _viewer, widget, _state = reviewing()
    widget.session.accept(1)
    seg, sr = widget.export_dicom(tmp_path / "dicom")
    assert pydicom.dcmread(seg).Modality == "SEG"
    assert pydicom.dcmread(sr).Modality == "SR"
    assert "Wrote" in widget.status_label.text()


def test_default_project_is_in_the_user_data_folder(tmp_path, monkeypatch, settings_dir):
    """No project chosen: the review goes to the user's data folder, not beside the DICOM."""
    from qtpy.QtCore import QSettings

    from napari_backmice import _review

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    settings = QSettings("backmice", "backmice")
    settings.remove("project")
    settings.sync()
    folder = _review._project_folder()
    assert folder == _review.default_project_folder()
    assert folder == tmp_path / "data" / "backmice" / "project"
