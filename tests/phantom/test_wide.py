"""The wide phantom family: its variations are drawn, and truth matches what is rendered.

Nodules are placed by hand (``place_in_layer``) on the anatomy of one wide
scene, so that each test sees the variation it is about; each is rendered on a
small grid around it only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from backmice.phantom import get_sample, make_scene, sample_names
from backmice.phantom.anatomy import WIDE_FAT_MM, _wide_fat
from backmice.phantom.lesions import LesionKind, place_in_layer
from backmice.phantom.render import Grid, coil_bias, render, sub_offsets
from backmice.phantom.samples import wide_grid
from backmice.phantom.scene import WIDE_WALL_MM, Scene
from backmice.phantom.surfaces import SurfacePatch
from backmice.phantom.tissues import Tissue, linear_table
from backmice.phantom.truth import lesion_truth, series_sections

SEED = 7


@pytest.fixture(scope="module")
def wide():
    """The seed-7 wide scene."""
    return make_scene(SEED, wide=True)


def _nodule(scene: Scene, *, x: float = -55.0, z: float = 0.0, **kw):
    """A nodule placed by hand in the wide scene's layer; returns (scene with it alone, lesion)."""
    an = scene.anatomy
    theta = kw.pop("theta", None)
    if theta is None:
        theta = an.theta_at_x(x, z)
    opts = {"semi_axes_mm": (7.0, 5.0, 3.5), "where": "depth", "value": 0.5, "wall_mm": 1.0}
    opts.update(kw)
    lesion = place_in_layer(
        an, "T1", LesionKind.ENCAPSULATED_FAT_NODULE, theta=theta, z_mm=z, **opts
    )
    return Scene(an, [lesion], scene.seed), lesion


def _grid_around(lesion, spacing=(1.0, 0.4, 0.4), thickness=None, pad=3.0) -> Grid:
    o = lesion.outer
    lo = o.centre - o.half_extent - pad
    hi = o.centre + o.half_extent + pad
    shape = tuple(
        math.ceil((hi[a] - lo[a]) / s) + 1 for a, s in zip((2, 1, 0), spacing, strict=True)
    )
    centre = tuple(float(v) for v in (lo + hi) / 2)
    return Grid.centred(shape, spacing, centre=centre, slice_thickness_mm=thickness)  # type: ignore[arg-type]


def _check_render(scene: Scene, lesion, grid: Grid):
    """Rendered core volume, centroid and fascia side agree with the truth."""
    t = lesion_truth(scene, lesion)
    r = render(scene, grid)
    frac = np.where(r.core_id == 1, r.core_fraction, 0.0)
    voxel = grid.voxel_volume_mm3
    assert frac.sum() * voxel == pytest.approx(t["core_volume_mm3"], rel=0.02, abs=3.0)
    idx = np.argwhere(frac > 0)
    lps = grid.index_to_lps(idx)
    w = frac[frac > 0]
    centroid = (lps * w[:, None]).sum(0) / w.sum()
    assert np.linalg.norm(centroid - t["centroid_lps_mm"]) < 0.25
    core = grid.index_to_lps(np.argwhere(frac >= 0.5))
    patch = SurfacePatch(scene.tables, "fascia", lesion.core.centre, 60.0)
    d = patch.signed_distance(core)
    half_diagonal = 0.5 * math.sqrt(grid.thickness_mm**2 + sum(s * s for s in grid.spacing_mm[1:]))
    assert d.min() >= t["fascia_min_mm"] - half_diagonal
    assert d.max() <= t["fascia_max_mm"] + half_diagonal
    return t, r


def _touching(labels: np.ndarray, a: Tissue, b: Tissue) -> bool:
    """Whether a voxel of tissue ``a`` has an in-plane neighbour of tissue ``b``."""
    la, lb = labels == a, labels == b
    near = np.zeros_like(lb)
    for axis in (1, 2):
        near |= np.roll(lb, 1, axis) | np.roll(lb, -1, axis)
    return bool((la & near).any())


# -- the family is drawn ---------------------------------------------------------------


