"""The role rules of docs/roles.md, one vendor-typical example each."""

from __future__ import annotations

from pathlib import Path

import pytest

from backmice.io.header import Header
from backmice.io.model import Role
from backmice.io.roles import assign_role, echo_phase, echo_roles, is_post_contrast


def _header(
    *,
    modality="MR",
    description="",
    image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
    sop_class="1.2.840.10008.5.1.4.1.1.4",
    **mr,
) -> Header:
    info = {
        "scanning_sequence": (),
        "sequence_variant": (),
        "scan_options": (),
        "sequence_name": "",
        "protocol_name": "",
        "tr": None,
        "te": None,
        "ti": None,
        "echo_number": None,
        "fat_suppression": "",
    }
    info.update(mr)
    return Header(
        path=Path("x.dcm"),
        sop_class_uid=sop_class,
        sop_instance_uid="1",
        modality=modality,
        study_uid="",
        series_uid="",
        frame_of_reference_uid="",
        series_number=1,
        instance_number=1,
        description=description,
        image_type=tuple(image_type),
        rows=8,
        cols=8,
        n_frames=1,
        samples_per_pixel=1,
        photometric="MONOCHROME2",
        bits_allocated=16,
        bits_stored=16,
        pixel_representation=0,
        transfer_syntax="1.2.840.10008.1.2.1",
        lossy=False,
        has_pixels=True,
        pixel_offset=None,
        pixel_length=None,
        enhanced=False,
        mr=info,
    )


@pytest.mark.parametrize(
    ("header", "role"),
    [
        (_header(sop_class="1.2.840.10008.5.1.4.1.1.66.4", modality="SEG"), Role.SEG),
        (_header(sop_class="1.2.840.10008.5.1.4.1.1.88.33", modality="SR"), Role.SR),
        (_header(modality="US"), Role.US),
        (_header(image_type=("ORIGINAL", "PRIMARY", "LOCALIZER")), Role.LOCALIZER),
        (_header(description="AAHead_Scout"), Role.LOCALIZER),
        (_header(description="3-plane loc"), Role.LOCALIZER),
        (_header(description="Survey"), Role.LOCALIZER),
        (_header(modality="CT", description="Abdomen"), Role.OTHER),
        # Siemens Dixon: ImageType carries the component.
        (_header(image_type=("DERIVED", "PRIMARY", "DIXON", "FAT")), Role.DIXON_FAT),
        (_header(image_type=("DERIVED", "PRIMARY", "DIXON", "WATER")), Role.DIXON_WATER),
        (_header(image_type=("DERIVED", "PRIMARY", "DIXON", "IN_PHASE")), Role.DIXON_IN),
        (_header(image_type=("DERIVED", "PRIMARY", "DIXON", "OPP_PHASE")), Role.DIXON_OUT),
        # Philips mDIXON: single letters.
        (_header(image_type=("ORIGINAL", "PRIMARY", "F", "F")), Role.DIXON_FAT),
        (_header(image_type=("ORIGINAL", "PRIMARY", "W", "W")), Role.DIXON_WATER),
        # Descriptions.
        (_header(description="t1_vibe_dixon_tra_opp"), Role.DIXON_OUT),
        (_header(description="t1_vibe_dixon_tra_in"), Role.DIXON_IN),
        (_header(description="Ax LAVA-Flex WATER"), Role.DIXON_WATER),
        (_header(description="mDIXON FAT"), Role.DIXON_FAT),
        (_header(description="IDEAL fat fraction"), Role.OTHER),
        # Fat suppression beats weighting.
        (_header(description="Ax T2 FAT SAT"), Role.FATSAT),
        (_header(description="sag STIR"), Role.FATSAT),
        (_header(description="t2_tirm_tra"), Role.FATSAT),
        (_header(description="T1 post", scan_options=("FS",)), Role.FATSAT),
        (_header(scanning_sequence=("IR",), ti=160.0, tr=4000.0, te=60.0), Role.FATSAT),
        (_header(description="t2_tse_tra_spair"), Role.FATSAT),
        # Weighting.
        (_header(description="t1_tse_tra"), Role.T1),
        (_header(description="Ax T1"), Role.T1),
        (_header(description="T2W_TSE"), Role.T2),
        (_header(description="t2*_gre"), Role.OTHER),
        (_header(scanning_sequence=("SE",), tr=500.0, te=12.0), Role.T1),
        (_header(scanning_sequence=("SE",), tr=4000.0, te=100.0), Role.T2),
        (_header(scanning_sequence=("GR",), tr=5.0, te=2.0), Role.OTHER),
        (_header(description="PD"), Role.OTHER),
    ],
)
def test_role_rules(header, role):
    assert assign_role(header) is role


