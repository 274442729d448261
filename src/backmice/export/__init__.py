"""Export annotations (CSV, JSON, NIfTI, DICOM SEG, DICOM SR) and import SEG / SR back.

The exporters work on :class:`~backmice.export.source.Annotations`, made from an
analysis result folder or an annotation project (:func:`open_annotations`).
See ``docs/export.md`` for the codes used, the round-trip guarantee and
``--anonymize``.
"""

from __future__ import annotations

from backmice.export.anonymize import Pseudonymizer
from backmice.export.pipeline import ExportFormat, ImportResult, export_annotations, import_files
from backmice.export.seg import SegSegment, SegVolume, build_seg, read_seg
from backmice.export.source import (
    Annotations,
    SourceSeries,
    from_project,
    from_result,
    open_annotations,
    read_source,
)
from backmice.export.sr import SRNodule, build_sr, read_sr

__all__ = [
    "Annotations",
    "ExportFormat",
    "ImportResult",
    "Pseudonymizer",
    "SRNodule",
    "SegSegment",
    "SegVolume",
    "SourceSeries",
    "build_seg",
    "build_sr",
    "export_annotations",
    "from_project",
    "from_result",
    "import_files",
    "open_annotations",
    "read_seg",
    "read_source",
    "read_sr",
]