def test_wide_scene_is_deterministic_and_standard_untouched(wide, scene):
    again = make_scene(SEED, wide=True)
    assert [les.id for les in again.lesions] == [les.id for les in wide.lesions]
    for a, b in zip(again.lesions, wide.lesions, strict=True):
        np.testing.assert_array_equal(a.core.centre, b.core.centre)
        np.testing.assert_array_equal(a.core.rotation, b.core.rotation)
        assert a.wall_mm == b.wall_mm
    np.testing.assert_array_equal(again.tables.values, wide.tables.values)
    assert wide.anatomy.params["family"] == "wide"
    assert "family" not in scene.anatomy.params and not scene.anatomy.wide


def test_wide_scene_draws_from_its_ranges(wide):
    ids = [les.id for les in wide.lesions]
    assert ids == ["N1", "N2", "N3", "N4", "N5", "P1", "C1"]
    for les in wide.lesions:
        if les.kind is LesionKind.ENCAPSULATED_FAT_NODULE:
            assert WIDE_WALL_MM[0] <= les.wall_mm <= WIDE_WALL_MM[1]
    assert wide.tables.values.shape[2] == 7  # with the epimuscular fat column
    assert wide.anatomy.long_septa


def test_layer_thickness_spans_lean_to_obese():
    zz = np.linspace(-160, 160, 41)[:, None]
    tt = np.linspace(-math.pi, math.pi, 256, endpoint=False)[None, :]
    post = np.broadcast_to(np.sin(tt) > 0.5, (41, 256))
    lows, highs = [], []
    for seed in range(40):
        fat, _ = _wide_fat(np.random.default_rng(seed), zz, tt)
        assert fat.min() >= WIDE_FAT_MM[0] and fat.max() <= WIDE_FAT_MM[1]
        lows.append(fat[post].min())
        highs.append(fat[post].max())
    assert min(lows) < 8.0 and max(highs) > 40.0


def test_epimuscular_fat_and_long_streaks(wide):
    an = wide.anatomy
    theta = an.theta_at_x(-60.0, 0.0)
    values = wide.tables.values
    assert values[:, :, 6].max() > 0.4  # seed 7 has an epimuscular sheet
    # Where the sheet is thickest, just deep to the fascia sheet is fat, then muscle.
    i, j = np.unravel_index(np.argmax(values[:, :, 6]), values.shape[:2])
    th, z = wide.tables.theta[j], wide.tables.z[i]
    r_f, epi = values[i, j, 1], values[i, j, 6]
    r = np.array([r_f - an.fascia_mm - epi / 2, r_f - an.fascia_mm - epi - 0.3])
    pts = np.column_stack([r * np.cos(th), r * np.sin(th), [z, z]])
    labels = wide.classify(pts).labels
    assert labels[0] == Tissue.EPIMUSCULAR_FAT
    assert labels[1] != Tissue.EPIMUSCULAR_FAT
    streaks = [
        d.shape for d in an.deep if d.tissue is Tissue.MUSCLE_FAT and hasattr(d.shape, "z_min")
    ]
    assert len(streaks) == an.params["n_long_streaks"] >= 6
    assert min(s.z_max - s.z_min for s in streaks) >= 60.0
    del theta


# -- truth matches the rendered masks ---------------------------------------------------


@pytest.mark.parametrize("wall", [0.6, 1.8])
def test_capsule_thickness_range(wide, wall):
    scene, lesion = _nodule(wide, wall_mm=wall)
    t, r = _check_render(scene, lesion, _grid_around(lesion))
    assert t["wall_mm"] == pytest.approx(wall)
    # Along the short axis, the capsule is exactly `wall` thick.
    axis = lesion.core.rotation[:, 2]
    s = np.arange(0.0, 3.5 + wall + 1.0, 0.01)
    pts = lesion.core.centre + (lesion.core.semi_axes[2] - 0.5 + s)[:, None] * axis
    n = int((scene.classify(pts).labels == Tissue.CAPSULE).sum())
    assert n * 0.01 == pytest.approx(wall, abs=0.03)
    assert (r.labels == Tissue.CAPSULE).any()


