"""No stage hands scipy's iterated binary erosion an input smaller than its structure.

``scipy.ndimage.binary_erosion(..., iterations=n)`` with n > 1 (and
``binary_dilation``, ``binary_opening``... which call it) takes a fast path in C,
``NI_BinaryErosion2``, that follows coordinate lists. When the structure is
larger than the input along an axis, its offsets point outside the array
(scipy/scipy#11400, still open in scipy 1.17; numpy/numpy#15376): wherever the
stray byte happens to be 1 it writes a 0 there. The heap is corrupted silently,
and glibc aborts much later ("corrupted size vs. prev_size", "free(): invalid
next size", "malloc(): ... assertion") in whatever allocates next, so which
analysis dies depends on the heap's history. ``candidates._trim_sheets`` did
exactly this (a disk footprint wider than most label sections), hundreds of
times per study.

A test that waits for the abort would be flaky (it needs a 1 next to the
buffer). These tests are deterministic instead: they replace the C entry point
with a guard that records every call, forwards the safe ones and refuses the
unsafe ones without running them, so the test process itself is never
corrupted.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import disk

from backmice.analysis import AnalysisOptions
from backmice.segment import candidates
from tests.conftest import UnsafeErosion
from tests.conftest import erosion_guard as conftest_erosion_guard


@pytest.fixture
def erosion_guard():
    """The calls of scipy's ``NI_BinaryErosion2`` in this test; unsafe ones refused."""
    with conftest_erosion_guard() as calls:
        yield calls


def test_guard_catches_the_overflowing_call_and_passes_safe_ones(erosion_guard):
    """The guard is not vacuous: scipy's fast path is taken, and refused on small input."""
    big = np.ones((12, 12), dtype=bool)
    assert ndimage.binary_erosion(big, disk(2), iterations=2).sum() == 4 * 4
    assert erosion_guard == [((12, 12), (5, 5))]
    with pytest.raises(UnsafeErosion):
        ndimage.binary_erosion(np.ones((4, 9), dtype=bool), disk(2), iterations=2)


@pytest.mark.parametrize("radius", [1, 2, 3])
def test_brute_force_erosion_is_the_same_erosion(erosion_guard, radius):
    """``brute_force=True`` (the fix) never takes the fast path and gives the same result.

    Reference: the fast path on the section padded with False (safe, since the
    padded array is larger than the disk; padding does not change an erosion
    whose border is False).
    """
    rng = np.random.default_rng(radius)
    footprint = disk(radius)
    pad = footprint.shape[0]
    for _ in range(300):
        shape = tuple(int(n) for n in rng.integers(1, 4 * radius + 6, size=2))
        section = rng.random(shape) < 0.9
        got = ndimage.binary_erosion(section, footprint, iterations=2, brute_force=True)
        padded = ndimage.binary_erosion(np.pad(section, pad), footprint, iterations=2)
        np.testing.assert_array_equal(got, padded[pad:-pad, pad:-pad])
    # Only the padded references went through scipy's fast path, all of them safe.
    assert len(erosion_guard) == 300


def test_trim_sheets_on_small_sections(erosion_guard):
    """Nodule labels whose sections are narrower than the sheet disk (1-4 px)."""
    labels = np.zeros((3, 40, 40), dtype=np.uint32)
    labels[:, 2:6, 2:5] = 1  # 4 x 3 px: narrower than the disk in both axes
    labels[1, 10:11, 10:30] = 2  # one row
    labels[:, 20:36, 20:36] = 3  # large enough to hold the disk twice over
    labels[:, 22:24, 37:40] = 4  # a sliver touching the edge
    out = candidates._trim_sheets(labels, pixel_mm=np.array([0.8, 0.8]), sheet_mm=3.0)
    assert set(np.unique(out)) == {0, 1, 2, 3, 4}  # the small ones are left alone
    assert (out == 3).sum() > 0


@pytest.mark.parametrize("sample", ["t1_axial", "dixon"])
def test_analysis_never_takes_the_overflowing_path(request, sample):
    """A whole analysis of a committed sample: every stage, every call checked.

    The session's shared analyses (``tests/conftest.py``) run under the guard,
    with default options (``find_sacrum=True``); an unsafe call would have
    raised :class:`UnsafeErosion` there and failed this test.
    """
    analysis, calls = request.getfixturevalue(f"{sample.split('_')[0]}_run")
    assert AnalysisOptions().find_sacrum
    assert analysis.nodules
    assert calls, "the guard saw no iterated erosion: it would be vacuous"