def test_enhanced_frame_type_overrides_the_file_image_type():
    header = _header(image_type=("DERIVED", "PRIMARY", "MIXED", "NONE"))
    assert assign_role(header, image_type=("DERIVED", "PRIMARY", "WATER", "NONE")) is (
        Role.DIXON_WATER
    )


# ----------------------------------------------------------------- vendor conventions
# Issue 14: real vendor series analysed without flags. One test per convention.


@pytest.mark.parametrize(
    ("header", "role"),
    [
        # Philips T1 dual echo: empty SeriesDescription, ProtocolName per echo.
        (_header(protocol_name="T1DUAL_InPhase", scanning_sequence=("GR",)), Role.DIXON_IN),
        (_header(protocol_name="T1DUAL_OutPhase", scanning_sequence=("GR",)), Role.DIXON_OUT),
        # Philips T1-FFE without a name that says T1: gradient echo timing and flip angle.
        (
            _header(
                image_type=("ORIGINAL", "PRIMARY", "M_FFE", "M", "FFE"),
                scanning_sequence=("GR",),
                tr=132.0,
                te=4.6,
                flip_angle=80.0,
            ),
            Role.T1,
        ),
        # ... but a low flip angle is proton-density weighted, and a long TE is T2*.
        (_header(scanning_sequence=("GR",), tr=7.0, te=2.0, flip_angle=4.0), Role.OTHER),
        (_header(scanning_sequence=("GR",), tr=600.0, te=20.0, flip_angle=20.0), Role.OTHER),
        # Gradient-echo EPI (perfusion, BOLD) is not a T1.
        (_header(scanning_sequence=("GR", "EP"), tr=50.0, te=5.0, flip_angle=30.0), Role.OTHER),
        # Philips THRIVE, and phase images that share the magnitude's series.
        (_header(description="THRIVE_pre", scanning_sequence=("GR",)), Role.T1),
        (_header(image_type=("ORIGINAL", "PRIMARY", "P_FFE", "P", "FFE")), Role.OTHER),
        (_header(description="t1_vibe", image_type=("ORIGINAL", "PRIMARY", "P", "ND")), Role.OTHER),
    ],
)
def test_philips_conventions(header, role):
    assert assign_role(header) is role


@pytest.mark.parametrize(
    ("header", "role"),
    [
        # Siemens VIBE and FLASH: SeriesDescription, or the SequenceName alone.
        (_header(description="fl3d_vibe_pre_flip_20deg", sequence_name="fl3d1"), Role.T1),
        (_header(description="ax 3d pre", sequence_name="*fl3d1", te=1.4), Role.T1),
        (_header(description="ax pelvis", sequence_name="*fl2d1", te=4.8), Role.T1),
        (_header(description="Twist_dynamic_TT=164.0s", sequence_name="fldyn3d1"), Role.T1),
        (_header(description="t1_mprage_sag", sequence_name="*tfl3d1_16ns"), Role.T1),
        # A FLASH with a long TE is a T2* image; TrueFISP is not T1 either.
        (_header(description="gre_medic", sequence_name="*fl2d1", te=20.0), Role.OTHER),
        (_header(description="ax trufi", sequence_name="*tfi2d1_12"), Role.OTHER),
        # Fat-saturated VIBE stays fat-suppressed.
        (_header(description="t1_vibe_fs_tra", sequence_name="*fl3d1"), Role.FATSAT),
        # Siemens dual echo named for both echoes: the echo time decides.
        (
            _header(description="t1_fl2d_opp-in_tra", te=2.46, field_strength=1.5),
            Role.DIXON_OUT,
        ),
        (
            _header(description="t1_fl2d_opp-in_tra", te=4.92, field_strength=1.5),
            Role.DIXON_IN,
        ),
    ],
)
def test_siemens_conventions(header, role):
    assert assign_role(header) is role


@pytest.mark.parametrize(
    ("header", "role"),
    [
        (_header(description="Ax LAVA pre"), Role.T1),
        (_header(description="AX 3D FSPGR"), Role.T1),
        (_header(description="Ax SPGR", scanning_sequence=("GR",)), Role.T1),
        (_header(description="Sag BRAVO"), Role.T1),
        (_header(description="Ax LAVA-Flex WATER"), Role.DIXON_WATER),
        (_header(description="Ax FIESTA"), Role.OTHER),
        # GE dual echo SPGR (one series), named for the echo or not.
        (_header(description="AX DUAL ECHO OUT PHASE"), Role.DIXON_OUT),
        (_header(description="Ax in phase"), Role.DIXON_IN),
        (
            _header(description="Ax DUAL ECHO", te=2.2, field_strength=15000.0),  # gauss
            Role.DIXON_OUT,
        ),
    ],
)
def test_ge_conventions(header, role):
    assert assign_role(header) is role