def test_incomplete_capsule(wide):
    gap_dir = np.array([0.0, 0.0, 1.0])  # toward the short axis' end (the skin side)
    scene, lesion = _nodule(wide, wall_mm=1.2, capsule_gap=(gap_dir, 35.0))
    grid = _grid_around(lesion, spacing=(1.0, 0.5, 0.5))
    t, r = _check_render(scene, lesion, grid)
    assert t["wide"]["capsule_gap"]["half_angle_deg"] == pytest.approx(35.0)
    mid = lesion.core.grown(0.6).surface_points(3000)
    labels = scene.classify(mid).labels
    gap = lesion.in_gap(mid)
    assert gap.any() and (~gap).any()
    assert (labels[~gap] == Tissue.CAPSULE).all()
    assert not (labels[gap] == Tissue.CAPSULE).any()
    assert (labels[gap] == Tissue.FAT).mean() > 0.8  # fat (or a septum) through the gap
    # The renderer supersampled every voxel the gap's edges cross: its values equal
    # the mean over every voxel's sub-points, computed here for all of them.
    offsets = sub_offsets(grid, grid.auto_supersample())
    table = linear_table("t1")
    for k in range(grid.shape[0]):
        centres = grid.slice_centres(k)
        sub = scene.classify((centres[:, None, :] + offsets[None]).reshape(-1, 3)).labels
        brute = table[sub].reshape(len(centres), -1).mean(1)
        np.testing.assert_allclose(r.quantities["t1"][k].ravel(), brute, atol=0.05)


@pytest.mark.parametrize(("where", "other"), [("dermis", Tissue.SKIN), ("fascia", Tissue.FASCIA)])
def test_nodule_touching_dermis_or_fascia(wide, where, other):
    scene, lesion = _nodule(wide, where=where, value=0.1, semi_axes_mm=(6.0, 4.5, 3.0))
    t, r = _check_render(scene, lesion, _grid_around(lesion, spacing=(1.0, 0.3, 0.3)))
    w = t["wide"]
    room = w["outer_dermis_room_mm"] if where == "dermis" else w["outer_fascia_min_mm"]
    assert -0.05 <= room <= 0.15
    assert t["relation"] == "subcutaneous"
    assert _touching(r.labels, Tissue.CAPSULE, other)


def test_nodule_centred_and_too_thick_fills_the_layer(wide):
    scene, lesion = _nodule(wide, semi_axes_mm=(9.0, 8.0, 8.0), fill=0.9)
    assert lesion.core.semi_axes[2] < 8.0  # scaled down to fit
    t, _ = _check_render(scene, lesion, _grid_around(lesion, spacing=(2.0, 0.6, 0.6)))
    w = t["wide"]
    assert w["outer_dermis_room_mm"] > 0 and w["outer_fascia_min_mm"] > 0
    # Scaled to 90 % of the layer: about 5 % of it left on either side.
    assert w["outer_dermis_room_mm"] + w["outer_fascia_min_mm"] < 0.2 * w["layer_mm"]


def test_any_orientation(wide):
    scene, lesion = _nodule(wide, semi_axes_mm=(8.0, 5.0, 3.0), tilt_deg=45.0, pitch_deg=60.0)
    t, r = _check_render(scene, lesion, _grid_around(lesion, spacing=(0.8, 0.4, 0.4)))
    assert t["wide"]["short_axis_from_normal_deg"] == pytest.approx(60.0, abs=1.0)
    g = r.grid
    frac = np.where(r.core_id == 1, r.core_fraction, 0.0)
    lps = g.index_to_lps(np.argwhere(frac > 0))
    w = frac[frac > 0]
    c = (lps * w[:, None]).sum(0) / w.sum()
    d = lps - c
    cov = (d * w[:, None]).T @ d / w.sum()
    eig, vec = np.linalg.eigh(cov)
    axes = 2 * np.sqrt(5 * eig[::-1])
    np.testing.assert_allclose(axes, t["axes_mm"], atol=0.6)
    long_dir = vec[:, -1]
    assert abs(long_dir @ lesion.core.rotation[:, 0]) > math.cos(math.radians(4.0))


