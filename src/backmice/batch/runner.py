"""Run a batch: discover, skip what is unchanged, analyse the rest in parallel, write tables.

The studies run in worker processes: a local process pool (spawn or
forkserver; each worker analyses one study at a time, so it holds one volume,
and frees it before the next), or a Dask distributed cluster (one task per
study).

The pool does not use ``max_tasks_per_child``: on Python 3.11 to 3.13 (before
the fix of CPython gh-115634) the pool stops replacing workers that reach the
limit and hangs with studies still queued. Either way every study's result lands atomically in
``OUT/studies/<name>/`` and the cohort tables are assembled from those folders
in study-name order, so both give byte-identical tables (apart from timings).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pandas as pd

from backmice.analysis import AnalysisOptions
from backmice.batch.discover import StudyTask, discover, fingerprint
from backmice.batch.summary import summary_figure
from backmice.batch.tables import write_tables
from backmice.batch.worker import (
    SCRATCH,
    StudyRecord,
    StudyStatus,
    analyze_study,
    init_worker,
    read_record,
    write_failure,
)
from backmice.errors import InputError

__all__ = ["ProgressCallback", "run"]

log = logging.getLogger(__name__)

#: ``progress(record, done, total)``: once with ``record=None`` when the work is known
#: (``done`` = studies reused by ``--resume``), then once per finished study.
ProgressCallback = Callable[[StudyRecord | None, int, int], None]

#: How long to keep trying to reach a Dask scheduler given by address.
CONNECT_TIMEOUT = "30s"

_DIED = "the worker process died while analysing it (out of memory, or a crash)"


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


@contextlib.contextmanager
def _lock(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (advisory lock; a no-op without fcntl)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with (out / ".batch.lock").open("a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise InputError("another batch is writing to this folder", path=out) from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _reusable(out: Path, task: StudyTask, fp: str) -> StudyRecord | None:
    folder = out / "studies" / task.name
    record = read_record(folder)
    if (
        record is None
        or record.status is not StudyStatus.OK
        or record.fingerprint != fp
        or not (folder / "nodules.csv").is_file()
    ):
        return None
    record.resumed = True
    return record


def _started(out: Path) -> dict[str, int | None]:
    """The studies whose scratch folders are left in ``out``, with their worker's pid; cleared."""
    scratch = out / SCRATCH
    started: dict[str, int | None] = {}
    for p in scratch.iterdir() if scratch.is_dir() else ():
        parts = p.name.rsplit(".", 2)  # <name>.<pid>.<random>
        pid = int(parts[1]) if len(parts) == 3 and parts[1].isdigit() else None
        started[parts[0] if pid is not None else p.name.rsplit(".", 1)[0]] = pid
    shutil.rmtree(scratch, ignore_errors=True)
    return started


def _died(processes: dict) -> set[int]:
    """Pids of the pool's processes that died by themselves (not terminated by the pool).

    When one worker dies, the pool terminates the others (SIGTERM): their exit
    code is ``-SIGTERM``; the one that died has another (a signal such as
    SIGKILL from the out-of-memory killer, or a non-zero exit).
    """
    return {
        pid
        for pid, proc in processes.items()
        if proc.exitcode is not None and proc.exitcode not in (0, -signal.SIGTERM)
    }


class _Pool:
    """The local process pool, recreated when a worker process dies."""

    def __init__(self, workers: int, log_level: int) -> None:
        self.workers = workers
        self.log_level = log_level
        self.fn = analyze_study  # the task; replaceable in tests (a worker that dies)
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_context(),
            initializer=init_worker,
            initargs=(self.log_level, os.getpid()),
        )

    def map(self, fn, *iterables):
        return list(self.pool.map(fn, *iterables))

    def analyse(self, jobs, out: str, options, qc: bool) -> Iterator[tuple[StudyTask, str, dict]]:
        """Run the jobs; a study whose worker died twice is recorded as ``error``.

        When a worker process dies the whole pool breaks. The studies that had
        started are those with a scratch folder left (each study makes one
        first); they are charged an attempt, the others are queued again free.
        """
        pending = {task.name: (task, fp) for task, fp in jobs}
        attempts = dict.fromkeys(pending, 0)
        while pending:
            futures = {
                self.pool.submit(self.fn, task, out, options, fp, qc=qc): name
                for name, (task, fp) in pending.items()
            }
            try:
                for future in as_completed(futures):
                    name = futures[future]
                    doc = future.result()
                    task, fp = pending.pop(name)
                    yield task, fp, doc
            except BrokenProcessPool:
                processes = dict(getattr(self.pool, "_processes", None) or {})
                self.pool.shutdown(wait=True, cancel_futures=True)
                in_flight = {n: pid for n, pid in _started(Path(out)).items() if n in pending}
                dead = _died(processes)
                # Charge the study whose worker died; the others it took down run again free.
                started = {n for n, pid in in_flight.items() if pid in dead} or set(in_flight)
                log.warning(
                    "a worker process died while analysing %s; retrying",
                    ", ".join(sorted(started)) or "an unknown study",
                )
                for name in started or set(pending):  # unknown: charge everyone, never loop
                    attempts[name] += 1
                    if attempts[name] >= 2:
                        task, fp = pending.pop(name)
                        yield task, fp, write_failure(task, out, fp, _DIED)
                self.pool = self._new()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class _Dask:
    """A Dask distributed client: an existing cluster, or a LocalCluster it starts."""

    def __init__(self, scheduler: str, workers: int, log_level: int) -> None:
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler == "local":
            self.cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
            # Our own workers: log like the pool's (a cluster given by address is left alone).
            self.client.run(init_worker, log_level)
        else:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler ({exc})", path=scheduler
                ) from None

    def map(self, fn, *iterables):
        futures = self.client.map(fn, *iterables, pure=False)
        return self.client.gather(futures)

    def analyse(self, jobs, out: str, options, qc: bool) -> Iterator[tuple[StudyTask, str, dict]]:
        from distributed import as_completed as dask_completed

        futures = {}
        for task, fp in jobs:
            future = self.client.submit(
                analyze_study, task, out, options, fp, qc=qc, key=f"backmice-{task.name}-{fp[:16]}"
            )
            futures[future] = (task, fp)
        for future in dask_completed(list(futures)):
            task, fp = futures[future]
            try:
                doc = future.result()
            except Exception as exc:  # KilledWorker and the like: the study, not the batch
                doc = write_failure(task, out, fp, f"{_DIED}: {type(exc).__name__}: {exc}")
            yield task, fp, doc

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class _Serial:
    """In this process, one study after another (``workers=0``: debugging, profiling)."""

    def map(self, fn, *iterables):
        return list(map(fn, *iterables))

    def analyse(self, jobs, out: str, options, qc: bool):
        for task, fp in jobs:
            yield task, fp, analyze_study(task, out, options, fp, qc=qc)

    def close(self) -> None:
        pass


