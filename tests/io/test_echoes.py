"""Series with several echoes, and vendor series written as the scanners write them.

Each echo of a series is a stack of its own, told in-phase or opposed-phase by
its name or its echo time (docs/roles.md); dynamic series are marked.
"""

from __future__ import annotations

import numpy as np

import backmice
from backmice.io import Role
from backmice.io.writer import make_affine, write_series

AFFINE = make_affine((5.5, 1.9, 1.9))
STUDY = "1.2.826.0.1.3680043.8.498.1"
FOR = "1.2.826.0.1.3680043.8.498.2"
GRE_1_5T = {
    "ScanningSequence": "GR",
    "SequenceVariant": "SS",
    "RepetitionTime": 132.4,
    "FlipAngle": 80.0,
    "MagneticFieldStrength": 1.5,
}


def _echo(folder, *, series_uid, echo, te, protocol, description="", series_number=801, **tags):
    """One echo of a T1 dual-echo series (3 slices of 16×16), written as Philips does."""
    return write_series(
        np.full((3, 16, 16), 100.0 * echo),
        folder,
        affine=AFFINE,
        series_description=description,
        image_type=("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
        study_uid=STUDY,
        frame_of_reference_uid=FOR,
        series_uid=series_uid,
        series_number=series_number,
        seed=echo,  # distinct SOPInstanceUIDs for the two echoes of one series
        filename_pattern=f"E{echo}_{{index}}.dcm",
        extra_tags={
            **GRE_1_5T,
            "ProtocolName": protocol,
            "EchoTime": te,
            "EchoNumbers": echo,
            **tags,
        },
    )


def _roles(study):
    return {s.role: s for s in study.stacks}


def test_philips_dual_echo_in_one_series_is_two_stacks(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.10"
    _echo(tmp_path, series_uid=uid, echo=1, te=2.302, protocol="T1DUAL_OutPhase")
    _echo(tmp_path, series_uid=uid, echo=2, te=4.635, protocol="T1DUAL_InPhase")
    study = backmice.open_study(tmp_path)
    assert len(study.stacks) == 2
    assert {s.series_uid for s in study.stacks} == {uid}
    roles = _roles(study)
    assert set(roles) == {Role.DIXON_IN, Role.DIXON_OUT}
    assert roles[Role.DIXON_IN].echo_time_ms == 4.635
    assert roles[Role.DIXON_OUT].echo_number == 1
    # No SeriesDescription: the ProtocolName names it, and the echo tells them apart.
    assert roles[Role.DIXON_IN].description == "T1DUAL_InPhase (echo 2, TE 4.635 ms)"
    assert roles[Role.DIXON_OUT].description == "T1DUAL_OutPhase (echo 1, TE 2.302 ms)"
    assert roles[Role.DIXON_IN].summary()["echo_time_ms"] == 4.635
    assert all(s.shape == (3, 16, 16) for s in study.stacks)


def test_philips_dual_echo_named_in_phase_twice_is_told_apart_by_echo_time(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.11"
    _echo(tmp_path, series_uid=uid, echo=1, te=2.3, protocol="T1DUAL_InPhase")
    _echo(tmp_path, series_uid=uid, echo=2, te=4.6, protocol="T1DUAL_InPhase")
    roles = _roles(backmice.open_study(tmp_path))
    assert set(roles) == {Role.DIXON_IN, Role.DIXON_OUT}
    assert roles[Role.DIXON_IN].echo_time_ms == 4.6
    assert roles[Role.DIXON_OUT].echo_time_ms == 2.3


def test_unnamed_dual_echo_at_3t_split_by_echo_time(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.12"
    for echo, te in ((1, 1.15), (2, 2.3)):
        _echo(
            tmp_path,
            series_uid=uid,
            echo=echo,
            te=te,
            protocol="WIP sBH",
            MagneticFieldStrength=3.0,
        )
    roles = _roles(backmice.open_study(tmp_path))
    assert roles[Role.DIXON_OUT].echo_time_ms == 1.15
    assert roles[Role.DIXON_IN].echo_time_ms == 2.3


def test_echoes_without_echo_numbers_split_by_echo_time(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.13"
    for echo, te in ((1, 2.3), (2, 4.6)):
        _echo(
            tmp_path,
            series_uid=uid,
            echo=echo,
            te=te,
            protocol="Ax DUAL ECHO",
            EchoNumbers=None,
            MagneticFieldStrength=None,
        )
    study = backmice.open_study(tmp_path)
    assert len(study.stacks) == 2
    roles = _roles(study)
    assert roles[Role.DIXON_OUT].echo_time_ms == 2.3
    assert roles[Role.DIXON_IN].description == "Ax DUAL ECHO (TE 4.6 ms)"


def test_philips_dual_echo_as_two_series(tmp_path):
    _echo(
        tmp_path / "in",
        series_uid="1.2.826.0.1.3680043.8.498.14",
        echo=2,
        te=4.6,
        protocol="T1DUAL_InPhase",
        series_number=801,
    )
    _echo(
        tmp_path / "out",
        series_uid="1.2.826.0.1.3680043.8.498.15",
        echo=1,
        te=2.3,
        protocol="T1DUAL_OutPhase",
        series_number=802,
    )
    roles = _roles(backmice.open_study(tmp_path))
    assert set(roles) == {Role.DIXON_IN, Role.DIXON_OUT}
    # One echo per series: no echo in the name.
    assert roles[Role.DIXON_IN].description == "T1DUAL_InPhase"


def _siemens(folder, description, sequence_name, number, **tags):
    return write_series(
        np.full((3, 16, 16), 50.0),
        folder,
        affine=AFFINE,
        series_description=description,
        image_type=("ORIGINAL", "PRIMARY", "M", "ND"),
        study_uid=STUDY,
        frame_of_reference_uid=FOR,
        series_number=number,
        extra_tags={
            "ScanningSequence": "GR",
            "SequenceVariant": ["SP", "OSP"],
            "SequenceName": sequence_name,
            "ProtocolName": description,
            "MRAcquisitionType": "3D",
            "RepetitionTime": 3.85,
            "EchoTime": 1.42,
            "FlipAngle": 20.0,
            "MagneticFieldStrength": 3.0,
            **tags,
        },
    )


def test_siemens_vibe_and_twist_are_t1_the_dynamic_one_marked(tmp_path):
    _siemens(tmp_path / "vibe", "fl3d_vibe_pre_flip_20deg_Wip403d", "fl3d1", 26)
    _siemens(tmp_path / "twist", "Twist_dynamic_Wip576_TT=164.0s", "fldyn3d1", 64)
    study = backmice.open_study(tmp_path)
    by_number = {s.series_number: s for s in study.stacks}
    assert by_number[26].role is Role.T1 and not by_number[26].post_contrast
    assert by_number[64].role is Role.T1 and by_number[64].post_contrast
    # A single echo: the echo time is recorded, the name is left alone.
    assert by_number[26].echo_time_ms == 1.42
    assert by_number[26].description == "fl3d_vibe_pre_flip_20deg_Wip403d"
