"""Worker functions for the batch tests (importable by name in worker processes)."""

from __future__ import annotations

import os

from backmice.batch.worker import analyze_study, scratch_dir


def dies_on_crash(task, out, options, fingerprint, *, qc=True):
    """:func:`analyze_study`, except that a study named ``crash*`` kills its worker process."""
    if task.name.startswith("crash"):
        scratch_dir(out, task.name)  # as analyze_study does first
        os._exit(1)
    return analyze_study(task, out, options, fingerprint, qc=qc)
