"""``backmice analyze`` on the bundled sample studies."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from backmice.cli import main
from backmice.report import write_analysis
from backmice.vocab import COLUMNS

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture
def t1_result(t1_cli_result):
    """``backmice analyze`` of the T1 sample (run once per session, tests/conftest.py)."""
    return t1_cli_result


def _rows(folder: Path) -> list[dict]:
    with (folder / "nodules.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_writes_every_file_with_spec_columns(t1_result):
    for name in ("nodules.csv", "nodules.json", "labels.nii.gz", "fascia.nii.gz", "qc.png"):
        assert (t1_result / name).stat().st_size > 0, name
    with (t1_result / "nodules.csv").open() as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS
    doc = json.loads((t1_result / "nodules.json").read_text())
    assert [r["nodule_id"] for r in doc["nodules"]] == [
        int(r["nodule_id"]) for r in _rows(t1_result)
    ]
    assert (t1_result / "qc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_finds_the_three_relations(t1_result):
    truth = json.loads((SAMPLES / "t1_axial" / "truth.json").read_text())
    expected = {
        lesion["relation"]
        for lesion in truth["lesions"]
        if lesion["kind"] == "encapsulated_fat_nodule" and lesion["max_diameter_mm"] >= 10
    }
    found = {r["relation"] for r in _rows(t1_result)}
    assert expected <= found
    assert all(r["units"] == "mm" and r["status"] == "candidate" for r in _rows(t1_result))


def test_rerun_gives_the_same_ids_and_numbers(t1_result, t1_analysis, tmp_path):
    # A second, independent analysis of the sample (the session's, by the library)
    # written as the command line writes it: the same table, byte for byte.
    write_analysis(t1_analysis, tmp_path, qc=False)
    assert (tmp_path / "nodules.csv").read_text() == (t1_result / "nodules.csv").read_text()


def test_study_without_a_usable_stack_is_bad_input(tmp_path, capsys):
    # An MRI method asked for on an ultrasound-only study: nothing to analyse.
    code = main(["analyze", str(SAMPLES / "us"), "--out", str(tmp_path), "--method", "t1"])
    assert code == 2
    err = capsys.readouterr().err
    assert "no T1 stack and no Dixon fat + water pair" in err
    assert "us (US" in err  # says what was found


def test_ultrasound_only_folder_is_analysed_as_ultrasound(tmp_path):
    assert main(["analyze", str(SAMPLES / "us"), "--out", str(tmp_path)]) == 0
    about = json.loads((tmp_path / "nodules.json").read_text(encoding="utf-8"))
    assert about["nodules"] and all(r["units"] == "mm" for r in about["nodules"])
    assert (tmp_path / "qc.png").is_file()
