"""Ultrasound: B-mode appearance, burned-in annotation, calibration only in the regions."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

import backmice
from backmice.phantom import Tissue, plane_over, render_ultrasound
from backmice.phantom.font import draw_text, text_width
from backmice.phantom.ultrasound import ultrasound_truth


@pytest.fixture(scope="module")
def us(scene):
    plane = plane_over(scene, scene.lesion("N1").core.centre)
    return render_ultrasound(scene, plane, seed=4)


def test_region_and_frame(us):
    x0, y0, x1, y1 = us.region
    frame = us.image[0]
    assert frame.dtype == np.uint8 and frame.shape == (480, 640)
    assert (y1 - y0 + 1, x1 - x0 + 1) == us.plane.shape == us.labels.shape
    outside = frame.copy()
    outside[y0 : y1 + 1, x0 : x1 + 1] = 0
    assert (outside > 150).sum() > 300  # burned-in text and scale outside the region
    assert (frame[y0 : y1 + 1, x0 : x1 + 1] > 0).mean() > 0.5


def test_bmode_shows_skin_fat_fascia_and_the_lipoma(scene, us):
    x0, y0, x1, y1 = us.region
    region = us.image[0, y0 : y1 + 1, x0 : x1 + 1].astype(float)
    labels = us.labels

    def mean_of(tissue):
        return region[labels == tissue].mean()

    assert mean_of(Tissue.FASCIA) > mean_of(Tissue.MUSCLE) > mean_of(Tissue.FAT)
    assert mean_of(Tissue.SKIN) > mean_of(Tissue.FAT)
    assert mean_of(Tissue.CAPSULE) > mean_of(Tissue.LESION_FAT)
    assert (labels == Tissue.LESION_FAT).sum() > 1000
    assert (labels == Tissue.SEPTUM).sum() > 0
    # Speckle: fat is textured, not flat.
    assert region[labels == Tissue.FAT].std() > 10


def test_truth_places_the_lipoma_where_it_is_drawn(scene, us):
    truth = ultrasound_truth(scene, us)
    n1 = next(t for t in truth["lesions"] if t["id"] == "N1")
    dx, dy = us.plane.delta_mm
    rows, cols = np.nonzero(us.labels == Tissue.LESION_FAT)
    assert rows.mean() * dy == pytest.approx(n1["depth_mm"], abs=0.3)
    assert cols.mean() * dx == pytest.approx(n1["x_mm"], abs=0.3)
    width = (cols.max() - cols.min()) * dx
    assert width == pytest.approx(
        n1["long_axis_mm"] * abs(np.cos(np.radians(n1["angle_deg"]))), abs=2.0
    )
    assert 0 < n1["skin_depth_below_mm"] < n1["depth_mm"] < n1["fascia_depth_below_mm"]
    assert truth["skin_depth_mm"] == pytest.approx(0.0, abs=0.01)  # the probe touches the skin
    fascia_row = round(truth["fascia_depth_mm"] / dy)
    middle = us.labels[:, us.labels.shape[1] // 2]
    assert Tissue.FASCIA in middle[fascia_row - 3 : fascia_row + 20]


def test_cine_moves_the_same_speckle_with_the_probe(scene):
    plane = plane_over(scene, scene.lesion("N1").core.centre, frame_shift_mm=0.32)
    cine = render_ultrasound(scene, plane, frames=3, seed=1)
    x0, y0, x1, y1 = cine.region
    r = cine.image[:, y0 : y1 + 1, x0 : x1 + 1]
    np.testing.assert_array_equal(r[0][:, 4:], r[1][:, :-4])
    np.testing.assert_array_equal(r[1][:, 4:], r[2][:, :-4])


def test_written_ultrasound_is_calibrated_only_by_its_region(written):
    study = written("us")
    path = next(p for p in study.files if p.suffix == ".dcm")
    ds = pydicom.dcmread(path)
    assert "PixelSpacing" not in ds
    assert ds.BurnedInAnnotation == "YES"
    (region,) = ds.SequenceOfUltrasoundRegions
    assert region.RegionSpatialFormat == 1 and region.PhysicalUnitsXDirection == 3
    assert region.PhysicalDeltaX == pytest.approx(0.008)
    stack = backmice.open_study(study.path).stacks[0]
    assert stack.role is backmice.Role.US
    vol = backmice.load(stack)
    assert vol.spacing_mm[1:] == pytest.approx((0.08, 0.08))
    assert vol.shape == (1, 400, 500)
    truth = study.truth["ultrasound"][0]
    assert truth["plane"]["region"] == [
        stack.region.x0,
        stack.region.y0,
        stack.region.x1,
        stack.region.y1,
    ]


def test_font_draws_inside_bounds():
    img = np.zeros((20, 60), dtype=np.uint8)
    draw_text(img, "AB 12", 2, 2)
    assert img.any() and text_width("AB 12") == 29
    draw_text(img, "CLIPPED TEXT", 15, 50, scale=2)  # partly outside: no error
