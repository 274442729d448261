"""Which stacks the analysis takes (choose): vendor studies without flags, and what it says."""

from __future__ import annotations

import numpy as np
import pytest

import backmice
from backmice.analysis import choose, choose_stacks
from backmice.errors import InputError
from backmice.io import Role
from backmice.io.writer import make_affine, write_series
from backmice.segment import Method

AFFINE = make_affine((5.5, 1.9, 1.9))
STUDY = "1.2.826.0.1.3680043.8.498.100"
FOR = "1.2.826.0.1.3680043.8.498.101"
DUAL_UID = "1.2.826.0.1.3680043.8.498.102"


def _write(folder, *, number, description="", n=3, seed=0, series_uid=None, **tags):
    write_series(
        np.full((n, 16, 16), 100.0),
        folder,
        affine=AFFINE,
        series_description=description,
        study_uid=STUDY,
        frame_of_reference_uid=FOR,
        series_uid=series_uid,
        series_number=number,
        seed=seed,
        filename_pattern=f"S{number}_E{seed}_{{index}}.dcm",
        extra_tags=tags,
    )


def _dual_echo(folder, *, n_opposed=3):
    """Philips T1 dual echo: both echoes in one series, no SeriesDescription."""
    common = {
        "ScanningSequence": "GR",
        "RepetitionTime": 132.4,
        "FlipAngle": 80.0,
        "MagneticFieldStrength": 1.5,
        "ImageType": ["ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"],
    }
    _write(
        folder,
        number=801,
        seed=1,
        n=n_opposed,
        series_uid=DUAL_UID,
        ProtocolName="T1DUAL_OutPhase",
        EchoTime=2.3,
        EchoNumbers=1,
        **common,
    )
    _write(
        folder,
        number=801,
        seed=2,
        series_uid=DUAL_UID,
        ProtocolName="T1DUAL_InPhase",
        EchoTime=4.6,
        EchoNumbers=2,
        **common,
    )


def _vibe(folder, description="fl3d_vibe_pre_flip_20deg", sequence="fl3d1", number=26):
    _write(
        folder,
        number=number,
        description=description,
        ScanningSequence="GR",
        SequenceName=sequence,
        RepetitionTime=3.85,
        EchoTime=1.42,
        FlipAngle=20.0,
        MagneticFieldStrength=3.0,
    )


def test_in_opposed_only_study_uses_both_echoes_and_says_so(tmp_path):
    _dual_echo(tmp_path)
    choice = choose(backmice.open_study(tmp_path))
    assert choice.method is Method.INOUT
    assert [s.role for s in choice.stacks] == [Role.DIXON_IN, Role.DIXON_OUT]
    assert "two-point Dixon" in choice.notes[0] and "TE 4.6 ms" in choice.notes[0]
    # choose_stacks is the same choice without the notes.
    method, stacks = choose_stacks(backmice.open_study(tmp_path))
    assert method is Method.INOUT
    assert [s.series_uid for s in stacks] == [s.series_uid for s in choice.stacks]
    assert [s.role for s in stacks] == [Role.DIXON_IN, Role.DIXON_OUT]


def test_series_holding_two_echoes_never_takes_the_opposed_echo_silently(tmp_path):
    _dual_echo(tmp_path)
    study = backmice.open_study(tmp_path)
    assert choose(study, series_uid=DUAL_UID).method is Method.INOUT
    as_t1 = choose(study, series_uid=DUAL_UID, method="t1")
    assert as_t1.method is Method.T1
    assert as_t1.stacks[0].role is Role.DIXON_IN
    assert "in-phase echo (echo 2, TE 4.6 ms" in as_t1.notes[0]
    # The user may name the echo; then it is analysed as asked, and said so.
    named = choose(study, series_uid=DUAL_UID, echo=1)
    assert named.stacks[0].role is Role.DIXON_OUT and "as asked" in named.notes[0]
    with pytest.raises(InputError, match="echoes found: 1, 2"):
        choose(study, series_uid=DUAL_UID, echo=3)


def test_opposed_echo_on_another_grid_falls_back_to_the_in_phase_echo(tmp_path):
    _dual_echo(tmp_path, n_opposed=2)  # one slice of the opposed echo missing
    choice = choose(backmice.open_study(tmp_path))
    assert choice.method is Method.T1 and choice.stacks[0].role is Role.DIXON_IN
    assert "another grid" in choice.notes[0]
    with pytest.raises(InputError, match="in/opposed-phase analysis needs"):
        choose(backmice.open_study(tmp_path), method="inout")


def test_in_phase_echo_alone_is_analysed_as_t1(tmp_path):
    _write(
        tmp_path,
        number=1,
        description="T1 in-phase GRE",
        ScanningSequence="GR",
        EchoTime=4.6,
    )
    choice = choose(backmice.open_study(tmp_path))
    assert choice.method is Method.T1 and choice.stacks[0].role is Role.DIXON_IN
    assert "no opposed-phase echo" in choice.notes[0]


def test_pre_contrast_vibe_before_twist_and_before_in_opposed(tmp_path):
    _vibe(tmp_path / "twist", "Twist_dynamic_Wip576_TT=164.0s", "fldyn3d1", number=10)
    _vibe(tmp_path / "vibe")
    _dual_echo(tmp_path / "dual")
    study = backmice.open_study(tmp_path)
    choice = choose(study)
    assert choice.method is Method.T1
    assert choice.stacks[0].description == "fl3d_vibe_pre_flip_20deg" and not choice.notes
    assert choose(study, method="inout").method is Method.INOUT


def test_only_a_dynamic_t1_is_used_and_said(tmp_path):
    _vibe(tmp_path, "Twist_dynamic_Wip576_TT=164.0s", "fldyn3d1")
    choice = choose(backmice.open_study(tmp_path))
    assert choice.method is Method.T1 and "dynamic or post-contrast" in choice.notes[0]


def test_dixon_pair_still_wins(tmp_path):
    _dual_echo(tmp_path / "dual")
    for number, kind in ((5, "FAT"), (6, "WATER")):
        _write(
            tmp_path / kind,
            number=number,
            description=f"mDIXON {kind}",
            ImageType=["DERIVED", "PRIMARY", "DIXON", kind],
        )
    assert choose(backmice.open_study(tmp_path)).method is Method.DIXON
