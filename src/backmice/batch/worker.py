"""Analyse one study of a batch and land its results atomically.

:func:`analyze_study` runs in a worker process (a process pool's or a Dask
worker's). It writes everything into a fresh temporary folder inside the output
folder and then renames that folder to ``studies/<name>/``: a study folder is
either complete or absent, never half written. ``batch.json`` in it is the
study's record (status, message, stack used, fingerprint), which ``--resume``
and the cohort tables read back.
"""

from __future__ import annotations

import enum
import gc
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backmice._atomic import write_text
from backmice._names import printable
from backmice._threads import limit_threads
from backmice.batch.discover import StudyTask
from backmice.errors import WRITE_ERRNOS, InputError, OutputError
from backmice.io import Role, Study, open_study
from backmice.run import Plan, plan, run_mri, run_ultrasound

if TYPE_CHECKING:
    from backmice.analysis import AnalysisOptions

__all__ = [
    "RECORD_FILE",
    "StudyRecord",
    "StudyStatus",
    "analyze_study",
    "init_worker",
    "read_record",
    "replace_dir",
    "scratch_dir",
    "write_failure",
]

log = logging.getLogger(__name__)

#: The record of a study inside its result folder.
RECORD_FILE = "batch.json"
#: Scratch space inside the output folder (same file system, so renames are atomic).
SCRATCH = ".partial"

_UMASK = os.umask(0o022)
os.umask(_UMASK)


class StudyStatus(enum.StrEnum):
    """Outcome of one study of a batch."""

    OK = "ok"
    ERROR = "error"
    NO_STACK = "no_stack"

    @property
    def failed(self) -> bool:
        """Whether the study counts as failed (exit code 3): ``error`` and ``no_stack``."""
        return self is not StudyStatus.OK


@dataclass(slots=True)
class StudyRecord:
    """What happened to one study (a row of ``studies.csv``).

    Attributes
    ----------
    study : str
        The study's output name.
    status : StudyStatus
    message : str
        Why it failed (one line), or the analysis warnings joined by ``; ``.
    series_uid, series_description : str
        The stack(s) used, ``;``-separated for a Dixon pair (empty if none).
    method : str
        ``t1`` or ``dixon`` (MRI), ``ultrasound``; empty if none.
    n_nodules : int
    seconds : float
        Wall time of the study in its worker.
    folder : str
        The study folder relative to the cohort root.
    study_uid : str
        The StudyInstanceUID analysed when the folder was split (else empty).
    fingerprint : str
        Inputs, options and version the result was made from.
    units : str
        Units of the study's lengths: ``mm``, or ``px`` for an image without
        calibration (an ultrasound image without a usable region); empty when
        nothing was measured.
    resumed : bool
        True when this run reused the result of an earlier run (not stored).
    """

    study: str
    status: StudyStatus
    message: str = ""
    series_uid: str = ""
    series_description: str = ""
    method: str = ""
    n_nodules: int = 0
    seconds: float = 0.0
    folder: str = ""
    study_uid: str = ""
    fingerprint: str = ""
    units: str = ""
    resumed: bool = field(default=False, compare=False)

    def to_json(self) -> dict:
        """JSON-ready dict (without ``resumed``)."""
        return {
            "study": self.study,
            "status": str(self.status),
            "message": self.message,
            "series_uid": self.series_uid,
            "series_description": self.series_description,
            "method": self.method,
            "n_nodules": self.n_nodules,
            "seconds": round(self.seconds, 3),
            "folder": self.folder,
            "study_uid": self.study_uid,
            "fingerprint": self.fingerprint,
            "units": self.units,
        }

    @classmethod
    def from_json(cls, doc: dict) -> StudyRecord:
        """The record stored by :meth:`to_json`."""
        return cls(
            study=str(doc["study"]),
            status=StudyStatus(doc["status"]),
            message=str(doc.get("message", "")),
            series_uid=str(doc.get("series_uid", "")),
            series_description=str(doc.get("series_description", "")),
            method=str(doc.get("method", "")),
            n_nodules=int(doc.get("n_nodules", 0)),
            seconds=float(doc.get("seconds", 0.0)),
            folder=str(doc.get("folder", "")),
            study_uid=str(doc.get("study_uid", "")),
            fingerprint=str(doc.get("fingerprint", "")),
            units=str(doc.get("units", "")),
        )


