"""An in/opposed-phase-only study is analysed without flags (issue 14).

The phantom's T1 and Dixon fat and water quantities make a T1-weighted dual
echo as a Philips scanner writes it (both echoes in one series, no
SeriesDescription): in-phase ``IP = T1`` (fat bright), opposed-phase
``OP = T1 · |1 − 2 FF|``. The analysis takes both echoes, computes the
two-point Dixon fat fraction and says so; with the opposed echo unusable it
analyses the in-phase echo as the T1 image and says that.
"""

from __future__ import annotations

import numpy as np
import pytest

from backmice.analysis import analyze
from backmice.io.writer import write_series
from backmice.phantom.render import coil_bias, render
from backmice.phantom.samples import dixon_grid
from backmice.phantom.scene import make_scene
from backmice.segment import Method
from backmice.segment.fat import fat_signal_two_point

SERIES = "1.2.826.0.1.3680043.8.498.200"


@pytest.fixture(scope="module")
def echoes():
    """In-phase and opposed-phase images of a phantom, a tissue fat fraction, and the grid."""
    grid = dixon_grid()
    rendered = render(make_scene(3), grid, quantities=("t1", "fat", "water"))
    q = rendered.quantities
    total = q["fat"] + q["water"]
    ff = np.divide(q["fat"], total, out=np.zeros_like(total), where=total > 0)
    field = np.stack(
        [coil_bias(grid.slice_centres(k)).reshape(grid.shape[1:]) for k in range(grid.shape[0])]
    )
    rng = np.random.default_rng(3)
    sigma = 1000.0 / 40.0  # SNR 40 on subcutaneous fat

    def noisy(image):
        return np.hypot(
            image * field + sigma * rng.standard_normal(image.shape),
            sigma * rng.standard_normal(image.shape),
        )

    in_phase = noisy(q["t1"])
    opposed = noisy(q["t1"] * np.abs(1.0 - 2.0 * ff))
    return in_phase, opposed, ff, grid


def _write(folder, image, grid, *, echo, te, protocol):
    write_series(
        image,
        folder,
        affine=grid.affine,
        series_description="",
        image_type=("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
        series_uid=SERIES,
        series_number=801,
        study_uid="1.2.826.0.1.3680043.8.498.201",
        frame_of_reference_uid="1.2.826.0.1.3680043.8.498.202",
        seed=echo,
        filename_pattern=f"E{echo}_{{index}}.dcm",
        extra_tags={
            "ScanningSequence": "GR",
            "RepetitionTime": 132.0,
            "FlipAngle": 80.0,
            "MagneticFieldStrength": 1.5,
            "ProtocolName": protocol,
            "EchoTime": te,
            "EchoNumbers": echo,
        },
    )


@pytest.mark.slow
def test_in_opposed_only_study_is_analysed_with_the_two_point_fat_fraction(tmp_path, echoes):
    in_phase, opposed, ff, grid = echoes
    _write(tmp_path, opposed, grid, echo=1, te=2.3, protocol="T1DUAL_OutPhase")
    _write(tmp_path, in_phase, grid, echo=2, te=4.6, protocol="T1DUAL_InPhase")
    analysis = analyze(tmp_path)
    assert analysis.method is Method.INOUT
    assert [s.echo_time_ms for s in analysis.stacks] == [4.6, 2.3]
    assert "two-point Dixon" in analysis.warnings[0]
    fraction = analysis.fat.fat_fraction
    assert fraction is not None and fraction.min() >= 0.0 and fraction.max() <= 1.0
    # The estimate against the phantom's own fat fraction, in the body.
    body = analysis.body.mask
    fat, lean = body & (ff > 0.9), body & (ff < 0.1)
    assert abs(np.median(fraction[fat]) - np.median(ff[fat])) < 0.05
    assert np.median(fraction[lean]) < 0.1
    # Nodules are found and carry a fat fraction, as on Dixon.
    assert analysis.nodules
    assert all(0.5 <= row["fat_fraction"] <= 1.0 for row in analysis.nodules)


@pytest.mark.slow
def test_opposed_echo_on_another_grid_analyses_the_in_phase_echo_as_t1(tmp_path, echoes):
    in_phase, opposed, _ff, grid = echoes
    _write(tmp_path, opposed[:-2], grid, echo=1, te=2.3, protocol="T1DUAL_OutPhase")
    _write(tmp_path, in_phase, grid, echo=2, te=4.6, protocol="T1DUAL_InPhase")
    analysis = analyze(tmp_path)
    assert analysis.method is Method.T1
    assert analysis.stacks[0].echo_time_ms == 4.6
    assert "in-phase echo" in analysis.warnings[0] and "another grid" in analysis.warnings[0]
    assert analysis.fat.fat_fraction is None


def _blocks(values, size=3):
    """A (1, size, size * len(values)) array: one size×size block per value."""
    return np.repeat(np.asarray(values, dtype=np.float32), size)[None, None, :].repeat(size, 1)


def test_two_point_fat_fraction_resolves_the_ambiguity_from_the_in_phase_score():
    # Fat-dominant (ff 0.9), water-dominant (0.1) and mixed (0.5) tissue, T1-weighted.
    true_ff = _blocks([0.9, 0.1, 0.5, 0.0])
    t1 = _blocks([1000.0, 350.0, 700.0, 0.0])
    in_phase, opposed = t1, t1 * np.abs(1 - 2 * true_ff)
    score = _blocks([1.0, 0.05, 0.55, -1.0])
    body = _blocks([1, 1, 1, 0]).astype(bool)
    fat = fat_signal_two_point(in_phase, opposed, body, score)
    assert fat.method is Method.INOUT
    np.testing.assert_allclose(fat.fat_fraction, true_ff, atol=1e-6)
    assert fat.mask[0, 0].tolist() == [True] * 3 + [False] * 3 + [True] * 3 + [False] * 3
    with pytest.raises(ValueError, match="differ in shape"):
        fat_signal_two_point(in_phase, opposed[:, :, :2], body, score)


def test_a_speck_of_low_score_in_fat_keeps_the_fat_branch_but_a_capsule_does_not():
    shape = (1, 15, 15)
    true_ff = np.full(shape, 0.9, dtype=np.float32)
    score = np.ones(shape, dtype=np.float32)
    score[0, 3, 3] = 0.45  # noise: a fat voxel whose in-phase score dips under 0.5
    # A capsule: a ring of fibrous tissue (ff 0.1, dark on T1) round a fat core.
    rr, cc = np.mgrid[:15, :15]
    ring = np.abs(np.hypot(rr - 9, cc - 9) - 3.5) < 0.6
    true_ff[0][ring], score[0][ring] = 0.1, 0.1
    t1 = np.where(true_ff > 0.5, 1000.0, 350.0).astype(np.float32)
    fat = fat_signal_two_point(t1, t1 * np.abs(1 - 2 * true_ff), np.ones(shape, bool), score)
    assert fat.fat_fraction[0, 3, 3] == pytest.approx(0.9, abs=1e-6)
    np.testing.assert_allclose(fat.fat_fraction[0][ring], 0.1, atol=1e-6)
