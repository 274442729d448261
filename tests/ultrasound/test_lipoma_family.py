"""The widened lipoma phantom family and the capsule it must be segmented by (issue 17, item 1).

The family's truth is checked against the frame it renders; the seeded
segmentation of a striated lipoma (the issue's case: 26 mm, internal lines
parallel to the skin, 0.1 mm pixels) follows the capsule, not the lines. The
family's accuracy over many frames is measured by ``bench/accuracy_us.py
--family`` (``docs/ultrasound.md``), not asserted here: it does not pass everywhere yet.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from backmice.phantom import Tissue
from backmice.phantom.us_lipoma import PIXEL_SIZES_MM, LipomaSpec, random_spec, render_lipoma
from backmice.ultrasound import analyze_frame, measure_mask

#: The issue's lipoma: 26 mm with striations, a complete capsule, 0.1 mm pixels.
STRIATED = LipomaSpec(long_mm=26.0, short_mm=9.0, striations=5, striation_echo=10.0)


def test_random_specs_span_the_family():
    rng = np.random.default_rng(0)
    specs = [random_spec(rng) for _ in range(200)]
    assert min(s.long_mm for s in specs) < 12 and max(s.long_mm for s in specs) > 45
    assert {s.pixel_mm for s in specs} == set(PIXEL_SIZES_MM)
    assert any(s.iceberg for s in specs) and not all(s.iceberg for s in specs)
    assert any(s.capsule_gap_deg > 0 for s in specs) and any(s.striations >= 5 for s in specs)
    assert min(s.capsule_echo for s in specs) < 15 and max(s.capsule_echo for s in specs) > 70


@pytest.mark.parametrize("spec", [STRIATED, LipomaSpec(angle_deg=6.0, pixel_mm=0.15)])
def test_truth_matches_the_rendered_core(spec):
    frame = render_lipoma(spec, seed=3)
    core = frame.labels == Tissue.LESION_FAT
    t = frame.truth
    m = measure_mask(
        core, spacing_mm=frame.spacing_mm, fascia_line=t["fascia_line"], skin_line=t["skin_line"]
    )
    step = frame.spacing_mm[0]
    assert m["long_axis_mm"] == pytest.approx(t["long_axis_mm"], abs=2 * step)
    assert m["short_axis_mm"] == pytest.approx(t["short_axis_mm"], abs=2 * step)
    assert m["skin_depth_mm"] == pytest.approx(t["skin_depth_mm"], abs=1.5 * step)
    assert m["fascia_min_mm"] == pytest.approx(t["fascia_min_mm"], abs=1.5 * step)
    assert m["relation"] == t["relation"] == "subcutaneous"


def test_iceberg_is_transfascial_and_breaks_the_fascia():
    spec = LipomaSpec(depth_mm=6.0, short_mm=10.0, fat_mm=13.0, striations=2)
    frame = render_lipoma(spec, seed=1)
    assert spec.iceberg and frame.truth["relation"] == "transfascial"
    assert frame.truth["fascia_min_mm"] < 0 < frame.truth["fascia_max_mm"]
    middle = frame.labels[:, frame.labels.shape[1] // 2]
    assert not (middle == Tissue.FASCIA).any()  # the lipoma passes through it


def test_striated_lipoma_is_outlined_by_its_capsule_not_its_lines():
    frame = render_lipoma(STRIATED, seed=11)
    t = frame.truth
    dy, dx = frame.spacing_mm
    seed = (t["depth_mm"] / dy + 4, t["x_mm"] / dx - 10)  # off centre, near a line
    a = analyze_frame(frame.image.astype(np.float32), spacing_mm=frame.spacing_mm, seed_rc=seed)
    (n,) = a.nodules
    assert abs(n["long_axis_mm"] - t["long_axis_mm"]) <= max(1.0, 0.1 * t["long_axis_mm"])
    assert abs(n["short_axis_mm"] - t["short_axis_mm"]) <= 1.0
    assert abs(n["skin_depth_mm"] - t["skin_depth_mm"]) <= 0.7
    assert abs(n["fascia_min_mm"] - t["fascia_min_mm"]) <= 0.7
    # Every striation lies inside the outline (but for its last pixel or two at the core's edge).
    core = frame.labels == Tissue.LESION_FAT
    lines = ndi.binary_erosion(core, iterations=2) & (frame.image > 200)
    assert lines.sum() > 100 and (a.labels[lines] > 0).mean() > 0.99


def test_random_specs_follow_the_sonographic_series():
    # Salmaso 1994 / Inampudi 2004: striped ~70 %, capsule often faint, hypoechoic ~1/4,
    # posterior enhancement ~1/3 (docstring of random_spec).
    rng = np.random.default_rng(1)
    specs = [random_spec(rng) for _ in range(600)]

    def share(test):
        return np.mean([test(s) for s in specs])

    assert 0.6 < share(lambda s: s.striations >= 2) < 0.8
    assert 0.18 < share(lambda s: s.lesion_echo < 0.9) < 0.32
    assert 0.25 < share(lambda s: s.enhancement > 0) < 0.42
    assert 0.25 < share(lambda s: s.capsule_echo < 10) < 0.42


def test_iceberg_is_measured_through_the_fascia():
    """The fascia is bridged across the lipoma, not drawn under it along the muscle."""
    spec = LipomaSpec(long_mm=24.0, short_mm=10.0, depth_mm=6.0, fat_mm=13.5, striations=3)
    frame = render_lipoma(spec, seed=5)
    t = frame.truth
    dy, dx = frame.spacing_mm
    a = analyze_frame(
        frame.image.astype(np.float32),
        spacing_mm=frame.spacing_mm,
        seed_rc=(t["depth_mm"] / dy, t["x_mm"] / dx),
    )
    (n,) = a.nodules
    assert n["relation"] == t["relation"] == "transfascial"
    assert abs(n["fascia_min_mm"] - t["fascia_min_mm"]) <= 0.7
    assert abs(n["long_axis_mm"] - t["long_axis_mm"]) <= max(1.0, 0.1 * t["long_axis_mm"])


def test_small_lipoma_between_bright_striations_is_outlined_by_its_capsule():
    """An ellipse fitted between two striations is not the capsule: the one around it is."""
    spec = LipomaSpec(
        long_mm=11.8, short_mm=4.4, striations=4, striation_echo=12.0, capsule_echo=20.0
    )
    frame = render_lipoma(spec, seed=7)
    t = frame.truth
    dy, dx = frame.spacing_mm
    a = analyze_frame(
        frame.image.astype(np.float32),
        spacing_mm=frame.spacing_mm,
        seed_rc=(t["depth_mm"] / dy + 3, t["x_mm"] / dx + 5),
    )
    (n,) = a.nodules
    assert abs(n["long_axis_mm"] - t["long_axis_mm"]) <= max(1.0, 0.1 * t["long_axis_mm"])
    assert abs(n["short_axis_mm"] - t["short_axis_mm"]) <= 1.0
