"""Load a batch's results into an annotation project for review (``backmice.store``)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from backmice.batch.worker import StudyStatus, read_record
from backmice.errors import InputError

__all__ = ["to_project"]

log = logging.getLogger(__name__)


def to_project(out_dir: str | os.PathLike[str], project_path: str | os.PathLike[str]) -> list[str]:
    """Add every analysed study of a batch to an annotation project.

    Each ``studies/<name>/`` whose record says ``ok`` is added with
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
        ``out_dir`` holds no batch results, or a result folder is malformed.
    """
    from backmice.store import Project

    studies = Path(out_dir) / "studies"
    if not studies.is_dir():
        raise InputError("no studies/ folder: not a backmice batch output", path=out_dir)
    keys = []
    with Project.open(project_path) as project:
        for folder in sorted(p for p in studies.iterdir() if p.is_dir()):
            record = read_record(folder)
            if record is None or record.status is not StudyStatus.OK:
                continue
            keys.append(project.add_result_dir(folder, study=record.study))
            log.info("added %s to %s", record.study, project_path)
    return keys
