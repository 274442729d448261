"""Agreement statistics against textbook examples, and on a project with three readers."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from backmice.agreement import (
    agreement,
    bland_altman,
    cohen_kappa,
    dice,
    fleiss_kappa,
    icc_2_1,
    write_agreement,
)
from backmice.errors import InputError
from backmice.store import Action, Project
from tests.store.conftest import tiny_analysis


def test_cohen_kappa_textbook():
    # 50 items: both yes 20, a yes / b no 5, a no / b yes 10, both no 15 -> kappa 0.4
    # (p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5)
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["x"] * 4, ["x"] * 4))  # p_e = 1: undefined


def test_fleiss_kappa_textbook():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    counts = [
        [0, 0, 0, 0, 14],
        [0, 2, 6, 4, 2],
        [0, 0, 3, 5, 6],
        [0, 3, 9, 2, 0],
        [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0],
        [3, 2, 6, 3, 0],
        [2, 5, 3, 2, 2],
        [6, 5, 2, 1, 0],
        [0, 2, 2, 3, 7],
    ]
    assert fleiss_kappa(np.array(counts)) == pytest.approx(0.2099, abs=1e-4)


def test_fleiss_equals_scotts_pi_for_two_raters():
    # With two raters Fleiss' kappa is Scott's pi: p_o 0.7, pooled p = (0.45, 0.55) -> 0.3939
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    counts = np.array(
        [
            [(x == "yes") + (y == "yes"), (x == "no") + (y == "no")]
            for x, y in zip(a, b, strict=True)
        ]
    )
    p_e = 0.45**2 + 0.55**2
    assert fleiss_kappa(counts) == pytest.approx((0.7 - p_e) / (1 - p_e))


def test_icc_shrout_fleiss_1979():
    # Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(2,1) = 0.29
    x = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    )
    assert icc_2_1(x) == pytest.approx(0.2898, abs=1e-4)
    assert icc_2_1(np.column_stack([x[:, 0], x[:, 0]])) == pytest.approx(1.0)


def test_bland_altman_and_dice():
    res = bland_altman([10, 12, 14, 20], [9, 12, 13, 18])
    d = np.array([1, 0, 1, 2])
    assert res.mean_diff == pytest.approx(1.0)
    assert res.sd == pytest.approx(d.std(ddof=1))
    assert res.upper == pytest.approx(1.0 + 1.96 * d.std(ddof=1))
    a = np.zeros((4, 4), bool)
    b = a.copy()
    a[:2] = True  # 8 voxels
    b[1:3] = True  # 8 voxels, 4 shared
    assert dice(a, b) == pytest.approx(0.5)


@pytest.fixture
def three_readers(tmp_path):
    """Three readers on two studies with known disagreements."""
    with Project.open(tmp_path / "proj") as p:
        for name in ("a", "b"):
            p.add_analysis(tiny_analysis(name, n=3))
        for study in ("a", "b"):
            for nid in (1, 2, 3):
                for reader in ("anna", "ben", "carl"):
                    reject = (study, nid, reader) in {("a", 3, "carl"), ("b", 2, "ben")}
                    p.record(
                        study,
                        Action.REJECT if reject else Action.ACCEPT,
                        reader=reader,
                        nodule_id=nid,
                    )
                    sub = (
                        "sebaceous_cyst" if (reader, nid) == ("ben", 1) else "episacroiliac_lipoma"
                    )
                    p.record(study, Action.SET_SUBTYPE, reader=reader, nodule_id=nid, value=sub)
        # ben's nodule a/1 is one voxel row larger
        grown = p.mask("a", 1)
        grown[1:4, 8, 2:6] = True
        p.record("a", Action.EDIT_MASK, reader="ben", nodule_id=1, mask=grown)
        yield p


def test_project_agreement(three_readers, tmp_path):
    res = agreement(three_readers)
    assert res.readers == ["anna", "ben", "carl"] and len(res.nodules) == 6
    rows = {(r["measure"], r["quantity"], r["readers"], r["method"]): r for r in res.summary}
    # status: anna/ben differ on b/2 only; counts hand-computed below
    ab = rows[("kappa", "status", "anna;ben", "cohen")]
    assert ab["n"] == 6
    assert ab["value"] == pytest.approx(cohen_kappa(["A"] * 6, ["A"] * 4 + ["R"] + ["A"]))
    fleiss = rows[("kappa", "status", "anna;ben;carl", "fleiss")]
    counts = np.array([[3, 0]] * 4 + [[2, 1]] * 2)
    assert fleiss["value"] == pytest.approx(fleiss_kappa(counts))
    assert rows[("percent_agreement", "status", "anna;ben", "proportion")][
        "value"
    ] == pytest.approx(5 / 6)
    # dice: 60 vs 72 voxels, 60 shared -> 120/132 for a/1, 1 elsewhere; a/3 carl rejected
    d = rows[("dice", "mask", "anna;ben", "mean")]
    assert d["n"] == 5 and d["value"] == pytest.approx((4 + 120 / 132) / 5)
    assert rows[("dice", "mask", "anna;carl", "mean")]["value"] == pytest.approx(1.0)
    # diameters: ben re-measured a/1; no one else changed anything
    ba = res.bland_altman[("max_diameter_mm", ("anna", "ben"))]
    ben_a1 = three_readers.nodules("a", reader="ben")[0]["max_diameter_mm"]
    assert ba.n == 5 and ba.mean_diff == pytest.approx((11.0 - ben_a1) / 5)
    icc = rows[("icc", "max_diameter_mm", "anna;ben;carl", "icc(2,1)")]
    assert icc["n"] == 4 and 0 < icc["value"] < 1
    written = write_agreement(res, tmp_path / "out")
    with written["csv"].open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == len(res.summary)
    assert json.loads(written["json"].read_text())["readers"] == ["anna", "ben", "carl"]
    assert written["png"].read_bytes()[:4] == b"\x89PNG"


def test_agreement_needs_two_readers(tmp_path):
    with Project.open(tmp_path / "p") as p:
        p.add_analysis(tiny_analysis("a"))
        p.record("a", Action.ACCEPT, reader="anna", nodule_id=1)
        with pytest.raises(InputError, match="two or more readers"):
            agreement(p)
        p.record("a", Action.ACCEPT, reader="ben", nodule_id=2)
        with pytest.raises(InputError, match="no nodule was reviewed"):
            agreement(p)
