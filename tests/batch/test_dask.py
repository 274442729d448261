"""Dask: the same tables as the process pool, byte for byte apart from timings."""

from __future__ import annotations

import contextlib
import io
import logging

import pandas as pd
import pytest

from backmice.batch import run
from backmice.cli import main
from backmice.errors import InputError
from tests.batch.conftest import EXPECTED

distributed = pytest.importorskip("distributed")  # the dask extra; CI installs it


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    ) as c:
        yield c


def _without_seconds(path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str).drop(columns="seconds")


def _same_as_pool(out, reference_out) -> None:
    assert (out / "nodules.csv").read_bytes() == (reference_out / "nodules.csv").read_bytes()
    pd.testing.assert_frame_equal(
        _without_seconds(out / "studies.csv"), _without_seconds(reference_out / "studies.csv")
    )
    pd.testing.assert_frame_equal(
        pd.read_parquet(out / "nodules.parquet"), pd.read_parquet(reference_out / "nodules.parquet")
    )


@pytest.mark.slow
def test_existing_cluster_gives_the_pool_s_tables(cluster, cohort, reference, tmp_path):
    done = []
    frame = run(
        cohort,
        tmp_path,
        scheduler=cluster.scheduler_address,
        progress=lambda r, d, t: done.append(d),
    )
    assert done == list(range(len(done)))  # 0 (start), then 1, 2, ... one per study
    _same_as_pool(tmp_path, reference[0])
    assert len(frame) == len(pd.read_csv(tmp_path / "nodules.csv"))


@pytest.mark.slow
def test_local_cluster_from_the_command_line(cohort, reference, tmp_path):
    from backmice.store import Project

    out = tmp_path / "out"
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        args = ["--out", str(out), "--scheduler=local", "--workers=1", "--no-qc"]
        code = main(["batch", str(cohort), *args, "--project", str(tmp_path / "project")])
    assert code == 3
    _same_as_pool(out, reference[0])
    assert not (out / "studies" / "a" / "qc.png").exists()
    n_ok = sum(s == "ok" for s in EXPECTED.values())
    assert f"{n_ok} stud(ies) in project" in stdout.getvalue()
    with Project.open(tmp_path / "project", create=False) as project:
        assert len(project.studies()) == n_ok


def test_unreachable_scheduler_is_bad_input(cohort, tmp_path, monkeypatch):
    monkeypatch.setattr("backmice.batch.runner.CONNECT_TIMEOUT", "1s")
    with pytest.raises(InputError, match="cannot reach the Dask scheduler"):
        run(cohort, tmp_path, scheduler="tcp://127.0.0.1:9")


def test_workers_of_a_cluster_given_by_address_are_capped_at_one_thread(cluster):
    from backmice.batch.runner import _Dask
    from tests.batch.helpers import thread_limits_in_worker
    from tests.batch.test_threads import _capped

    dask = _Dask(cluster.scheduler_address, 2, logging.WARNING)
    try:
        limits = dask.client.run(thread_limits_in_worker)
    finally:
        dask.close()
    assert len(limits) == 2
    for one in limits.values():
        _capped(one, 1)


@pytest.mark.slow
def test_local_cluster_workers_share_the_cpus():
    from backmice._threads import threads_per_worker
    from backmice.batch.runner import _Dask
    from tests.batch.helpers import thread_limits_in_worker
    from tests.batch.test_threads import _capped

    dask = _Dask("local", 2, logging.WARNING)
    try:
        limits = dask.client.run(thread_limits_in_worker)
    finally:
        dask.close()
    for one in limits.values():
        _capped(one, threads_per_worker(2))
