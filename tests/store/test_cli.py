"""``backmice status`` and ``backmice agreement``."""

from __future__ import annotations

import csv
import json

import pytest

from backmice.cli import main
from backmice.store import DB_NAME, Action, Project
from tests.store.conftest import tiny_analysis


@pytest.fixture
def project_dir(tmp_path):
    folder = tmp_path / "proj"
    with Project.open(folder) as p:
        for name in ("s1", "s2"):
            p.add_analysis(tiny_analysis(name, n=2))
        for reader in ("anna", "ben"):
            for nid in (1, 2):
                p.record("s1", Action.ACCEPT, reader=reader, nodule_id=nid)
        p.record("s2", Action.REJECT, reader="anna", nodule_id=1)
        p.record("s1", Action.SET_SUBTYPE, reader="anna", nodule_id=1, value="other")
    return folder


def test_status_table_and_json(project_dir, capsys):
    assert main(["status", str(project_dir)]) == 0
    out = capsys.readouterr().out
    assert "s1" in out and "2/2 done" in out and "1/2" in out
    assert "anna: 1/2 studies reviewed (2 started, 3 nodules reviewed)" in out
    assert "ben: 1/2 studies reviewed (1 started, 2 nodules reviewed)" in out
    assert main(["status", str(project_dir / DB_NAME), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["readers"]["anna"] == {
        "studies": 2,
        "started": 2,
        "done": 1,
        "nodules_reviewed": 3,
    }
    s2 = next(s for s in doc["studies"] if s["study"] == "s2")
    assert s2["readers"]["anna"]["n_reviewed"] == 1 and not s2["readers"]["anna"]["done"]


def test_status_of_a_non_project_is_bad_input(tmp_path, capsys):
    assert main(["status", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a backmice project" in err and str(tmp_path) in err
    assert not (tmp_path / DB_NAME).exists()  # status never creates a project
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / DB_NAME).write_text("garbage " * 200)
    assert main(["status", str(tmp_path / "x")]) == 2
    assert "not a database" in capsys.readouterr().err


def test_agreement_writes_csv_json_png(project_dir, tmp_path, capsys):
    out = tmp_path / "agree"
    assert main(["agreement", str(project_dir), "--out", str(out)]) == 0
    assert "kappa" in capsys.readouterr().out
    with (out / "agreement.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    status = next(r for r in rows if r["measure"] == "kappa" and r["quantity"] == "status")
    assert status["readers"] == "anna;ben" and status["n"] == "2"
    assert status["value"] == ""  # both accepted both: kappa undefined, written empty
    dice = next(r for r in rows if r["measure"] == "dice")
    assert float(dice["value"]) == 1.0
    assert json.loads((out / "agreement.json").read_text())["readers"] == ["anna", "ben"]
    assert (out / "agreement.png").read_bytes()[:4] == b"\x89PNG"
    code = main(["agreement", str(project_dir), "--out", str(out), "--readers", "anna"])
    assert code == 2
    assert "two or more readers" in capsys.readouterr().err
