"""The fascia under the subcutaneous fat, bridged over a nodule that herniates through it.

A synthetic body: in every slice a disk of radius ``R`` mm (the skin), with the
subcutaneous fat from the skin down to the fascia, whose depth below the skin
changes steadily around the back (from 10 mm on the right to 30 mm on the
left), and muscle deep to it. A transfascial nodule of fat sits across the
fascia in the middle of the back. Where the fascia is not sampled (near the
nodule) its depth is bridged: the signed distance must still be about 0 on the
true fascia under the nodule.
"""

from __future__ import annotations

import numpy as np
import pytest

from backmice.segment.body import distance_mm
from backmice.segment.fascia import _bridge_rows, fascia_distance

R = 100.0


def _fascia_depth(theta: np.ndarray) -> np.ndarray:
    """True depth (mm) of the fascia below the skin: 10 mm at θ=30°, 30 mm at θ=150°."""
    t = np.clip((np.degrees(theta) - 30.0) / 120.0, 0.0, 1.0)
    return 10.0 + 20.0 * t


@pytest.fixture(scope="module")
def body():
    pixel, dz = 1.0, 3.0
    n, slices = 230, 7
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    y, x = (yy - c) * pixel, (xx - c) * pixel
    r = np.hypot(x, y)
    theta = np.arctan2(y, x)  # +90°: the middle of the back (rows grow posterior)
    depth = R - r
    inside = r <= R
    fat_layer = inside & (depth <= np.where(y > 0, _fascia_depth(theta), 20.0))
    # The nodule: a disk of fat 24 mm across, centred on the fascia at θ = 90°.
    f90 = float(_fascia_depth(np.array(np.pi / 2)))
    nodule = np.hypot(x, y - (R - f90)) <= 12.0
    capsule = (np.hypot(x, y - (R - f90)) <= 13.0) & ~nodule
    sat = fat_layer & ~nodule & ~capsule
    shape = (slices, n, n)
    spacing = (dz, pixel, pixel)
    vol = lambda a: np.broadcast_to(a, shape).copy()  # noqa: E731
    body_mask = vol(inside)
    fascia = fascia_distance(
        vol(sat),
        body_mask,
        distance_mm(body_mask, spacing),
        spacing_mm=spacing,
        exclude=vol(nodule),
    )
    return fascia, theta, depth, inside, y


def test_fascia_is_found_where_it_is_sampled(body):
    fascia, theta, depth, inside, y = body
    true_depth = _fascia_depth(theta)
    away = inside & (y > 20) & (np.abs(np.degrees(theta) - 90) > 25)
    on_fascia = away & (np.abs(depth - true_depth) < 0.5)
    assert on_fascia.sum() > 100
    assert np.abs(fascia.signed_mm[3][on_fascia]).max() < 1.0


def test_fascia_is_bridged_under_a_transfascial_nodule(body):
    fascia, theta, depth, inside, _ = body
    true_depth = _fascia_depth(theta)
    under = inside & (np.abs(np.degrees(theta) - 90) < 5) & (np.abs(depth - true_depth) < 0.5)
    assert under.sum() > 5
    # The fascia's depth changes by 20 mm across the back; bridged linearly, the
    # surface under the nodule is within a millimetre of the truth.
    assert np.abs(fascia.signed_mm[3][under]).max() < 1.0


def test_bridge_fills_covered_gaps_linearly_and_leaves_uncovered_ones():
    table = np.full((2, 12), np.nan)
    table[:, :3] = [1.0, 2.0, 3.0]
    table[:, 8:] = [9.0, 10.0, 11.0, 12.0]
    covered = np.ones_like(table, dtype=bool)
    covered[1, 5] = False  # a bin with no boundary at all: the gap is left open
    out = _bridge_rows(table, covered, max_gap=10)
    np.testing.assert_allclose(out[0, 3:8], [4.0, 5.0, 6.0, 7.0, 8.0])
    assert np.isnan(out[1, 3:8]).all()
    # Too long a gap is left to the smoothing too.
    assert np.isnan(_bridge_rows(table, covered, max_gap=4)[0, 3:8]).all()


def test_bridge_wraps_around_the_body():
    table = np.full((1, 10), np.nan)
    table[0, 2:8] = np.arange(6, dtype=float)  # 0..5 at bins 2..7
    out = _bridge_rows(table, np.ones_like(table, dtype=bool), max_gap=8)
    # From 5 at bin 7 to 0 at bin 2 (= bin 12), through bins 8, 9, 0, 1.
    np.testing.assert_allclose(out[0, [8, 9, 0, 1]], [4.0, 3.0, 2.0, 1.0])


def test_a_bulge_of_the_layer_into_the_muscle_is_not_the_fascia():
    """A herniation whose capsule was lost joins the layer: the boundary bulges over it.

    Samples along the slice follow a sloping fascia (10 → 30 mm deep); over 20
    bins (about 16 mm) they sit 6 mm deeper, on the far side of the herniation.
    Those are dropped, the slope is kept.
    """
    from backmice.segment.fascia import _drop_bumps

    bins = 720
    depth = np.linspace(10.0, 30.0, bins)
    table = np.full((3, bins), np.nan)
    table[:, ::3] = depth[::3]  # sparse samples, as at 1.5 mm pixels
    bulge = slice(300, 320)
    table[1, bulge] = depth[bulge] + 6.0
    out = _drop_bumps(table, 0.8, window_mm=50.0, max_mm=3.0)
    assert np.isnan(out[1, bulge]).all()
    kept = np.isfinite(table) & ~np.isnan(out)
    np.testing.assert_array_equal(out[kept], table[kept])
    assert np.isfinite(out[[0, 2]][np.isfinite(table[[0, 2]])]).all()  # nothing else dropped


