"""Load a batch's results into an annotation project for review (``backmice.store``)."""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from backmice.batch.worker import StudyStatus, read_record
from backmice.errors import InputError

__all__ = ["to_project"]

log = logging.getLogger(__name__)


def to_project(out_dir: str | os.PathLike[str], project_path: str | os.PathLike[str]) -> list[str]:
    """Add every analysed study of a batch to an annotation project.

    Each study of ``studies.csv`` (the batch's last run; result folders of
    studies no longer in the cohort are left out) whose record says ``ok`` is
    added with
    :meth:`backmice.store.Project.add_result_dir` under the key ``<name>`` (the
    ``study`` of the batch tables). Adding a study again (after a re-run)
    replaces its automatic candidates and keeps the readers' reviews of the
    nodules still there (``docs/store.md``).

    Parameters
    ----------
    out_dir : path-like
        The batch output folder.
    project_path : path-like
        The project folder (created if missing) or its ``backmice.db``.

    Returns
    -------
    list of str
        The study keys added, in name order.

    Raises
    ------
    InputError
        ``out_dir`` holds no batch results (no ``studies.csv``), or a result
        folder is malformed.
    """
    from backmice.store import Project

    table = Path(out_dir) / "studies.csv"
    try:
        with table.open(encoding="utf-8", newline="") as fh:
            names = sorted(row["study"] for row in csv.DictReader(fh))
    except FileNotFoundError:
        raise InputError("no studies.csv: not a backmice batch output", path=out_dir) from None
    except (OSError, KeyError, csv.Error) as exc:
        raise InputError(f"cannot read the study list ({exc})", path=table) from None
    keys = []
    with Project.open(project_path) as project:
        for name in names:
            folder = Path(out_dir) / "studies" / name
            record = read_record(folder)
            if record is None or record.status is not StudyStatus.OK:
                continue
            keys.append(project.add_result_dir(folder, study=record.study))
            log.info("added %s to %s", record.study, project_path)
    return keys
