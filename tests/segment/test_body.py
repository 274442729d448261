"""The body mask and the depth below the skin, on a synthetic body with a known skin.

The body is a cylinder along the slice axis (radius ``R`` mm about the centre
of each slice): 2 mm of skin, then subcutaneous fat; outside it, air. Voxels
are rendered with exact in-plane partial volume (supersampled), multiplied by a
smooth receive field and given Rician noise, as an MR magnitude image is. The
depth of a voxel centre below the skin is ``R - r``, exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from backmice.segment.body import Body, body_mask, distance_mm

R = 50.0  #: Radius of the body's skin surface, mm.
SKIN_MM = 2.0
AIR = 0.0
#: (skin, fat) signal: T1 (the skin much darker than fat), and the Dixon fat + water
#: sum that the body is found on for Dixon (proton density: the skin a little darker).
T1, DIXON_SUM = (420.0, 1000.0), (650.0, 950.0)
NOISE = 25.0  #: Gaussian sigma per channel of the Rician noise.


def _body(
    spacing: tuple[float, float, float],
    *,
    signal: tuple[float, float] = T1,
    slices: int = 3,
    seed: int = 0,
    fill: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Image (slice, row, col) and the true depth (mm) of each voxel centre below the skin."""
    rng = np.random.default_rng(seed)
    pixel = spacing[1]
    n = int(np.ceil((2 * R + (-40.0 if fill else 16.0)) / pixel))
    centre = (n - 1) / 2 + 0.37  # the surface at an arbitrary sub-voxel position
    sub = (np.arange(5) + 0.5) / 5 - 0.5
    idx = np.arange(n)
    rows = (idx[:, None] + sub[None, :]).ravel()
    yy, xx = np.meshgrid(rows, rows, indexing="ij")
    r = np.hypot(yy - centre, xx - centre) * pixel
    value = np.where(r > R, AIR, np.where(r > R - SKIN_MM, signal[0], signal[1]))
    plane = value.reshape(n, 5, n, 5).mean(axis=(1, 3))
    yc, xc = np.meshgrid(idx, idx, indexing="ij")
    bias = 0.85 + 0.3 * (yc / n)  # a smooth receive field across the field of view
    truth = R - np.hypot(yc - centre, xc - centre) * pixel
    image = np.empty((slices, n, n), dtype=np.float32)
    for k in range(slices):
        re = plane * bias + rng.normal(0, NOISE, plane.shape)
        im = rng.normal(0, NOISE, plane.shape)
        image[k] = np.hypot(re, im)
    return image, np.broadcast_to(truth, image.shape)


#: The issue's geometries, each with the image its body is found on.
GEOMETRIES = {
    "axial 0.8x0.8x4": ((4.0, 0.8, 0.8), T1),
    "isotropic 1.2": ((1.2, 1.2, 1.2), T1),
    "dixon 1.5x1.5x3": ((3.0, 1.5, 1.5), DIXON_SUM),
}


@pytest.fixture(scope="module", params=list(GEOMETRIES), ids=list(GEOMETRIES))
def case(request) -> tuple[tuple[float, float, float], np.ndarray, np.ndarray, Body]:
    spacing, signal = GEOMETRIES[request.param]
    image, truth = _body(spacing, signal=signal)
    return spacing, image, truth, body_mask(image, spacing_mm=spacing)


def _wall(truth: np.ndarray, lo: float = 3.0, hi: float = 25.0) -> np.ndarray:
    return (truth >= lo) & (truth <= hi)


def test_skin_depth_is_measured_from_the_air_skin_boundary(case):
    spacing, _, truth, body = case
    wall = _wall(truth)
    error = body.skin_depth_mm[wall] - truth[wall]
    # A distance between voxel centres reads up to half a voxel more than the
    # distance to the surface (the nearest centre outside lies beyond it); the
    # mask's edge read 0.8-1.5 mm too deep here (next test).
    assert -0.1 < float(np.mean(error)) < 0.1 + 0.5 * spacing[1]
    assert float(np.std(error)) < 0.3
    assert float(np.max(np.abs(error))) < 0.5 + spacing[1]


def test_mask_edge_is_the_skin(case):
    # Issue #14: on real scans a mask thresholded near the noise floor lay 4-7 mm
    # out in the air. The mask's edge is now the air/skin edge itself, and the
    # stages' depth map is the depth below the skin.
    spacing, _, truth, body = case
    wall = _wall(truth)
    assert -0.1 < float(np.mean(body.depth_mm[wall] - truth[wall])) < 0.1 + 0.5 * spacing[1]
    assert body.depth_mm is body.skin_depth_mm


def test_mask_and_its_depth_map_agree(case):
    spacing, _, truth, body = case
    np.testing.assert_array_equal(body.depth_mm, distance_mm(body.mask, spacing))
    # Everything more than a pixel within the skin is body; the air beyond it is not.
    assert body.mask[truth > spacing[1]].all()
    assert not body.mask[truth < -spacing[1] - 0.5].any()
    # Outside the skin the depth below it is 0; inside, positive.
    assert (body.skin_depth_mm[truth < -1.0] == 0).all()
    assert (body.skin_depth_mm[truth > 1.0] > 0).all()
    assert body.skin_depth_mm.dtype == np.float32


