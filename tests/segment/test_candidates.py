"""Candidate clean-up rules on hand-made labels: what a nodule is, and what only touches it.

- A candidate wholly superficial to the fascia must have fat around it (beyond
  its capsule); a pocket walled off against the skin or the fascia has not.
- Toward a pole, a section keeps within reach of the section next to it: a fat
  streak the pole touches is cut off, the pole itself is kept.
- A section is one piece: a wedge joined to it at a corner is cut off.
- A sheet along a section's side is cut off; the tips of a flat section are kept.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from skimage.morphology import disk

from backmice.segment.candidates import (
    SHELL_MM,
    CandidateOptions,
    _follow_capsule,
    _surrounded_by_fat,
    _trim_sheets,
)
from tests.conftest import ellipsoid

PIXEL = np.array([0.8, 0.8])


# -- the shell of fat around a subcutaneous candidate ------------------------------------


def _shell_case(kind: str):
    """A 1 mm grid of fat with a candidate in it, rows running from the fascia to the skin.

    ``in the fat``: a nodule in its capsule. ``against the skin`` / ``against the
    fascia``: a flat pocket of the layer, a septum on one side and the dermis (with
    the air beyond) or the fascia (with the muscle beyond) on the other.
    """
    shape = (30, 60, 60)
    spacing = np.array([1.0, 1.0, 1.0])
    fat = np.ones(shape, dtype=bool)
    signed = np.full(shape, 10.0, dtype=np.float32)  # all superficial to the fascia
    if kind == "in the fat":
        nodule = ellipsoid(shape, (15, 30, 30), (6, 5, 8))
        fat &= ~(ellipsoid(shape, (15, 30, 30), (7, 6, 9)) & ~nodule)  # the capsule
    else:
        nodule = ellipsoid(shape, (15, 30, 30), (6, 2, 10))
        septum = ellipsoid(shape, (15, 30, 30), (7, 3, 11)) & ~nodule
        if kind == "against the skin":
            fat &= ~(septum & (np.indices(shape)[1] < 30))  # the septum over it
            fat[:, 33:, :] = False  # the dermis, and the air beyond
        else:
            fat &= ~(septum & (np.indices(shape)[1] > 30))  # the septum under it
            fat[:, :28, :] = False  # the fascia, and the muscle beyond
            signed -= 10.0 - (np.indices(shape)[1] - 27.5)
    labels = nodule.astype(np.uint32)
    sl = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(nodule))
    return labels, sl, fat, signed, spacing


@pytest.mark.parametrize(
    ("kind", "kept"),
    [("in the fat", True), ("against the skin", False), ("against the fascia", False)],
)
def test_a_subcutaneous_candidate_needs_fat_around_it(kind, kept):
    labels, sl, fat, signed, spacing = _shell_case(kind)
    options = CandidateOptions()
    assert _surrounded_by_fat(labels, 1, sl, fat, signed, spacing, options) is kept


def test_the_shell_check_can_be_turned_off_and_spares_deep_candidates():
    labels, sl, fat, signed, spacing = _shell_case("against the skin")
    off = CandidateOptions(min_shell_fat=0.0)
    assert _surrounded_by_fat(labels, 1, sl, fat, signed, spacing, off)
    # In or under the fascia a nodule has muscle around it: not judged by the shell.
    deep = signed - 20.0
    assert _surrounded_by_fat(labels, 1, sl, fat, deep, spacing, CandidateOptions())


def test_shell_lies_past_the_capsule():
    assert SHELL_MM[0] >= 1.0 and SHELL_MM[1] > SHELL_MM[0]


@pytest.mark.parametrize("capsule_px", [1, 2, 3, 4])
def test_a_nodule_in_a_thick_capsule_is_kept(capsule_px):
    """Capsules are 0.6-1.8 mm thick, and the partial volume adds a pixel: the
    shell is read where the fat resumes beyond the capsule, not at a fixed
    distance (a fixed 1.5-4 mm shell held a 3 mm capsule's half, and threw the
    nodule away)."""
    shape = (30, 60, 60)
    spacing = np.array([1.0, 1.0, 1.0])
    signed = np.full(shape, 10.0, dtype=np.float32)
    nodule = ellipsoid(shape, (15, 30, 30), (6, 5, 8))
    outer = ellipsoid(shape, (15, 30, 30), tuple(r + capsule_px for r in (6, 5, 8)))
    fat = ~(outer & ~nodule)
    labels = nodule.astype(np.uint32)
    sl = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(nodule))
    assert _surrounded_by_fat(labels, 1, sl, fat, signed, spacing, CandidateOptions())


# -- following a capsule with gaps from slice to slice ---------------------------------


def _capsule_case(*, wall: str):
    """A 3 mm-slice, 1.5 mm-pixel layer of fat holding a nodule 5 slices tall.

    Its capsule (one pixel, out of the fat) has a gap two pixels wide in every
    slice but the middle one, so only the middle section is cut off the layer.
    ``wall="muscle"`` puts thick non-fat (muscle) where the capsule would be
    instead: a pocket of the layer against the muscle, not a nodule.
    """
    shape = (11, 40, 40)
    nodule = ellipsoid(shape, (5, 20, 20), (2.6, 6, 8))
    around = np.stack([ndimage.binary_dilation(s, iterations=1) for s in nodule]) & ~nodule
    if wall == "muscle":
        around = np.stack([ndimage.binary_dilation(s, iterations=6) for s in nodule]) & ~nodule
    score = np.ones(shape, dtype=np.float32)
    score[around] = 0.2
    for k in range(shape[0]):
        if k != 5:
            score[k, 12:30, 27:29] = 1.0  # the gap, on the capsule's side
    fat = score >= 0.5
    signed = np.full(shape, 10.0, dtype=np.float32)
    labels = np.zeros(shape, dtype=np.uint32)
    labels[5][nodule[5]] = 1
    return nodule, labels, score, fat, signed


def _follow(labels, score, fat, signed):
    """:func:`_follow_capsule` on T1-like input (no ridge filter: strict is the fat)."""
    return _follow_capsule(
        labels,
        score,
        fat,
        fat,
        signed,
        pixel_mm=np.array([1.5, 1.5]),
        slice_mm=3.0,
        min_size_mm=5.0,
        min_thickness_mm=3.5,
    )


def test_a_nodule_is_followed_through_the_gaps_of_its_capsule():
    """Only the equator was cut off the layer: the capsule, gaps and all, walls
    the nodule's other sections, and stops where it ends (beyond the poles)."""
    nodule, labels, score, fat, signed = _capsule_case(wall="capsule")
    out = _follow(labels, score, fat, signed)
    got = out == 1
    for k in range(nodule.shape[0]):
        if nodule[k].any():
            assert (got[k] & nodule[k]).sum() >= 0.8 * nodule[k].sum(), f"slice {k} lost"
        assert (got[k] & ~nodule[k]).sum() <= 0.1 * max(nodule[k].sum(), 10), f"slice {k} leaks"


