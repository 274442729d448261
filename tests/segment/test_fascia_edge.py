"""The fascia at the edge between fat and muscle, and its distance to a fraction of a pixel.

A synthetic body: in every slice a disk of radius ``R`` mm whose subcutaneous
fat reaches from the skin to the fascia at a known depth, with muscle deep to
it. The fat score is blurred across each tissue edge as an MR image is (the
partial volume of a pixel).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from backmice.segment.body import distance_mm
from backmice.segment.fascia import _edge_depths, fascia_distance

R = 100.0
PIXEL, DZ, N, SLICES = 1.0, 3.0, 230, 5


def _disk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    c = (N - 1) / 2
    yy, xx = np.mgrid[0:N, 0:N].astype(np.float64)
    y, x = (yy - c) * PIXEL, (xx - c) * PIXEL
    inside = np.hypot(x, y) <= R
    # Depth below the skin as the analysis measures it (from the mask's edge),
    # so the truth below is in the analysis's own coordinates.
    depth = distance_mm(np.broadcast_to(inside, (SLICES, N, N)), (DZ, PIXEL, PIXEL))[0]
    return depth.astype(np.float64), inside, y


def _analyse(score2d: np.ndarray, inside: np.ndarray, *, with_score: bool):
    shape = (SLICES, N, N)
    spacing = (DZ, PIXEL, PIXEL)
    score = np.broadcast_to(score2d.astype(np.float32), shape).copy()
    body = np.broadcast_to(inside, shape).copy()
    depth_mm = distance_mm(body, spacing)
    # The subcutaneous fat: the fat mask (one threshold for the study) inside the body.
    sat = body & (score >= 0.5)
    return fascia_distance(
        sat, body, depth_mm, spacing_mm=spacing, score=score if with_score else None
    )


def test_dim_deep_fat_under_the_threshold_still_reaches_the_muscle():
    """Deep fat scoring 0.35 (a coil's near field, a dimmer deep layer) is still fat.

    The levels are those read across the fascia of a real T1 (fat and water of
    a 3 T Dixon summed) under the posterior coil: superficial fat 0.9, deep
    fat 0.35, the muscle under it -0.3 (darker than the study's muscle level).
    One threshold for the study stops the fat mask 8 mm short of the muscle;
    the edge half-way between the fat and lean levels on either side is on the
    muscle, within 1.5 mm in the median (half-way between the superficial fat and the muscle
    is near the deep layer's own level, so the edge is placed a little early
    on its fall; a deep layer dimmer than half-way would be taken for lean).
    """
    depth, inside, y = _disk()
    fascia_at = 20.0
    score = np.where(depth < 12.0, 0.9, np.where(depth < fascia_at, 0.35, -0.3))
    score = np.where(inside, ndimage.gaussian_filter(score, 0.7), 0.0)
    on = inside & (y > 20) & (np.abs(depth - fascia_at) < 0.5)
    assert on.sum() > 100
    by_mask = _analyse(score, inside, with_score=False)
    # The premise: the threshold's boundary is at the bright layer's edge, not the muscle.
    assert np.median(by_mask.signed_mm[2][on]) < -6.0
    by_edge = _analyse(score, inside, with_score=True)
    error = by_edge.signed_mm[2][on] - (fascia_at - depth[on])
    assert np.abs(np.median(error)) < 1.5
    assert np.abs(error).max() < 2.0


def test_signed_distance_is_exact_to_a_fraction_of_a_pixel_near_the_fascia():
    """A fascia 15.3 mm deep: the voxels beside it read 0.3 and -0.7 mm, not +-0.5."""
    depth, inside, y = _disk()
    fascia_at = 15.3
    # Fat fills each pixel in proportion to the part of it above the fascia.
    score = np.where(inside, np.clip(fascia_at - depth + 0.5, 0.0, 1.0), 0.0)
    fascia = _analyse(score, inside, with_score=True)
    back = inside & (y > 20)
    near = back & (np.abs(depth - fascia_at) < 2.5)
    assert near.sum() > 500
    truth = fascia_at - depth[near]
    assert np.abs(fascia.signed_mm[2][near] - truth).max() < 0.2
    # Farther away the distance transform's value holds (never worse than half a pixel).
    far = back & (np.abs(depth - fascia_at) > 5) & (depth < 40)
    assert np.abs(fascia.signed_mm[2][far] - (fascia_at - depth[far])).max() <= 0.5 + 1e-3


def test_no_edge_without_contrast_between_fat_and_lean():
    """Where the score is flat across the boundary, the mask's boundary is kept (NaN)."""
    depth, inside, _ = _disk()
    shape = (1, N, N)
    body = inside[None]
    deep = body & (depth[None] > 15)
    samples = body & ~deep & (ndimage.binary_dilation(deep[0], iterations=1)[None])
    depth_mm = np.where(body, depth[None], 0.0).astype(np.float32)
    flat = np.full(shape, 0.6, dtype=np.float32)
    out = _edge_depths(flat, samples, depth_mm, deep, (PIXEL, PIXEL))
    assert samples.sum() > 100
    assert np.isnan(out[samples]).all()
    step = np.where(deep, 0.0, 1.0).astype(np.float32)
    out = _edge_depths(step, samples, depth_mm, deep, (PIXEL, PIXEL))
    assert np.isfinite(out[samples]).mean() > 0.95


def test_where_the_image_cuts_the_body_the_muscle_stays_deep():
    """At angles where the body runs off the image there is no skin to measure from.

    A body wider than the image (cut by its left edge): the subcutaneous fat
    is 15 mm thick along the skin in view. The depth below the skin near the
    cut is measured to the skin at other angles, so the boundary there is not
    sampled: otherwise its samples, smoothed around the body, pull the fascia
    in view 2 mm off. All the muscle stays deep to the fascia.
    """
    from backmice.segment.body import fov_edge

    n = 200
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    y, x = yy - 100.0, xx - 60.0  # the centre 60 px from the left edge: cut at r > 60
    true_depth = R - np.hypot(x, y)
    inside = true_depth >= 0
    shape = (SLICES, n, n)
    spacing = (DZ, PIXEL, PIXEL)
    body = np.broadcast_to(inside, shape).copy()
    depth_mm = distance_mm(body, spacing)
    score2d = np.where(true_depth < 15.0, 1.0, 0.0)
    score2d = np.where(inside, ndimage.gaussian_filter(score2d, 0.7), 0.0)
    score = np.broadcast_to(score2d.astype(np.float32), shape).copy()
    sat = body & (score >= 0.5)
    fascia = fascia_distance(
        sat, body, depth_mm, spacing_mm=spacing, score=score, cut=fov_edge(body)
    )
    muscle = inside & (true_depth > 17.0)
    assert (fascia.signed_mm[2][muscle] < 0).all()
    # Where the skin is in view the fascia is on the muscle.
    back = inside & (x > 0) & (np.abs(true_depth - 15.0) < 0.5)
    assert np.abs(fascia.signed_mm[2][back] - (15.0 - true_depth[back])).max() < 0.6


def test_a_hand_edited_deep_side_keeps_the_grid_distance_where_it_moved():
    """The sub-voxel distance refines the grid's only where the deep side follows the fascia."""
    from backmice.segment.fascia import signed_distance

    depth2d, inside, y = _disk()
    shape = (SLICES, N, N)
    spacing = (DZ, PIXEL, PIXEL)
    depth = np.broadcast_to(depth2d.astype(np.float32), shape).copy()
    fascia_mm = np.where(np.broadcast_to(inside, shape), np.float32(15.3), np.nan)
    deep = np.broadcast_to(inside, shape) & (depth > 15.3)
    # A reader moves the fascia 4 mm toward the skin over part of the back.
    sector = np.broadcast_to(inside & (y > 60), shape)
    edited = deep | (sector & (depth > 11.3))
    plain = signed_distance(edited, spacing)
    exact = signed_distance(edited, spacing, fascia_mm=fascia_mm, depth_mm=depth)
    moved = sector[2] & (np.abs(depth[2] - 11.3) < 2.5)
    np.testing.assert_array_equal(exact[2][moved], plain[2][moved])
    kept = inside & (y < -20) & (np.abs(depth2d - 15.3) < 2.5)
    assert np.abs(exact[2][kept] - (15.3 - depth2d[kept])).max() < 0.2


def test_epimuscular_fat_under_a_visible_fascia_does_not_drag_it():
    """Fat between the fascia and the muscle stays deep to the fascia.

    The fascia is a dark line 1 mm thick 15 mm below the skin, with 4 mm of
    epimuscular fat under it and the muscle beyond: the fascia is found on the
    line, not on the muscle.
    """
    depth, inside, y = _disk()
    line = (depth >= 15.0) & (depth < 16.0)
    score = np.where(depth < 20.0, 1.0, 0.0)
    score = np.where(line, 0.0, score)
    score = np.where(inside, ndimage.gaussian_filter(score, 0.5), 0.0)
    shape = (SLICES, N, N)
    spacing = (DZ, PIXEL, PIXEL)
    body = np.broadcast_to(inside, shape).copy()
    score3 = np.broadcast_to(score.astype(np.float32), shape).copy()
    # The layer is the fat the line walls off from the epimuscular fat.
    sat = body & (score3 >= 0.5) & (np.broadcast_to(depth, shape) < 15.0)
    fascia = fascia_distance(
        sat, body, distance_mm(body, spacing), spacing_mm=spacing, score=score3
    )
    on = inside & (y > 20) & (np.abs(depth - 15.0) < 0.5)
    error = fascia.signed_mm[2][on] - (15.0 - depth[on])
    assert np.abs(np.median(error)) < 0.7
    epimuscular = inside & (y > 20) & (depth > 16.5) & (depth < 19.5)
    assert (fascia.signed_mm[2][epimuscular] < 0).all()
