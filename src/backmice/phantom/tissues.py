"""Tissue classes of the phantom and what each looks like in every contrast.

A rendered voxel is a mixture of tissues (partial volume); its noise-free value
in a contrast is the fraction-weighted mean of the tissues' values in
:data:`TISSUE_PROPERTIES`. Dixon images are built from proton density and fat
fraction: fat = PD·FF, water = PD·(1 − FF); in-phase = fat + water and
opposed-phase = |water − fat| are formed *after* mixing, so the opposed-phase
image shows the dark boundary (India-ink) line a real scanner shows.

Signal values are arbitrary units, scaled so that subcutaneous fat is about
1000 on T1.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

__all__ = [
    "TISSUE_PROPERTIES",
    "Contrast",
    "Tissue",
    "TissueProperties",
    "linear_table",
]


class Tissue(enum.IntEnum):
    """Tissue class of a point of the phantom (the value of a label image)."""

    AIR = 0
    SKIN = 1
    FAT = 2  #: subcutaneous fat
    SEPTUM = 3  #: fibrous septum of the subcutaneous fat
    FASCIA = 4  #: the deep (lumbodorsal) fascia sheet
    MUSCLE = 5
    MUSCLE_FAT = 6  #: fatty streak in the multifidus
    CORTEX = 7
    MARROW = 8
    VISCERAL_FAT = 9
    BOWEL = 10
    CSF = 11
    DISC = 12
    CAPSULE = 13  #: thin fibrous capsule of an encapsulated nodule
    LESION_FAT = 14  #: fat core of an encapsulated nodule
    PROMINENCE_FAT = 15  #: fat of a non-encapsulated prominence
    CYST = 16  #: content of a sebaceous-like cyst
    CYST_WALL = 17
    SOLID = 18  #: non-fat solid component of a liposarcoma-like nodule
    GEL = 19  #: ultrasound coupling gel above the skin (ultrasound only)
    EPIMUSCULAR_FAT = 20  #: thin fat sheet between the deep fascia and the muscle (wide family)


class Contrast(enum.StrEnum):
    """An MR image the phantom renders."""

    T1 = "t1"
    T2_FATSAT = "t2_fatsat"
    DIXON_FAT = "dixon_fat"
    DIXON_WATER = "dixon_water"
    DIXON_IN = "dixon_in"
    DIXON_OUT = "dixon_out"


@dataclass(frozen=True, slots=True)
class TissueProperties:
    """MR appearance of one tissue (arbitrary units; fat ≈ 1000 on T1).

    Attributes
    ----------
    t1 : float
        Signal on a T1-weighted spin-echo image.
    t2_fatsat : float
        Signal on a fat-saturated T2-weighted image.
    pd : float
        Proton-density-weighted magnitude (the Dixon in-phase signal).
    fat_fraction : float
        Dixon fat fraction F/(F+W), 0–1.
    """

    t1: float
    t2_fatsat: float
    pd: float
    fat_fraction: float


#: MR appearance of every tissue.
TISSUE_PROPERTIES: dict[Tissue, TissueProperties] = {
    Tissue.AIR: TissueProperties(0.0, 0.0, 0.0, 0.0),
    Tissue.SKIN: TissueProperties(420.0, 330.0, 650.0, 0.10),
    Tissue.FAT: TissueProperties(1000.0, 70.0, 950.0, 0.93),
    Tissue.SEPTUM: TissueProperties(150.0, 120.0, 220.0, 0.05),
    Tissue.FASCIA: TissueProperties(70.0, 60.0, 140.0, 0.03),
    Tissue.MUSCLE: TissueProperties(330.0, 260.0, 720.0, 0.03),
    Tissue.MUSCLE_FAT: TissueProperties(900.0, 80.0, 900.0, 0.80),
    Tissue.CORTEX: TissueProperties(40.0, 30.0, 60.0, 0.05),
    Tissue.MARROW: TissueProperties(760.0, 130.0, 820.0, 0.65),
    Tissue.VISCERAL_FAT: TissueProperties(970.0, 70.0, 930.0, 0.92),
    Tissue.BOWEL: TissueProperties(380.0, 480.0, 700.0, 0.05),
    Tissue.CSF: TissueProperties(160.0, 1000.0, 1000.0, 0.0),
    Tissue.DISC: TissueProperties(300.0, 600.0, 800.0, 0.0),
    Tissue.CAPSULE: TissueProperties(130.0, 110.0, 220.0, 0.05),
    Tissue.LESION_FAT: TissueProperties(990.0, 65.0, 950.0, 0.94),
    Tissue.PROMINENCE_FAT: TissueProperties(1000.0, 70.0, 950.0, 0.93),
    Tissue.CYST: TissueProperties(230.0, 950.0, 950.0, 0.0),
    Tissue.CYST_WALL: TissueProperties(300.0, 300.0, 500.0, 0.02),
    Tissue.SOLID: TissueProperties(380.0, 620.0, 780.0, 0.06),
    Tissue.GEL: TissueProperties(0.0, 0.0, 0.0, 0.0),
    Tissue.EPIMUSCULAR_FAT: TissueProperties(1000.0, 70.0, 950.0, 0.93),
}


def linear_table(quantity: str) -> np.ndarray:
    """Per-label value of a quantity that mixes linearly under partial volume.

    Parameters
    ----------
    quantity : {"t1", "t2_fatsat", "fat", "water"}
        ``fat`` and ``water`` are the Dixon fat (PD·FF) and water (PD·(1−FF))
        signals.

    Returns
    -------
    ndarray of float32, shape (len(Tissue),)
        Indexed by :class:`Tissue` value.
    """
    table = np.zeros(len(Tissue), dtype=np.float32)
    for tissue, p in TISSUE_PROPERTIES.items():
        if quantity == "t1":
            value = p.t1
        elif quantity == "t2_fatsat":
            value = p.t2_fatsat
        elif quantity == "fat":
            value = p.pd * p.fat_fraction
        elif quantity == "water":
            value = p.pd * (1.0 - p.fat_fraction)
        else:
            raise ValueError(f"unknown quantity {quantity!r}")
        table[int(tissue)] = value
    return table
