"""What a batch installs on the workers of a Dask cluster (imported only with a scheduler)."""

from __future__ import annotations

from distributed.diagnostics.plugin import WorkerPlugin

from backmice._threads import limit_threads

__all__ = ["ThreadCap"]


class ThreadCap(WorkerPlugin):
    """Cap the threads of every worker of the cluster, including those that join later.

    Parameters
    ----------
    threads : int
        Threads per library (SimpleITK, OpenMP, BLAS, backmice's own) in each
        worker process (:func:`backmice._threads.limit_threads`).
    """

    def __init__(self, threads: int) -> None:
        self.threads = int(threads)

    def setup(self, worker) -> None:
        """Called by Dask in each worker process when the plugin is registered or it starts."""
        limit_threads(self.threads)
