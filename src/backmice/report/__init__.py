"""What an analysis writes: nodule tables (CSV, JSON), label and fascia maps (NIfTI), QC picture."""

from __future__ import annotations

from backmice.report.qc import qc_figure
from backmice.report.write import (
    nodules_csv,
    write_analysis,
    write_csv,
    write_json,
    write_nifti,
)

__all__ = ["nodules_csv", "qc_figure", "write_analysis", "write_csv", "write_json", "write_nifti"]
