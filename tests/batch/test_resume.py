"""Interrupted batches: SIGKILL midway, then ``--resume`` finishes with consistent outputs."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from backmice.batch import run
from backmice.batch.worker import RECORD_FILE, SCRATCH
from backmice.cli import main
from tests.batch.conftest import EXPECTED

_B = sorted(EXPECTED)[1]  # "b c", analysed right after "a" with one worker


def _without_seconds(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str).drop(columns="seconds")


def _kill_after_first_study(cohort, out) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "backmice", "batch", str(cohort), "--out", str(out), "--workers=1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,  # its own process group: the kill takes the workers too
    )
    try:
        for line in proc.stdout:
            if line.startswith("[1/"):
                break
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.slow
def test_sigkill_midway_then_resume_completes_consistently(cohort, reference, tmp_path):
    ref_out = reference[0]
    work = tmp_path / "cohort"
    shutil.copytree(cohort, work)  # copy2 keeps mtimes: fingerprints equal the reference's
    out = tmp_path / "out"
    _kill_after_first_study(work, out)
    assert (out / "studies" / "a" / RECORD_FILE).is_file()
    assert not (out / "nodules.csv").exists()  # the tables come last: none half-written
    for folder in (out / "studies").iterdir():  # whatever landed is complete
        assert (folder / RECORD_FILE).is_file()
    # What a crash inside a study could leave: scratch debris, and a study folder
    # without its record (as if copied by hand). Neither may be trusted.
    (out / SCRATCH / f"{_B}.x").mkdir(parents=True, exist_ok=True)
    (out / SCRATCH / f"{_B}.x" / "nodules.csv").write_text("study,ser")
    shutil.rmtree(out / "studies" / _B, ignore_errors=True)
    (out / "studies" / _B).mkdir()
    (out / "studies" / _B / "nodules.csv").write_text("study,ser")
    a_mtime = (out / "studies" / "a" / RECORD_FILE).stat().st_mtime_ns

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(
            ["batch", str(work), "--out", str(out), "--resume", "--quiet", "--workers", "1"]
        )
    assert code == 3
    assert "unchanged (resumed)" in buffer.getvalue()
    assert (out / "studies" / "a" / RECORD_FILE).stat().st_mtime_ns == a_mtime  # not re-run
    assert not (out / SCRATCH).exists() or not any((out / SCRATCH).iterdir())
    assert (out / "nodules.csv").read_bytes() == (ref_out / "nodules.csv").read_bytes()
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "nodules.parquet"), pd.read_parquet(ref_out / "nodules.parquet")
    )
    pd.testing.assert_frame_equal(
        _without_seconds(out / "studies.csv"), _without_seconds(ref_out / "studies.csv")
    )
    for name in EXPECTED:
        assert (out / "studies" / name / RECORD_FILE).is_file()

    # A changed study runs again; the unchanged ones do not.
    changed = next((work / "a").rglob("*.dcm"))
    st = changed.stat()
    os.utime(changed, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    ran = []
    run(work, out, workers=0, resume=True, qc=False, progress=lambda r, d, t: ran.append(r))
    ran_ok = sorted(r.study for r in ran[1:] if r.status == "ok")
    assert ran_ok == ["a"]
    assert (out / "nodules.csv").read_bytes() == (ref_out / "nodules.csv").read_bytes()
    assert time.time_ns() > a_mtime
