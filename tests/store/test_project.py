"""The project store: adding studies, reading them back, recording reviews."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from backmice.errors import InputError
from backmice.store import (
    DB_NAME,
    SCHEMA_VERSION,
    Action,
    NotAProjectError,
    Project,
    StoreError,
)
from backmice.vocab import COLUMNS, Status, Subtype
from tests.store.conftest import tiny_analysis


@pytest.fixture
def project(tmp_path):
    with Project.open(tmp_path / "proj") as p:
        yield p


def test_open_creates_a_wal_database_with_the_current_schema(tmp_path):
    with Project.open(tmp_path / "proj") as p:
        assert p.path == tmp_path / "proj" / DB_NAME
    conn = sqlite3.connect(tmp_path / "proj" / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    # Opening by the .db file is the same project.
    with Project.open(tmp_path / "proj" / DB_NAME, create=False) as p:
        assert p.studies() == []


def test_missing_project_without_create_is_bad_input(tmp_path):
    with pytest.raises(NotAProjectError, match=r"backmice\.db") as err:
        Project.open(tmp_path / "nothing", create=False)
    assert isinstance(err.value, InputError)
    assert not (tmp_path / "nothing").exists()


def test_other_files_are_not_projects(tmp_path):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / DB_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Project.open(tmp_path / "junk")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)")
    with pytest.raises(StoreError, match="not a backmice project"):
        Project.open(other)


def test_real_analysis_round_trips(project, t1_analysis):
    key = project.add_analysis(t1_analysis)
    assert key == "t1_axial"
    rows = project.nodules(key)
    assert [r["nodule_id"] for r in rows] == [r["nodule_id"] for r in t1_analysis.nodules]
    for got, want in zip(rows, t1_analysis.nodules, strict=True):
        assert set(COLUMNS) <= set(got)
        for c in ("volume_mm3", "max_diameter_mm", "fascia_offset_mm", "centroid_x_mm"):
            assert got[c] == pytest.approx(want[c])
        assert got["status"] == "candidate" and got["reader"] is None
    labels, affine = project.labels(key)
    assert labels.dtype == np.uint32
    np.testing.assert_array_equal(labels, t1_analysis.labels)
    np.testing.assert_allclose(affine, t1_analysis.volume.affine)
    fascia = project.fascia(key)
    want = t1_analysis.fascia.signed_mm
    assert fascia.shape == want.shape and fascia.dtype == np.float32
    # float16: within 0.05 mm over the ±75 mm this study spans
    assert np.nanmax(np.abs(fascia - want)) < 0.05
    (record,) = project.studies()
    assert record.study_uid == t1_analysis.stacks[0].study_uid
    assert record.series_uid == t1_analysis.stacks[0].series_uid
    assert record.n_nodules == len(t1_analysis.nodules) and record.readers == {}
    assert record.source and record.source.endswith("t1_axial/01_t1")
    assert record.method == "t1" and record.params["threshold"] == t1_analysis.fat.threshold
    (stack,) = project.stacks(key)
    assert stack["series_uid"] == t1_analysis.stacks[0].series_uid and stack["role"] == "t1"
    assert stack["shape"] == (16, 192, 288) and stack["spacing_mm"] == (4.0, 0.8, 0.8)
    np.testing.assert_allclose(stack["affine"], t1_analysis.stacks[0].affine)


def test_reviews_per_reader_and_latest(project):
    key = project.add_analysis(tiny_analysis())
    e1 = project.record(key, Action.ACCEPT, reader="anna", nodule_id=1)
    assert e1.action == "accept" and e1.before is None
    assert e1.after["status"] == "accepted" and e1.at.endswith("Z")
    project.record(key, "set_subtype", reader="anna", nodule_id=1, value="episacroiliac_lipoma")
    project.record(key, Action.REJECT, reader="ben", nodule_id=1)
    project.record(key, Action.SET_NOTE, reader="ben", nodule_id=2, value="septa?")
    anna = {r["nodule_id"]: r for r in project.nodules(key, reader="anna")}
    assert (
        anna[1]["status"] == Status.ACCEPTED and anna[1]["subtype"] == Subtype.EPISACROILIAC_LIPOMA
    )
    assert anna[1]["reader"] == "anna" and anna[1]["updated"].endswith("Z")
    assert anna[2]["status"] == "candidate" and anna[2]["reader"] is None
    assert anna[2]["notes"] == {"ben": "septa?"}
    latest = {r["nodule_id"]: r for r in project.nodules(key)}
    assert latest[1]["status"] == "rejected" and latest[1]["reader"] == "ben"
    assert latest[2]["note"] == "septa?"
    reset = project.record(key, Action.RESET, reader="anna", nodule_id=1)
    assert reset.before["status"] == "accepted" and reset.after["status"] == "candidate"
    assert reset.after["subtype"] == "episacroiliac_lipoma"  # reset keeps the tag
    assert [e.action for e in project.events(key, reader="anna")] == [
        "accept",
        "set_subtype",
        "reset",
    ]


def test_bad_input_names_the_problem_and_writes_nothing(project):
    key = project.add_analysis(tiny_analysis())
    n = len(project.events())
    with pytest.raises(InputError, match="no nodule 99"):
        project.record(key, Action.ACCEPT, reader="anna", nodule_id=99)
    with pytest.raises(InputError, match="unknown subtype 'lipoma'"):
        project.record(key, Action.SET_SUBTYPE, reader="anna", nodule_id=1, value="lipoma")
    with pytest.raises(InputError, match="unknown action"):
        project.record(key, "approve", reader="anna", nodule_id=1)
    with pytest.raises(InputError, match="reader"):
        project.record(key, Action.ACCEPT, reader="  ", nodule_id=1)
    with pytest.raises(InputError, match="no study 'nope'"):
        project.record("nope", Action.ACCEPT, reader="anna", nodule_id=1)
    with pytest.raises(InputError, match="needs a nodule_id"):
        project.record(key, Action.ACCEPT, reader="anna")
    assert len(project.events()) == n and project.pending == []


def test_studies_and_progress(project):
    a = project.add_analysis(tiny_analysis("a", n=2))
    b = project.add_analysis(tiny_analysis("b", n=1))
    for nid in (1, 2):
        project.record(a, Action.ACCEPT, reader="anna", nodule_id=nid)
    project.record(b, Action.REJECT, reader="ben", nodule_id=1)
    project.record(a, Action.SET_NOTE, reader="ben", nodule_id=1, value="x")
    records = {s.key: s for s in project.studies()}
    assert records["a"].readers["anna"].done and records["a"].readers["anna"].n_reviewed == 2
    assert not records["a"].readers["ben"].done and records["a"].readers["ben"].n_reviewed == 0
    assert "anna" not in records["b"].readers and records["b"].readers["ben"].done
    assert project.progress() == {
        "anna": {"studies": 2, "started": 1, "done": 1, "nodules_reviewed": 2},
        "ben": {"studies": 2, "started": 2, "done": 1, "nodules_reviewed": 1},
    }


def test_readding_keeps_matching_reviews(project):
    key = project.add_analysis(tiny_analysis("s", n=3))
    project.record(key, Action.ACCEPT, reader="anna", nodule_id=1)
    project.record(key, Action.REJECT, reader="anna", nodule_id=3)
    project.add_analysis(tiny_analysis("s", n=2))  # nodule 3 is gone
    rows = {r["nodule_id"]: r for r in project.nodules(key, reader="anna")}
    assert sorted(rows) == [1, 2] and rows[1]["status"] == "accepted"
    last = project.events(key)[-1]
    assert last.action == "reanalysis"
    assert last.before["dropped_reviews"][0]["nodule_id"] == 3
    assert len(project.studies()) == 1


def test_events_are_append_only(project):
    key = project.add_analysis(tiny_analysis())
    project.record(key, Action.ACCEPT, reader="anna", nodule_id=1)
    for sql in ("UPDATE events SET reader = 'x'", "DELETE FROM events"):
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            project._conn.execute(sql)


def test_add_result_dir(tmp_path, t1_analysis):
    from backmice.report import write_analysis

    out = tmp_path / "result"
    write_analysis(t1_analysis, out, qc=False)
    with Project.open(tmp_path / "proj") as project:
        key = project.add_result_dir(out)
        assert key == "t1_axial"
        labels, affine = project.labels(key)
        np.testing.assert_array_equal(labels, t1_analysis.labels)
        np.testing.assert_allclose(affine, t1_analysis.volume.affine, atol=1e-4)
        rows = project.nodules(key)
        want = json.loads((out / "nodules.json").read_text())["nodules"]
        assert [r["max_diameter_mm"] for r in rows] == [w["max_diameter_mm"] for w in want]
        assert project.studies()[0].study_uid == t1_analysis.stacks[0].study_uid
        (out / "labels.nii.gz").unlink()
        with pytest.raises(InputError, match=r"missing labels\.nii\.gz"):
            project.add_result_dir(out)
        with pytest.raises(InputError, match=r"no nodules\.json"):
            project.add_result_dir(tmp_path)
