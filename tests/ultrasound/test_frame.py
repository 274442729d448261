"""The frame-level API: lines, the seeded contour, measurements, candidates, calibration."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pydicom
import pytest

import backmice
from backmice.errors import InputError
from backmice.phantom import Tissue, make_scene, plane_over, render_ultrasound
from backmice.ultrasound import (
    analyze_frame,
    analyze_ultrasound,
    line_rows,
    measure_mask,
    seed_in_region,
    signed_distance_mm,
)


def _ellipse(shape, centre_rc, a_mm, b_mm, angle_deg, spacing):
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    y = (rr - centre_rc[0]) * spacing[0]
    x = (cc - centre_rc[1]) * spacing[1]
    t = math.radians(angle_deg)
    u = x * math.cos(t) + y * math.sin(t)
    v = -x * math.sin(t) + y * math.cos(t)
    return (u / a_mm) ** 2 + (v / b_mm) ** 2 <= 1.0


@pytest.fixture(scope="module")
def sample_volume(sample_file):
    return backmice.load(backmice.open_study(sample_file).stacks[0])


@pytest.fixture(scope="module")
def sample_seeded(sample_volume, sample_truth):
    _, lesion, _ = sample_truth
    seed = (lesion["depth_mm"] / 0.08, lesion["x_mm"] / 0.08)
    return analyze_frame(sample_volume.array[0], spacing_mm=(0.08, 0.08), seed_rc=seed)


def test_measure_mask_on_an_exact_ellipse():
    spacing = (0.1, 0.1)
    mask = _ellipse((300, 400), (120, 200), 10.0, 4.0, 20.0, spacing)
    fascia = np.array([[0.0, 250.0], [399.0, 250.0]])  # flat, 25 mm deep
    skin = np.array([[0.0, 10.0], [399.0, 10.0]])  # 1 mm deep
    m = measure_mask(mask, spacing_mm=spacing, fascia_line=fascia, skin_line=skin)
    assert m["long_axis_mm"] == pytest.approx(20.0, abs=0.2)
    assert m["short_axis_mm"] == pytest.approx(8.0, abs=0.2)
    assert m["area_mm2"] == pytest.approx(math.pi * 10 * 4, rel=0.01)
    assert m["depth_mm"] == pytest.approx(12.0, abs=0.01)
    assert m["x_mm"] == pytest.approx(20.0, abs=0.01)
    assert m["fascia_offset_mm"] == pytest.approx(25.0 - 12.0, abs=0.01)
    # The ellipse's deepest point: 12 mm + its half-height in depth.
    half = math.sqrt((10 * math.sin(math.radians(20))) ** 2 + (4 * math.cos(math.radians(20))) ** 2)
    assert m["fascia_min_mm"] == pytest.approx(25.0 - 12.0 - half, abs=0.15)
    assert m["fascia_max_mm"] == pytest.approx(25.0 - 12.0 + half, abs=0.15)
    assert m["skin_depth_mm"] == pytest.approx(12.0 - half - 1.0, abs=0.15)
    assert m["relation"] == "subcutaneous"
    assert m["fascia_depth_mm"] == pytest.approx(25.0)


def test_an_edited_fascia_line_moves_every_fascia_measurement():
    spacing = (0.1, 0.1)
    mask = _ellipse((300, 400), (200, 200), 6.0, 3.0, 0.0, spacing)
    flat = np.array([[0.0, 200.0], [399.0, 200.0]])  # through the nodule's centre
    m = measure_mask(mask, spacing_mm=spacing, fascia_line=flat)
    assert m["relation"] == "transfascial"
    assert m["fascia_offset_mm"] == pytest.approx(0.0, abs=0.01)
    deeper = flat + np.array([0.0, 60.0])  # dragged 6 mm deeper by a reader
    d = measure_mask(mask, spacing_mm=spacing, fascia_line=deeper)
    assert d["fascia_offset_mm"] == pytest.approx(6.0, abs=0.01)
    assert d["fascia_min_mm"] == pytest.approx(m["fascia_min_mm"] + 6.0, abs=0.15)
    assert d["relation"] == "subcutaneous"
    above = flat - np.array([0.0, 60.0])
    assert measure_mask(mask, spacing_mm=spacing, fascia_line=above)["relation"] == "subfascial"


def test_signed_distance_to_a_slanted_line_is_euclidean_and_signed():
    spacing = (0.2, 0.1)
    shape = (100, 150)
    # A line of 30 degrees in mm: row = 20 + col·dx·tan30 / dy.
    cols = np.arange(150.0)
    line = np.column_stack([cols, 20 + cols * 0.1 * math.tan(math.radians(30)) / 0.2])
    d = signed_distance_mm(line, shape, spacing_mm=spacing)
    rr, cc = np.mgrid[:100, :150]
    vertical = (line_rows(line, 150)[None, :] - rr) * 0.2  # + above the line
    exact = vertical * math.cos(math.radians(30))
    inner = (cc > 45) & (cc < 105)  # the nearest point of the line is not past its ends
    np.testing.assert_allclose(d[inner], exact[inner], atol=0.05)
    assert d[0, 0] > 0 and d[-1, 0] < 0


def test_seed_in_original_pixels_is_moved_into_the_region(sample_volume):
    assert sample_volume.origin_px == (40, 70)
    assert seed_in_region((395, 249), sample_volume) == (209.0, 325.0)
    with pytest.raises(InputError, match="outside the image's tissue region"):
        seed_in_region((10, 10), sample_volume)  # on the burned-in text
    with pytest.raises(InputError, match="outside"):
        seed_in_region((570 + 1, 100), sample_volume)


def test_seeded_lipoma_of_the_sample(sample_seeded, sample_truth):
    plane, lesion, truth = sample_truth
    assert len(sample_seeded.nodules) == 1
    n = sample_seeded.nodules[0]
    assert n["found_by"] == "seed" and n["status"] == "accepted"
    assert n["long_axis_mm"] == pytest.approx(lesion["long_axis_mm"], abs=1.0)
    assert n["short_axis_mm"] == pytest.approx(lesion["short_axis_mm"], abs=1.0)
    assert n["fascia_depth_mm"] == pytest.approx(lesion["fascia_depth_below_mm"], abs=0.5)
    assert n["relation"] == "subcutaneous"
    assert n["encapsulated"]
    assert n["suggested_subtype"] == "episacroiliac_lipoma"
    # The fascia below the middle column, and the transducer on the skin.
    mid = (plane["region_shape"][1] - 1) / 2
    depth = np.interp(mid, sample_seeded.fascia[:, 0], sample_seeded.fascia[:, 1]) * 0.08
    assert depth == pytest.approx(truth["fascia_depth_mm"], abs=0.5)
    assert np.median(sample_seeded.skin[:, 1]) * 0.08 < 0.5
    # Labels: the nodule is label 1 and has the reported area.
    assert (sample_seeded.labels == 1).sum() * 0.08**2 == pytest.approx(n["area_mm2"])


def test_fascia_follows_the_rendered_sheet_past_septa_and_capsule():
    scene = make_scene(0)
    plane = plane_over(scene, scene.lesion("N1").core.centre)
    us = render_ultrasound(scene, plane, seed=11)  # a speckle the pipeline never saw
    x0, y0, x1, y1 = us.region
    a = analyze_frame(us.image[0, y0 : y1 + 1, x0 : x1 + 1], spacing_mm=(0.08, 0.08))
    sheet = us.labels == Tissue.FASCIA
    cols = np.flatnonzero(sheet.any(axis=0))
    top = sheet[:, cols].argmax(axis=0) - 0.5  # the face between the fat and the sheet
    error = (line_rows(a.fascia, sheet.shape[1])[cols] - top) * 0.08
    assert np.median(np.abs(error)) < 0.2
    assert np.abs(error).max() < 0.6
    assert (us.labels == Tissue.SEPTUM).any()  # there were septa to be fooled by


def test_automatic_candidates_find_the_lipoma_and_say_so(sample_volume, sample_truth):
    _, lesion, _ = sample_truth
    a = analyze_frame(sample_volume.array[0], spacing_mm=(0.08, 0.08))
    assert len(a.nodules) == 1
    n = a.nodules[0]
    assert (n["status"], n["found_by"]) == ("candidate", "automatic")
    assert any("automatically" in w for w in a.warnings)
    assert n["x_mm"] == pytest.approx(lesion["x_mm"], abs=1.0)
    assert n["long_axis_mm"] == pytest.approx(lesion["long_axis_mm"], abs=1.0)


def test_an_anechoic_cyst_is_not_a_candidate():
    scene = make_scene(1)
    plane = plane_over(scene, scene.lesion("C1").core.centre)
    us = render_ultrasound(scene, plane, seed=3)
    x0, y0, x1, y1 = us.region
    a = analyze_frame(us.image[0, y0 : y1 + 1, x0 : x1 + 1], spacing_mm=(0.08, 0.08))
    assert a.nodules == []


def test_uncalibrated_frame_measures_in_pixels_and_says_so(sample_volume, sample_truth):
    _, lesion, _ = sample_truth
    seed = (lesion["depth_mm"] / 0.08, lesion["x_mm"] / 0.08)
    a = analyze_frame(sample_volume.array[0], spacing_mm=None, seed_rc=seed)
    assert a.units == "px" and not a.calibrated
    assert any("UNCALIBRATED" in w and "px" in w for w in a.warnings)
    n = a.nodules[0]
    assert n["long_axis_mm"] == pytest.approx(lesion["long_axis_mm"] / 0.08, rel=0.1)
    assert n["area_mm2"] == (a.labels == 1).sum()


@pytest.mark.slow  # every frame of a cine analysed
def test_cine_every_frame_reports_the_spread(tmp_path):
    from backmice.phantom import write_sample

    written = write_sample("us_cine", tmp_path / "cine")
    stack = backmice.open_study(written.path).stacks[0]
    volume = backmice.load(stack)
    assert volume.array.shape[0] == 12
    three = dataclasses.replace(volume, array=volume.array[:3])
    lesion = written.truth["ultrasound"][0]["lesions"][0]
    r0, c0 = three.origin_px
    seed = (c0 + lesion["x_mm"] / 0.08, r0 + lesion["depth_mm"] / 0.08)
    result = analyze_ultrasound(three, seed=seed, frame=1, all_frames=True, stack=stack)
    assert result.frame == 1 and result.frames_measured == 3
    assert result.nodules[0]["frame"] == 1
    (spread,) = result.spread
    assert spread["frames"] == 3
    for key in ("long_axis_mm", "short_axis_mm", "fascia_offset_mm"):
        s = spread[key]
        assert s["min"] <= s["median"] <= s["max"]
    assert spread["long_axis_mm"]["max"] - spread["long_axis_mm"]["min"] < 2.0
    with pytest.raises(InputError, match="frame 3 does not exist"):
        analyze_ultrasound(three, frame=3)


def test_a_region_too_small_to_analyse_is_bad_input(sample_volume):
    tiny = dataclasses.replace(sample_volume, array=sample_volume.array[:, :5, :40])
    with pytest.raises(InputError, match="too small to analyse"):
        analyze_ultrasound(tiny)


def test_blank_and_pure_noise_frames_do_not_crash():
    rng = np.random.default_rng(5)
    for image in (np.zeros((80, 120)), rng.random((80, 120)) * 255):
        a = analyze_frame(image, spacing_mm=(0.1, 0.1))
        assert np.isfinite(a.fascia).all() and np.isfinite(a.fascia_signed_mm).all()
        assert a.labels.shape == image.shape


@pytest.mark.parametrize(
    ("tags", "side"),
    [
        ({"ImageLaterality": "L"}, "left"),
        ({"Laterality": "R", "BodyPartExamined": "LEFT BACK"}, "right"),  # the tag wins
        ({"BodyPartExamined": "LOWER BACK", "ImageComments": "rt SI joint"}, "right"),
        ({"SeriesDescription": "US BACK LEFT"}, "left"),
        ({"SeriesDescription": "LEFT vs RIGHT"}, None),  # both named: unknown
        ({"SeriesDescription": "L12-5 MSK TRANS BACK"}, None),  # a probe name is no side
    ],
)
def test_side_only_when_the_header_says_it(tmp_path, tags, side):
    from pydicom.dataset import FileMetaDataset

    from backmice.ultrasound import side_from_header

    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    for key, value in tags.items():
        setattr(ds, key, value)
    path = tmp_path / "us.dcm"
    ds.save_as(path, enforce_file_format=False)
    assert side_from_header(path) == side
    assert side_from_header(None) is None


def test_a_fascia_line_handed_back_is_used_as_given(sample_volume, sample_seeded, sample_truth):
    _, lesion, _ = sample_truth
    seed = (lesion["depth_mm"] / 0.08, lesion["x_mm"] / 0.08)
    edited = sample_seeded.fascia[::50] + np.array([0.0, 25.0])  # sparse, 2 mm deeper
    a = analyze_frame(sample_volume.array[0], spacing_mm=(0.08, 0.08), seed_rc=seed, fascia=edited)
    np.testing.assert_array_equal(a.fascia, edited)
    before, after = sample_seeded.nodules[0], a.nodules[0]
    assert after["fascia_offset_mm"] == pytest.approx(before["fascia_offset_mm"] + 2.0, abs=0.1)
    assert after["long_axis_mm"] == pytest.approx(before["long_axis_mm"], abs=1e-6)


def test_an_unedited_frame_re_measured_is_the_analysis(sample_seeded):
    """Issue 18: the plugin's re-measure (edited_frame) of an unchanged frame gives
    analyze_frame's rows, every column, and the same labels and fascia map."""
    from backmice.ultrasound import edited_frame

    a = sample_seeded
    assert a.nodules
    masks = [a.labels == r["nodule_id"] for r in a.nodules]
    again = edited_frame(
        image=a.image,
        despeckled=a.despeckled,
        spacing_mm=a.spacing_mm,
        calibrated=a.calibrated,
        skin=a.skin,
        fascia=a.fascia,
        nodules=a.nodules,
        masks=masks,
    )
    assert np.array_equal(again.labels, a.labels)
    assert np.array_equal(again.fascia_signed_mm, a.fascia_signed_mm)
    for got, want in zip(again.nodules, a.nodules, strict=True):
        assert set(got) == set(want)
        for key, value in want.items():
            if isinstance(value, np.ndarray):
                assert np.array_equal(got[key], value), key
            else:
                assert got[key] == value, key
