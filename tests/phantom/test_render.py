"""Rendering: contrasts, partial volume, bias field, Rician noise, any geometry, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest

from backmice.io.writer import rotation_matrix
from backmice.phantom import Contrast, Grid, Tissue, acquire, coil_bias, render
from backmice.phantom.tissues import TISSUE_PROPERTIES


@pytest.fixture(scope="module")
def small_grid():
    """0.8 x 0.8 x 4 mm axial slab through N1 (patient right, posterior)."""
    return Grid.centred((3, 96, 128), (4.0, 0.8, 0.8), centre=(-55.0, 80.0, 0.0))


@pytest.fixture(scope="module")
def rendered(scene, small_grid):
    centre = scene.lesion("N1").core.centre
    grid = Grid.centred(small_grid.shape, small_grid.spacing_mm, centre=tuple(centre))
    return render(scene, grid, quantities=("t1", "t2_fatsat", "fat", "water"))


def _by_label(r, tissue, quantity):
    pure = r.labels == tissue
    return r.quantities[quantity][pure & (r.core_fraction == 0)]


def test_contrasts_follow_the_tissue_table(rendered):
    t1_fat = np.median(_by_label(rendered, Tissue.FAT, "t1"))
    t1_muscle = np.median(_by_label(rendered, Tissue.MUSCLE, "t1"))
    assert t1_fat == pytest.approx(TISSUE_PROPERTIES[Tissue.FAT].t1)
    assert t1_muscle == pytest.approx(TISSUE_PROPERTIES[Tissue.MUSCLE].t1)
    assert np.median(_by_label(rendered, Tissue.FAT, "t2_fatsat")) < np.median(
        _by_label(rendered, Tissue.MUSCLE, "t2_fatsat")
    )
    fat = _by_label(rendered, Tissue.FAT, "fat")
    water = _by_label(rendered, Tissue.FAT, "water")
    assert np.median(fat / (fat + water)) == pytest.approx(0.93, abs=1e-4)
    fat = _by_label(rendered, Tissue.MUSCLE, "fat")
    water = _by_label(rendered, Tissue.MUSCLE, "water")
    assert np.median(fat / (fat + water)) == pytest.approx(0.03, abs=1e-4)


def test_partial_volume_mixes_at_boundaries(rendered):
    t1 = rendered.quantities["t1"]
    assert 0.05 < rendered.mixed_fraction < 0.8
    # Some voxels lie strictly between the muscle and fat values (the fascia, the capsule).
    between = (t1 > 400) & (t1 < 900)
    assert between.sum() > 100
    frac = rendered.core_fraction
    assert frac.min() >= 0 and frac.max() <= 1
    assert ((frac > 0) & (frac < 1)).sum() > 50
    assert 1 in set(np.unique(rendered.core_id).tolist())  # N1 is scene.lesions[0]


def test_opposed_phase_darkens_fat_water_boundaries(rendered):
    in_phase = acquire(rendered, Contrast.DIXON_IN, snr=None, bias=0)
    opposed = acquire(rendered, Contrast.DIXON_OUT, snr=None, bias=0)
    fat = rendered.quantities["fat"]
    water = rendered.quantities["water"]
    np.testing.assert_allclose(in_phase, fat + water, rtol=1e-6)
    np.testing.assert_allclose(opposed, np.abs(water - fat), rtol=1e-5, atol=1e-3)
    ff = fat / np.maximum(fat + water, 1e-6)
    mixed = (ff > 0.35) & (ff < 0.65)
    assert mixed.any()
    assert np.median(opposed[mixed] / in_phase[mixed]) < 0.35


def test_rician_noise_level_in_air(scene):
    grid = Grid.centred((2, 64, 64), (4.0, 1.0, 1.0), centre=(0.0, 200.0, 0.0))  # all air
    r = render(scene, grid)
    assert np.all(r.labels == Tissue.AIR)
    img = acquire(r, Contrast.T1, snr=20.0, bias=0, seed=3)
    sigma = 1000.0 / 20.0
    # Zero signal: Rayleigh, mean σ·sqrt(π/2).
    assert img.mean() == pytest.approx(sigma * math.sqrt(math.pi / 2), rel=0.05)
    assert acquire(r, Contrast.T1, snr=None).max() == 0


def test_noise_is_deterministic_and_differs_between_contrasts_and_seeds(rendered):
    a = acquire(rendered, Contrast.T1, seed=1)
    np.testing.assert_array_equal(a, acquire(rendered, Contrast.T1, seed=1))
    assert not np.array_equal(a, acquire(rendered, Contrast.T1, seed=2))
    fat = acquire(rendered, Contrast.DIXON_FAT, seed=1)
    water = acquire(rendered, Contrast.DIXON_WATER, seed=1)
    n_fat = fat - acquire(rendered, Contrast.DIXON_FAT, snr=None, seed=1)
    n_water = water - acquire(rendered, Contrast.DIXON_WATER, snr=None, seed=1)
    # Independent noise (the small correlation left is the Rician bias of weak signals).
    assert abs(np.corrcoef(n_fat.ravel(), n_water.ravel())[0, 1]) < 0.3


def test_render_is_deterministic(scene, small_grid):
    a = render(scene, small_grid)
    b = render(scene, small_grid)
    np.testing.assert_array_equal(a.quantities["t1"], b.quantities["t1"])
    np.testing.assert_array_equal(a.core_fraction, b.core_fraction)


def test_coil_bias_falls_off_away_from_the_back():
    pts = np.array([[0.0, 100.0, 0.0], [0.0, 0.0, 0.0], [0.0, -100.0, 0.0], [150.0, 100.0, 0.0]])
    b = coil_bias(pts)
    assert b[0] == pytest.approx(1.0)
    assert b[0] > b[3] > b[1] > b[2] > 0.15
    np.testing.assert_allclose(coil_bias(pts, strength=0.0), 1.0)


def test_any_orientation_and_voxel_size(scene):
    lesion = scene.lesion("N2")
    c = tuple(lesion.core.centre)
    rot = rotation_matrix([1.0, 0.7, 0.2], 35.0)
    for grid in (
        Grid.centred((9, 9, 9), (1.0, 1.0, 1.0), centre=c, rotation=rot),
        Grid.centred((5, 9, 9), (2.5, 0.6, 0.9), centre=c, orientation="sagittal"),
        Grid.centred((5, 9, 9), (3.0, 1.1, 1.1), centre=c, orientation="coronal"),
    ):
        r = render(scene, grid)
        mid = tuple(s // 2 for s in grid.shape)
        assert r.labels[mid] == Tissue.LESION_FAT
        assert r.core_fraction[mid] == 1.0
        np.testing.assert_allclose(grid.index_to_lps([mid])[0], c, atol=1e-9)


def test_slice_gap_thins_the_slab(scene):
    grid = Grid.centred((1, 64, 64), (6.0, 1.0, 1.0), centre=tuple(scene.lesion("N4").core.centre))
    thin = Grid(grid.shape, grid.affine, slice_thickness_mm=1.0)
    assert thin.auto_supersample()[0] == 1
    assert render(scene, thin).core_fraction.max() == 1.0
    assert grid.thickness_mm == 6.0 and thin.thickness_mm == 1.0