def test_a_pocket_against_thick_muscle_is_not_followed():
    """Muscle is dark too, but thick: a capsule is a thin dark line in the fat."""
    _, labels, score, fat, signed = _capsule_case(wall="muscle")
    out = _follow(labels, score, fat, signed)
    assert np.array_equal(out, labels)


# -- pole sections and pieces ------------------------------------------------------------


def _nodule_with(extra: str) -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoidal label on 0.8 mm pixels, 4 mm slices, and the same with ``extra``."""
    shape = (9, 80, 80)
    nodule = ellipsoid(shape, (4, 40, 40), (2.6, 12, 16))
    label = nodule.copy()
    if extra == "streak":
        # A fat streak in the muscle, two pixels wide, that the pole section touches
        # and that runs on obliquely, away from the nodule, through the slices beyond.
        for k, shift in ((2, 0), (1, 4), (0, 8)):
            label[k, 18 - shift : 31 - shift, 40 - shift // 2 : 42 - shift // 2] = True
    return nodule, label.astype(np.uint32)


def test_a_streak_at_a_pole_is_cut_off_and_the_pole_kept():
    nodule, labels = _nodule_with("streak")
    out = _trim_sheets(labels, pixel_mm=PIXEL, sheet_mm=3.0) == 1
    streak_beyond = (labels == 1) & ~nodule
    assert not (out & streak_beyond & ~_near(nodule, 3)).any(), "the streak runs on"
    # The pole sections of the nodule itself are kept (the first slice holds a few pixels).
    for k in range(9):
        if nodule[k].sum() > 20:
            assert (out[k] & nodule[k]).sum() >= 0.8 * nodule[k].sum(), f"slice {k} lost"


def test_a_wedge_joined_at_a_corner_is_cut_off():
    """Dixon's 1.5 mm pixels: the sheet opening (a 3-pixel cross) leaves a 3-pixel wedge."""
    shape = (7, 40, 40)
    nodule = ellipsoid(shape, (3, 20, 20), (1.6, 6, 8))
    labels = nodule.copy()
    # A wedge of fat by a septum, 3 pixels high, touching the section at one corner.
    labels[3, 26:29, 12:16] = True
    assert labels[3, 25, 16] and not labels[3, 25, 15] and not labels[3, 26, 16]  # a corner
    out = _trim_sheets(labels.astype(np.uint32), pixel_mm=np.array([1.5, 1.5]), sheet_mm=3.0)
    out = out == 1
    assert not out[3, 26:29, 12:16].any()
    assert (out[3] & nodule[3]).sum() >= 0.95 * nodule[3].sum()


def _extent_px(mask: np.ndarray) -> int:
    cols = np.flatnonzero(mask.any(axis=0))
    return int(cols[-1] - cols[0] + 1)


