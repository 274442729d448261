"""The cohort tables: ``nodules.csv``, ``nodules.parquet`` and ``studies.csv``.

They are assembled from the study result folders on disk (so a resumed batch
and a fresh one give the same tables) in the order of the study names, never in
the order the studies finished; every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from backmice._atomic import atomic_path, write_text
from backmice._spreadsheet import spreadsheet_safe, spreadsheet_text
from backmice.batch.worker import RECORD_FILE, StudyRecord, StudyStatus
from backmice.vocab import COLUMNS

__all__ = [
    "STUDY_COLUMNS",
    "TABLES",
    "nodule_dtypes",
    "read_nodules",
    "studies_csv",
    "tables_current",
    "write_tables",
]

log = logging.getLogger(__name__)

#: Columns of ``studies.csv``, in order (``seconds`` is the only timing column).
STUDY_COLUMNS: tuple[str, ...] = (
    "study",
    "status",
    "message",
    "series_uid",
    "series_description",
    "method",
    "n_nodules",
    "seconds",
    "folder",
    "study_uid",
    "units",
)

#: The cohort tables :func:`write_tables` writes into the output folder.
TABLES: tuple[str, ...] = ("nodules.csv", "nodules.parquet", "studies.csv")

_FLOAT_SUFFIXES = ("_mm", "_mm2", "_mm3")
_FLOATS = {"fat_fraction", "fat_signal_ratio"}
_INTS = {"nodule_id", "frame"}


def nodule_dtypes(columns: Sequence[str] = COLUMNS) -> dict[str, str]:
    """pandas dtype of every column: lengths, areas, volumes and ratios float, ids int, text str.

    Parameters
    ----------
    columns : sequence of str
        The SPEC columns (default), or those of an ultrasound table (the SPEC
        columns then ``backmice.ultrasound.EXTRA_COLUMNS``).
    """
    out = {}
    for c in columns:
        if c.endswith(_FLOAT_SUFFIXES) or c in _FLOATS:
            out[c] = "float64"
        elif c in _INTS:
            out[c] = "int64"
        else:
            out[c] = "str"
    return out


def read_nodules(csv_text: str, *, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """The nodule table as a DataFrame (columns in order; empty text cells stay ``""``).

    Parameters
    ----------
    csv_text : str
        CSV with the SPEC header (``nodules.csv``).
    columns : sequence of str
        The columns to read (default the SPEC columns; an ultrasound table adds
        its extra columns).

    Returns
    -------
    pandas.DataFrame
        One row per nodule; missing numbers are NaN.
    """
    dtypes = nodule_dtypes(columns)
    floats = [c for c, d in dtypes.items() if d == "float64"]
    frame = pd.read_csv(
        io.StringIO(csv_text),
        dtype=dtypes,
        keep_default_na=False,
        na_values={c: [""] for c in floats},
    )[list(columns)]
    # The CSV guards text against spreadsheet formulas; the DataFrame (and Parquet) hold
    # the text as it is.
    for c, d in dtypes.items():
        if d == "str":
            frame[c] = frame[c].map(spreadsheet_text)
    return frame


def _study_lines(folder: Path) -> list[str]:
    """The data lines of a study's ``nodules.csv``, SPEC columns only.

    An MRI study's lines are taken as they are (the cohort table repeats them
    byte for byte). An ultrasound study's ``nodules.csv`` has extra columns
    after the SPEC ones (``backmice.ultrasound.EXTRA_COLUMNS``): its rows are
    cut to the SPEC columns.

    Raises
    ------
    ValueError
        The header does not start with the SPEC columns.
    """
    text = (folder / "nodules.csv").read_text(encoding="utf-8")
    header, _, body = text.partition("\n")
    columns = tuple(next(csv.reader([header])))
    if columns[: len(COLUMNS)] != COLUMNS:
        raise ValueError(f"{folder / 'nodules.csv'}: not the SPEC columns")
    if len(columns) == len(COLUMNS):
        return [line + "\n" for line in body.splitlines() if line]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in csv.reader(io.StringIO(body)):
        if row:
            writer.writerow(row[: len(COLUMNS)])
    return buffer.getvalue().splitlines(keepends=True)


def studies_csv(records: Sequence[StudyRecord]) -> str:
    """``studies.csv`` text: one row per study, in the order given."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(STUDY_COLUMNS)
    for r in records:
        doc = r.to_json()
        doc["seconds"] = f"{r.seconds:.3f}"
        writer.writerow([spreadsheet_safe(doc[c]) for c in STUDY_COLUMNS])
    return buffer.getvalue()


def write_tables(out: str | os.PathLike[str], records: Sequence[StudyRecord]) -> pd.DataFrame:
    """Write ``nodules.csv``, ``nodules.parquet`` and ``studies.csv`` into ``out``.

    Parameters
    ----------
    out : path-like
        The batch output folder (holding ``studies/<name>/``).
    records : sequence of StudyRecord
        Every study of the cohort; written sorted by study name.

    Returns
    -------
    pandas.DataFrame
        The nodules, ``study`` first, in study-name then ``nodule_id`` order.
    """
    out = Path(out)
    records = sorted(records, key=lambda r: r.study)
    lines = [",".join(COLUMNS) + "\n"]
    for r in records:
        if r.status is StudyStatus.OK:
            lines.extend(_study_lines(out / "studies" / r.study))
    text = "".join(lines)
    frame = read_nodules(text)
    write_text(out / "nodules.csv", text)
    with atomic_path(out / "nodules.parquet") as tmp:
        frame.to_parquet(tmp, index=False, engine="pyarrow")
    write_text(out / "studies.csv", studies_csv(records))
    log.info("%d nodule(s) from %d stud(ies) written to %s", len(frame), len(records), out)
    return frame


def tables_current(out: str | os.PathLike[str], records: Sequence[StudyRecord]) -> bool:
    """Whether the tables in ``out`` are what :func:`write_tables` would write for ``records``.

    True when every file of :data:`TABLES` is there, ``studies.csv`` is the text
    :func:`studies_csv` gives for the records, and no result of a study that
    feeds ``nodules.csv`` (its ``nodules.csv`` and ``batch.json``) was written
    after the tables. Reads no pixel data, no Parquet, no study table.

    Parameters
    ----------
    out : path-like
        The batch output folder.
    records : sequence of StudyRecord
        Every study of the cohort.

    Returns
    -------
    bool
    """
    out = Path(out)
    records = sorted(records, key=lambda r: r.study)
    try:
        written = min((out / name).stat().st_mtime_ns for name in TABLES)
        if (out / "studies.csv").read_text(encoding="utf-8") != studies_csv(records):
            return False
        for r in records:
            if r.status is StudyStatus.OK:
                folder = out / "studies" / r.study
                for name in ("nodules.csv", RECORD_FILE):
                    if (folder / name).stat().st_mtime_ns > written:
                        return False
    except (OSError, UnicodeDecodeError):
        return False
    return True
