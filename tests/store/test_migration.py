"""Databases of every earlier schema version open and migrate, data intact."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from backmice.store import DB_NAME, SCHEMA_VERSION, Action, Project, StoreError, _codec
from tests.store.conftest import tiny_analysis

HERE = Path(__file__).parent


def _v1_project(folder: Path) -> tuple[Path, np.ndarray]:
    """A v1 database built from the frozen v1 schema, with one study, reviewed."""
    folder.mkdir()
    db = folder / DB_NAME
    conn = sqlite3.connect(db)
    conn.executescript((HERE / "schema_v1.sql").read_text())
    tiny = tiny_analysis("old", n=2)
    conn.execute(
        "INSERT INTO studies (key, source, study_uid, method, units, shape, affine, params, "
        "fascia, added, added_by) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            "old",
            "/data/old",
            "1.2.3.4",
            "t1",
            "mm",
            json.dumps(tiny.labels.shape),
            json.dumps(tiny.volume.affine.tolist()),
            "{}",
            _codec.encode_map(tiny.fascia.signed_mm),
            "2026-01-01T00:00:00.000Z",
            None,
        ),
    )
    for row in tiny.nodules:
        box, bits = _codec.encode_mask(tiny.labels == row["nodule_id"])
        conn.execute(
            "INSERT INTO nodules (study, nodule_id, row, box, mask) VALUES (?,?,?,?,?)",
            ("old", row["nodule_id"], json.dumps(row), json.dumps(box), bits),
        )
    conn.execute(
        "INSERT INTO events (study, reader, at, action, nodule_id, before, after) "
        "VALUES ('old', 'anna', '2026-01-01T00:00:01.000Z', 'accept', 1, NULL, ?)",
        ('{"status": "accepted", "subtype": null, "note": null}',),
    )
    conn.execute(
        "INSERT INTO reviews VALUES ('old', 1, 'anna', 'accepted', NULL, 'ok', "
        "'2026-01-01T00:00:01.000Z', 1)"
    )
    conn.commit()
    conn.close()
    return db, tiny.labels


def test_v1_database_migrates_to_current(tmp_path):
    db, labels = _v1_project(tmp_path / "proj")
    with Project.open(tmp_path / "proj") as project:
        rows = {r["nodule_id"]: r for r in project.nodules("old", reader="anna")}
        assert rows[1]["status"] == "accepted" and rows[1]["note"] == "ok"
        np.testing.assert_array_equal(project.labels("old")[0], labels)
        assert project.studies()[0].readers["anna"].n_reviewed == 1
        # the v2 tables work: a mask edit and a fascia correction
        project.record("old", Action.DELETE_NODULE, reader="anna", nodule_id=2)
        assert [r["nodule_id"] for r in project.nodules("old", reader="anna")] == [1]
        assert [e.action for e in project.events("old")] == ["accept", "delete_nodule"]
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    # the last step's record (v1 -> v2, then v2 -> v3: the site maps)
    assert (
        "v2 -> v3"
        in conn.execute("SELECT value FROM meta WHERE key = 'schema_migrated'").fetchone()[0]
    )


def test_newer_schema_is_refused(tmp_path):
    db, _ = _v1_project(tmp_path / "proj")
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer backmice"):
        Project.open(db)
