"""A worker process that dies takes only its own study down."""

from __future__ import annotations

import logging
import shutil

from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint
from backmice.batch.runner import _Pool
from tests.batch.conftest import SAMPLES
from tests.batch.helpers import dies_on_crash


def test_a_dying_worker_fails_its_study_and_the_batch_goes_on(tmp_path):
    root = tmp_path / "cohort"
    for name in ("crash", "us1", "us2"):  # "crash" runs first, with one worker
        shutil.copytree(SAMPLES / "us" / "01_us", root / name)
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
    assert results["us1"]["status"] == results["us2"]["status"] == "ok"  # ultrasound
    assert (tmp_path / "studies" / "crash" / "batch.json").is_file()
