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


def dies_while_another_runs(task, out, options, fingerprint, *, qc=True):
    """A study named ``crash*`` kills its worker once ``slow*`` has started; ``slow*`` waits."""
    import time
    from pathlib import Path

    from backmice.batch.worker import SCRATCH

    scratch = Path(out) / SCRATCH
    if task.name.startswith("crash"):
        scratch_dir(out, task.name)
        for _ in range(600):  # the other study is in flight (ordering, not timing)
            if any(p.name.startswith("slow.") for p in scratch.iterdir()):
                break
            time.sleep(0.05)
        os._exit(1)
    if task.name.startswith("slow"):
        scratch_dir(out, task.name)
        time.sleep(2.0)  # still running when the other worker dies
    return analyze_study(task, out, options, fingerprint, qc=qc)


def thread_limits_in_worker(_: object = None) -> dict:
    """The thread caps of the worker process that runs this (after analysis imports)."""
    import backmice.analysis  # noqa: F401 - what a study loads: SimpleITK, numpy, scipy
    from backmice._threads import thread_limits

    return {**thread_limits(), "pid": os.getpid()}


def analyze_study_reporting_threads(task, out, options, fingerprint, *, qc=True):
    """:func:`analyze_study`, with the worker's thread caps at the time in the record's message."""
    import json

    from backmice._threads import thread_limits

    limits = thread_limits()
    doc = analyze_study(task, out, options, fingerprint, qc=qc)
    doc["message"] = json.dumps(limits)
    return doc
