"""backmice.edit on synthetic cases with exact answers, and on the bundled sample."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backmice.edit import Editor, fascia_signed_mm
from backmice.errors import InputError

from .conftest import FASCIA_ROW, SHAPE, SPACING, ball, synthetic_editor

VOXEL_MM3 = SPACING[0] * SPACING[1] * SPACING[2]


def one_nodule():
    labels = np.zeros(SHAPE, dtype=np.uint32)
    labels[ball((6, 42, 32), 5.0)] = 1
    return labels


def test_signed_distance_matches_the_analysis_definition():
    deep = np.zeros(SHAPE, dtype=bool)
    deep[:, :FASCIA_ROW] = True
    signed = fascia_signed_mm(deep, SPACING)
    # Half a pixel beyond the last voxel centre on either side.
    assert signed[5, FASCIA_ROW, 20] == pytest.approx(0.5)
    assert signed[5, FASCIA_ROW - 1, 20] == pytest.approx(-0.5)
    assert signed[5, FASCIA_ROW + 10, 20] == pytest.approx(10.5)


def test_editor_measures_like_the_analysis(t1_analysis):
    editor = Editor.from_analysis(t1_analysis)
    editor.remeasure()
    assert editor.ids == [r["nodule_id"] for r in t1_analysis.nodules]
    for ref in t1_analysis.nodules:
        row = editor.rows[ref["nodule_id"]]
        for key, value in ref.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-6, abs=1e-6), key
            else:
                assert row[key] == value, key


def test_paint_adds_exactly_the_painted_volume():
    editor = synthetic_editor(one_nodule())
    before = editor.rows[1]["volume_mm3"]
    # 2 mm slices over 1 mm pixels are thick: the end slices give up the fat they
    # overproject beyond the poles, so the volume is less than the voxel count's.
    assert 0.8 * editor.mask(1).sum() * VOXEL_MM3 < before < editor.mask(1).sum() * VOXEL_MM3
    stroke = np.zeros(SHAPE, dtype=bool)
    # 8 voxels in the middle slice, 3 of them outside the ball: the end slices and
    # their neighbours, which set the thick-slice correction, are untouched.
    stroke[6, 40:44, 38:40] = True
    new = int((stroke & ~editor.mask(1)).sum())
    assert new > 0
    change = editor.paint(stroke, 1)
    assert change.measured == (1,) and not change.added and not change.removed
    assert editor.rows[1]["volume_mm3"] == pytest.approx(before + new * VOXEL_MM3)


def test_erase_removes_volume_and_a_fully_erased_nodule():
    editor = synthetic_editor(one_nodule())
    before = editor.rows[1]["volume_mm3"]
    stroke = np.zeros(SHAPE, dtype=bool)
    stroke[6] = True
    erased = int((stroke & editor.mask(1)).sum())
    editor.paint(stroke, 0)
    assert editor.rows[1]["volume_mm3"] == pytest.approx(before - erased * VOXEL_MM3)
    change = editor.paint(editor.mask(1), 0)
    assert change.removed == (1,)
    assert editor.ids == [] and editor.rows == {}


def test_set_labels_compares_only_the_region():
    editor = synthetic_editor(one_nodule())
    labels = editor.labels.copy()
    labels[2, 50:53, 10:13] = 7  # a new nodule drawn by hand
    change = editor.set_labels(labels, region=(slice(2, 3), slice(50, 53), slice(10, 13)))
    assert change.added == (7,)
    assert editor.rows[7]["volume_mm3"] == pytest.approx(9 * VOXEL_MM3)
    assert editor.new_id() == 8


def test_review_columns_survive_a_re_measure():
    editor = synthetic_editor(one_nodule())
    editor.rows[1].update(status="accepted", subtype="other", reader="anna")
    stroke = np.zeros(SHAPE, dtype=bool)
    stroke[6, 42, 38] = True
    editor.paint(stroke, 1)
    assert editor.rows[1]["status"] == "accepted"
    assert editor.rows[1]["subtype"] == "other"


def test_split_at_the_waist_of_two_touching_balls_then_merge_back():
    a, b = ball((6, 42, 24), 5.0), ball((6, 42, 33), 5.0)
    labels = np.zeros(SHAPE, dtype=np.uint32)
    labels[a | b] = 1
    editor = synthetic_editor(labels)
    total = editor.rows[1]["volume_mm3"]
    change = editor.split(1)
    assert change.added == (2,) and change.measured == (1, 2)
    # Each part holds one ball's centre, and the parts add up.
    assert editor.labels[6, 42, 24] != editor.labels[6, 42, 33]
    v1, v2 = editor.rows[1]["volume_mm3"], editor.rows[2]["volume_mm3"]
    assert v1 + v2 == pytest.approx(total)
    assert v1 == pytest.approx(v2, rel=0.15)
    for part in (editor.mask(1), editor.mask(2)):
        assert max((part & a).sum(), (part & b).sum()) > 0.9 * part.sum()
    change = editor.merge(1, 2)
    assert change.removed == (2,)
    assert editor.rows[1]["volume_mm3"] == pytest.approx(total)
    assert editor.ids == [1]
    # The id 2 is not reused.
    assert editor.new_id() == 3


def test_split_along_a_drawn_line():
    editor = synthetic_editor(one_nodule())
    total = editor.mask(1).sum()
    # A vertical line (constant column 32) on the slice: the cut plane x = 32 mm.
    change = editor.split(1, line=((30, 32.5), (50, 32.5)))
    (new,) = change.added
    left, right = editor.mask(1), editor.mask(new)
    assert left.sum() + right.sum() == total
    cols_1 = np.nonzero(left)[2]
    cols_2 = np.nonzero(right)[2]
    assert (cols_1.max() < 32.5 < cols_2.min()) or (cols_2.max() < 32.5 < cols_1.min())


def test_split_of_a_single_ball_halves_it_and_bad_cuts_are_refused():
    editor = synthetic_editor(one_nodule())
    total = editor.mask(1).sum()
    change = editor.split(1)
    (new,) = change.added
    assert editor.mask(1).sum() + editor.mask(new).sum() == total
    assert abs(int(editor.mask(1).sum()) - int(editor.mask(new).sum())) < 0.3 * total
    with pytest.raises(InputError, match="empty"):
        editor.split(1, line=((0, 0), (0, 5)))
    with pytest.raises(InputError, match="no nodule 9"):
        editor.split(9)
    with pytest.raises(InputError, match="itself"):
        editor.merge(1, 1)


def test_grow_fills_an_encapsulated_ball_exactly():
    score = np.ones(SHAPE, dtype=np.float32)
    core = ball((6, 44, 32), 5.0)
    # Thick enough that no fat voxel outside touches the core across 2 mm slices.
    capsule = ball((6, 44, 32), 8.0) & ~core
    score[capsule] = 0.1
    editor = synthetic_editor(np.zeros(SHAPE, dtype=np.uint32), score=score)
    change = editor.grow((6, 44, 32))
    assert change.added == (1,)
    assert np.array_equal(editor.mask(1), core)
    assert editor.rows[1]["volume_mm3"] == pytest.approx(core.sum() * VOXEL_MM3)


def test_grow_without_a_capsule_stops_at_the_size_cap():
    editor = synthetic_editor(np.zeros(SHAPE, dtype=np.uint32))
    change = editor.grow((6, 44, 32), max_diameter_mm=12.0)
    (new,) = change.added
    assert editor.rows[new]["max_diameter_mm"] <= 12.0 + 2 * max(SPACING)
    assert np.array_equal(editor.mask(new), ball((6, 44, 32), 6.0))


def test_grow_per_slice_and_refusals():
    score = np.ones(SHAPE, dtype=np.float32)
    score[:, :, 20] = 0.0  # a wall
    editor = synthetic_editor(np.zeros(SHAPE, dtype=np.uint32), score=score)
    change = editor.grow((6, 44, 24), per_slice=True, max_diameter_mm=10.0)
    (new,) = change.added
    assert np.nonzero(editor.mask(new))[2].min() > 20
    with pytest.raises(InputError, match="already in nodule"):
        editor.grow((6, 44, 24))
    with pytest.raises(InputError, match="not fat"):
        editor.grow((6, 44, 20))
    with pytest.raises(InputError, match="outside the image"):
        editor.grow((60, 44, 20))


def test_fascia_edit_moves_the_offset_by_the_edit():
    editor = synthetic_editor(one_nodule())
    row = editor.rows[1]
    # Flat fascia half a pixel above row FASCIA_ROW; the centroid is on row 42.
    assert row["fascia_offset_mm"] == pytest.approx(42 - FASCIA_ROW + 0.5)
    assert row["relation"] == "subcutaneous"
    deep = editor.deep.copy()
    deep[:, FASCIA_ROW : FASCIA_ROW + 5] = True  # the reader paints the fascia 5 mm deeper
    change = editor.set_fascia(deep, region=(slice(None), slice(FASCIA_ROW, FASCIA_ROW + 5)))
    assert change.measured == (1,)
    assert editor.rows[1]["fascia_offset_mm"] == pytest.approx(row["fascia_offset_mm"] - 5.0)
    # Now through the nodule: it becomes transfascial.
    deep[:, : 42 + 1] = True
    editor.set_fascia(deep)
    moved = editor.rows[1]
    assert moved["fascia_offset_mm"] < 0
    assert moved["relation"] == "transfascial"
    assert moved["suggested_subtype"] == "lumbar_fascial_fat_herniation"
    assert editor.set_fascia(deep).empty


def test_fascia_edit_on_the_sample(t1_analysis):
    editor = Editor.from_analysis(t1_analysis)
    before = {i: editor.rows[i]["fascia_offset_mm"] for i in editor.ids}
    deep = editor.deep.copy()
    # Grow the deep side by 2 pixels (1.6 mm) toward the skin in every slice.
    from scipy import ndimage

    grown = np.zeros_like(deep)
    for k in range(deep.shape[0]):
        grown[k] = ndimage.binary_dilation(deep[k], iterations=2)
    editor.set_fascia(grown)
    for i, old in before.items():
        assert editor.rows[i]["fascia_offset_mm"] == pytest.approx(old - 1.6, abs=0.6)
    assert not math.isnan(editor.rows[1]["fascia_min_mm"])


def test_local_fascia_update_equals_a_full_recompute_near_the_fascia(t1_analysis):
    editor = Editor.from_analysis(t1_analysis)
    deep = editor.deep.copy()
    k, r, c = 8, slice(150, 175), slice(120, 160)
    deep[k, r, c] = True  # one stroke on one slice: the deep side bulges toward the skin
    editor.set_fascia(deep, region=(slice(k, k + 1), r, c), exact_mm=10.0)
    full = editor.signed_fascia()
    old = t1_analysis.fascia.signed_mm
    near = (np.abs(full) < 10.0) & (np.abs(old) < 10.0)
    assert not np.array_equal(full, old)
    np.testing.assert_allclose(editor.site.signed_fascia_mm[near], full[near], atol=1e-4)
    assert np.array_equal(editor.site.signed_fascia_mm < 0, editor.deep)