def test_the_tips_of_a_flat_section_are_kept():
    """A flat lipoma edge on, at 1.5 mm: the opening would cut 1-2 pixels off each tip."""
    shape = (7, 30, 60)
    # Centred between two rows, so each tip ends in a single row of two pixels.
    nodule = ellipsoid(shape, (3, 15.5, 30.4), (2.5, 2.6, 9.0))
    pixel = np.array([1.5, 1.5])
    assert _extent_px(ndimage.binary_opening(nodule[3], disk(1))) < _extent_px(nodule[3])
    out = _trim_sheets(nodule.astype(np.uint32), pixel_mm=pixel, sheet_mm=3.0) == 1
    assert _extent_px(out[3]) == _extent_px(nodule[3])
    assert not (out & ~nodule).any()


def test_a_sheet_along_the_side_is_still_cut_off():
    shape = (7, 40, 60)
    nodule = ellipsoid(shape, (3, 20, 30), (2.5, 5, 10))
    labels = nodule.copy()
    labels[3, 25:27, 20:41] = True  # fat between the capsule and the fascia, 3 mm thick
    out = _trim_sheets(labels.astype(np.uint32), pixel_mm=np.array([1.5, 1.5]), sheet_mm=3.0)
    out = out == 1
    # Under the section the opening cannot tell the sheet from the nodule; beyond
    # its sides the sheet goes, and no end of it comes back as a tip.
    assert not out[3, 25:27, 20:22].any() and not out[3, 25:27, 39:41].any()
    assert _extent_px(out[3]) == _extent_px(nodule[3])


def test_a_plain_ellipsoid_is_left_almost_whole():
    nodule, labels = _nodule_with("")
    out = _trim_sheets(labels, pixel_mm=PIXEL, sheet_mm=3.0) == 1
    assert out.sum() >= 0.95 * nodule.sum()
    assert not (out & ~nodule).any()


def _near(mask: np.ndarray, px: int) -> np.ndarray:
    from scipy import ndimage

    return ndimage.binary_dilation(
        mask, structure=np.ones((1, 3, 3), dtype=bool), iterations=px, brute_force=True
    )


# -- the field of view ----------------------------------------------------------------


def test_a_candidate_cut_by_the_field_of_view_is_not_reported():
    """A nodule reaching the edge of the acquired box (zero padding beyond) cannot be measured."""
    from backmice.segment.candidates import find_candidates

    shape = (20, 60, 60)
    fat = np.zeros(shape, dtype=bool)
    nodule = ellipsoid(shape, (10, 40, 8), (6, 6, 7))  # reaches column 1
    fat |= nodule
    score = fat.astype(np.float32)
    sat = np.zeros(shape, dtype=bool)
    body = np.ones(shape, dtype=bool)
    body[:, :, 0] = False  # the zero padding beyond the field of view
    rows = np.indices(shape)[1].astype(np.float32)
    signed = (32.0 - rows) * 1.0  # the fascia at row 32: the nodule just under it
    affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=float)
    options = CandidateOptions(posterior_only=False)
    whole = find_candidates(fat, score, sat, body, signed, affine=affine, options=options)
    assert whole.max() == 1, "the nodule inside the image is a candidate"
    fov = (slice(None), slice(0, 60), slice(1, 60))
    cut = find_candidates(
        fat, score, sat, body, signed, affine=affine, options=options, field_of_view=fov
    )
    assert cut.max() == 0


# -- what a nodule is: a core of mature fat, an ovoid ----------------------------------


def _nodule_case(shape_kind: str):
    from backmice.segment.candidates import _nodule_like

    shape = (30, 60, 60)
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    score = np.zeros(shape, dtype=np.float32)
    if shape_kind == "ovoid":
        region = ellipsoid(shape, (15, 30, 30), (6, 8, 10))
    elif shape_kind == "strip":  # fat along a muscle plane, 28 mm long, 7 mm across
        region = ellipsoid(shape, (15, 30, 30), (14, 3.5, 3.5))
    else:  # a sliver two pixels thick
        region = ellipsoid(shape, (15, 29.5, 30), (6, 1.0, 10))
    score[region] = 1.0

    def judge(*, core_level: float = 1.0) -> bool:
        s = score * core_level
        return _nodule_like(region, s, np.zeros_like(region), 1.0, affine, CandidateOptions())

    return judge


def test_an_ovoid_of_fat_like_the_layer_is_a_nodule():
    assert _nodule_case("ovoid")()


def test_a_strip_of_fat_along_a_muscle_plane_is_not():
    assert not _nodule_case("strip")()


def test_a_sliver_without_a_core_is_not():
    assert not _nodule_case("sliver")()


def test_fat_dimmer_than_the_layer_is_not_a_lipoma():
    """Partial volume with muscle all through (or another tissue): not mature fat."""
    assert not _nodule_case("ovoid")(core_level=0.8)
    assert _nodule_case("ovoid")(core_level=0.95)


def test_the_checks_can_be_turned_off():
    from backmice.segment.candidates import _nodule_like

    shape = (30, 60, 60)
    region = ellipsoid(shape, (15, 30, 30), (14, 3.5, 3.5))
    score = region.astype(np.float32) * 0.5
    off = CandidateOptions(min_core_fat=0.0, max_elongation=0.0)
    assert _nodule_like(region, score, np.zeros_like(region), 1.0, np.eye(4), off)
