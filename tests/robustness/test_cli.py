"""The command line on hostile input: exit code 2, one readable line, no traceback, no noise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backmice
from tests.conftest import real_file
from tests.robustness.fuzzing import RandomChooser, make_case

#: Classes of fuzzed files the command line is run on: for each, the first case (of
#: a seeded random chooser) that leaves a single file with nothing to show.
BAD_CLASSES = ("truncated", "huge_length", "overwritten", "pixel_format", "junk")


def _backmice(*args: str, columns: int = 1000) -> subprocess.CompletedProcess:
    # pytest sets COLUMNS=80 for its children, and the console wraps at that width.
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "backmice", *args],
        capture_output=True,
        text=True,
        errors="replace",  # a non-UTF-8 file name is printed as its bytes
        timeout=120,
        env=env,
    )


def _bad_files(folder: Path) -> list[Path]:
    paths = []
    for cls in BAD_CLASSES:
        for seed in range(100):
            case = make_case(cls, RandomChooser(np.random.default_rng(seed)))
            if len(case.files) != 1:
                continue
            [(name, data)] = case.files.items()
            path = folder / f"{cls}_{name}"
            path.write_bytes(data)
            if not backmice.open_study(path).stacks:
                paths.append(path)
                break
            path.unlink()
    assert len(paths) == len(BAD_CLASSES)
    return paths


@pytest.fixture(scope="module")
def bad(tmp_path_factory) -> list[Path]:
    return _bad_files(tmp_path_factory.mktemp("bad"))


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.mark.parametrize("k", range(len(BAD_CLASSES)))
def test_a_bad_file_is_exit_2_and_one_line(bad, k):
    path = bad[k]
    done = _backmice("info", str(path), "--json")
    assert done.returncode == 2, done.stderr
    [line] = _error_lines(done.stderr)
    assert line.startswith(f"error: {path}: ")
    assert "Traceback" not in done.stderr
    # The reason is in the output, once, on one line.
    [skipped] = json.loads(done.stdout)["skipped"]
    assert skipped["path"] == str(path) and "\n" not in skipped["reason"]


def test_the_reasons_differ(bad, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    for path in bad:
        shutil.copy(path, folder)
    done = _backmice("info", str(folder), "--json")
    reasons = {Path(s["path"]).name: s["reason"] for s in json.loads(done.stdout)["skipped"]}
    assert len(reasons) == len(BAD_CLASSES)
    assert len({r.split(" (")[0] for r in reasons.values()}) > 2, reasons


def test_debug_shows_the_traceback(bad):
    done = _backmice("--debug", "info", str(bad[0]))
    assert "Traceback (most recent call last)" in done.stderr
    assert "backmice.errors.InputError" in done.stderr
    assert done.returncode != 0


def test_bad_files_beside_good_ones_are_listed_without_noise(bad, tmp_path):
    """pydicom warns about every broken file; the command line shows its own lines only."""
    folder = tmp_path / "study"
    folder.mkdir()
    for path in bad:
        shutil.copy(path, folder)
    shutil.copy(real_file("MR_small.dcm"), folder)
    odd = os.fsencode(folder) + b"/caf\xe9_\xff.dcm"  # a non-UTF-8 name, broken too
    Path(os.fsdecode(odd)).write_bytes(b"\x00" * 128 + b"DICM" + b"\x02\x00")
    done = _backmice("info", str(folder))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    lines = done.stdout.splitlines()
    assert f"{len(BAD_CLASSES) + 1} file(s) skipped:" in lines
    listed = [line for line in lines if line.startswith(f"  {folder}")]
    assert len(listed) == len(BAD_CLASSES) + 1
    data = json.loads(_backmice("info", str(folder), "--json").stdout)
    assert len(data["skipped"]) == len(BAD_CLASSES) + 1 and len(data["series"]) == 1


def test_unreadable_dicomdir_is_exit_2(tmp_path):
    (tmp_path / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    done = _backmice("info", str(tmp_path / "DICOMDIR"))
    assert done.returncode == 2
    [line] = _error_lines(done.stderr)
    assert line.startswith(f"error: {tmp_path / 'DICOMDIR'}: unreadable DICOMDIR")


def test_a_long_error_stays_one_line_on_a_narrow_console(bad, tmp_path):
    deep = tmp_path / ("a_rather_long_folder_name_" * 3) / "file.dcm"
    deep.parent.mkdir(parents=True)
    shutil.copy(bad[0], deep)
    done = _backmice("info", str(deep), columns=80)
    assert done.returncode == 2
    assert len(_error_lines(done.stderr)) == 1, done.stderr