def test_septum_touching_a_nodule(wide):
    sep = wide.anatomy.long_septa[0]
    theta, z = sep.theta_c, float(np.clip(sep.z_c, -15.0, 15.0))
    radius = float(wide.tables.interpolate(np.array([theta]), np.array([z]), [2])[0, 0])
    scene, lesion = _nodule(wide, theta=theta, z=z, where="radius", value=radius)
    t, r = _check_render(scene, lesion, _grid_around(lesion, spacing=(1.0, 0.4, 0.4), pad=6.0))
    assert t["wide"]["touches_long_septum"]
    assert _touching(r.labels, Tissue.CAPSULE, Tissue.SEPTUM)


def test_thick_slices_truth_and_poles(wide):
    scene, lesion = _nodule(wide, semi_axes_mm=(6.0, 5.0, 4.0), z=1.3)
    grid = _grid_around(lesion, spacing=(6.0, 0.5, 0.5), thickness=6.0, pad=8.0)
    t, r = _check_render(scene, lesion, grid)
    sec = series_sections(lesion, grid)
    first, last = sec["slices"]
    core = r.core_id == 1
    for k in range(grid.shape[0]):
        if first <= k <= last:
            assert core[k].any()
        else:  # a slab whose middle plane misses the core is at most half core
            assert r.core_fraction[k][core[k]].max(initial=0.0) <= 0.5 + 1e-6
    del t


# -- geometry ---------------------------------------------------------------------------


def test_wide_grids_cut_the_body_or_hold_it_and_always_the_lesions(wide):
    kinds = set()
    for seed in range(16):
        scene = Scene(wide.anatomy, wide.lesions, seed)
        grid, extra = wide_grid(scene, matrix=(160, 200), tag=1)
        again, _ = wide_grid(scene, matrix=(160, 200), tag=1)
        np.testing.assert_array_equal(grid.affine, again.affine)
        assert 3.0 <= grid.thickness_mm <= 6.0 and grid.spacing_mm[0] >= grid.thickness_mm
        assert 45.0 <= extra["coil"]["depth_mm"] <= 85.0
        inv = np.linalg.inv(grid.affine[:3, :3])
        for les in wide.lesions:
            idx = (les.outer.surface_points(300) - grid.affine[:3, 3]) @ inv.T
            assert (idx >= -0.5).all() and (idx <= np.array(grid.shape) - 0.5).all(), les.id
        theta = np.linspace(-math.pi, math.pi, 360)
        skin = wide.anatomy.surface_points("skin", theta, np.zeros_like(theta))
        idx = (skin - grid.affine[:3, 3]) @ inv.T
        inside = (idx[:, 1:] >= 0).all(1) & (idx[:, 1:] <= np.array(grid.shape[1:]) - 1).all(1)
        kinds.add("whole" if inside.all() else "cut")
    assert kinds == {"whole", "cut"}


def test_stronger_coil_shading():
    # The standard samples' field is unchanged: 1 at y = 100 mm.
    assert coil_bias(np.array([[0.0, 100.0, 0.0]]))[0] == pytest.approx(1.0)
    front = np.array([[0.0, -100.0, 0.0]])
    assert coil_bias(front, depth_mm=45.0)[0] < coil_bias(front)[0]
    # A 50 mm layer behind the coil's plane: its deep fat is about half as bright.
    skin, deep = np.array([[0.0, 140.0, 0.0]]), np.array([[0.0, 90.0, 0.0]])
    ratio = coil_bias(deep, depth_mm=45.0, plane_y_mm=150.0) / coil_bias(
        skin, depth_mm=45.0, plane_y_mm=150.0
    )
    assert 0.4 < ratio[0] < 0.6


def test_wide_samples_are_listed():
    assert {"t1_wide", "dixon_wide"} <= set(sample_names())
    assert get_sample("t1_wide").wide and not get_sample("t1_axial").wide
