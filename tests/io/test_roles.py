"""The role rules of docs/roles.md, one vendor-typical example each."""

from __future__ import annotations

from pathlib import Path

import pytest

from backmice.io.header import Header
from backmice.io.model import Role
from backmice.io.roles import assign_role


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
