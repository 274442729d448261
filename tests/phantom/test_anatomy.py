"""The anatomy model: layers in the right order, open septa, bones deep, honest margins."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

from backmice.phantom import Tissue, make_scene
from backmice.phantom.anatomy import FASCIA_R, SEPT_EDGE, SEPT_R, SKIN_R


def test_layers_are_nested_everywhere(scene):
    v = scene.anatomy.tables.values
    fat = v[:, :, SKIN_R] - scene.anatomy.skin_mm - v[:, :, FASCIA_R]
    assert fat.min() >= 7.5  # subcutaneous fat never vanishes
    assert fat.max() <= 45.0
    inside = v[:, :, SEPT_EDGE] < 0
    # Septa sit strictly inside the fat: at least 1 mm from the dermis and the fascia.
    mid = v[:, :, SEPT_R]
    assert np.all(mid[inside] < (v[:, :, SKIN_R] - scene.anatomy.skin_mm - 1.0)[inside])
    assert np.all(mid[inside] > (v[:, :, FASCIA_R] + 1.0)[inside])
    assert scene.anatomy.params["n_septa"] > 100


def test_back_is_posterior_and_varies_along_z(scene):
    theta = np.array([math.pi / 2, -math.pi / 2, 0.0, math.pi])
    for z in (-40.0, 0.0, 40.0):
        r = scene.anatomy.skin_radius(theta, np.full(4, z))
        assert 95 < r[0] < 115  # the back at y ≈ +100 (posterior)
        assert 140 < r[2] < 190 and 140 < r[3] < 190  # the flanks
    zs = np.linspace(-60, 60, 25)
    r = scene.anatomy.fascia_radius(np.full(zs.size, math.pi / 2 - 0.4), zs)
    assert np.ptp(r) > 0.5  # the outline changes along the body axis ...
    assert np.abs(np.diff(r)).max() < 1.0  # ... smoothly (5 mm steps)


def test_tissue_at_known_places(scene):
    an = scene.anatomy
    theta, z = math.pi / 2 + 0.3, 0.0
    r_skin = float(scene.skin_radius(np.array([theta]), np.array([z]))[0])
    r_fascia = float(an.fascia_radius(np.array([theta]), np.array([z]))[0])
    u = np.array([math.cos(theta), math.sin(theta), 0.0])
    pts = np.array(
        [
            (r_skin + 5) * u,
            (r_skin - 1.0) * u,
            (r_fascia - 0.6) * u,
            (r_fascia - 10) * u,
            [0.0, 500.0, 0.0],
            [0.0, -36.0, -20.0],
        ]
    )
    labels = scene.classify(pts).labels
    assert labels[0] == Tissue.AIR
    assert labels[1] == Tissue.SKIN
    assert labels[2] == Tissue.FASCIA
    assert labels[3] == Tissue.MUSCLE
    assert labels[4] == Tissue.AIR
    assert labels[5] in (Tissue.VISCERAL_FAT, Tissue.BOWEL)
    # The sacrum below its top: marrow inside cortex, canal with CSF.
    top = an.sacrum_top_z_mm
    sac = an.bones[0]
    cx, cy = sac.centre[0], sac.centre[1] + sac.drift[1] * (top - 20)
    lab = scene.classify(np.array([[cx + 25.0, cy, top - 20], [cx, cy + 6.0 + 0.0, top - 20]]))
    assert lab.labels[0] == Tissue.MARROW
    assert lab.labels[1] == Tissue.CSF


def test_bones_lie_deep_to_the_fascia(scene):
    xx, yy = np.meshgrid(np.arange(-180.0, 180.0, 0.5), np.arange(-130.0, 130.0, 0.5))
    pts = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, -10.0)])
    c = scene.classify(pts)
    bone = np.isin(c.labels, (Tissue.CORTEX, Tissue.MARROW))
    theta = np.arctan2(pts[bone, 1], pts[bone, 0])
    r = np.hypot(pts[bone, 0], pts[bone, 1])
    assert bone.sum() > 1000
    assert np.all(r < scene.anatomy.fascia_radius(theta, pts[bone, 2]) - 5.0)


@pytest.fixture(scope="module")
def bare():
    return make_scene(3, lesions=False)


@pytest.mark.parametrize("z", [-25.0, 0.0, 22.0])
def test_septa_do_not_close_into_loops(bare, z):
    """Without lesions, the subcutaneous fat of the back in every axial section is one piece."""
    xs = np.arange(-175.0, 175.0, 0.25)
    ys = np.arange(20.0, 125.0, 0.25)
    xx, yy = np.meshgrid(xs, ys)
    pts = np.column_stack([xx.ravel(), yy.ravel(), np.full(xx.size, z)])
    labels = bare.classify(pts).labels.reshape(xx.shape)
    assert (labels == Tissue.SEPTUM).sum() > 100  # there are septa in this section
    _, n = ndimage.label(labels == Tissue.FAT, structure=np.ones((3, 3)))
    assert n == 1


def test_margin_is_a_lower_bound_on_the_distance_to_a_boundary(scene):
    """Within `margin` of a point, the tissue never changes (what supersampling relies on)."""
    rng = np.random.default_rng(5)
    n = 3000
    anywhere = np.column_stack(
        [rng.uniform(-150, 150, n), rng.uniform(-60, 115, n), rng.uniform(-30, 30, n)]
    )
    # Points in the body wall (skin, fat, septa, fascia) and around every lesion.
    theta = rng.uniform(0.2, math.pi - 0.2, n)
    z = rng.uniform(-30, 30, n)
    r = scene.anatomy.fascia_radius(theta, z) + rng.uniform(-5, 30, n)
    wall = np.column_stack([r * np.cos(theta), r * np.sin(theta), z])
    near = [les.core.centre + rng.uniform(-15, 15, (500, 3)) for les in scene.lesions]
    centres = np.concatenate([anywhere, wall, *near])
    c = scene.classify(centres, margin_mm=3.0)
    keep = c.margin > 0.05
    centres, labels, margin = centres[keep], c.labels[keep], c.margin[keep]
    for _ in range(6):
        direction = rng.normal(size=centres.shape)
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        step = np.minimum(margin, 3.0)[:, None] * 0.98 * rng.uniform(0, 1, (len(centres), 1))
        moved = scene.classify(centres + direction * step).labels
        assert np.array_equal(moved, labels)