@pytest.mark.parametrize(
    ("header", "role"),
    [
        (_header(description="Ax T1 FSE"), Role.T1),
        (_header(description="t1_tse_tra_p2"), Role.T1),
        (_header(description="T1W_TSE", scanning_sequence=("SE",), tr=600.0, te=10.0), Role.T1),
        # No weighting in the name: spin-echo timing, from ScanningSequence or the name.
        (_header(description="ax tse", tr=520.0, te=9.0), Role.T1),
        (_header(description="ax fse", tr=4500.0, te=95.0), Role.T2),
        (_header(scanning_sequence=("SE",), sequence_name="*tse2d1_3", tr=650.0, te=11.0), Role.T1),
    ],
)
def test_t1_tse_fse_conventions(header, role):
    assert assign_role(header) is role


@pytest.mark.parametrize(
    ("te_ms", "field_t", "role"),
    [
        (4.6, 1.5, Role.DIXON_IN),  # the period at 1.5 T is 4.47 ms
        (2.3, 1.5, Role.DIXON_OUT),
        (4.4, 1.5, Role.DIXON_IN),
        (2.2, 1.5, Role.DIXON_OUT),
        (2.3, 3.0, Role.DIXON_IN),  # 2.24 ms at 3 T
        (1.15, 3.0, Role.DIXON_OUT),
        (2.5, 3.0, Role.DIXON_IN),
        (1.42, 3.0, None),  # a VIBE's TE is neither
        (3.45, 1.5, None),
        (20.0, 1.5, None),  # beyond the first cycles: a T2* echo
        (4.6, None, None),
        (None, 1.5, None),
    ],
)
def test_in_or_opposed_phase_from_echo_time(te_ms, field_t, role):
    assert echo_phase(te_ms, field_t) is role


def test_echo_roles_te_decides_when_names_do_not():
    gre = _header(scanning_sequence=("GR",), field_strength=1.5)
    # Philips may name both echoes of one series T1DUAL_InPhase.
    assert echo_roles([Role.DIXON_IN, Role.DIXON_IN], [2.3, 4.6], gre) == [
        Role.DIXON_OUT,
        Role.DIXON_IN,
    ]
    # Names that tell the echoes apart win.
    assert echo_roles([Role.DIXON_IN, Role.DIXON_OUT], [2.3, 4.6], gre) == [
        Role.DIXON_IN,
        Role.DIXON_OUT,
    ]
    # Unnamed gradient echoes at 3 T.
    gre3 = _header(scanning_sequence=("GR",), field_strength=3.0)
    assert echo_roles([Role.OTHER, Role.T1], [1.15, 2.3], gre3) == [Role.DIXON_OUT, Role.DIXON_IN]
    # Without the field strength: two echoes a factor of about 2 apart.
    assert echo_roles([Role.OTHER, Role.OTHER], [4.6, 2.3], _header()) == [
        Role.DIXON_IN,
        Role.DIXON_OUT,
    ]
    # A spin-echo PD/T2 dual echo, and a T2* series of in-phase echoes, are left alone.
    se = _header(scanning_sequence=("SE",), field_strength=1.5)
    assert echo_roles([Role.OTHER, Role.T2], [15.0, 90.0], se) == [Role.OTHER, Role.T2]
    assert echo_roles([Role.OTHER, Role.OTHER], [4.6, 9.2], gre) == [Role.OTHER, Role.OTHER]


@pytest.mark.parametrize(
    ("header", "post"),
    [
        (_header(description="Twist_dynamic_Wip576_TT=164.0s", sequence_name="fldyn3d1"), True),
        (_header(description="fl3d_vibe_pre_flip_20deg", sequence_name="fl3d1"), False),
        (_header(description="Ax T1 FSE", contrast_agent="GADOVIST"), True),
        (_header(description="Ax T1 FSE +C"), True),
        (_header(description="t1_tse_tra_KM"), True),
        (_header(description="Ax LAVA", temporal_positions=6), True),
        (_header(description="T1DUAL_InPhase"), False),
        (_header(description="t1_tse_tra_post"), True),
        (_header(description="Sag T1 posterior elements"), False),
        (_header(description="Ax T1 FSE", contrast_agent="None"), False),
    ],
)
def test_dynamic_and_post_contrast_series(header, post):
    assert is_post_contrast(header) is post
