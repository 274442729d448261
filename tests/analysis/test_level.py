"""A level the reader gives turns the herniation below the sacrum lumbosacral (SPEC rule)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backmice.analysis import AnalysisOptions, analyze
from backmice.vocab import Relation, Subtype

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "t1_axial"


@pytest.fixture(scope="module")
def truth():
    return json.loads((SAMPLE / "truth.json").read_text(encoding="utf-8"))


def test_given_sacrum_top_splits_lumbar_and_lumbosacral(truth):
    top = truth["anatomy"]["sacrum_top_z_mm"]
    plain = analyze(SAMPLE)
    given = analyze(SAMPLE, options=AnalysisOptions(sacrum_top_z_mm=top))
    assert plain.sacrum_top_z_mm is None and given.sacrum_top_z_mm == top
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
    assert {r["suggested_subtype"] for r in herniations} == {
        Subtype.LUMBOSACRAL_FAT_HERNIATION,
        Subtype.LUMBAR_FASCIAL_FAT_HERNIATION,
    }
