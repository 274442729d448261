"""The threshold preview's core: the fat map once, as the analysis makes it; then one slice."""

from __future__ import annotations

import numpy as np
import pytest

from backmice.preview import FatScore, fat_score, threshold_slice
from backmice.segment import Method
from tests.conftest import SAMPLES


def test_the_fat_score_is_the_one_the_analysis_thresholds(dixon_analysis):
    score = fat_score(SAMPLES / "dixon")
    assert isinstance(score, FatScore)
    assert score.method is Method.DIXON
    np.testing.assert_array_equal(score.score, dixon_analysis.fat.score)
    np.testing.assert_array_equal(score.affine, dixon_analysis.volume.affine)
    assert score.series_uid == dixon_analysis.volume.series_uid


@pytest.mark.slow
def test_the_t1_fat_score_is_the_one_the_analysis_thresholds(t1_analysis):
    score = fat_score(SAMPLES / "t1_axial")
    assert score.method is Method.T1
    np.testing.assert_allclose(score.score, t1_analysis.fat.score, atol=1e-5)


def test_threshold_slice_is_the_fat_mask_rule_on_that_slice():
    rng = np.random.default_rng(0)
    score = rng.random((5, 8, 9), dtype=np.float32)
    for k, t in [(0, 0.5), (3, 0.2), (4, 0.9)]:
        np.testing.assert_array_equal(threshold_slice(score, k, t), (score >= t)[k])
    overlay = np.zeros(score.shape, dtype=np.uint8)
    got = threshold_slice(score, 2, 0.5, out=overlay[2])
    assert np.shares_memory(got, overlay)  # written in place, no copy
    np.testing.assert_array_equal(overlay[2], (score[2] >= 0.5).astype(np.uint8))
    assert not overlay[[0, 1, 3, 4]].any()


class _Recording:
    """A volume that records which parts of it are read."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.keys: list[object] = []
        self.shape = array.shape

    def __getitem__(self, key):
        self.keys.append(key)
        return self.array[key]

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the whole volume was read")


def test_threshold_slice_reads_only_its_slice():
    volume = _Recording(np.linspace(0, 1, 4 * 6 * 6, dtype=np.float32).reshape(4, 6, 6))
    mask = threshold_slice(volume, 2, 0.5)
    assert volume.keys == [2]
    assert mask.shape == (6, 6)