def _ghosted(image: np.ndarray, *, shift_px: int, share: float, blur_px: float) -> np.ndarray:
    """The image with what real scans put in the air: a blurred halo and N/2 ghosts."""
    from scipy import ndimage

    halo = ndimage.gaussian_filter(image, (0, blur_px, blur_px))
    ghost = np.roll(image, shift_px, axis=1) + np.roll(image, -shift_px, axis=1)
    return np.maximum(image, 0.1 * halo + share * ghost).astype(np.float32)


@pytest.mark.parametrize("spacing", [(4.0, 0.8, 0.8), (3.0, 1.5, 1.5)])
def test_blur_and_ghosts_around_the_body_are_not_body(spacing):
    image, truth = _body(spacing, signal=T1, seed=5)
    pixel = spacing[1]
    ghosted = _ghosted(image, shift_px=round(6.0 / pixel), share=0.05, blur_px=6.0 / pixel)
    body = body_mask(ghosted, spacing_mm=spacing)
    wall = _wall(truth)
    error = body.depth_mm[wall] - truth[wall]
    # The mask thresholded near the noise floor read 0.9-1.1 mm deep here (and 4-7 mm
    # on real scans, whose halo is wider than this field of view's air).
    assert abs(float(np.median(error))) < 0.5
    assert float(np.percentile(np.abs(error), 90)) < 1.2


def test_coil_shading_and_dark_muscle():
    """A posterior coil: the far side at a third of the signal; muscle at a tenth of fat."""
    spacing = (3.0, 1.2, 1.2)
    image, truth = _body(spacing, signal=(420.0, 1000.0), seed=7)
    n = image.shape[1]
    rows = np.arange(n)[None, :, None]
    shading = 1.0 / 3.0 + (2.0 / 3.0) * rows / (n - 1)
    muscle = truth > 15.0  # deep to 15 mm of fat, dark muscle (a tenth of fat)
    shaded = np.where(muscle, image * 0.1, image) * shading
    body = body_mask(shaded.astype(np.float32), spacing_mm=spacing)
    assert body.mask[truth > spacing[1]].all(), "dark or shaded tissue was taken for air"
    wall = _wall(truth, 3.0, 12.0)
    assert abs(float(np.median(body.depth_mm[wall] - truth[wall]))) < 0.5 + 0.5 * spacing[1]


def test_zero_padding_beyond_the_field_of_view_is_not_skin():
    """A converted series padded with zeros where the field of view cut the body."""
    spacing = (3.0, 1.5, 1.5)
    image, truth = _body(spacing, signal=DIXON_SUM, seed=2)
    cut = image.shape[1] // 3
    padded = image.copy()
    padded[:, :cut] = 0.0  # the rows beyond the field of view: exact zeros
    body = body_mask(padded, spacing_mm=spacing)
    # The body runs to the cut; at the cut it is not skin (deep, as it really is).
    inside = truth[:, cut] > 20.0
    assert body.mask[:, cut][inside].all()
    assert body.depth_mm[:, cut][inside].min() > 10.0


def test_skin_level_is_half_way_from_air_to_the_skin_not_to_the_fat(case):
    _, image, truth, body = case
    assert body.skin_level is not None
    air = float(np.median(image[truth < -5]))
    # The skin's signal under the receive field, where the skin is.
    skin = float(np.median(image[(truth > 0.6) & (truth < 1.4)]))
    half = 0.5 * (air + skin)
    assert abs(body.skin_level - half) < 0.2 * (skin - air)
    # Half way to the (brighter) fat would put the skin at the fat's edge.
    fat = float(np.median(image[(truth > 4.0) & (truth < 8.0)]))
    assert body.skin_level < 0.5 * (air + fat) - 0.1 * (fat - skin)


def test_no_air_in_the_field_of_view_falls_back_to_the_mask():
    spacing = (3.0, 1.5, 1.5)
    image, _ = _body(spacing, signal=DIXON_SUM, fill=True)
    body = body_mask(image, spacing_mm=spacing, threshold=1.0)
    assert body.mask.all()
    assert body.skin_level is None
    assert body.skin_depth_mm is body.depth_mm


def test_same_result_on_every_run():
    spacing = (3.0, 1.5, 1.5)
    image, _ = _body(spacing, signal=DIXON_SUM, seed=3)
    a = body_mask(image, spacing_mm=spacing)
    b = body_mask(image, spacing_mm=spacing)
    assert a.skin_level == b.skin_level
    np.testing.assert_array_equal(a.skin_depth_mm, b.skin_depth_mm)


