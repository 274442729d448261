"""``-q``/``--quiet``, ``--log-file`` and ``-v`` anywhere on the command line."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pytest

from backmice.cli import build_parser, main
from tests.io.test_nifti import write_nifti1


@pytest.mark.parametrize(
    "argv",
    [
        ["-q", "--log-file", "run.log", "-v", "info", "study"],
        ["info", "study", "-q", "--log-file", "run.log", "-v"],
        ["-q", "info", "--log-file", "run.log", "study", "-v"],
    ],
)
def test_the_global_flags_parse_before_or_after_the_subcommand(argv):
    args = build_parser().parse_args(argv)
    assert args.quiet is True and str(args.log_file) == "run.log" and args.verbose == 1


def test_batch_keeps_its_quiet(tmp_path):
    args = build_parser().parse_args(["batch", "root", "--out", "o", "--quiet"])
    assert args.quiet is True


def _close_log_file() -> None:
    for handler in logging.getLogger().handlers:
        handler.close()
    logging.getLogger().handlers.clear()


def _folder(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    write_nifti1(folder / "sub-01_T1w.nii.gz", np.zeros((3, 4, 5), np.int16))
    data = gzip.compress(np.arange(4000, dtype=np.int16).tobytes())
    (folder / "cut.nii.gz").write_bytes(data[:30])
    return folder


def test_quiet_keeps_warnings_off_the_terminal_and_the_log_file_keeps_them(tmp_path, capsys):
    log_file = tmp_path / "run.log"
    assert main(["info", str(_folder(tmp_path)), "-q", "--log-file", str(log_file)]) == 0
    assert "cut.nii.gz" not in capsys.readouterr().err
    text = log_file.read_text()
    assert "WARNING backmice.io.nifti" in text and "cut.nii.gz" in text
    assert "INFO backmice: backmice " in text  # the command line, for the record
    _close_log_file()


def test_an_error_is_said_once_on_the_terminal_and_kept_in_the_log_file(tmp_path, capsys):
    log_file = tmp_path / "run.log"
    argv = ["analyze", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--log-file", str(log_file)]) == 2
    err = capsys.readouterr().err
    assert err.count("no such file or folder") == 1
    assert "ERROR backmice: error:" in log_file.read_text()
    assert "no such file or folder" in log_file.read_text()
    _close_log_file()


def test_a_log_file_that_cannot_be_written_is_bad_input(tmp_path, capsys):
    bad = tmp_path / "no" / "such" / "dir" / "run.log"
    assert main(["info", str(tmp_path), "--log-file", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("cannot write the log file") == 1 and "run.log" in err