def test_the_skin_never_joins_the_deep_region():
    """Where the fat thins out at the side, the dermis touches the muscle.

    A slab under the air: 2 mm of dermis, then subcutaneous fat 12 mm thick on
    the left that thins to nothing on the right, then muscle. The skin rim is
    the dermis (and, where the fat is gone, the muscle within the band, which
    the fascia may then follow), never the muscle under the fat.
    """
    from backmice.segment.fascia import _skin_rim

    rows, cols, pixel = 60, 80, 1.0
    r = np.arange(rows)[:, None] * pixel  # depth below the body's edge, mm
    c = np.arange(cols)[None, :]
    body2 = np.ones((rows, cols), dtype=bool)
    fat_mm = np.clip(12.0 * (1 - c / 60.0), 0.0, None)
    sat2 = (r >= 2.0) & (r < 2.0 + fat_mm)
    body = np.broadcast_to(body2, (3, rows, cols)).copy()
    sat = np.broadcast_to(sat2, (3, rows, cols)).copy()
    depth = np.broadcast_to(r + pixel, (3, rows, cols)).astype(np.float32).copy()
    # The air above the slab: the body's edge is the first row.
    rim = _skin_rim(sat, body, depth, band_mm=6.0, pixel_mm=pixel)
    assert rim[:, :2, :].all(), "the dermis is skin"
    assert not (rim & sat).any()
    assert not rim[:, 10:, :30].any(), "muscle under thick fat is not skin"


def _layered(fat_mm, *, septum: bool = False, pixel: float = 1.0):
    """A disk body: 2 mm of dermis, fat ``fat_mm(theta)`` thick, then muscle.

    With ``septum``, a lean line a pixel thick runs through the middle of the fat
    over the back (θ 45°-135°), as the superficial fascia does.
    """
    n, slices = 230, 3
    c = (n - 1) / 2
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64)
    y, x = (yy - c) * pixel, (xx - c) * pixel
    theta = np.arctan2(y, x)
    depth = R - np.hypot(x, y)
    inside = depth >= 0
    fat = inside & (depth >= 2.0) & (depth < 2.0 + fat_mm(theta))
    if septum:
        mid = 2.0 + fat_mm(theta) / 2
        back = (np.degrees(theta) > 45) & (np.degrees(theta) < 135)
        fat &= ~(back & (np.abs(depth - mid) < 0.5 * pixel))
    spacing = (3.0, pixel, pixel)
    vol = lambda a: np.broadcast_to(a, (slices, n, n)).copy()  # noqa: E731
    body = vol(inside)
    fascia = fascia_distance(
        vol(fat),
        body,
        distance_mm(body, spacing),
        spacing_mm=spacing,
    )
    return fascia, theta, depth, inside, 2.0 + fat_mm(theta)


def _on(depth, inside, true_depth, theta, lo_deg, hi_deg):
    deg = np.degrees(theta)
    return inside & (deg > lo_deg) & (deg < hi_deg) & (np.abs(depth - true_depth) < 0.5)


def test_a_septum_through_the_fat_does_not_hold_the_fascia():
    fascia, theta, depth, inside, true_depth = _layered(lambda t: 20.0 + 0 * t, septum=True)
    on = _on(depth, inside, true_depth, theta, 50, 130)
    assert on.sum() > 50
    assert np.abs(fascia.signed_mm[1][on]).max() < 1.0
    # The septum's pixels are superficial, well above the fascia.
    septum = _on(depth, inside, 12.0, theta, 50, 130)
    assert (fascia.signed_mm[1][septum] > 8.0).all()


def test_the_fascia_follows_a_layer_that_thins_out():
    """Fat 25 mm thick at the middle of the back, 3 mm at the sides; the dermis is never deep."""

    def fat_mm(t):
        return 3.0 + 22.0 * np.clip(np.sin(t), 0.0, None) ** 2

    fascia, theta, depth, inside, true_depth = _layered(fat_mm)
    on = _on(depth, inside, true_depth, theta, 10, 170)
    assert np.abs(fascia.signed_mm[1][on]).max() < 1.0
    dermis = inside & (depth < 1.5)
    assert (fascia.signed_mm[1][dermis] > 0).all(), "the skin is never deep to the fascia"


def test_fat_cut_by_the_field_of_view_is_not_subcutaneous_unless_it_reaches_the_skin():
    """Issue #14: where the field of view cuts the body, pelvic fat runs off the image.

    A body wider than the image: the skin along the bottom rows, subcutaneous
    fat 10 mm thick under it; muscle above; and a pocket of visceral fat deep
    in the muscle that runs off the top edge. Only the layer is subcutaneous.
    """
    from backmice.segment.fascia import subcutaneous_fat

    rows, cols, pixel = 80, 60, 1.0
    r = np.arange(rows)[:, None] * np.ones((1, cols))
    body2 = r < 70  # air below row 70
    depth2 = np.clip(70 - r, 0, None).astype(np.float32) * pixel  # below the skin
    layer = body2 & (depth2 > 2) & (depth2 <= 12)
    visceral = (r < 15) & (np.abs(np.arange(cols)[None, :] - 30) < 10)
    fat2 = layer | visceral
    vol = lambda a: np.broadcast_to(a, (3, rows, cols)).copy()  # noqa: E731
    sat = subcutaneous_fat(vol(fat2), vol(body2), vol(depth2), pixel_mm=(pixel, pixel))
    assert sat[:, layer].all()
    assert not sat[:, visceral].any(), "fat running off the image was taken for the layer"
