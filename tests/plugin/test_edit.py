"""The Edit widget, driven as a user would: paint, erase, split, merge, add by click, fascia."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import numpy as np
import pytest

from .test_review import settings_dir, show_analysis, stored_rows  # noqa: F401 (fixture)

pytestmark = pytest.mark.gui


@pytest.fixture
def editing(make_napari_viewer, t1_analysis, settings_dir):  # noqa: F811
    """A viewer with the T1 sample analysed, the Review and Edit widgets docked."""
    from napari_backmice._edit import EditWidget
    from napari_backmice._review import ReviewWidget

    viewer = make_napari_viewer()
    review = ReviewWidget(viewer)
    edit = EditWidget(viewer)
    viewer.window.add_dock_widget(review)
    viewer.window.add_dock_widget(edit)
    state = show_analysis(viewer, copy.deepcopy(t1_analysis))
    return viewer, review, edit, state


def table_value(review, nodule_id, column):
    from napari_backmice._review import TABLE_COLUMNS

    r = review._row_of(nodule_id)
    return review.table.item(r, TABLE_COLUMNS.index(column)).value


def test_painting_a_nodule_changes_its_measured_volume(editing, settings_dir):  # noqa: F811
    from napari_backmice._state import LAYER_NODULES

    viewer, review, edit, state = editing
    layer = viewer.layers[LAYER_NODULES]
    session = review.session
    before = session.row(3)["volume_mm3"]
    # Paint with napari's brush on the nodule's largest slice, at its edge.
    mask = layer.data == 3
    k = int(np.argmax(mask.sum(axis=(1, 2))))
    rows, cols = np.nonzero(mask[k])
    layer.brush_size = 5
    layer.n_edit_dimensions = 2
    viewer.dims.set_point(0, layer.data_to_world((k, 0, 0))[0])
    layer.paint((k, rows.min() - 1, int(cols.mean())), 3)
    added = int((layer.data == 3).sum() - mask.sum())
    assert added > 0
    after = session.row(3)["volume_mm3"]
    voxel = abs(np.linalg.det(state.analysis.volume.affine[:3, :3]))
    # The painted voxels, give or take the partial-volume ring around the new edge.
    assert after - before == pytest.approx(added * voxel, abs=0.5 * added * voxel)
    assert after > before
    assert table_value(review, 3, "volume_mm3") == pytest.approx(after)
    assert edit.last_edit_s is not None and "re-measured 3" in edit.status_label.text()
    stored = stored_rows(settings_dir, state.analysis.study)
    assert stored[3]["volume_mm3"] == pytest.approx(after)
    # Undo (Ctrl+Z on the layer) takes the stroke back, in the measurements and the store too.
    undo = next(f for k, f in layer.keymap.items() if str(k) == "Ctrl+Z")
    undo(layer)
    assert np.array_equal(layer.data == 3, mask)
    assert session.row(3)["volume_mm3"] == pytest.approx(before)
    assert stored_rows(settings_dir, state.analysis.study)[3]["volume_mm3"] == pytest.approx(before)
    # Erase it all: the nodule is gone from the table and the store.
    layer.data_setitem(np.nonzero(layer.data == 3), 0)
    assert 3 not in session.ids and review._row_of(3) is None
    assert 3 not in stored_rows(settings_dir, state.analysis.study)


def test_fascia_edit_changes_fascia_offset(editing, settings_dir):  # noqa: F811
    from napari_backmice._state import LAYER_FASCIA

    viewer, review, _edit, state = editing
    layer = viewer.layers[LAYER_FASCIA]
    session = review.session
    before = {i: session.row(i)["fascia_offset_mm"] for i in session.ids}
    # Paint the deep side 3 pixels (2.4 mm) further toward the skin, everywhere.
    deep = layer.data.astype(bool)
    grown = deep.copy()
    for _ in range(3):
        grown[:, 1:] |= grown[:, :-1]
    grown &= state.analysis.body.mask
    layer.data_setitem(np.nonzero(grown & ~deep), 1)
    for i, old in before.items():
        assert session.row(i)["fascia_offset_mm"] < old - 1.0
        assert table_value(review, i, "fascia_offset_mm") == pytest.approx(
            session.row(i)["fascia_offset_mm"]
        )
    from backmice.store import Project

    with Project.open(settings_dir / "project", create=False) as project:
        signed = project.fascia(state.analysis.study, reader="anna")
        events = [e.action for e in project.events(state.analysis.study, reader="anna")]
    assert "edit_fascia" in events
    assert np.array_equal(signed < 0, session.editor.deep)


def test_split_merge_and_add_by_click(editing, settings_dir):  # noqa: F811
    from napari_backmice._state import LAYER_NODULES

    viewer, review, edit, state = editing
    layer = viewer.layers[LAYER_NODULES]
    session = review.session
    review.select(1)
    total = session.row(1)["volume_mm3"]
    change = edit.split_selected()
    (new,) = change.added
    assert set(np.unique(layer.data)) >= {1, new}  # the layer shows both parts
    assert review._row_of(new) is not None
    assert session.row(1)["volume_mm3"] + session.row(new)["volume_mm3"] == pytest.approx(
        total, rel=0.02
    )
    edit.merge_a.setValue(1)
    edit.merge_b.setValue(new)
    edit.merge_button.click()
    assert new not in session.ids and not (layer.data == new).any()
    assert session.row(1)["volume_mm3"] == pytest.approx(total)

    # A missed nodule: erase nodule 2, then click inside where it was.
    where = np.argwhere(layer.data == 2)
    centre = where[np.argmin(((where - where.mean(axis=0)) ** 2).sum(axis=1))]
    layer.data_setitem(tuple(where.T), 0)
    assert 2 not in session.ids
    edit.add_button.setChecked(True)
    click = SimpleNamespace(type="mouse_press", position=tuple(layer.data_to_world(centre)))
    for callback in list(layer.mouse_drag_callbacks):
        if getattr(callback, "__self__", None) is edit:
            callback(layer, click)
    assert not edit.add_button.isChecked()
    grown = session.ids[-1]
    assert grown not in (1, 2, 3, 4)
    assert (layer.data == grown).sum() > 0.5 * len(where)
    assert session.row(grown)["volume_mm3"] > 0
    rows = stored_rows(settings_dir, state.analysis.study)
    assert grown in rows and 2 not in rows


def test_split_along_a_drawn_cut_line(editing):
    from napari_backmice._state import LAYER_NODULES

    viewer, review, edit, _state = editing
    layer = viewer.layers[LAYER_NODULES]
    session = review.session
    review.select(4)
    mask = layer.data == 4
    k = int(np.argmax(mask.sum(axis=(1, 2))))
    rows, cols = np.nonzero(mask[k])
    c = float(np.median(cols)) + 0.5
    edit.draw_cut()
    cut = viewer.layers["cut line"]
    ends = [
        layer.data_to_world((k, rows.min() - 3, c)),
        layer.data_to_world((k, rows.max() + 3, c)),
    ]
    cut.add_lines(np.array([cut.world_to_data(e) for e in ends]))
    change = edit.split_selected()
    (new,) = change.added
    for part in (layer.data == 4, layer.data == new):
        side = np.nonzero(part)[2]
        assert side.max() < c or side.min() > c  # each part on one side of the line
    assert len(cut.data) == 0
    assert session.row(4)["volume_mm3"] > 0 and session.row(new)["volume_mm3"] > 0


def test_a_transposed_stack_is_not_edited(editing, settings_dir):  # noqa: F811
    """Sagittal and coronal stacks are shown transposed: an edit there is refused, not misplaced."""
    from napari_backmice._state import LAYER_NODULES

    viewer, review, edit, _state = editing
    layer = viewer.layers[LAYER_NODULES]
    session = review.session
    rows_before = copy.deepcopy(session.rows)
    labels_before = session.editor.labels.copy()
    layer.metadata["axes"] = (0, 2, 1)  # as the plugin marks a transposed view
    assert edit.merge(2, 3) is None
    assert "transposed" in edit.status_label.text()
    assert session.rows == rows_before
    np.testing.assert_array_equal(session.editor.labels, labels_before)


def test_exported_rows_follow_the_review(editing, settings_dir):  # noqa: F811
    """The nodules layer's writers export the reviewed rows, not the analysis' first ones."""
    from napari_backmice._state import LAYER_NODULES

    viewer, review, _edit, _state = editing
    review.select(1)
    review.subtype_combo.setCurrentIndex(review.subtype_combo.findData("liposarcoma_suspected"))
    review.tag()
    rows = {r["nodule_id"]: r for r in viewer.layers[LAYER_NODULES].metadata["nodules"]}
    assert rows[1]["subtype"] == "liposarcoma_suspected"


def test_a_stroke_undone_gives_back_the_analysis_row(editing, settings_dir, t1_analysis):  # noqa: F811
    """Issue 18: a mask edited and put back as it was is the analysis' row, every column.

    In the widget, the review session and the project the Edit widget saves to,
    whatever path the row takes (the editor measures, the store keeps).
    """
    from backmice.vocab import COLUMNS
    from napari_backmice._state import LAYER_NODULES
    from tests.conftest import assert_same_row

    viewer, review, _edit, state = editing
    layer = viewer.layers[LAYER_NODULES]
    want = {r["nodule_id"]: r for r in t1_analysis.nodules}
    # The lumbosacral herniation (sacrum level) and the episacroiliac lipoma.
    for nid in (1, 2):
        mask = layer.data == nid
        k = int(np.argmax(mask.sum(axis=(1, 2))))
        rows, cols = np.nonzero(mask[k])
        layer.brush_size = 3
        layer.n_edit_dimensions = 2
        viewer.dims.set_point(0, layer.data_to_world((k, 0, 0))[0])
        layer.paint((k, rows.min() - 1, int(cols.mean())), nid)
        assert (layer.data == nid).sum() > mask.sum()
        undo = next(f for key, f in layer.keymap.items() if str(key) == "Ctrl+Z")
        undo(layer)
        assert np.array_equal(layer.data == nid, mask)
    stored = stored_rows(settings_dir, state.analysis.study)
    assert {want[1]["suggested_subtype"], want[2]["suggested_subtype"]} >= {
        "lumbosacral_fat_herniation"
    }
    # reader, updated: who edited it and when (the review's columns, not measurements)
    review_columns = ("reader", "updated")
    for nid in (1, 2):
        # the session's review row holds the SPEC columns (no criteria)
        assert_same_row(review.session.row(nid), want[nid], columns=COLUMNS, skip=review_columns)
        assert_same_row(stored[nid], want[nid], skip=review_columns)
    # Reopened from the project alone, a re-save of the same mask changes nothing either.
    from backmice.store import Action, Project

    with Project.open(settings_dir / "project", create=False) as project:
        key = state.analysis.study
        for nid in (1, 2):
            mask = project.mask(key, nid, reader="anna")
            project.record(key, Action.EDIT_MASK, reader="anna", nodule_id=nid, mask=mask)
    stored = stored_rows(settings_dir, state.analysis.study)
    for nid in (1, 2):
        assert_same_row(stored[nid], want[nid], skip=review_columns)