def test_a_dark_notch_where_the_field_of_view_cuts_the_body_is_body():
    """Bone cortex crossing the image's edge is not air open to the outside.

    The body fills the top of the image (the field of view cuts it there); a bone,
    dark cortex round bright marrow, runs off the top edge. The cortex at the edge
    falls below the air threshold but is body, so the marrow beside it is deep.
    """
    pixel = 0.8
    rng = np.random.default_rng(1)
    n_rows, n_cols = 120, 160
    yy, xx = np.mgrid[0:n_rows, 0:n_cols] * pixel
    r = np.hypot(xx - 64.0, yy - 10.0)
    plane = np.where(r <= 80.0, 330.0, AIR)  # muscle; air below the body's curve
    bone = ((xx - 40.0) / 8.0) ** 2 + ((yy - 4.0) / 14.0) ** 2  # runs off the top edge
    plane = np.where(bone <= 1.0, 40.0, plane)  # cortex
    plane = np.where(((xx - 40.0) / 6.0) ** 2 + ((yy - 4.0) / 12.0) ** 2 <= 1.0, 760.0, plane)
    image = np.stack(
        [
            np.hypot(plane + rng.normal(0, NOISE, plane.shape), rng.normal(0, NOISE, plane.shape))
            for _ in range(3)
        ]
    )
    body = body_mask(image.astype(np.float32), spacing_mm=(4.0, pixel, pixel))
    assert body.mask[:, :20, 25:56].all(), "the cortex at the edge was left as air"
    marrow = ((xx - 40.0) / 6.0) ** 2 + ((yy - 4.0) / 12.0) ** 2 <= 1.0
    assert body.depth_mm[1][marrow].min() > 20.0


def _wide_body() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A body wider than the image, cut by its left and top edges (1 mm pixels).

    Muscle, then subcutaneous fat and skin along its curved lower edge, air
    below. Returns the noiseless plane and its row (``yy``), column (``xx``)
    and radius (``r``) maps, mm.
    """
    n_rows, n_cols = 140, 160
    yy, xx = np.mgrid[0:n_rows, 0:n_cols] * 1.0
    r = np.hypot(xx - 40.0, yy + 40.0)
    plane = np.where(r <= 150.0, 330.0, AIR)  # muscle
    plane = np.where((r <= 150.0) & (r > 130.0), 900.0, plane)  # subcutaneous fat
    plane = np.where((r <= 150.0) & (r > 148.0), 420.0, plane)  # skin
    return plane, yy, xx, r


def _noisy(plane: np.ndarray, seed: int, slices: int = 3) -> np.ndarray:
    """``slices`` copies of ``plane`` with Rician noise, float32."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            np.hypot(plane + rng.normal(0, NOISE, plane.shape), rng.normal(0, NOISE, plane.shape))
            for _ in range(slices)
        ]
    ).astype(np.float32)


def test_dark_tissue_where_the_field_of_view_cuts_the_body_is_not_air():
    """A muscle in a coil's fall-off at the image's edge is not a pocket of air.

    A body wider than the field of view: cut by the left and top edges, skin and
    fat along its curved lower edge, air below. Along the left edge a band of
    muscle 14 mm wide and 60 mm long reads barely above the air (the coil's
    fall-off), beyond the small notches that are filled anyway.
    """
    plane, yy, xx, r = _wide_body()
    band = (xx < 14.0) & (yy > 10.0) & (yy < 70.0)
    plane = np.where(band, 90.0, plane)  # dark muscle against the left edge
    body = body_mask(_noisy(plane, 3), spacing_mm=(4.0, 1.0, 1.0))
    assert body.mask[:, band].mean() > 0.98, "the dark muscle at the edge was taken for air"
    assert not body.mask[:, r > 152.0].any()
    # Nothing at the edge is skin: the dark band lies deep below the real skin.
    assert body.depth_mm[1][band & (xx >= 4.0)].min() > 20.0


def test_a_thin_dark_plane_from_the_cut_edge_is_body_and_a_wide_cleft_is_air():
    """Air enters the body only from the skin; a wide cleft of air cut by the image stays air.

    A body cut by the left and top edges of the image (skin and fat along its
    curved lower edge). A plane of tissue as dark as air (a fascia, cortex,
    tendon between two muscles), 4 mm thick and 60 mm long, runs in from the
    left edge: it is body. A cleft of air 16 mm wide runs down from the top edge
    (the gap between two buttocks cut by the image): it stays air.
    """
    plane, yy, xx, _ = _wide_body()
    dark = (xx < 60.0) & (np.abs(yy - 40.0) < 2.0)
    plane = np.where(dark, AIR, plane)
    cleft = (np.abs(xx - 110.0) < 8.0) & (yy < 30.0)
    plane = np.where(cleft, AIR, plane)
    body = body_mask(_noisy(plane, 5), spacing_mm=(4.0, 1.0, 1.0))
    assert body.mask[:, dark].mean() > 0.98, "the dark plane at the cut edge was taken for air"
    assert body.depth_mm[1][dark & (xx >= 4.0)].min() > 20.0
    inner = (np.abs(xx - 110.0) < 5.0) & (yy < 25.0)
    assert not body.mask[:, inner].any(), "the cleft of air was filled"
    # The field of view's edge is recorded, and the body touches it where it is cut.
    assert body.cut()[1, :, 0].sum() > 60
    assert not body.cut()[1, -1, :].any()
