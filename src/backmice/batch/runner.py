"""Run a batch: discover, skip what is unchanged, analyse the rest in parallel, write tables.

The studies run in worker processes: a local process pool (spawn or
forkserver; each worker analyses one study at a time, so it holds one volume,
and frees it before the next), or a Dask distributed cluster (one task per
study). Each worker caps the threads of SimpleITK, OpenMP, BLAS and backmice's
own pools (:mod:`backmice._threads`): by default the CPUs divided by the
workers, so that the workers share the cores instead of fighting over them.

With ``resume`` and nothing to do, the batch lists the cohort's files and reads
the small ``batch.json`` of each study, and nothing else: the header scan of
the last run is reused for every folder whose files are unchanged
(:func:`~backmice.batch.discover.scan_cohort`), no worker process is started,
and the tables are left as they are when they already say what they would say.

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
from typing import TYPE_CHECKING

from backmice._threads import threads_per_worker
from backmice.analysis import AnalysisOptions
from backmice.batch.discover import (
    StudyTask,
    fingerprint,
    read_scan,
    scan_cohort,
    unique_names,
    write_scan,
)
from backmice.batch.tables import read_nodules, tables_current, write_tables
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

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ProgressCallback", "run"]

log = logging.getLogger(__name__)

#: ``progress(record, done, total)``: once with ``record=None`` when the work is known
#: (``done`` = studies reused by ``--resume``), then once per finished study.
ProgressCallback = Callable[[StudyRecord | None, int, int], None]

#: How long to keep trying to reach a Dask scheduler given by address.
CONNECT_TIMEOUT = "30s"

_DIED = "the worker process died while analysing it (out of memory, or a crash)"

#: The header scan of the last run, in the output folder (see :func:`scan_cohort`).
SCAN_FILE = ".scan.json"


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


def _outputs_current(out: Path, records: list[StudyRecord], *, summary: bool) -> bool:
    """The tables (and ``summary.png``, when asked for) already say what they would say."""
    if not tables_current(out, records):
        return False
    if not summary:
        return True
    try:
        return (out / "summary.png").stat().st_mtime_ns >= (out / "studies.csv").stat().st_mtime_ns
    except OSError:
        return False


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

    def __init__(self, workers: int, log_level: int, threads: int | None = None) -> None:
        self.workers = workers
        self.log_level = log_level
        self.threads = threads_per_worker(workers) if threads is None else threads
        self.fn = analyze_study  # the task; replaceable in tests (a worker that dies)
        self.pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_context(),
            initializer=init_worker,
            initargs=(self.log_level, os.getpid(), self.threads),
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
    """A Dask distributed client: an existing cluster, or a LocalCluster it starts.

    Every worker, including one that joins later, caps its threads
    (:class:`~backmice.batch._dask.ThreadCap`, a worker plugin): ``threads``,
    or by default the CPUs divided by the workers of a LocalCluster, and 1 on a
    cluster given by address, whose workers may share their machine in ways
    this process cannot see (Dask itself sets ``OMP_NUM_THREADS=1`` in the
    workers it starts).
    """

    def __init__(
        self, scheduler: str, workers: int, log_level: int, threads: int | None = None
    ) -> None:
        from distributed import Client, LocalCluster

        from backmice.batch._dask import ThreadCap

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
            self.threads = threads_per_worker(workers) if threads is None else threads
        else:
            try:
                self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
            except OSError as exc:
                raise InputError(
                    f"cannot reach the Dask scheduler ({exc})", path=scheduler
                ) from None
            self.threads = 1 if threads is None else threads
        self.client.register_plugin(ThreadCap(self.threads), name="backmice-threads")

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


class _Lazy:
    """An executor made when first used: a batch with nothing to do starts no process."""

    def __init__(self, make: Callable[[], _Pool | _Dask | _Serial]) -> None:
        self.make = make
        self.executor: _Pool | _Dask | _Serial | None = None

    def _get(self) -> _Pool | _Dask | _Serial:
        if self.executor is None:
            self.executor = self.make()
        return self.executor

    def map(self, fn, *iterables):
        return self._get().map(fn, *iterables)

    def analyse(self, jobs, out: str, options, qc: bool):
        return self._get().analyse(jobs, out, options, qc) if jobs else iter(())

    def close(self) -> None:
        if self.executor is not None:
            self.executor.close()


def run(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    resume: bool = False,
    options: AnalysisOptions | None = None,
    qc: bool = True,
    summary: bool = True,
    progress: ProgressCallback | None = None,
    log_level: int | None = None,
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
    threads : int, optional
        Threads each worker's libraries may use (SimpleITK, OpenMP, BLAS,
        backmice's own). Default: the CPUs divided by ``workers`` (at least 1);
        1 on a Dask cluster given by address. Not applied with ``workers=0``
        (this process is left as it is).
    resume : bool
        Reuse the result of every study whose fingerprint (its files' names,
        sizes and modification times, the options and the backmice version) is
        unchanged since it succeeded; failed and changed studies run again.
        The headers of a folder whose files are unchanged are not read again,
        and with nothing to analyse no worker process is started.
    options : AnalysisOptions, optional
    qc : bool
        Draw each study's ``qc.png``.
    summary : bool
        Draw ``summary.png``.
    progress : callable, optional
        See :data:`ProgressCallback`.
    log_level : int, optional
        The level of the worker processes' log (on their standard error);
        default: this process's ``backmice`` logger's (the command line passes
        the terminal's level, which a ``--log-file`` does not lower).

    Returns
    -------
    pandas.DataFrame
        The nodules of every study (SPEC columns, ``study`` first), in
        study-name then ``nodule_id`` order.

    Raises
    ------
    InputError
        ``root`` is not a folder, the scheduler cannot be reached, or another
        batch is writing to ``out``; ``threads`` is below 1.
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
    if threads is not None and int(threads) < 1:
        raise InputError(f"threads must be at least 1 (got {threads})")
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such folder" if not root.exists() else "not a folder", path=root)
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with _lock(out):
        shutil.rmtree(out / SCRATCH, ignore_errors=True)  # leftovers of a killed run
        level = (
            logging.getLogger("backmice").getEffectiveLevel() if log_level is None else log_level
        )

        def make() -> _Pool | _Dask | _Serial:
            if scheduler is not None:
                return _Dask(scheduler, workers, level, threads)
            return _Pool(workers, level, threads) if workers > 0 else _Serial()

        executor = _Lazy(make)
        try:
            known = read_scan(out / SCAN_FILE) if resume else None
            scans = scan_cohort(root, map_fn=executor.map, exclude=(out,), known=known)
            if scans != known:
                write_scan(out / SCAN_FILE, scans)
            tasks = unique_names([t for group in scans.values() for t in group])
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
        if not jobs and _outputs_current(out, ordered, summary=summary):
            log.info("the tables in %s are up to date", out)
            return read_nodules((out / "nodules.csv").read_text(encoding="utf-8"))
        frame = write_tables(out, ordered)
        if summary:
            from backmice.batch.summary import summary_figure

            summary_figure(frame, ordered, out / "summary.png")
    return frame
