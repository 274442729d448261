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
    mean_dice,
    proportion_agreement,
    write_agreement,
)
from backmice.errors import InputError
from backmice.store import Action, Project
from tests.store.conftest import tiny_analysis


def test_cohen_kappa_textbook_and_libraries():
    # 50 items: both yes 20, a yes / b no 5, a no / b yes 10, both no 15 -> kappa 0.4
    # (p_o = 0.7, p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5)
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import cohens_kappa

    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    k = cohen_kappa(a, b)
    assert k.value == pytest.approx(0.4) and k.n == 50
    assert k.value == pytest.approx(cohen_kappa_score(a, b))
    ref = cohens_kappa(np.array([[15, 10], [5, 20]]))  # rows a (no, yes), columns b
    assert (k.low, k.high) == pytest.approx((ref.kappa_low, ref.kappa_upp))
    # Cohen's (1960) large-sample SE, sqrt(p_o (1 - p_o) / (n (1 - p_e)^2)) = 0.130,
    # is close to the Fleiss-Cohen-Everitt SE statsmodels uses (0.127).
    half = (k.high - k.low) / 2
    assert half / 1.96 == pytest.approx(math.sqrt(0.7 * 0.3 / (50 * 0.25)), abs=0.005)
    assert cohen_kappa(a, a).value == pytest.approx(1.0)
    assert math.isnan(cohen_kappa(["x"] * 4, ["x"] * 4).value)  # p_e = 1: undefined
    assert float(k) == k.value


def test_fleiss_kappa_textbook():
    # Fleiss (1971) as worked on Wikipedia: 10 items, 14 raters, 5 categories -> 0.210
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    counts = np.array(
        [
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
    )
    k = fleiss_kappa(counts)
    assert k.value == pytest.approx(0.2099, abs=1e-4)
    assert k.value == pytest.approx(sm_fleiss(counts))
    # The bootstrap CI brackets the estimate and is the same on every run (seeded).
    assert -1 <= k.low < k.value < k.high <= 1
    assert fleiss_kappa(counts) == k
    with pytest.raises(ValueError, match="same number"):
        fleiss_kappa(np.array([[2, 0], [1, 2]]))


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
    assert fleiss_kappa(counts).value == pytest.approx((0.7 - p_e) / (1 - p_e))


def test_icc_shrout_fleiss_1979():
    # Shrout & Fleiss (1979), Table 2: 6 targets, 4 judges; ICC(2,1) = 0.29, and
    # its McGraw & Wong (1996) 95 % CI 0.019-0.76 (as R's psych::ICC prints it).
    x = np.array(
        [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    )
    icc = icc_2_1(x)
    assert icc.value == pytest.approx(0.2898, abs=1e-4)
    assert (icc.low, icc.high) == pytest.approx((0.019, 0.761), abs=1e-3)
    # The same from the two-way ANOVA's mean squares, written out.
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ems = (((x - grand) ** 2).sum() - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    bms, jms = ss_rows / (n - 1), ss_cols / (k - 1)
    assert icc.value == pytest.approx((bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n))
    assert icc_2_1(np.column_stack([x[:, 0], x[:, 0]])).value == pytest.approx(1.0)
    assert math.isnan(icc_2_1(x[:1]).value)


def test_bland_altman_1986_peak_flow():
    # Bland & Altman (1986, Lancet i:307), Table 1: peak expiratory flow (l/min) of
    # 17 subjects, Wright meter against the mini Wright meter (first readings).
    # Published: bias -2.1, SD of the differences 38.8; SE of the bias 9.4 and of
    # each limit sqrt(3 s^2 / n) = 16.3, t(16) = 2.12.
    wright = [494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427]
    mini = [512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451]
    res = bland_altman(wright, mini)
    assert res.n == 17
    assert res.mean_diff == pytest.approx(-2.1, abs=0.05)
    assert res.sd == pytest.approx(38.8, abs=0.05)
    assert (res.lower, res.upper) == pytest.approx(
        (-2.12 - 1.96 * 38.77, -2.12 + 1.96 * 38.77), abs=0.1
    )
    assert res.bias_ci == pytest.approx((-2.1 - 2.12 * 9.4, -2.1 + 2.12 * 9.4), abs=0.2)
    for limit, ci in ((res.lower, res.lower_ci), (res.upper, res.upper_ci)):
        assert ci == pytest.approx((limit - 2.12 * 16.3, limit + 2.12 * 16.3), abs=0.2)
    # The bias CI is scipy's one-sample t interval on the differences.
    from scipy import stats

    d = np.subtract(wright, mini)
    ci = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    assert res.bias_ci == pytest.approx(ci)


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
    from sklearn.metrics import f1_score

    assert dice(a, b) == pytest.approx(f1_score(a.ravel(), b.ravel()))  # Dice is F1
    assert math.isnan(dice(a & False, b & False))


def test_proportion_and_mean_dice_intervals():
    from statsmodels.stats.proportion import proportion_confint

    p = proportion_agreement(35, 50)
    assert p.value == pytest.approx(0.7)
    # Wilson (1927) interval for 35/50: 0.562-0.809
    assert (p.low, p.high) == pytest.approx((0.5625, 0.8090), abs=1e-4)
    assert (p.low, p.high) == pytest.approx(proportion_confint(35, 50, method="wilson"))
    m = mean_dice([0.8, 0.9, 0.85, 0.7, 0.95])
    assert m.value == pytest.approx(0.84) and m.low <= m.value <= m.high
    assert m.low >= 0.7 and m.high <= 0.95
    assert math.isnan(mean_dice([0.9]).low)


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
    assert ab["value"] == pytest.approx(cohen_kappa(["A"] * 6, ["A"] * 4 + ["R"] + ["A"]).value)
    fleiss = rows[("kappa", "status", "anna;ben;carl", "fleiss")]
    counts = np.array([[3, 0]] * 4 + [[2, 1]] * 2)
    assert fleiss["value"] == pytest.approx(fleiss_kappa(counts).value)
    assert fleiss["ci_low"] <= fleiss["value"] <= fleiss["ci_high"]
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
