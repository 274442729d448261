"""Cohort folders that are not studies: the output folder, hidden folders, links (issue 16)."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from pathlib import Path

from backmice.batch.discover import study_folders
from backmice.cli import main

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def _cohort(root: Path) -> Path:
    root.mkdir()
    for name in ("a", "b"):
        (root / name).mkdir()
    (root / ".trash").mkdir()
    (root / "link").symlink_to(root / "a", target_is_directory=True)
    return root


def test_hidden_folders_links_and_the_output_are_skipped_and_said(tmp_path, caplog):
    root = _cohort(tmp_path / "cohort")
    (root / "results").mkdir()
    with caplog.at_level(logging.WARNING):
        folders = study_folders(root, exclude=(root / "results",))
    assert [f.name for f in folders] == ["a", "b"]
    said = caplog.text
    assert ".trash skipped: a hidden folder" in said
    assert "link skipped: a link to a folder" in said
    assert "results skipped: the batch's output folder" in said


def test_out_inside_root_is_not_a_study_on_the_next_run(tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "t1_axial", root / "a")
    out = str(root / "results")
    # In this process and without N4 (no worker to start, 2 s of analysis, not 10): the
    # folders are the test, not the pool nor the numbers.
    argv = ["batch", str(root), "--out", out, "--workers", "0", "--no-qc", "--no-n4"]
    assert main([*argv, "--quiet"]) == 0
    assert main([*argv, "--quiet"]) == 0  # exit 3 before: 'results' was a failed study
    studies = (root / "results" / "studies.csv").read_text().splitlines()
    assert len(studies) == 2 and studies[1].startswith("a,ok,")


def test_run_without_a_main_guard_says_what_to_do(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "import backmice.batch\n"
        f"backmice.batch.run({str(tmp_path / 'empty')!r}, {str(tmp_path / 'out')!r}, workers=1)\n"
    )
    (tmp_path / "empty" / "s").mkdir(parents=True)
    env_path = str(Path(__file__).resolve().parents[2] / "src")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode != 0
    assert 'if __name__ == "__main__":' in done.stderr
    assert "another batch is writing" not in done.stderr
