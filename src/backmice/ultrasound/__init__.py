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
    measure_mask,
)
from backmice.ultrasound.lines import (
    despeckle,
    fascia_line,
    line_rows,
    signed_distance_mm,
    skin_line,
)
from backmice.ultrasound.nodule import automatic_seeds, segment_nodule

__all__ = [
    "EXTRA_COLUMNS",
    "UltrasoundAnalysis",
    "analyze_frame",
    "automatic_seeds",
    "despeckle",
    "fascia_line",
    "line_rows",
    "measure_mask",
    "segment_nodule",
    "signed_distance_mm",
    "skin_line",
]
