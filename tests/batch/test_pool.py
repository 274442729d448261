"""A worker process that dies takes only its own study down."""

from __future__ import annotations

import contextlib
import logging
import shutil

import pytest

from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint
from backmice.batch.runner import _Pool
from tests.batch.conftest import SAMPLES, sr_only_study
from tests.batch.helpers import dies_on_crash


def _run_pool(root, out, *, workers: int, fn) -> dict:
    """Each study's document, from a pool of ``workers`` running ``fn`` on the cohort."""
    options = AnalysisOptions()
    jobs = [(t, fingerprint(t, options)) for t in discover(root)]
    pool = _Pool(workers, logging.WARNING)
    pool.fn = fn
    try:
        return {task.name: doc for task, _, doc in pool.analyse(jobs, str(out), options, False)}
    finally:
        pool.close()


@pytest.mark.slow
def test_a_dying_worker_fails_its_study_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "us" / "01_us", root / "crash")  # runs first, with one worker
    for name in ("sr1", "sr2"):  # quick studies (nothing to analyse) after it
        sr_only_study(root / name)
    results = _run_pool(root, tmp_path, workers=1, fn=dies_on_crash)
    assert results["crash"]["status"] == "error"
    assert "worker process died" in results["crash"]["message"]
    assert results["sr1"]["status"] == results["sr2"]["status"] == "no_stack"
    assert (tmp_path / "studies" / "crash" / "batch.json").is_file()


@pytest.mark.slow
def test_only_the_study_whose_worker_died_is_charged(tmp_path):
    from tests.batch.helpers import dies_while_another_runs

    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "us" / "01_us", root / "crash")
    sr_only_study(root / "slow")
    results = _run_pool(root, tmp_path, workers=2, fn=dies_while_another_runs)
    assert results["crash"]["status"] == "error"
    assert "worker process died" in results["crash"]["message"]
    # Taken down twice with the crashing one, never charged: analysed in the end.
    assert results["slow"]["status"] == "no_stack"


@pytest.mark.slow
def test_workers_stop_when_the_main_process_is_killed(tmp_path):
    """A killed batch releases its lock; its workers must not go on writing into the folder."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    psutil = pytest.importorskip("psutil")  # with the dask extra (distributed needs it)

    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "t1_axial", root / "a")  # about 10 s of analysis
    out = tmp_path / "out"
    src = str(Path(__file__).resolve().parents[2] / "src")
    argv = ["batch", str(root), "--out", str(out), "--workers", "1", "--no-qc", "--quiet"]
    main = subprocess.Popen(
        [sys.executable, "-m", "backmice", *argv],
        env={**os.environ, "PYTHONPATH": src},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = []
    try:
        for _ in range(1200):  # until the study has started (ordering, not timing)
            if (out / ".partial").is_dir() and any((out / ".partial").iterdir()):
                break
            time.sleep(0.05)
        workers = psutil.Process(main.pid).children(recursive=True)
        main.send_signal(signal.SIGKILL)
        main.wait()
        _gone, alive = psutil.wait_procs(workers, timeout=60)
        assert not alive, "workers outlived the batch"
        assert not (out / "studies" / "a").exists()
    finally:
        for proc in workers:
            with contextlib.suppress(psutil.Error):
                proc.kill()
