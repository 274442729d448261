"""Segmentation stages of the MRI analysis, each a function with one job.

1. :func:`body_mask` — the body against air, and the depth below the skin (mm).
2. :func:`n4_correct` — N4 bias-field correction of a fat-bright image.
3. :func:`fat_signal_t1` / :func:`fat_signal_dixon` — a fat score map and its threshold.
4. :func:`subcutaneous_fat` and :func:`fascia_distance` — the subcutaneous fat,
   the fascia surface under it, and the signed distance to it (mm, + superficial).
5. :func:`find_candidates` — candidate nodules as a label image.
"""

from __future__ import annotations

from backmice.segment.bias import n4_correct
from backmice.segment.body import Body, body_mask
from backmice.segment.candidates import CandidateOptions, find_candidates
from backmice.segment.fascia import (
    Fascia,
    fascia_distance,
    slices_without_fat,
    subcutaneous_fat,
)
from backmice.segment.fat import FatSignal, Method, fat_signal_dixon, fat_signal_t1

__all__ = [
    "Body",
    "CandidateOptions",
    "Fascia",
    "FatSignal",
    "Method",
    "body_mask",
    "fascia_distance",
    "fat_signal_dixon",
    "fat_signal_t1",
    "find_candidates",
    "n4_correct",
    "slices_without_fat",
    "subcutaneous_fat",
]
