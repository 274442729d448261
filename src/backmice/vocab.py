"""The vocabularies of ``docs/SPEC.md``: relation to the fascia, side, subtype, status,
red flags, and the methods and modalities an analysis runs on.

Values are stored as these strings (``snake_case``; DICOM's own codes for
:class:`Modality`), in CSV, JSON and the store. Every vocabulary is a
:class:`enum.StrEnum`, so a member compares equal to its string and is written
as it.
"""

from __future__ import annotations

import enum

__all__ = [
    "COLUMNS",
    "DETAILS",
    "Method",
    "Modality",
    "RedFlag",
    "Relation",
    "Side",
    "Status",
    "Subtype",
    "UltrasoundMethod",
]


class Method(enum.StrEnum):
    """How fat is found on MRI (``backmice analyze --method``)."""

    T1 = "t1"
    DIXON = "dixon"
    #: Two-point Dixon from the in-phase and opposed-phase echoes of a dual-echo T1.
    INOUT = "inout"


class UltrasoundMethod(enum.StrEnum):
    """The method of an ultrasound study (a batch table's ``method`` column).

    MRI studies hold their fat :class:`Method` (``t1``, ``dixon``, ``inout``) in
    the same column; an ultrasound study is analysed one way only.
    """

    ULTRASOUND = "ultrasound"


class Modality(enum.StrEnum):
    """DICOM Modality (0008,0060) codes backmice reads or writes, as DICOM spells them."""

    MR = "MR"
    US = "US"
    CT = "CT"
    #: A DICOM Segmentation (``backmice export --format seg`` and its import).
    SEG = "SEG"
    #: A DICOM Structured Report (``backmice export --format sr`` and its import).
    SR = "SR"


class Relation(enum.StrEnum):
    """Where a nodule lies relative to the fascia (docs/SPEC.md §"A nodule": fascia_min/max)."""

    SUBCUTANEOUS = "subcutaneous"
    SUBFASCIAL = "subfascial"
    TRANSFASCIAL = "transfascial"

    @classmethod
    def from_extent(cls, fascia_min_mm: float, fascia_max_mm: float) -> Relation:
        """``subcutaneous`` if min > −1 mm, ``subfascial`` if max < 1 mm, else ``transfascial``."""
        if fascia_min_mm > -1.0:
            return cls.SUBCUTANEOUS
        if fascia_max_mm < 1.0:
            return cls.SUBFASCIAL
        return cls.TRANSFASCIAL


class Side(enum.StrEnum):
    """Patient side of the body's midsagittal plane (within 5 mm: midline)."""

    LEFT = "left"
    RIGHT = "right"
    MIDLINE = "midline"


class Status(enum.StrEnum):
    """Review state of a nodule."""

    CANDIDATE = "candidate"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Subtype(enum.StrEnum):
    """The tag vocabulary (docs/SPEC.md §Subtypes)."""

    EPISACROILIAC_LIPOMA = "episacroiliac_lipoma"
    LUMBAR_FASCIAL_FAT_HERNIATION = "lumbar_fascial_fat_herniation"
    LUMBOSACRAL_FAT_HERNIATION = "lumbosacral_fat_herniation"
    NON_ENCAPSULATED_FAT_PROMINENCE = "non_encapsulated_fat_prominence"
    ILIAC_CREST_PAIN_SYNDROME = "iliac_crest_pain_syndrome"
    MULTIFIDUS_TRIANGLE_SYNDROME = "multifidus_triangle_syndrome"
    SEBACEOUS_CYST = "sebaceous_cyst"
    SUBCUTANEOUS_ABSCESS = "subcutaneous_abscess"
    LIPOSARCOMA_SUSPECTED = "liposarcoma_suspected"
    ADIPOSIS_DOLOROSA = "adiposis_dolorosa"
    FIBROUS_NODULE = "fibrous_nodule"
    OTHER = "other"
    NOT_A_LESION = "not_a_lesion"


