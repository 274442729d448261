"""``backmice batch``'s analysis options: those of ``backmice analyze``, in the fingerprint."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil

import pytest

from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint
from backmice.cli import build_parser, main
from backmice.cli._options import DEFAULTS as _DEFAULTS
from backmice.cli._options import options_from_args
from backmice.segment import CandidateOptions, Method
from tests.batch.conftest import SAMPLES

#: Each option of the command line, and a value other than its default.
CHANGES = {
    "--min-size": ["--min-size", "6"],
    "--max-size": ["--max-size", "80"],
    "--roi-depth": ["--roi-depth", "15"],
    "--no-n4": ["--no-n4"],
    "--sacrum-top-z": ["--sacrum-top-z", "12.5"],
    "--find-sacrum": ["--no-find-sacrum"],
    "--threshold": ["--threshold", "0.6"],
    "--method": ["--method", "t1"],
}


def _options(*argv: str) -> AnalysisOptions:
    return options_from_args(build_parser().parse_args(["batch", "root", "--out", "o", *argv]))


def test_defaults_are_the_library_s():
    assert _options() == AnalysisOptions()
    defaults = CandidateOptions()
    assert {k: getattr(defaults, k) for k in _DEFAULTS} == _DEFAULTS  # what --help says


def test_options_map_as_analyze_maps_them():
    options = _options(
        "--min-size=6", "--max-size=80", "--roi-depth=15", "--no-n4", "--sacrum-top-z=12.5"
    )
    assert options.candidates == CandidateOptions(
        min_size_mm=6.0, max_size_mm=80.0, roi_deep_mm=15.0
    )
    assert options.n4 is False and options.sacrum_top_z_mm == 12.5 and options.find_sacrum
    assert not _options("--no-find-sacrum", "--method", "dixon").find_sacrum
    assert _options("--find-sacrum").find_sacrum
    assert _options("--method", "dixon").method is Method.DIXON


def test_a_given_sacrum_level_is_used_as_given():
    options = _options("--sacrum-top-z=10")
    assert options.sacrum_top_z_mm == 10.0  # analysis looks only when none is given


def test_every_option_changes_the_fingerprint(tmp_path):
    shutil.copytree(SAMPLES / "us", tmp_path / "s")
    (task,) = discover(tmp_path)
    base = fingerprint(task, _options())
    prints = {flag: fingerprint(task, _options(*argv)) for flag, argv in CHANGES.items()}
    assert base not in prints.values() and len(set(prints.values())) == len(CHANGES)


def _batch(root, out, *argv: str) -> tuple[int, str]:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", str(root), "--out", str(out), "--workers=0", "--no-qc", *argv])
    return code, buffer.getvalue()


def _n_nodules(out) -> int:
    with (out / "studies.csv").open() as fh:
        (row,) = csv.DictReader(fh)
    assert row["status"] == "ok", row["message"]
    return int(row["n_nodules"])


@pytest.mark.slow
def test_a_changed_option_reruns_the_study_on_resume(tmp_path):
    """The options reach the analysis, and ``--resume`` re-runs what they change."""
    shutil.copytree(SAMPLES / "dixon", tmp_path / "root" / "a")
    out = tmp_path / "out"
    code, _ = _batch(tmp_path / "root", out)
    assert code == 0 and _n_nodules(out) >= 3
    record = out / "studies" / "a" / "batch.json"
    first = json.loads(record.read_text())["fingerprint"]

    code, stdout = _batch(tmp_path / "root", out, "--resume")
    assert code == 0 and "1 unchanged (resumed)" in stdout and "[1/1]" not in stdout

    code, stdout = _batch(tmp_path / "root", out, "--resume", "--min-size", "60")
    assert code == 0 and "unchanged" not in stdout and "[1/1] a: ok 0 nodule(s)" in stdout
    assert _n_nodules(out) == 0  # no nodule of the sample is 60 mm across
    assert json.loads(record.read_text())["fingerprint"] != first