def read_record(folder: str | os.PathLike[str]) -> StudyRecord | None:
    """The record of a complete study result folder, or None if it has none or it is unreadable."""
    path = Path(folder) / RECORD_FILE
    try:
        return StudyRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def scratch_dir(out: str | os.PathLike[str], name: str) -> Path:
    """A new empty temporary folder for ``name`` inside ``out``: ``<name>.<pid>.<random>``.

    The process id tells, when a worker process dies, whose study it was.
    """
    base = Path(out) / SCRATCH
    base.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=f"{name}.{os.getpid()}.", dir=base))
    path.chmod(0o777 & ~_UMASK)  # mkdtemp makes it private; results follow the umask
    return path


def replace_dir(src: Path, target: Path) -> None:
    """Put folder ``src`` at ``target`` by renames, removing what was there.

    A crash at any point leaves ``target`` either the old complete folder, the
    new complete folder, or absent (never a mixture).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f"{target.name}.old.", dir=src.parent))
        target.replace(old / target.name)
    src.replace(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _only_study(study: Study, uid: str) -> Study:
    return Study(
        path=study.path,
        stacks=[s for s in study.stacks if s.study_uid == uid],
        skipped=study.skipped,
    )


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _root_of(task: StudyTask) -> str:
    """The cohort root of a task (its folder without the relative part)."""
    folder = Path(task.folder)
    return str(folder if task.rel == "." else folder.parents[len(Path(task.rel).parts) - 1])


def _relative(message: str, task: StudyTask) -> str:
    """Paths in a message made relative to the cohort root (tables stay portable)."""
    return message.replace(_root_of(task) + os.sep, "")


def _run(
    planned: Plan, options: AnalysisOptions, folder: Path, *, qc: bool
) -> tuple[int, str, list[str]]:
    """Run one study's plan and write its results into ``folder``, as ``backmice analyze`` does.

    MRI (T1 / Dixon / in-opposed) with ``options``; ultrasound as ``backmice
    analyze`` without a seed: the first frame, automatic candidates (status
    ``candidate``), in mm from the ultrasound region's calibration (in px, with
    a warning, without one).

    Returns
    -------
    (int, str, list of str)
        The number of nodules, the units of the lengths (``px`` when uncalibrated)
        and the warnings (the loader's and the analysis').
    """
    if planned.ultrasound:
        from backmice.ultrasound import write_ultrasound

        result = run_ultrasound(planned, frame=0)
        write_ultrasound(result, folder, qc=qc)
        return len(result.nodules), result.units, list(result.warnings)
    from backmice.report.write import write_analysis

    analysis = run_mri(planned, options=options)
    write_analysis(analysis, folder, qc=qc)
    return len(analysis.nodules), analysis.volume.units, list(analysis.warnings)


def analyze_study(
    task: StudyTask,
    out: str,
    options: AnalysisOptions,
    fingerprint: str,
    *,
    qc: bool = True,
) -> dict:
    """Analyse one study and write ``out/studies/<task.name>/`` atomically.

    A study with ultrasound and no MR image stack (and no MRI method forced in
    ``options``) is analysed as ultrasound, like ``backmice analyze`` without a
    seed (:func:`~backmice.run.is_ultrasound_study`); any other as
    MRI (T1 or Dixon). Never raises for a problem of the study: a study without
    a usable stack is ``no_stack``, bad input or a bug is ``error``, with the
    message.

    Parameters
    ----------
    task : StudyTask
    out : str
        The batch output folder.
    options : AnalysisOptions
        The MRI analysis options; ``method`` set keeps a study with both MR and
        ultrasound stacks on MRI (the ultrasound analysis takes no options).
    fingerprint : str
        Stored with the result, for ``--resume``.
    qc : bool
        Draw ``qc.png``.

    Returns
    -------
    dict
        The :class:`StudyRecord` as JSON (plain values travel well between processes).
    """
    t0 = time.perf_counter()
    record = StudyRecord(
        study=task.name,
        status=StudyStatus.OK,
        folder=printable(task.rel),
        study_uid=task.study_uid or "",
        fingerprint=fingerprint,
    )
    tmp = scratch_dir(out, task.name)
    study = None
    try:
        try:
            study = open_study(task.folder)
            if task.study_uid is not None:
                study = _only_study(study, task.study_uid)
            # One plan (backmice.run), as ``backmice analyze`` makes it, with the batch's name.
            planned = plan(study, method=options.method, name=task.name)
        except InputError as exc:
            record.status = StudyStatus.NO_STACK
            record.message = _relative(_one_line(exc), task)
            if study is not None and any(s.role is Role.US for s in study.stacks):
                record.message += (
                    "; its ultrasound is analysed without --method"
                    if options.method is not None
                    else "; its ultrasound is not analysed when the study has MR images "
                    "(backmice analyze --series UID analyses it)"
                )
        except Exception as exc:  # a bug while choosing the stack: this study only
            log.exception("study %s failed", task.name)
            record.status = StudyStatus.ERROR
            record.message = _relative(
                _one_line(f"internal error (a bug in backmice): {type(exc).__name__}: {exc}"),
                task,
            )
        else:
            record.method = str(planned.method)
            record.series_uid = ";".join(s.series_uid for s in planned.stacks)
            record.series_description = ";".join(s.description for s in planned.stacks)
            try:
                n, units, warnings = _run(planned, options, tmp, qc=qc)
                record.n_nodules = n
                record.units = units
                record.message = _relative(_one_line("; ".join(warnings)), task)
            except InputError as exc:
                record.status = StudyStatus.ERROR
                record.message = _relative(_one_line(exc), task)
            except OutputError as exc:  # the output folder, not this study: stop the batch
                raise OutputError(exc.problem, path=out) from None
            except Exception as exc:  # a bug in backmice: record it, keep the batch going
                log.exception("study %s failed", task.name)
                record.status = StudyStatus.ERROR
                record.message = _relative(
                    _one_line(f"internal error (a bug in backmice): {type(exc).__name__}: {exc}"),
                    task,
                )
        if record.status is not StudyStatus.OK:
            # No partial results next to a failure record.
            for child in tmp.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        record.seconds = time.perf_counter() - t0
        try:
            write_text(tmp / RECORD_FILE, json.dumps(record.to_json(), indent=1) + "\n")
            replace_dir(tmp, Path(out) / "studies" / task.name)
        except OutputError as exc:
            raise OutputError(exc.problem, path=out) from None
        except OSError as exc:
            if exc.errno in WRITE_ERRNOS:
                raise OutputError.from_os_error(exc, out) from None
            raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        study = None
        gc.collect()  # the volume and its maps go before the next study arrives
    return record.to_json()


def write_failure(task: StudyTask, out: str, fingerprint: str, message: str) -> dict:
    """Record a study as ``error`` from outside its worker (the worker process died).

    Returns
    -------
    dict
        The :class:`StudyRecord` as JSON.
    """
    record = StudyRecord(
        study=task.name,
        status=StudyStatus.ERROR,
        message=_one_line(message),
        folder=printable(task.rel),
        study_uid=task.study_uid or "",
        fingerprint=fingerprint,
    )
    tmp = scratch_dir(out, task.name)
    try:
        write_text(tmp / RECORD_FILE, json.dumps(record.to_json(), indent=1) + "\n")
        replace_dir(tmp, Path(out) / "studies" / task.name)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return record.to_json()


#: How often a pool worker checks that the batch's main process is still alive (s).
PARENT_CHECK_S = 0.5


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - another user's process took the pid
        return False
    return True


def _watch_main(pid: int) -> None:
    """Exit this worker at once when the batch's main process is gone.

    A killed main process releases the output folder's lock; its workers must not
    go on writing results into the folder another batch may now own.
    """
    while _alive(pid):
        time.sleep(PARENT_CHECK_S)
    os._exit(3)


def init_worker(
    level: int = logging.WARNING, main_pid: int | None = None, threads: int | None = None
) -> None:
    """Set up a worker process.

    Logging like the command line (quiet pydicom); a watch that ends the worker
    when the batch's main process ``main_pid`` dies; and every thread pool of
    the process (SimpleITK, OpenMP, BLAS, backmice's own) capped at ``threads``
    (:func:`backmice._threads.limit_threads`), so that the workers of a batch do
    not fight over the cores.

    Parameters
    ----------
    level : int
        Logging level.
    main_pid : int, optional
        The batch's main process (a pool worker); None: no watch (a Dask worker).
    threads : int, optional
        Threads per library in this process; None leaves them as they are.
    """
    import threading

    import pydicom.config

    if main_pid is not None:
        threading.Thread(target=_watch_main, args=(main_pid,), daemon=True).start()
    if threads is not None:
        limit_threads(threads)

    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
    logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)
