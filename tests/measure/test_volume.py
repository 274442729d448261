"""The end-slice correction of the Dixon fat-fraction volume (thick slices)."""

from __future__ import annotations

import numpy as np
import pytest

from backmice.measure.nodules import _end_slab_excess, _fat_fraction_per_slice


@pytest.mark.parametrize("h", [0.3, 1.0, 1.9, 2.5])
def test_a_paraboloid_cap_is_put_back_exactly(h):
    """Section area k*d at distance d from the pole; slices T thick, the pole h past the face."""
    k, thickness = 40.0, 3.0
    # What each slice counts: the end slice, all of the fat over the pole's footprint
    # (k*h times the thickness); its neighbour, its own content (the cap is smaller there).
    end = k * h * thickness
    neighbour = k * (h + thickness) * thickness  # its footprint times its thickness
    middle = 5 * neighbour
    counted = np.array([end, neighbour, middle, neighbour, end])
    true_cap = k * h**2 / 2
    assert _end_slab_excess(counted) == pytest.approx(2 * (end - true_cap))


def test_end_slices_without_a_pole_and_short_nodules_are_left_whole():
    assert _end_slab_excess(np.array([80.0, 100.0, 90.0])) == 0.0  # r >= 2/3 both ends
    assert _end_slab_excess(np.array([0.0, 50.0, 0.0])) == 0.0  # one slice
    assert _end_slab_excess(np.zeros(4)) == 0.0
    # Empty slices around the nodule do not count as its ends.
    assert _end_slab_excess(np.array([0.0, 10.0, 60.0, 60.0, 0.0])) == pytest.approx(
        _end_slab_excess(np.array([10.0, 60.0, 60.0]))
    )


def test_fat_fraction_counts_each_voxel_s_share_of_the_core():
    region = np.zeros((3, 4, 4), dtype=bool)
    region[0, 1:3, 1:3] = True
    region[1, :, :] = True
    ff = np.full(region.shape, 0.9)
    ff[1, 0, :] = 0.45  # a row half fat: half a voxel each
    per_slice = _fat_fraction_per_slice(region, ff)
    assert per_slice.shape == (3,)
    np.testing.assert_allclose(per_slice, [4.0, 12.0 + 4 * 0.5, 0.0])
