"""Ultrasound analysis: skin and fascia lines, a seeded nodule, measurements in mm.

See ``docs/ultrasound.md``. The frame-level API (:func:`analyze_frame`,
:func:`measure_mask`, the line finders) works on plain arrays of the tissue
region; :func:`analyze_ultrasound` runs it on a loaded ultrasound volume (a
frame or every cine frame) and :func:`write_ultrasound` writes the same files as
the MRI analysis.
"""

from __future__ import annotations

from backmice.ultrasound.frame import (
    EXTRA_COLUMNS,
    UltrasoundAnalysis,
    analyze_frame,
    edited_frame,
    frame_row,
    mask_axes,
    measure_mask,
    remeasure_frame,
)
from backmice.ultrasound.lines import (
    despeckle,
    fascia_line,
    line_rows,
    signed_distance_mm,
    skin_line,
)
from backmice.ultrasound.nodule import automatic_seeds, segment_nodule
from backmice.ultrasound.study import (
    SPREAD_KEYS,
    UltrasoundResult,
    analyze_ultrasound,
    choose_ultrasound,
    result_rows,
    seed_in_region,
    side_from_header,
    write_ultrasound,
)

__all__ = [
    "EXTRA_COLUMNS",
    "SPREAD_KEYS",
    "UltrasoundAnalysis",
    "UltrasoundResult",
    "analyze_frame",
    "analyze_ultrasound",
    "automatic_seeds",
    "choose_ultrasound",
    "despeckle",
    "edited_frame",
    "fascia_line",
    "frame_row",
    "line_rows",
    "mask_axes",
    "measure_mask",
    "remeasure_frame",
    "result_rows",
    "seed_in_region",
    "segment_nodule",
    "side_from_header",
    "signed_distance_mm",
    "skin_line",
    "write_ultrasound",
]
