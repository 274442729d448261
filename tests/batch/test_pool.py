"""A worker process that dies takes only its own study down."""

from __future__ import annotations

import logging
import shutil

import pytest

from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint
from backmice.batch.runner import _Pool
from tests.batch.conftest import SAMPLES, sr_only_study
from tests.batch.helpers import dies_on_crash


@pytest.mark.slow
def test_a_dying_worker_fails_its_study_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "us" / "01_us", root / "crash")  # runs first, with one worker
    for name in ("sr1", "sr2"):  # quick studies (nothing to analyse) after it
        sr_only_study(root / name)
    options = AnalysisOptions()
    jobs = [(t, fingerprint(t, options)) for t in discover(root)]
    pool = _Pool(1, logging.WARNING)
    pool.fn = dies_on_crash
    try:
        results = {
            task.name: doc for task, _, doc in pool.analyse(jobs, str(tmp_path), options, False)
        }
    finally:
        pool.close()
    assert results["crash"]["status"] == "error"
    assert "worker process died" in results["crash"]["message"]
    assert results["sr1"]["status"] == results["sr2"]["status"] == "no_stack"
    assert (tmp_path / "studies" / "crash" / "batch.json").is_file()