def run(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    resume: bool = False,
    options: AnalysisOptions | None = None,
    qc: bool = True,
    summary: bool = True,
    progress: ProgressCallback | None = None,
) -> pd.DataFrame:
    """Measure every study of a cohort.

    Parameters
    ----------
    root : path-like
        The cohort folder: one sub-folder per study (a folder holding several
        studies is split by StudyInstanceUID).
    out : path-like
        Output folder: ``studies/<name>/`` per study (what ``backmice analyze``
        writes, plus ``batch.json``), ``nodules.csv``, ``nodules.parquet``,
        ``studies.csv`` and ``summary.png``.
    workers : int, optional
        Worker processes (default: the number of CPUs); 0 runs the studies in
        this process, one after another.
    scheduler : str, optional
        None: a local process pool. ``"local"``: a Dask LocalCluster of
        ``workers`` processes. Otherwise the address of a running Dask scheduler
        (``tcp://host:8786``); its workers must see ``root`` and ``out`` at the
        same paths (shared storage).
    resume : bool
        Reuse the result of every study whose fingerprint (its files' names,
        sizes and modification times, the options and the backmice version) is
        unchanged since it succeeded; failed and changed studies run again.
    options : AnalysisOptions, optional
    qc : bool
        Draw each study's ``qc.png``.
    summary : bool
        Draw ``summary.png``.
    progress : callable, optional
        See :data:`ProgressCallback`.

    Returns
    -------
    pandas.DataFrame
        The nodules of every study (SPEC columns, ``study`` first), in
        study-name then ``nodule_id`` order.

    Raises
    ------
    InputError
        ``root`` is not a folder, the scheduler cannot be reached, or another
        batch is writing to ``out``.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        # A worker process is importing the script that called run() (spawn and
        # forkserver import __main__ again): without the guard it would start a
        # batch of its own, find the folder locked and die.
        raise InputError(
            "backmice.batch.run() was called again while a worker process was starting: the "
            "script that calls it must do so under 'if __name__ == \"__main__\":' (worker "
            "processes import the script; see docs/batch.md)"
        )
    options = options or AnalysisOptions()
    workers = (os.cpu_count() or 1) if workers is None else int(workers)
    if workers < 0 or (workers == 0 and scheduler is not None):
        raise InputError(f"workers must be at least 1 (got {workers})")
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such folder" if not root.exists() else "not a folder", path=root)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        shutil.rmtree(out / SCRATCH, ignore_errors=True)  # leftovers of a killed run
        level = logging.getLogger("backmice").getEffectiveLevel()
        if scheduler is None:
            executor = _Pool(workers, level) if workers > 0 else _Serial()
        else:
            executor = _Dask(scheduler, workers, level)
        try:
            tasks = discover(root, map_fn=executor.map, exclude=(out,))
            records: dict[str, StudyRecord] = {}
            jobs = []
            for task in tasks:
                fp = fingerprint(task, options)
                reused = _reusable(out, task, fp) if resume else None
                if reused is not None:
                    records[task.name] = reused
                else:
                    jobs.append((task, fp))
            total = len(tasks)
            log.info(
                "%d stud(ies) found, %d unchanged, %d to analyse", total, len(records), len(jobs)
            )
            if progress is not None:
                progress(None, len(records), total)
            for _task, _fp, doc in executor.analyse(jobs, str(out), options, qc):
                record = StudyRecord.from_json(doc)
                records[record.study] = record
                log.info("%s: %s %s", record.study, record.status, record.message)
                if progress is not None:
                    progress(record, len(records), total)
        finally:
            executor.close()
        ordered = [records[t.name] for t in tasks]
        frame = write_tables(out, ordered)
        if summary:
            summary_figure(frame, ordered, out / "summary.png")
    return frame
