"""The level splits lumbar and lumbosacral herniations (SPEC): given by the reader, or found."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backmice.analysis import AnalysisOptions, analyze
from backmice.phantom import write_sample
from backmice.vocab import Relation, Subtype
from tests.conftest import build_once

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
#: A seed the finder was not tuned on (bench/accuracy_level.py tuned on 0–19).
FRESH_SEED = 41


def _truth_top(study: Path) -> float:
    return json.loads((study / "truth.json").read_text(encoding="utf-8"))["anatomy"][
        "sacrum_top_z_mm"
    ]


@pytest.fixture(scope="session")
def t1_plain(tmp_path_factory):
    """The T1 sample analysed without a level (every herniation suggested lumbar), once per run."""

    def plain(_):
        return analyze(SAMPLES / "t1_axial", options=AnalysisOptions(find_sacrum=False))

    return build_once(tmp_path_factory, "t1-without-level", plain)


def _check_split(plain, given, top: float) -> None:
    """Herniations below ``top`` became lumbosacral; nothing else changed."""
    herniations = [r for r in given.nodules if r["relation"] != Relation.SUBCUTANEOUS]
    assert herniations, "the sample has trans- and subfascial nodules"
    for before, row in zip(plain.nodules, given.nodules, strict=True):
        if row["relation"] == Relation.SUBCUTANEOUS or row["red_flags"]:
            assert row["suggested_subtype"] == before["suggested_subtype"]
            continue
        assert before["suggested_subtype"] == Subtype.LUMBAR_FASCIAL_FAT_HERNIATION
        expected = (
            Subtype.LUMBOSACRAL_FAT_HERNIATION
            if row["centroid_z_mm"] < top
            else Subtype.LUMBAR_FASCIAL_FAT_HERNIATION
        )
        assert row["suggested_subtype"] == expected


@pytest.mark.slow
def test_given_sacrum_top_splits_lumbar_and_lumbosacral(t1_plain):
    study = SAMPLES / "t1_axial"
    top = _truth_top(study)
    given = analyze(study, options=AnalysisOptions(sacrum_top_z_mm=top))
    assert t1_plain.sacrum_top_z_mm is None and given.sacrum_top_z_mm == top
    _check_split(t1_plain, given, top)
    herniations = [r for r in given.nodules if r["relation"] != Relation.SUBCUTANEOUS]
    assert {r["suggested_subtype"] for r in herniations} == {
        Subtype.LUMBOSACRAL_FAT_HERNIATION,
        Subtype.LUMBAR_FASCIAL_FAT_HERNIATION,
    }


def test_found_sacrum_top_on_thick_axial_t1(t1_analysis):
    study = SAMPLES / "t1_axial"
    found = t1_analysis  # the session's analysis: default options, find_sacrum=True
    assert AnalysisOptions().find_sacrum
    assert found.sacrum_top_z_mm is not None
    assert abs(found.sacrum_top_z_mm - _truth_top(study)) <= 4.0  # one slice
    # Every herniation gets the subtype the phantom expects (none lies between the levels).
    truth = json.loads((study / "truth.json").read_text(encoding="utf-8"))
    expected = {
        les["expected_subtype"]
        for les in truth["lesions"]
        if les["relation"] != Relation.SUBCUTANEOUS and not les["red_flags"]
    }
    got = {
        r["suggested_subtype"]
        for r in found.nodules
        if r["relation"] != Relation.SUBCUTANEOUS and not r["red_flags"]
    }
    assert got == expected


@pytest.mark.slow
def test_found_sacrum_top_changes_only_the_subtypes(t1_plain, t1_analysis):
    """Against the analysis without a level: herniations below the found top are lumbosacral."""
    _check_split(t1_plain, t1_analysis, t1_analysis.sacrum_top_z_mm)


def test_found_sacrum_top_on_dixon(dixon_analysis):
    study = SAMPLES / "dixon"
    found = dixon_analysis  # the session's analysis: default options, find_sacrum=True
    assert found.sacrum_top_z_mm is not None
    assert abs(found.sacrum_top_z_mm - _truth_top(study)) <= 3.0  # one slice


@pytest.mark.slow
def test_found_sacrum_top_on_an_oblique_series_of_a_fresh_seed(tmp_path):
    study = tmp_path / "oblique"
    write_sample("t1_oblique_iso", study, seed=FRESH_SEED)
    found = analyze(study, options=AnalysisOptions(find_sacrum=True))
    normal = found.volume.affine[:3, 0] / np.linalg.norm(found.volume.affine[:3, 0])
    assert np.degrees(np.arccos(abs(normal[2]))) > 10.0  # the old finder gave up here
    assert found.sacrum_top_z_mm is not None
    assert abs(found.sacrum_top_z_mm - _truth_top(study)) <= 4.0
