"""``backmice info``: the table, the JSON contract and the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from backmice.cli import main
from tests.conftest import real_file

SERIES_KEYS = {
    "series_uid",
    "modality",
    "role",
    "description",
    "n_files",
    "shape",
    "spacing_mm",
    "calibrated",
    "orientation",
    "echo_time_ms",
}


def test_json_is_one_object_with_the_documented_keys(copy_files, capsys):
    folder = copy_files("MR_small.dcm", "OBXXXX1A.dcm", "US1_UNCR.dcm", "liver.dcm")
    (folder / "readme.txt").write_text("hello")
    assert main(["info", str(folder), "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)  # exactly one JSON document
    assert set(data) == {"series", "skipped"}
    assert all(set(s) == SERIES_KEYS for s in data["series"])
    by_role = {s["role"]: s for s in data["series"]}
    assert set(by_role) == {"t2", "us", "seg"}
    mr = by_role["t2"]
    assert mr["shape"] == [1, 64, 64]
    assert mr["spacing_mm"] == [None, 0.3125, 0.3125]
    assert mr["orientation"] == "axial"
    assert mr["calibrated"] is True
    us = [s for s in data["series"] if s["role"] == "us"]
    assert sorted(s["calibrated"] for s in us) == [False, True]
    assert data["skipped"] == [{"path": str(folder / "readme.txt"), "reason": "not a DICOM file"}]


def test_table(capsys):
    assert main(["info", str(real_file("MR2_UNCR.dcm"))]) == 0
    out = capsys.readouterr().out
    assert "oblique" in out and "0.195" in out and "t1" in out


def test_missing_path_is_bad_input(tmp_path, capsys):
    assert main(["info", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "nope: no such file or folder" in err
    assert "Traceback" not in err


def test_folder_without_images_is_bad_input(tmp_path, capsys):
    (tmp_path / "a.txt").write_text("x")
    assert main(["info", str(tmp_path), "--json"]) == 2
    captured = capsys.readouterr()
    assert json.loads(captured.out)["series"] == []
    assert "no DICOM images found" in captured.err


@pytest.mark.parametrize("cmd", [["backmice"], [sys.executable, "-m", "backmice"]])
def test_console_script_and_module(cmd):
    path = str(real_file("MR_small.dcm"))
    done = subprocess.run([*cmd, "info", path, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["series"][0]["role"] == "t2"
    bad = subprocess.run([*cmd, "info", "/no/such/study"], capture_output=True, text=True)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and "/no/such/study" in bad.stderr
    usage = subprocess.run([*cmd, "info"], capture_output=True, text=True)
    assert usage.returncode == 2
