"""Each batch worker caps its libraries' threads, so that workers do not fight over the cores."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys

import pytest

from backmice._threads import THREAD_ENV_VARS, thread_limits, threads_per_worker
from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint, run
from backmice.batch.runner import _Pool
from backmice.cli import main
from backmice.errors import InputError
from tests.batch.conftest import SAMPLES
from tests.batch.helpers import analyze_study_reporting_threads, thread_limits_in_worker


def _capped(limits: dict, n: int) -> None:
    assert limits["simpleitk"] == n, limits
    assert limits["backmice"] == n, limits  # EDT_THREADS of backmice.segment
    assert limits["blas"] in (0, n), limits  # numpy's and scipy's OpenBLAS, when loaded
    assert limits["openmp"] in (0, n), limits
    for name in THREAD_ENV_VARS:
        assert limits[name] == n, (name, limits)


def test_threads_share_the_cpus_among_the_workers():
    assert threads_per_worker(1, cpus=2) == 2
    assert threads_per_worker(2, cpus=2) == 1
    assert threads_per_worker(3, cpus=8) == 2
    assert threads_per_worker(4, cpus=2) == 1  # never 0
    assert threads_per_worker(1) >= 1


def test_limit_threads_caps_every_library_of_the_process():
    """In a fresh process (the caps are process-wide): SimpleITK, BLAS, env, backmice's own."""
    code = (
        "import json, backmice.analysis\n"
        "from backmice._threads import limit_threads, thread_limits\n"
        "limit_threads(1)\n"
        "import backmice.segment.fat as fat\n"
        "print(json.dumps({**thread_limits(), 'fat': fat.EDT_THREADS}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV_VARS}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    limits = json.loads(proc.stdout)
    _capped(limits, 1)
    assert limits["fat"] == 1  # a module that copied the value at import gets it too


def test_limit_threads_refuses_zero():
    from backmice._threads import limit_threads

    with pytest.raises(ValueError, match="at least 1"):
        limit_threads(0)


@pytest.mark.parametrize("threads", [1, 2])
def test_pool_workers_are_capped(threads):
    pool = _Pool(2, logging.WARNING, threads)
    try:
        results = pool.map(thread_limits_in_worker, range(4))
    finally:
        pool.close()
    assert {r["pid"] for r in results} - {os.getpid()}  # ran in worker processes
    for limits in results:
        _capped(limits, threads)


def test_the_default_cap_is_the_cpus_divided_by_the_workers():
    pool = _Pool(2, logging.WARNING)
    try:
        (limits,) = pool.map(thread_limits_in_worker, [0])
    finally:
        pool.close()
    _capped(limits, threads_per_worker(2))


def test_the_caps_hold_while_a_study_is_analysed(tmp_path):
    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "dixon", root / "a")
    options = AnalysisOptions()
    jobs = [(t, fingerprint(t, options)) for t in discover(root)]
    pool = _Pool(1, logging.WARNING, 1)
    pool.fn = analyze_study_reporting_threads
    try:
        (doc,) = [doc for _task, _fp, doc in pool.analyse(jobs, str(tmp_path), options, False)]
    finally:
        pool.close()
    assert doc["status"] == "ok"
    _capped(json.loads(doc["message"]), 1)


def test_the_calling_process_is_left_alone(tmp_path):
    before = thread_limits()
    (tmp_path / "empty").mkdir()
    run(tmp_path / "empty", tmp_path / "out", workers=1, threads=1, summary=False)
    assert thread_limits() == before


def test_threads_below_one_are_bad_input(tmp_path, capsys):
    with pytest.raises(InputError, match="threads must be at least 1"):
        run(tmp_path, tmp_path / "out", threads=0)
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--threads", "0"]) == 2
    assert "threads must be at least 1" in capsys.readouterr().err
