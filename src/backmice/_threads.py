"""How many threads one backmice process may use: SimpleITK, OpenMP, BLAS and backmice's own.

Each of those libraries starts, by default, one thread per core. A batch runs
several worker processes on one machine; uncapped, two workers on two cores run
four or more busy threads that fight over the cores (a study that takes 7 s
alone took 11–24 s in a 2-worker batch). :func:`limit_threads` caps them all in
the process that calls it; a batch calls it once in each worker process with
:func:`threads_per_worker`.

What is capped, and how:

- SimpleITK / ITK (N4, resampling, label statistics): the global default number
  of threads of every filter (``ProcessObject.SetGlobalDefaultNumberOfThreads``);
- BLAS and OpenMP libraries already loaded (numpy's and scipy's OpenBLAS, an
  OpenMP runtime): through :mod:`threadpoolctl`, at run time;
- libraries loaded later: the environment variables of :data:`THREAD_ENV_VARS`,
  which they read when they start;
- backmice's own thread pools (the ``edt`` distance transforms and the per-slice
  smoothing of :mod:`backmice.segment`): ``EDT_THREADS`` of every backmice
  module that has one.
"""

from __future__ import annotations

import logging
import os
import sys

__all__ = [
    "THREAD_ENV_VARS",
    "available_cpus",
    "limit_threads",
    "thread_limits",
    "threads_per_worker",
]

log = logging.getLogger(__name__)

#: Environment variables that OpenMP, the BLAS libraries, numexpr and ITK read when they start.
THREAD_ENV_VARS: tuple[str, ...] = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
    "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS",
)

#: The module attribute that sizes backmice's own thread pools (``backmice.segment.body``).
_OWN = "EDT_THREADS"


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the system has one).

    Returns
    -------
    int
        At least 1.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int, *, cpus: int | None = None) -> int:
    """Threads each of ``workers`` processes may use so that together they fill the CPUs.

    Parameters
    ----------
    workers : int
        Worker processes sharing the machine.
    cpus : int, optional
        CPUs to share (default: :func:`available_cpus`).

    Returns
    -------
    int
        ``cpus // workers``, at least 1.
    """
    cpus = available_cpus() if cpus is None else int(cpus)
    return max(1, cpus // max(1, int(workers)))


def limit_threads(threads: int) -> None:
    """Cap every thread pool of this process at ``threads`` threads, for good.

    Meant for a worker process (it changes process-wide settings and the
    environment). Safe to call again with another number.

    Parameters
    ----------
    threads : int
        At least 1.

    Raises
    ------
    ValueError
        ``threads`` is below 1.
    """
    threads = int(threads)
    if threads < 1:
        raise ValueError(f"threads must be at least 1 (got {threads})")
    for name in THREAD_ENV_VARS:
        os.environ[name] = str(threads)

    import SimpleITK as sitk
    from threadpoolctl import threadpool_limits

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
    threadpool_limits(limits=threads)  # not used as a context: the limits stay
    # Import the module that owns the setting first, so that modules importing
    # it later take the capped value too.
    import backmice.segment.body  # noqa: F401

    for module in list(sys.modules.values()):
        name = getattr(module, "__name__", "") or ""
        if (name == "backmice" or name.startswith("backmice.")) and hasattr(module, _OWN):
            setattr(module, _OWN, threads)
    log.debug("threads capped at %d in process %d", threads, os.getpid())


def thread_limits() -> dict[str, int]:
    """The thread caps in force in this process (what :func:`limit_threads` sets).

    Returns
    -------
    dict of str to int
        ``simpleitk``: SimpleITK's global default; ``blas`` and ``openmp``: the
        largest thread count among the loaded libraries of that kind (0 when
        none is loaded); ``backmice``: the largest ``EDT_THREADS`` of the loaded
        backmice modules; and every variable of :data:`THREAD_ENV_VARS` that is
        set, as a number.
    """
    import SimpleITK as sitk
    from threadpoolctl import threadpool_info

    out = {"simpleitk": int(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())}
    for api in ("blas", "openmp"):
        counts = [int(d["num_threads"]) for d in threadpool_info() if d["user_api"] == api]
        out[api] = max(counts, default=0)
    own = [
        int(getattr(m, _OWN))
        for m in list(sys.modules.values())
        if (getattr(m, "__name__", "") or "").startswith("backmice") and hasattr(m, _OWN)
    ]
    out["backmice"] = max(own, default=0)
    for name in THREAD_ENV_VARS:
        value = os.environ.get(name, "")
        if value.isdigit():
            out[name] = int(value)
    return out
