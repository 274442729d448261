"""The top of the sacrum, on a synthetic pelvis with a known level, seen through several grids.

The pelvis is defined in LPS millimetres and sampled at the voxel centres of
each grid, so the same anatomy can be seen through axial, oblique and sagittal
series. The fascia is the plane y = 80 mm (posterior is +y); below ``top`` the
sacrum (100 mm wide, its canal cut out) lies 30–60 mm deep to it; above a
10 mm disc, L5's body and lamina (48 and 36 mm wide); iliac wings lie lateral
to both, visceral fat anterior to both.
"""

from __future__ import annotations

import numpy as np
import pytest

from backmice.io.writer import make_affine, rotation_matrix
from backmice.segment.level import SacrumProfile, sacrum_profile, sacrum_top_z_mm

FASCIA_Y = 80.0


def _box(x, y, lo, hi):
    return (x >= lo[0]) & (x <= hi[0]) & (y >= lo[1]) & (y <= hi[1])


def _pelvis(
    p: np.ndarray,
    *,
    top: float,
    streaks: bool = False,
    lumbar_only: bool = False,
    faint_sacrum: bool = False,
) -> np.ndarray:
    """Deep fat (marrow, visceral fat) at LPS points p, shape (..., 3) → bool (...)."""
    x, y, z = p[..., 0], p[..., 1], p[..., 2]
    sacral = (z < top) & ~lumbar_only
    lumbar = (z >= top + 10.0) | lumbar_only
    sacrum = sacral & _box(x, y, (-50, 20), (50, 50)) & ~_box(x, y, (-10, 35), (10, 44))
    body = lumbar & _box(x, y, (-24, -5), (24, 28))
    lamina = lumbar & _box(x, y, (-18, 32), (18, 55)) & ~_box(x, y, (-10, 34), (10, 44))
    wings = _box(np.abs(x), y, (45, 35), (75, 62))
    visceral = _box(x, y, (-75, -60), (75, 12)) & ~(lumbar & _box(x, y, (-26, -7), (26, 30)))
    fat = sacrum | body | lamina | wings | visceral
    if streaks:  # thin fat streaks in the multifidus, lateral, above the sacrum
        fat |= (z > top + 3.0) & (np.abs(x - 32.0) < 5.0) & (np.abs(y - 52.0) < 0.6)
        fat |= (z > top + 3.0) & (np.abs(x + 30.0) < 2.0) & (np.abs(y - 50.0) < 0.6)
    if faint_sacrum:  # marrow barely fat-bright: one thin layer of the sacrum is seen
        fat &= ~sacrum | (np.abs(y - 45.0) < 0.6)
    return fat


def _study(affine: np.ndarray, shape: tuple[int, int, int], **kw):
    k, r, c = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    p = np.stack([k, r, c], axis=-1) @ affine[:3, :3].T + affine[:3, 3]
    return _pelvis(p, **kw), (p[..., 1] - FASCIA_Y).astype(np.float32)  # + posterior


def _axial(*, slice_mm: float = 4.0, z0: float = -40.0, n: int = 21, pixel: float = 1.0):
    affine = make_affine((slice_mm, pixel, pixel), origin=(-90.0, -20.0, z0))
    return affine, (n, int(120 / pixel), int(180 / pixel))


@pytest.mark.parametrize("top", [9.0, 10.5, 13.9])
def test_axial_thick_slices_within_a_slice(top):
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=top)
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert found is not None and abs(found - top) <= 4.0


def test_step_lies_between_the_last_sacral_and_first_lumbar_slice():
    affine, shape = _axial()  # slices at z = -40, -36, ..., 8, 12, ...: the step is at 10
    fat, signed = _study(affine, shape, top=9.0)
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0, step_mm=1.0)
    assert found == pytest.approx(10.0, abs=0.5)  # heights are sampled 1 mm apart


def test_oblique_series_is_read_in_patient_coordinates():
    rot = rotation_matrix("z", 8.0) @ rotation_matrix("x", 12.0)
    affine = make_affine((1.5, 1.5, 1.5), origin=(-88.0, -30.0, -38.0), rotation=rot)
    fat, signed = _study(affine, (52, 84, 120), top=6.0)
    assert np.degrees(np.arccos(abs(affine[2, 0]) / 1.5)) > 10.0  # the old finder gave up
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert found is not None and abs(found - 6.0) <= 2.0


def test_sagittal_series_works_too():
    affine = make_affine((2.0, 2.0, 2.0), origin=(80.0, -20.0, 40.0), orientation="sagittal")
    fat, signed = _study(affine, (81, 40, 60), top=0.0)
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert found is not None and abs(found) <= 2.0


