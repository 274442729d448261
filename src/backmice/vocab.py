"""The vocabularies of ``SPEC.md``: relation to the fascia, side, subtype, status, red flags.

Values are stored as these strings (``snake_case``), in CSV, JSON and the store.
"""

from __future__ import annotations

import enum

__all__ = ["COLUMNS", "RedFlag", "Relation", "Side", "Status", "Subtype"]


class Relation(enum.StrEnum):
    """Where a nodule lies relative to the fascia (SPEC: from fascia_min/max_mm)."""

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
    """The tag vocabulary (SPEC "Subtypes")."""

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
    """Reasons to think of liposarcoma or another differential."""

    SIZE_OVER_50MM = "size>50mm"
    NONFAT_COMPONENT = "nonfat_component"
    THICK_SEPTA = "thick_septa"
    DEEP_EXTENSION = "deep_extension"
    NOT_FAT = "not_fat"


#: Every output column of a nodule, in order (SPEC "A nodule").
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
