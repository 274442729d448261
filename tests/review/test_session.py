"""backmice.review.Session: every action lands in the store at once, and reopening restores it."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from backmice.errors import InputError
from backmice.review import REVIEW_COLUMNS, Session
from backmice.store import Project, StoreError
from backmice.vocab import Subtype


@pytest.fixture
def analysis(t1_analysis):
    return copy.deepcopy(t1_analysis)


def reopen(tmp_path, analysis, reader="anna") -> Session:
    return Session.open(Project.open(tmp_path), analysis, reader=reader)


def test_review_actions_are_stored_and_restored(tmp_path, analysis):
    session = Session.open(tmp_path, analysis, reader="anna")
    assert session.ids == [1, 2, 3, 4]
    assert all(r["status"] == "candidate" for r in session.rows)
    assert list(session.rows[0]) == list(REVIEW_COLUMNS)
    session.accept(1)
    session.set_subtype(1, Subtype.EPISACROILIAC_LIPOMA)
    session.reject(2)
    session.note(3, "capsule unclear on slice 7")
    session.set_subtype(4, "lumbar_fascial_fat_herniation")
    assert session.save_error is None
    before = session.rows
    session.project.close()

    # What the store itself says (another program reading the project).
    with Project.open(tmp_path, create=False) as project:
        stored = {r["nodule_id"]: r for r in project.nodules(analysis.study, reader="anna")}
    assert stored[1]["status"] == "accepted" and stored[1]["subtype"] == "episacroiliac_lipoma"
    assert stored[2]["status"] == "rejected" and stored[2]["reader"] == "anna"
    assert stored[3]["note"] == "capsule unclear on slice 7"

    again = reopen(tmp_path, analysis)
    assert again.rows == before
    # Another reader starts fresh on the same study.
    other = Session.open(again.project, analysis, reader="ben")
    assert all(r["status"] == "candidate" and not r["subtype"] for r in other.rows)


def test_next_skips_reviewed_nodules_and_wraps(tmp_path, analysis):
    session = Session.open(tmp_path, analysis, reader="anna")
    session.accept(2)
    assert session.next(1) == 3
    assert session.next(4) == 1
    session.reject(1)
    session.reject(3)
    session.reject(4)
    assert session.next(4) == 1  # all reviewed: just the next one


def test_bad_actions_are_refused(tmp_path, analysis):
    session = Session.open(tmp_path, analysis, reader="anna")
    with pytest.raises(InputError, match="not a subtype"):
        session.set_subtype(1, "lipoma-ish")
    with pytest.raises(InputError, match="no nodule 9"):
        session.accept(9)
    with pytest.raises(InputError, match="reader"):
        Session.open(session.project, analysis, reader="  ")


def test_a_failed_write_keeps_the_review_and_is_retried(tmp_path, analysis, monkeypatch):
    session = Session.open(tmp_path, analysis, reader="anna")
    told = []
    session.on_save_error.append(told.append)
    project = session.project
    real = project._transaction

    def disk_full(fn):
        raise StoreError("database or disk is full", path=project.path)

    monkeypatch.setattr(project, "_transaction", disk_full)
    session.accept(1)
    session.note(1, "written later")
    assert session.row(1)["status"] == "accepted"  # kept in memory
    assert session.save_error and "disk is full" in session.save_error
    assert told and session.unsaved == 2
    assert session.save() is False
    monkeypatch.setattr(project, "_transaction", real)
    session.reject(2)  # the next action writes what was pending first
    assert session.save_error is None and session.unsaved == 0
    project.close()
    again = reopen(tmp_path, analysis)
    assert again.row(1)["status"] == "accepted" and again.row(1)["note"] == "written later"
    assert again.row(2)["status"] == "rejected"


def test_mask_and_fascia_edits_are_stored_and_restored(tmp_path, analysis):
    session = Session.open(tmp_path, analysis, reader="anna")
    session.accept(1)
    m = session.editor.mask(1)
    k = int(np.nonzero(m)[0].max())
    stroke = np.zeros_like(m)
    stroke[k] = m[k]
    v0 = session.row(1)["volume_mm3"]
    session.paint(stroke, 0)  # erase the nodule's last slice
    assert session.row(1)["volume_mm3"] < v0
    change = session.split(4)
    (new,) = change.added
    session.merge(2, 3)
    deep = session.editor.deep.copy()
    deep[:, 3:] |= deep[:, :-3]  # the deep side grows by 3 rows
    session.set_fascia(deep)
    before = session.rows
    assert session.save_error is None
    session.project.close()
    again = reopen(tmp_path, analysis)
    assert again.ids == session.ids == sorted([1, 2, 4, new])
    assert np.array_equal(again.editor.labels, session.editor.labels)
    assert np.array_equal(again.editor.deep, session.editor.deep)
    assert again.rows == before


def test_export_seg_and_sr_of_the_reviewed_study(tmp_path, analysis):
    import pydicom

    session = Session.open(tmp_path / "project", analysis, reader="anna")
    session.accept(1)
    session.set_subtype(1, Subtype.EPISACROILIAC_LIPOMA)
    session.reject(2)
    seg_path, sr_path = session.export_dicom(tmp_path / "out")
    seg = pydicom.dcmread(seg_path)
    assert seg.Modality == "SEG"
    assert len(seg.SegmentSequence) == 4
    assert "episacroiliac_lipoma" in seg.SegmentSequence[0].SegmentLabel
    sr = pydicom.dcmread(sr_path)
    assert sr.Modality == "SR"


def test_nodules_two_readers_add_get_distinct_ids(tmp_path, analysis):
    """Ids name one nodule for every reader: agreement must never pair two different ones."""
    anna = Session.open(tmp_path, analysis, reader="anna")
    ben = Session.open(anna.project, copy.deepcopy(analysis), reader="ben")
    where = np.zeros(anna.editor.labels.shape, dtype=bool)
    k = anna.editor.labels.shape[0] // 2
    where[k, 5:9, 5:9] = True  # a corner far from every nodule
    other = np.zeros_like(where)
    other[k, 5:9, -9:-5] = True
    first = anna.paint(where, anna.editor.new_id())
    second = ben.paint(other, ben.editor.new_id())
    (a,), (b,) = first.added, second.added
    assert a != b and b in ben.ids and a not in ben.ids
    with Project.open(tmp_path, create=False) as project:
        mine = {r["nodule_id"] for r in project.nodules(analysis.study, reader="ben")}
        assert b in mine and a not in mine
        np.testing.assert_array_equal(project.mask(analysis.study, b, reader="ben"), other)


def test_an_action_the_project_refuses_is_reported_not_silently_dropped(tmp_path, analysis):
    session = Session.open(tmp_path, analysis, reader="anna")
    messages = []
    session.on_save_error.append(messages.append)
    session.project.close()  # the project goes away under the session
    session.project = Project.open(tmp_path / "elsewhere")  # one that does not hold the study
    session.accept(1)
    assert session.row(1)["status"] == "accepted"  # kept in memory ...
    assert session.save_error and "refused" in session.save_error  # ... and said
    assert messages and "refused" in messages[0]
