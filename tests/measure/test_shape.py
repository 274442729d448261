"""backmice.measure.shape against analytic ellipsoids, SimpleITK and pyradiomics.

Shapes are rendered the way a segmentation digitises them: a voxel belongs to
the object when its centre is inside. Tolerances, and why:

- volume: the voxel count of a centre-inside digitisation is unbiased; its
  scatter for a 20 mm sphere at 1 mm is about 0.3 %, so 1 % (3 % on the
  4 mm-slice grid, where each slice holds ~10 % of the volume);
- Feret and in-plane axes: within half a voxel extent ``w`` along the measured
  direction (``w = Σ|u·a_i|``) for ellipsoids at least 1.5 voxels thick in
  every direction (3D Feret: 99.5 % of them, mean +0.02..+0.04 w, sd 0.10–0.14 w,
  worst −0.65 w in 1800, so 0.7 w per case and 90 % within 0.5 w);
- ellipsoid axes: within a quarter voxel extent plus 1.5 %;
- SimpleITK: its Feret diameter is the centre-to-centre one, equal to ours with
  ``correction="none"`` to 1e-9 mm; its centroid and volume are equal to ours.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import SimpleITK as sitk

from backmice.io.writer import make_affine, rotation_matrix
from backmice.measure import (
    InPlaneAxes,
    NoduleShape,
    axis_lengths_in_plane,
    centroid_lps,
    distance_stats,
    ellipsoid_axes_mm,
    feret_diameter_mm,
    long_short_axes_mm,
    measure_labels,
    volume_mm3,
    voxel_volume_mm3,
)
from backmice.measure import shape as shape_mod

SPACINGS = {
    "iso1": (1.0, 1.0, 1.0),
    "mr4x0.8": (4.0, 0.8, 0.8),
    "aniso2x0.6x0.9": (2.0, 0.6, 0.9),
}

# ----------------------------------------------------------------------- helpers


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def oblique(spacing, rng=None, *, origin=(0.0, 0.0, 0.0)) -> np.ndarray:
    """An oblique affine (random rotation, or a fixed double tilt without ``rng``)."""
    rot = (
        random_rotation(rng)
        if rng is not None
        else rotation_matrix("x", 23.0) @ rotation_matrix([1, 2, 3], 31.0)
    )
    return make_affine(spacing, origin=origin, rotation=rot)


def render(affine, centre, semi, rot, pad=1):
    """Centre-inside digitisation of an ellipsoid: ``(mask, affine of the mask's grid)``.

    The ellipsoid has semi-axes ``semi`` (mm) along the columns of ``rot`` (LPS).
    """
    lin, t = affine[:3, :3], affine[:3, 3]
    half = np.sqrt(((rot * semi) ** 2).sum(axis=1))
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    idx = (corners * half + centre - t) @ np.linalg.inv(lin).T
    lo = np.floor(idx.min(axis=0)).astype(int) - pad
    hi = np.ceil(idx.max(axis=0)).astype(int) + pad
    grid = np.stack(
        np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)], indexing="ij"),
        axis=-1,
    )
    q = (grid @ lin.T + t - centre) @ rot
    crop_affine = affine.copy()
    crop_affine[:3, 3] = lin @ lo + t
    return ((q / semi) ** 2).sum(axis=-1) <= 1.0, crop_affine


def random_ellipsoid(rng, spacing, *, oblique_grid, min_voxels=1.5, diam=(8.0, 50.0)):
    """A well-resolved random ellipsoid: ``(mask, affine, centre, semi, rot)``."""
    thick = min_voxels * max(spacing)
    a = max(rng.uniform(*diam) / 2, thick)
    b = rng.uniform(max(thick, 0.5 * a), a)
    c = rng.uniform(max(thick, 0.5 * b), b)
    semi = np.array([a, b, c])
    affine = oblique(spacing, rng) if oblique_grid else make_affine(spacing)
    affine[:3, 3] = rng.uniform(-50, 50, 3)
    centre = affine[:3, 3] + rng.uniform(-3, 3, 3)
    rot = random_rotation(rng)
    mask, crop_affine = render(affine, centre, semi, rot)
    return mask, crop_affine, centre, semi, rot


def extent_along(u, affine) -> float:
    """One voxel's extent along unit vector ``u`` (mm): ``Σ|u·a_i|``."""
    return float(np.abs(np.asarray(u) @ affine[:3, :3]).sum())


def to_sitk(mask, affine) -> sitk.Image:
    """The mask as a SimpleITK image with the same geometry (index order col, row, slice)."""
    img = sitk.GetImageFromArray(mask.astype(np.uint8))
    cols = affine[:3, [2, 1, 0]]
    spacing = np.linalg.norm(cols, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((cols / spacing).ravel().tolist())
    img.SetOrigin(affine[:3, 3].tolist())
    return img


def sitk_stats(mask, affine, *, feret=True) -> sitk.LabelShapeStatisticsImageFilter:
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputePerimeterOff()
    f.SetComputeFeretDiameter(feret)
    f.Execute(to_sitk(mask, affine))
    return f


def plane_section(affine, k, centre, semi, rot):
    """Semi-axes (major, minor) of the ellipsoid's section by slice plane ``k``, mm."""
    lin, t = affine[:3, :3], affine[:3, 3]
    frame, _ = shape_mod._in_plane_frame(lin)
    q = rot @ np.diag(1.0 / semi**2) @ rot.T
    p0 = lin[:, 0] * k + t - centre
    pm = frame.T @ q @ frame
    b = frame.T @ q @ p0
    r = 1.0 - p0 @ q @ p0 + b @ np.linalg.solve(pm, b)
    lam = np.linalg.eigvalsh(pm)
    return np.sqrt(r / lam[0]), np.sqrt(r / lam[1])


# ------------------------------------------------------------------- volume etc.


def test_voxel_volume_is_abs_det_also_oblique_and_flipped():
    assert voxel_volume_mm3(np.diag([4.0, 0.8, 0.8, 1.0])) == pytest.approx(2.56)
    assert voxel_volume_mm3(oblique((4.0, 0.8, 0.7))) == pytest.approx(4.0 * 0.8 * 0.7)
    assert voxel_volume_mm3(np.diag([-2.0, 1.0, 0.5, 1.0])) == pytest.approx(1.0)
    assert voxel_volume_mm3(make_affine((3.0, 0.5, 0.5), orientation="sagittal")) == (
        pytest.approx(0.75)
    )


@pytest.mark.parametrize(
    ("spacing", "tol"), [((1.0, 1.0, 1.0), 0.01), ((4.0, 0.8, 0.8), 0.03)], ids=["1mm", "4x0.8"]
)
def test_volume_and_centroid_of_a_20mm_sphere(spacing, tol):
    rng = np.random.default_rng(1)
    true_volume = 4.0 / 3.0 * np.pi * 10.0**3
    for _ in range(5):
        affine = oblique(spacing, rng, origin=rng.uniform(-20, 20, 3))
        centre = affine[:3, 3] + rng.uniform(-2, 2, 3)
        mask, crop_affine = render(affine, centre, np.full(3, 10.0), np.eye(3))
        assert volume_mm3(mask, crop_affine) == pytest.approx(true_volume, rel=tol)
        # the centroid of a symmetric digitisation is off by well under a voxel
        err = np.linalg.norm(centroid_lps(mask, crop_affine) - centre)
        assert err < 0.1 * max(spacing)


def test_volume_and_centroid_of_a_known_box():
    mask = np.zeros((6, 7, 8), bool)
    mask[1:4, 2:6, 3:5] = True  # 3 x 4 x 2 voxels
    affine = make_affine((4.0, 0.8, 0.5), origin=(10.0, -5.0, 3.0))
    assert volume_mm3(mask, affine) == pytest.approx(24 * 4.0 * 0.8 * 0.5)
    expected = affine @ np.array([2.0, 3.5, 3.5, 1.0])
    np.testing.assert_allclose(centroid_lps(mask, affine), expected[:3])
    labels = mask.astype(np.int16) * 7
    assert volume_mm3(labels, affine, label=7) == volume_mm3(mask, affine)
    assert volume_mm3(labels, affine, label=3) == 0.0


# ------------------------------------------------------------------------- Feret


@pytest.mark.parametrize("oblique_grid", [False, True], ids=["axial", "oblique"])
@pytest.mark.parametrize("spacing", list(SPACINGS.values()), ids=list(SPACINGS))
def test_feret_within_half_a_voxel_on_random_ellipsoids(spacing, oblique_grid):
    rng = np.random.default_rng([int(10 * x) for x in spacing] + [oblique_grid])
    errors = []
    for _ in range(12):
        mask, affine, _, semi, rot = random_ellipsoid(rng, spacing, oblique_grid=oblique_grid)
        d = feret_diameter_mm(mask, affine)
        d_centres = feret_diameter_mm(mask, affine, correction="none")
        w = extent_along(rot[:, 0], affine)
        # voxel centres are inside the ellipsoid: never longer than it
        assert d_centres <= 2 * semi[0] + 1e-9
        # 99.5 % of such ellipsoids are within 0.5 w, the worst of 1800 was -0.65 w
        assert abs(d - 2 * semi[0]) <= 0.7 * w, (d, 2 * semi[0], w)
        errors.append((d - 2 * semi[0]) / w)
    assert np.mean(np.abs(errors) <= 0.5) >= 0.9
    # and unbiased on average (mean +0.02..+0.04 w, sd of the mean of 12 ~0.04 w)
    assert abs(np.mean(errors)) < 0.2


def test_feret_corrections_spheres_and_elongated_ellipsoids():
    rng = np.random.default_rng(7)
    corrections = ("none", "adaptive", "half", "full")
    for _ in range(4):
        affine = oblique((4.0, 0.8, 0.8), rng)
        mask, crop_affine = render(affine, affine[:3, 3], np.full(3, 9.0), np.eye(3))
        values = {c: feret_diameter_mm(mask, crop_affine, correction=c) for c in corrections}
        assert values["none"] < values["adaptive"] < values["full"]
        assert values["none"] < values["half"] < values["full"]
        # a sphere's centres already reach nearly its diameter (18 mm); the adaptive
        # correction adds ~0.15 w there (see the module docstring)
        w = values["full"] - values["none"]
        assert -0.25 * w < values["none"] - 18.0 <= 0.0
        assert abs(values["adaptive"] - 18.0) < 0.5 * w
    # on prolate ellipsoids (2:1) the centres fall short and "adaptive" is the least biased
    errors = {c: [] for c in corrections}
    for _ in range(12):
        affine = oblique((1.0, 1.0, 1.0), rng)
        a = rng.uniform(6, 20)
        mask, crop_affine = render(
            affine, affine[:3, 3], np.array([a, a / 2, a / 2]), random_rotation(rng)
        )
        w = feret_diameter_mm(mask, crop_affine, correction="full") - feret_diameter_mm(
            mask, crop_affine, correction="none"
        )
        for c in corrections:
            errors[c].append((feret_diameter_mm(mask, crop_affine, correction=c) - 2 * a) / w)
    bias = {c: abs(np.mean(e)) for c, e in errors.items()}
    assert bias["adaptive"] == min(bias.values())
    assert bias["adaptive"] < 0.1


def test_feret_of_a_rotated_grid_is_rotation_invariant():
    rng = np.random.default_rng(3)
    mask, affine, *_ = random_ellipsoid(rng, (4.0, 0.8, 0.8), oblique_grid=True)
    base = feret_diameter_mm(mask, affine)
    for _ in range(3):
        rigid = np.eye(4)
        rigid[:3, :3] = random_rotation(rng)
        rigid[:3, 3] = rng.uniform(-100, 100, 3)
        moved = rigid @ affine
        assert feret_diameter_mm(mask, moved) == pytest.approx(base, abs=1e-9)
        np.testing.assert_allclose(
            centroid_lps(mask, moved), rigid[:3, :3] @ centroid_lps(mask, affine) + rigid[:3, 3]
        )
        np.testing.assert_allclose(
            ellipsoid_axes_mm(mask, moved), ellipsoid_axes_mm(mask, affine), rtol=1e-9
        )


@pytest.mark.parametrize("case", range(6))
def test_feret_none_equals_simpleitk_feret_and_centroid_volume_match(case):
    rng = np.random.default_rng(100 + case)
    spacing = [(1.0, 1.0, 1.0), (4.0, 0.8, 0.8), (2.0, 0.6, 0.9)][case % 3]
    affine = oblique(spacing, rng, origin=rng.uniform(-30, 30, 3)) if case >= 3 else None
    affine = make_affine(spacing) if affine is None else affine
    # an irregular blob: two overlapping ellipsoids on one grid
    mask = np.zeros((9, 30, 30), bool)
    idx = np.indices(mask.shape).reshape(3, -1).T
    pts = idx @ affine[:3, :3].T + affine[:3, 3]
    mid = affine[:3, :3] @ np.array([4.0, 15.0, 15.0]) + affine[:3, 3]
    for _ in range(2):
        centre = mid + rng.uniform(-3, 3, 3)
        q = (pts - centre) @ random_rotation(rng)
        semi = rng.uniform(3.0, 9.0, 3)
        mask.flat[((q / semi) ** 2).sum(axis=1) <= 1] = True
    f = sitk_stats(mask, affine)
    assert feret_diameter_mm(mask, affine, correction="none") == pytest.approx(
        f.GetFeretDiameter(1), abs=1e-9
    )
    np.testing.assert_allclose(centroid_lps(mask, affine), f.GetCentroid(1), atol=1e-9)
    assert volume_mm3(mask, affine) == pytest.approx(f.GetPhysicalSize(1), rel=1e-12)


def test_feret_degenerate_masks():
    affine = make_affine((4.0, 0.8, 0.8))
    one = np.zeros((3, 4, 4), bool)
    one[1, 2, 2] = True
    # a single voxel: its own extent along its longest edge (the slice step)
    assert feret_diameter_mm(one, affine) == pytest.approx(4.0)
    assert feret_diameter_mm(one, affine, correction="none") == 0.0
    two = one.copy()
    two[1, 2, 3] = True
    assert feret_diameter_mm(two, affine, correction="none") == pytest.approx(0.8)
    assert feret_diameter_mm(two, affine, correction="full") == pytest.approx(1.6)
    # a long line (more points than the brute-force limit): collinear hull path
    line = np.zeros((1, 1, 200), bool)
    line[0, 0, 10:190] = True
    assert feret_diameter_mm(line, affine, correction="none") == pytest.approx(179 * 0.8)
    assert feret_diameter_mm(line, affine, correction="full") == pytest.approx(180 * 0.8)
    # a flat disc on one oblique slice: planar hull path, matches SimpleITK
    disc = np.zeros((1, 60, 60), bool)
    r, c = np.ogrid[:60, :60]
    disc[0] = (r - 30) ** 2 + (c - 29.5) ** 2 <= 26**2
    obl = oblique((4.0, 0.8, 0.7))
    expected = sitk_stats(disc, obl).GetFeretDiameter(1)
    assert feret_diameter_mm(disc, obl, correction="none") == pytest.approx(expected, abs=1e-9)
    with pytest.raises(ValueError, match="empty"):
        feret_diameter_mm(np.zeros((2, 2, 2), bool), affine)
    with pytest.raises(ValueError, match="correction"):
        feret_diameter_mm(one, affine, correction="corners")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="singular"):
        feret_diameter_mm(one, np.diag([1.0, 1.0, 0.0, 1.0]))


def test_a_large_thin_sheet_does_not_hang():
    """NOTES: SimpleITK's Feret did not finish in 300 s on a large sheet-like label."""
    shape = (40, 512, 512)
    r, c = np.meshgrid(np.arange(512), np.arange(512), indexing="ij")
    surface = (20 + 12 * np.sin(r / 90.0) * np.cos(c / 120.0)).astype(int)
    labels = np.zeros(shape, np.uint8)
    labels[surface, r, c] = 1  # one voxel thick, 262144 voxels, curved
    affine = make_affine((1.0, 0.7, 0.7))
    (result,) = measure_labels(labels, affine)
    # corner to corner of the 512 x 512 sheet, at least
    assert result.max_diameter_mm >= np.hypot(511 * 0.7, 511 * 0.7)
    flat = np.zeros((3, 512, 512), np.uint8)
    flat[1] = 1
    (result,) = measure_labels(flat, affine, correction="none")
    assert result.max_diameter_mm == pytest.approx(np.hypot(511 * 0.7, 511 * 0.7))
    np.testing.assert_allclose(result.axes_mm[2], 2 * np.sqrt(5 / 12))  # one layer: a voxel


# ----------------------------------------------------------------- in-plane axes


def test_in_plane_axes_of_a_pixel_rectangle_are_exact_without_correction():
    mask = np.zeros((20, 20), bool)
    mask[3:13, 4:8] = True  # 10 rows x 4 cols
    row_mm, col_mm = 0.7, 1.1
    ly, lx = 9 * row_mm, 3 * col_mm
    got = axis_lengths_in_plane(mask, row_mm=row_mm, col_mm=col_mm, correction="none")
    assert isinstance(got, InPlaneAxes)
    assert got.long_mm == pytest.approx(np.hypot(lx, ly))
    # caliper width perpendicular to a rectangle's diagonal: twice the corner's distance
    assert got.short_mm == pytest.approx(2 * lx * ly / np.hypot(lx, ly))
    assert got.angle_deg == pytest.approx(np.degrees(np.arctan2(ly, lx))) or (
        got.angle_deg == pytest.approx(180 - np.degrees(np.arctan2(ly, lx)))
    )


@pytest.mark.parametrize(("row_mm", "col_mm"), [(1.0, 1.0), (0.8, 0.8), (0.6, 0.9)])
def test_in_plane_axes_of_random_ellipses_within_half_a_pixel(row_mm, col_mm):
    rng = np.random.default_rng(int(row_mm * 10 + col_mm * 100))
    r, c = np.mgrid[:100, :100]
    errors = []
    for _ in range(20):
        a = rng.uniform(4, 25)
        b = rng.uniform(max(0.3 * a, 1.5 * max(row_mm, col_mm)), a)
        theta = rng.uniform(0, np.pi)
        x0, y0 = 50 * col_mm + rng.uniform(-1, 1), 50 * row_mm + rng.uniform(-1, 1)
        x, y = c * col_mm - x0, r * row_mm - y0
        u = x * np.cos(theta) + y * np.sin(theta)
        v = -x * np.sin(theta) + y * np.cos(theta)
        mask = (u / a) ** 2 + (v / b) ** 2 <= 1
        got = axis_lengths_in_plane(mask, row_mm=row_mm, col_mm=col_mm)
        ang = np.radians(got.angle_deg)
        w_long = abs(np.cos(ang)) * col_mm + abs(np.sin(ang)) * row_mm
        w_short = abs(np.sin(ang)) * col_mm + abs(np.cos(ang)) * row_mm
        # 97-98.5 % of such ellipses are within 0.5 w, the worst of 1200 was 0.83 w
        assert abs(got.long_mm - 2 * a) <= 0.9 * w_long
        assert abs(got.short_mm - 2 * b) <= 0.9 * w_short
        errors.append([(got.long_mm - 2 * a) / w_long, (got.short_mm - 2 * b) / w_short])
        if a > 1.5 * b:  # a well-defined direction: within 3 × (pixel extent / a) radians
            diff = abs((got.angle_deg - np.degrees(theta) + 90) % 180 - 90)
            assert diff < 3 * np.degrees(np.arctan(w_long / a))
    errors = np.array(errors)
    assert np.all(np.mean(np.abs(errors) <= 0.5, axis=0) >= 0.85)
    assert np.all(np.abs(errors.mean(axis=0)) < 0.15)


def test_in_plane_axes_degenerate_and_invalid():
    one = np.zeros((5, 5), bool)
    one[2, 2] = True
    got = axis_lengths_in_plane(one, row_mm=0.5, col_mm=0.8)
    assert got.long_mm == pytest.approx(0.8)  # a single pixel: its own extent
    assert got.short_mm == pytest.approx(0.5)
    assert got.angle_deg == pytest.approx(0.0)  # along the columns
    line = np.zeros((9, 9), bool)
    line[np.arange(9), np.arange(9)] = True  # a diagonal line: one pixel wide
    got = axis_lengths_in_plane(line, row_mm=1.0, col_mm=1.0)
    assert got.short_mm == pytest.approx(np.sqrt(2))  # the pixel's extent across it
    assert got.angle_deg == pytest.approx(45.0)
    with pytest.raises(ValueError, match="empty"):
        axis_lengths_in_plane(np.zeros((3, 3)), row_mm=1, col_mm=1)
    with pytest.raises(ValueError, match="positive"):
        axis_lengths_in_plane(one, row_mm=0, col_mm=1)
    with pytest.raises(ValueError, match="2D"):
        axis_lengths_in_plane(np.ones((2, 2, 2)), row_mm=1, col_mm=1)


@pytest.mark.parametrize("oblique_grid", [False, True], ids=["axial", "oblique"])
def test_long_short_axes_on_the_largest_slice(oblique_grid):
    rng = np.random.default_rng(11 + oblique_grid)
    spacing = (4.0, 0.8, 0.8)
    for _ in range(6):
        mask, affine, centre, semi, rot = random_ellipsoid(
            rng, spacing, oblique_grid=oblique_grid, diam=(12.0, 50.0)
        )
        got = long_short_axes_mm(mask, affine)
        k = got["slice_index"]
        counts = mask.sum(axis=(1, 2))
        assert counts[k] == counts.max()
        assert got["area_mm2"] == pytest.approx(counts[k] * 0.64)
        a2, b2 = plane_section(affine, k, centre, semi, rot)
        ang = np.radians(got["angle_deg"])
        w_long = 0.8 * (abs(np.cos(ang)) + abs(np.sin(ang)))  # a pixel's extent, both ways
        assert abs(got["long_axis_mm"] - 2 * a2) <= 0.5 * w_long
        assert abs(got["short_axis_mm"] - 2 * b2) <= 0.5 * w_long
        long_ends, short_ends = got["long_axis_end_points_lps"], got["short_axis_end_points_lps"]
        assert np.linalg.norm(long_ends[0] - long_ends[1]) == pytest.approx(got["long_axis_mm"])
        assert np.linalg.norm(short_ends[0] - short_ends[1]) == pytest.approx(got["short_axis_mm"])
        assert (long_ends[0] - long_ends[1]) @ (short_ends[0] - short_ends[1]) == pytest.approx(
            0.0, abs=1e-9
        )
        normal = np.cross(affine[:3, 2], affine[:3, 1])
        plane_point = affine[:3, :3] @ np.array([k, 0, 0]) + affine[:3, 3]
        for p in (*long_ends, *short_ends):
            assert (p - plane_point) @ normal == pytest.approx(0.0, abs=1e-9)


def test_long_short_axes_use_non_square_pixels():
    mask = np.zeros((3, 20, 20), bool)
    mask[1, 5:15, 5:7] = True  # 10 rows x 2 cols
    affine = make_affine((5.0, 0.5, 2.0))  # rows 0.5 mm, cols 2 mm apart
    got = long_short_axes_mm(mask, affine, correction="full")
    # without the diagonal's corners: the extents are 5 mm (rows) and 4 mm (cols)
    assert got["slice_index"] == 1
    assert 5.0 < got["long_axis_mm"] < np.hypot(5.0, 4.0) + 1e-9
    assert got["short_axis_mm"] < got["long_axis_mm"]


# ---------------------------------------------------------------- ellipsoid axes


@pytest.mark.parametrize("spacing", list(SPACINGS.values()), ids=list(SPACINGS))
def test_ellipsoid_axes_of_random_ellipsoids(spacing):
    rng = np.random.default_rng(int(sum(spacing) * 10))
    for _ in range(10):
        mask, affine, _, semi, _ = random_ellipsoid(rng, spacing, oblique_grid=True)
        got = ellipsoid_axes_mm(mask, affine)
        truth = 2 * semi  # a >= b >= c
        np.testing.assert_allclose(got, truth, rtol=0.015, atol=0.25 * max(spacing))


def test_ellipsoid_axes_against_simpleitk_and_the_cell_moment_choices():
    rng = np.random.default_rng(5)
    mask, affine, _, semi, _ = random_ellipsoid(rng, (2.0, 0.6, 0.9), oblique_grid=True)
    f = sitk_stats(mask, affine, feret=False)
    # SimpleITK's principal moments are the centres' covariance eigenvalues
    moments = np.sort(f.GetPrincipalMoments(1))[::-1]
    np.testing.assert_allclose(
        ellipsoid_axes_mm(mask, affine, cell_moment="never"), 2 * np.sqrt(5 * moments), rtol=1e-9
    )
    # its equivalent ellipsoid has the same moment ratios scaled to the same volume
    equiv = np.sort(f.GetEquivalentEllipsoidDiameter(1))[::-1]
    np.testing.assert_allclose(ellipsoid_axes_mm(mask, affine), equiv, rtol=0.02)
    np.testing.assert_allclose(equiv, 2 * semi, rtol=0.03)
    # "auto" adds nothing when the mask spreads in every direction; "always" adds A Aᵀ/12
    np.testing.assert_allclose(
        ellipsoid_axes_mm(mask, affine), ellipsoid_axes_mm(mask, affine, cell_moment="never")
    )
    assert np.all(
        ellipsoid_axes_mm(mask, affine, cell_moment="always") > ellipsoid_axes_mm(mask, affine)
    )
    with pytest.raises(ValueError, match="cell_moment"):
        ellipsoid_axes_mm(mask, affine, cell_moment="sometimes")  # type: ignore[arg-type]


def test_ellipsoid_axes_of_one_slice_and_one_voxel():
    affine = make_affine((4.0, 1.0, 1.0))
    one = np.zeros((1, 1, 1), bool)
    one[0, 0, 0] = True
    # a single voxel: the ellipsoid of a box with edges 4, 1, 1
    np.testing.assert_allclose(
        ellipsoid_axes_mm(one, affine), 2 * np.sqrt(5 * np.array([16, 1, 1]) / 12)
    )
    disc = np.zeros((1, 41, 41), bool)
    r, c = np.ogrid[:41, :41]
    disc[0] = (r - 20) ** 2 + (c - 20) ** 2 <= 15**2
    got = ellipsoid_axes_mm(disc, affine)
    # the in-plane axes are the disc's (a flat disc has variance r²/4, reported as if a
    # ball: 2·sqrt(5/4)·r); the thickness is the slice's
    np.testing.assert_allclose(got[:2], 2 * np.sqrt(5 / 4) * 15, rtol=0.01)
    assert got[2] == pytest.approx(2 * np.sqrt(5 * 16 / 12))


def test_pyradiomics_agrees_where_definitions_match():
    if os.environ.get("CI"):  # CI installs pyradiomics (.ci/run): the cross-check must run there
        import radiomics.shape as radiomics_shape
    else:
        radiomics_shape = pytest.importorskip("radiomics.shape")
    rng = np.random.default_rng(9)
    mask, affine, *_ = random_ellipsoid(rng, (2.0, 0.6, 0.9), oblique_grid=False, diam=(8, 20))
    lab = to_sitk(mask, affine)
    img = sitk.Cast(lab, sitk.sitkFloat32)
    features = radiomics_shape.RadiomicsShape(img, lab)
    features.enableAllFeatures()
    result = {k: float(v) for k, v in features.execute().items()}
    # pyradiomics' axis lengths are 4·sqrt(λ) of the centres' covariance (a 2D convention)
    never = ellipsoid_axes_mm(mask, affine, cell_moment="never")
    np.testing.assert_allclose(
        [result["MajorAxisLength"], result["MinorAxisLength"], result["LeastAxisLength"]],
        never * 2 / np.sqrt(5),
        rtol=1e-6,
    )
    assert result["VoxelVolume"] == pytest.approx(volume_mm3(mask, affine))
    # its Maximum3DDiameter uses surface-mesh vertices, which lie on the voxel cells'
    # faces: between the centres' diameter and that plus a voxel diagonal
    centres = feret_diameter_mm(mask, affine, correction="none")
    diagonal = float(np.linalg.norm([2.0, 0.6, 0.9]))
    assert centres <= result["Maximum3DDiameter"] <= centres + diagonal


# -------------------------------------------------------------- measure_labels


def _label_scene(rng, spacing, n):
    affine = oblique(spacing, rng)
    labels = np.zeros((24, 120, 120), np.int32)
    lin, t = affine[:3, :3], affine[:3, 3]
    truths = {}
    value = 0
    while value < n:
        a = rng.uniform(5, 12)
        semi = np.array([a, rng.uniform(0.6, 1) * a, max(3 * max(spacing) / 2, 0.5 * a)])
        rot = random_rotation(rng)
        centre = lin @ (rng.uniform(0.2, 0.8, 3) * np.array(labels.shape)) + t
        mask, crop_affine = render(affine, centre, semi, rot)
        lo = np.rint(np.linalg.solve(lin, crop_affine[:3, 3] - t)).astype(int)
        hi = lo + np.array(mask.shape)
        if np.any(lo < 0) or np.any(hi > labels.shape):
            continue
        box = tuple(slice(p, q) for p, q in zip(lo, hi, strict=True))
        if np.any(labels[box][mask]):
            continue
        value += 1
        labels[box][mask] = value
        truths[value] = (centre, semi)
    return labels, affine, truths


def test_measure_labels_matches_the_single_label_functions():
    rng = np.random.default_rng(21)
    labels, affine, truths = _label_scene(rng, (2.0, 0.8, 0.8), 5)
    results = measure_labels(labels, affine)
    assert [r.label for r in results] == [1, 2, 3, 4, 5]
    for r in results:
        assert isinstance(r, NoduleShape)
        assert r.n_voxels == np.count_nonzero(labels == r.label)
        assert r.volume_mm3 == pytest.approx(volume_mm3(labels, affine, label=r.label))
        np.testing.assert_allclose(r.centroid_lps, centroid_lps(labels, affine, label=r.label))
        assert r.max_diameter_mm == pytest.approx(feret_diameter_mm(labels, affine, label=r.label))
        np.testing.assert_allclose(r.axes_mm, ellipsoid_axes_mm(labels, affine, label=r.label))
        ls = long_short_axes_mm(labels, affine, label=r.label)
        assert r.long_axis_mm == pytest.approx(ls["long_axis_mm"])
        assert r.short_axis_mm == pytest.approx(ls["short_axis_mm"])
        assert r.long_axis_slice == ls["slice_index"]
        np.testing.assert_allclose(r.long_axis_end_points_lps, ls["long_axis_end_points_lps"])
        ends = r.max_diameter_end_points_lps
        assert np.linalg.norm(ends[0] - ends[1]) == pytest.approx(r.max_diameter_mm)
        centre, semi = truths[r.label]
        assert np.linalg.norm(r.centroid_lps - centre) < 0.5
        assert abs(r.max_diameter_mm - 2 * semi.max()) < 0.5 * (2.0 + 0.8 + 0.8)
        # principal directions are orthonormal columns
        np.testing.assert_allclose(
            r.axes_directions_lps.T @ r.axes_directions_lps, np.eye(3), atol=1e-12
        )
        row = r.as_row()
        assert row["nodule_id"] == r.label
        assert row["axis_1_mm"] >= row["axis_2_mm"] >= row["axis_3_mm"]
        assert row["centroid_z_mm"] == pytest.approx(r.centroid_lps[2])


def test_measure_labels_ids_order_missing_and_input_checks():
    rng = np.random.default_rng(22)
    labels, affine, _ = _label_scene(rng, (2.0, 0.8, 0.8), 3)
    got = measure_labels(labels, affine, ids=[3, 1])
    assert [r.label for r in got] == [3, 1]
    with pytest.raises(ValueError, match="not in the image"):
        measure_labels(labels, affine, ids=[1, 9])
    with pytest.raises(ValueError, match="positive"):
        measure_labels(labels, affine, ids=[0])
    with pytest.raises(ValueError, match="integers"):
        measure_labels(labels.astype(float), affine)
    with pytest.raises(ValueError, match="3D"):
        measure_labels(labels[0], affine)
    (single,) = measure_labels(labels > 0, affine, ids=[1])
    assert single.n_voxels == np.count_nonzero(labels)
    assert measure_labels(np.zeros((2, 2, 2), np.int32), affine) == []


def test_measure_labels_many_small_labels():
    labels = np.zeros((10, 200, 200), np.int32)
    grid = np.arange(0, 200, 5)
    rr, cc = np.meshgrid(grid, grid, indexing="ij")
    values = np.arange(1, rr.size + 1).reshape(rr.shape)
    for dr in range(3):  # 3 x 3 x 2 voxel blobs, 1600 of them
        for dc in range(3):
            labels[4, rr + dr, cc + dc] = values
            labels[5, rr + dr, cc + dc] = values
    affine = make_affine((3.0, 0.8, 0.8))
    results = measure_labels(labels, affine, correction="none")
    assert len(results) == 1600
    assert {r.n_voxels for r in results} == {18}
    assert {round(r.max_diameter_mm, 9) for r in results} == {
        round(float(np.sqrt(3.0**2 + 1.6**2 + 1.6**2)), 9)
    }


# --------------------------------------------------------------- distance_stats


def test_distance_stats_matches_per_label_numpy():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 6, size=(8, 30, 30))
    values = rng.normal(0, 10, size=labels.shape).astype(np.float32)
    values[0, 0, :5] = np.nan
    got = distance_stats(labels, values)
    np.testing.assert_array_equal(got["ids"], [1, 2, 3, 4, 5])
    for i, lab in enumerate(got["ids"]):
        v = values[labels == lab].astype(np.float64)
        v = v[~np.isnan(v)]
        assert got["count"][i] == v.size
        assert got["min"][i] == v.min()
        assert got["max"][i] == v.max()
        assert got["median"][i] == pytest.approx(np.median(v))
        assert got["mean"][i] == pytest.approx(v.mean())
    sub = distance_stats(labels, values, [4, 9, 2])
    np.testing.assert_array_equal(sub["count"][[0, 2]], got["count"][[3, 1]])
    assert sub["count"][1] == 0 and np.isnan(sub["median"][1])
    with pytest.raises(ValueError, match="shape"):
        distance_stats(labels, values[0])
