"""A full disk or a read-only output folder is exit 2 with one line, never a traceback (issue 16).

Simulated by monkeypatching (tests run as root, so permissions would not stop
them): ``os.replace`` raising ENOSPC is a disk that filled while writing,
``tempfile.mkstemp`` raising EROFS a read-only output folder.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from backmice.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def _no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _read_only(*args, **kwargs):
    raise OSError(errno.EROFS, "Read-only file system")


@pytest.fixture(scope="module")
def result(tmp_path_factory, t1_analysis) -> Path:
    """The session's analysis of the T1 sample, written as ``backmice analyze`` writes it."""
    from backmice.report import write_analysis

    out = tmp_path_factory.mktemp("result")
    write_analysis(t1_analysis, out, qc=False)
    return out


@pytest.fixture
def analysed(monkeypatch, t1_analysis):
    """``backmice analyze`` of the T1 sample gets the session's analysis (tests/conftest.py).

    What these tests check is the writing, so the sample is not analysed again.
    """
    import backmice.analysis

    monkeypatch.setattr(backmice.analysis, "analyze", lambda *args, **kwargs: t1_analysis)


def _one_clear_line(err: str, words: str) -> None:
    assert "Traceback" not in err and "internal error" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and words in lines[0], err


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        (("os.replace", _no_space), "the disk is full"),
        (("tempfile.mkstemp", _read_only), "read-only"),
    ],
)
def test_analyze(monkeypatch, capsys, tmp_path, analysed, patch, words):
    monkeypatch.setattr(*patch)
    assert main(["analyze", str(SAMPLES / "t1_axial"), "--out", str(tmp_path), "--no-qc"]) == 2
    _one_clear_line(capsys.readouterr().err, words)


def test_export(monkeypatch, capsys, tmp_path, result):
    monkeypatch.setattr("os.replace", _no_space)
    code = main(
        ["export", str(result), "--format", "csv", "--format", "seg", "--out", str(tmp_path)]
    )
    assert code == 2
    _one_clear_line(capsys.readouterr().err, "the disk is full")


def test_import_into_a_result_folder(monkeypatch, capsys, tmp_path, result):
    assert main(["export", str(result), "--format", "seg", "--out", str(tmp_path / "e")]) == 0
    [seg] = (tmp_path / "e").rglob("seg.dcm")
    target = tmp_path / "into"
    shutil.copytree(result, target)
    monkeypatch.setattr("tempfile.mkstemp", _read_only)
    assert main(["import", str(seg), "--into", str(target)]) == 2
    _one_clear_line(capsys.readouterr().err, "read-only")


def test_batch_stops_with_one_line(monkeypatch, capsys, tmp_path):
    cohort = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "t1_axial", cohort / "a")
    real_replace = os.replace

    def replace(src, dst, *args, **kwargs):
        if Path(dst).name == "nodules.csv":  # the study's result files: the disk fills up
            _no_space()
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr("os.replace", replace)
    out = tmp_path / "out"
    # Without N4: the analysis only has to reach its result files.
    argv = ["batch", str(cohort), "--out", str(out), "--workers", "0", "--no-qc", "--no-n4"]
    assert main([*argv, "--quiet"]) == 2
    _one_clear_line(capsys.readouterr().err, "the disk is full")


def test_a_project_on_a_full_disk_can_still_be_read(monkeypatch, capsys, tmp_path, result):
    from backmice.store import Project

    with Project.open(tmp_path / "proj") as project:
        project.add_result_dir(result)
    real_connect = sqlite3.connect

    def connect(database, *args, uri=False, **kwargs):
        if not uri:  # a read-write open must make the WAL index: the disk is full
            exc = sqlite3.OperationalError("disk I/O error")
            exc.sqlite_errorname = "SQLITE_IOERR_SHMSIZE"
            raise exc
        return real_connect(database, *args, uri=uri, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", connect)
    assert main(["status", str(tmp_path / "proj")]) == 0
    assert "t1_axial" in capsys.readouterr().out