class RedFlag(enum.StrEnum):
    """Reasons to think of liposarcoma or another differential, each with its criterion.

    Four are the published MRI features that favour a well-differentiated
    liposarcoma (atypical lipomatous tumour) over a lipoma, and only these
    make :func:`backmice.measure.nodules.suggest_subtype` offer
    ``liposarcoma_suspected`` (:attr:`liposarcoma`): a lesion larger than 10 cm,
    thick septa (> 2 mm), nodular or globular non-fat areas, and a lesion less
    than 75 % fat (Kransdorf MJ et al., Radiology 2002;224:99-104; septa > 2 mm
    as in Knebel C et al., BMC Cancer 2019;19:309). ``deep_extension`` and
    ``not_fat`` point to other differentials. ``size>50mm`` is the size flag of
    earlier versions: still read in stored results, no longer raised on MRI,
    and never a reason to suggest liposarcoma.
    """

    SIZE_OVER_100MM = "size>100mm"
    THICK_SEPTA = "thick_septa"
    NONFAT_COMPONENT = "nonfat_component"
    FAT_UNDER_75PCT = "fat<75%"
    DEEP_EXTENSION = "deep_extension"
    NOT_FAT = "not_fat"
    SIZE_OVER_50MM = "size>50mm"

    @property
    def criterion(self) -> str:
        """The criterion, in words (at most 64 characters: a DICOM code meaning)."""
        return _RED_FLAG_CRITERIA[self][0]

    @property
    def source(self) -> str | None:
        """Where the criterion is published (None: backmice's own rule)."""
        return _RED_FLAG_CRITERIA[self][1]

    @property
    def liposarcoma(self) -> bool:
        """True for the published features of well-differentiated liposarcoma."""
        return self in _LIPOSARCOMA


_KRANSDORF = "Kransdorf MJ et al., Radiology 2002;224:99-104"
_KNEBEL = "Knebel C et al., BMC Cancer 2019;19:309"

#: Each flag's criterion and its source.
_RED_FLAG_CRITERIA: dict[RedFlag, tuple[str, str | None]] = {
    RedFlag.SIZE_OVER_100MM: ("lesion larger than 10 cm", _KRANSDORF),
    RedFlag.THICK_SEPTA: ("septa thicker than 2 mm", f"{_KRANSDORF}; {_KNEBEL}"),
    RedFlag.NONFAT_COMPONENT: ("nodular or globular non-fat areas", _KRANSDORF),
    RedFlag.FAT_UNDER_75PCT: ("lesion less than 75% fat", _KRANSDORF),
    RedFlag.DEEP_EXTENSION: ("reaches more than 15 mm deep to the fascia", None),
    RedFlag.NOT_FAT: ("interior signal not that of fat", None),
    RedFlag.SIZE_OVER_50MM: ("largest diameter over 50 mm (before issue 15)", None),
}

_LIPOSARCOMA = frozenset(
    {
        RedFlag.SIZE_OVER_100MM,
        RedFlag.THICK_SEPTA,
        RedFlag.NONFAT_COMPONENT,
        RedFlag.FAT_UNDER_75PCT,
    }
)


#: Every output column of a nodule, in order (docs/SPEC.md §"A nodule").
COLUMNS: tuple[str, ...] = (
    "study",
    "series_uid",
    "nodule_id",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "volume_mm3",
    "max_diameter_mm",
    "long_axis_mm",
    "short_axis_mm",
    "axis_1_mm",
    "axis_2_mm",
    "axis_3_mm",
    "fascia_offset_mm",
    "fascia_min_mm",
    "fascia_max_mm",
    "relation",
    "skin_depth_mm",
    "side",
    "midline_distance_mm",
    "fat_fraction",
    "fat_signal_ratio",
    "suggested_subtype",
    "subtype",
    "status",
    "reader",
    "updated",
    "red_flags",
    "units",
)

#: Keys of a nodule row beyond :data:`COLUMNS`: written to ``nodules.json`` and
#: kept by the store, never to the CSV. ``red_flag_criteria`` lists every red-flag
#: criterion evaluated on the nodule, with the measured value (see
#: :func:`backmice.measure.red_flags.evaluate`).
DETAILS: tuple[str, ...] = ("red_flag_criteria",)