def test_all_sacral_or_all_lumbar_is_unknown():
    affine, shape = _axial(z0=-80.0, n=16)  # z −80…−20: all below the top
    fat, signed = _study(affine, shape, top=10.0)
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=10.0, lumbar_only=True)
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None


def test_a_sacrum_that_comes_and_goes_is_unknown():
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=10.0)
    lumbar, _ = _study(affine, shape, top=10.0, lumbar_only=True)
    fat[[1, 4, 7]] = lumbar[[1, 4, 7]]  # sacral slices that read as lumbar
    fat[[15, 18]] = _study(affine, shape, top=100.0)[0][[15, 18]]  # lumbar ones as sacral
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None


def test_a_faint_sacrum_is_not_read_as_lumbar():
    affine, shape = _axial()  # slices at z = -40 + 4k; the sacrum ends between k = 12 and 13
    fat, signed = _study(affine, shape, top=10.0)
    faint, _ = _study(affine, shape, top=10.0, faint_sacrum=True)
    fat[3:12] = faint[3:12]  # z −28…4: only traces of marrow, no thick bone
    prof = sacrum_profile(fat, signed, affine=affine, midline_x_mm=0.0)
    mid = (prof.z_mm > -26.0) & (prof.z_mm < 2.0)
    assert np.all(prof.alae[mid] == 0.0) and np.all(prof.traces[mid] == 1.0)
    # Read as lumbar, the faint heights would put the top of the sacrum at z = −30.
    misread = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0, max_traces=1.01)
    assert misread == pytest.approx(-30.0, abs=0.5)
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None


def test_a_faint_last_sacral_slice_is_still_sacrum():
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=10.0)
    faint, _ = _study(affine, shape, top=10.0, faint_sacrum=True)
    fat[12] = faint[12]  # z = 8, partly through the endplate: traces of marrow only
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert found == pytest.approx(10.0, abs=0.5)  # where the lumbar slices begin, not at 6
    # More than max_unclear_mm of it between sacral and lumbar heights: unknown.
    fat[11] = faint[11]
    assert sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0) is None


def test_thin_streaks_beside_l5_are_not_alae():
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=-10.0, streaks=True)
    prof = sacrum_profile(fat, signed, affine=affine, midline_x_mm=0.0)
    above = prof.z_mm > 3.0
    assert np.nanmax(prof.alae[above]) == 0.0  # the streaks lie in the lateral bands, thin
    found = sacrum_top_z_mm(fat, signed, affine=affine, midline_x_mm=0.0)
    assert found is not None and abs(found + 10.0) <= 4.0


def test_profile_is_in_patient_coordinates_and_says_what_is_out_of_view():
    affine, shape = _axial(z0=-20.0, n=11)  # z −20…20
    fat, signed = _study(affine, shape, top=0.0)
    prof = sacrum_profile(fat, signed, affine=affine, midline_x_mm=0.0, step_mm=1.0)
    assert isinstance(prof, SacrumProfile)
    assert prof.z_mm[0] == pytest.approx(-20.0) and prof.z_mm[-1] == pytest.approx(20.0)
    assert prof.marrow_mm.shape == (prof.z_mm.size, prof.x_mm.size)
    np.testing.assert_allclose(prof.fascia_y_mm, FASCIA_Y, atol=1.0)
    assert np.all(prof.alae[prof.z_mm < -2.0] == 1.0) and np.all(prof.alae[prof.z_mm > 2.0] == 0)
    # A field of view that stops short of the slab's depth: nothing is in view.
    fat, signed = fat[:, 50:, :], signed[:, 50:, :]
    moved = affine.copy()
    moved[:3, 3] += 50 * affine[:3, 1]  # y from 30 mm: the slab reaches to y = 15
    prof = sacrum_profile(fat, signed, affine=moved, midline_x_mm=0.0)
    assert np.isnan(prof.alae).all()
    assert sacrum_top_z_mm(fat, signed, affine=moved, midline_x_mm=0.0) is None


def test_visceral_fat_and_iliac_wings_are_not_the_sacrum():
    affine, shape = _axial()
    fat, signed = _study(affine, shape, top=10.0, lumbar_only=True)
    # Widen the visceral fat up to 10 mm short of the slab and the wings to 5 mm from it.
    _k, r, c = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    y = affine[1, 3] + r * affine[1, 1]
    x = affine[0, 3] + c * affine[0, 2]
    fat |= (y < FASCIA_Y - 75.0) | ((np.abs(x) > 42.0) & (y > 20.0) & (y < 60.0))
    prof = sacrum_profile(fat, signed, affine=affine, midline_x_mm=0.0)
    assert np.nanmax(prof.alae) == 0.0
