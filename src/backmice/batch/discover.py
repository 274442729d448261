"""Find the studies of a cohort, name them, and fingerprint their inputs.

A cohort is a folder ``ROOT`` whose sub-folders are study folders. A study
folder normally holds one study; where it holds several (files of more than
one StudyInstanceUID), it is split by StudyInstanceUID (headers only, through
:func:`backmice.io.open_study`). When ``ROOT`` has no sub-folders, ``ROOT``
itself is the one study folder.

Reading the headers is the slow part of finding the studies; a batch keeps the
scan (:func:`write_scan`) and, with ``--resume``, scans again only the folders
whose file list (names, sizes, modification times) changed
(:func:`scan_cohort` with ``known=``), the same test the fingerprint makes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from backmice import __version__
from backmice._atomic import write_text
from backmice._names import printable, safe_name
from backmice.errors import InputError
from backmice.io import Study, open_study
from backmice.io.scan import iter_files

__all__ = [
    "StudyTask",
    "discover",
    "fingerprint",
    "read_scan",
    "scan_cohort",
    "scan_folder",
    "study_folders",
    "unique_names",
    "write_scan",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StudyTask:
    """One study to analyse (picklable: only plain values, sent to worker processes).

    Attributes
    ----------
    name : str
        Output name: a safe path component, unique within the cohort and the
        same on every run over the same tree.
    folder : str
        Absolute path of the study folder.
    rel : str
        The study folder relative to ``ROOT`` (POSIX separators; ``.`` for ROOT).
    study_uid : str or None
        Analyse only the stacks of this StudyInstanceUID (a folder holding
        several studies); None: the whole folder.
    files_digest : str
        SHA-256 of the folder's sorted file list, each file as ``(path relative
        to the folder, size in bytes, mtime in ns)``: what the fingerprint is
        made of (a digest, so ten thousand tasks stay small).
    n_files : int
        Number of files in the folder.
    """

    name: str
    folder: str
    rel: str
    study_uid: str | None
    files_digest: str
    n_files: int


def study_folders(
    root: str | os.PathLike[str], *, exclude: tuple[str | os.PathLike[str], ...] = ()
) -> list[Path]:
    """The study folders of a cohort root, sorted by name.

    Folders left out are listed in a warning with the reason: hidden ones
    (starting with ``.``), links to folders (not followed: they may loop or lead
    out of the cohort), and the folders in ``exclude`` (the batch's own output
    folder when it lies inside the root).

    Parameters
    ----------
    root : path-like
        The cohort folder.
    exclude : tuple of path-like
        Folders that are not studies (compared after resolving).

    Returns
    -------
    list of Path
        Its other sub-folders, or ``[root]`` when it has none.

    Raises
    ------
    InputError
        ``root`` is not a folder.
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError("no such folder" if not root.exists() else "not a folder", path=root)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise InputError(f"cannot list the folder ({exc.strerror})", path=root) from None
    excluded = {Path(x).resolve() for x in exclude}
    folders, skipped = [], []
    for e in entries:
        if not e.is_dir():  # follows links: a link to a folder is a folder here
            continue
        if e.is_symlink():
            skipped.append((e.name, "a link to a folder (links are not followed)"))
        elif e.name.startswith("."):
            skipped.append((e.name, "a hidden folder (its name starts with '.')"))
        elif Path(e.path).resolve() in excluded:
            skipped.append((e.name, "the batch's output folder"))
        else:
            folders.append(Path(e.path))
    for name, why in skipped:
        log.warning("%s: folder %s skipped: %s", root, printable(name), why)
    loose = [e.name for e in entries if not e.name.startswith(".") and e.is_file()]
    if not folders:
        return [root]
    if loose:
        log.warning(
            "%s: %d file(s) directly in the cohort folder belong to no study folder and are "
            "not analysed (e.g. %s)",
            root,
            len(loose),
            loose[0],
        )
    return folders


def _file_list(folder: Path) -> tuple[str, int]:
    """Digest and number of the folder's files (names, sizes, modification times)."""
    out = []
    for path in iter_files(folder, []):
        try:
            st = path.stat()
        except OSError:
            continue
        out.append((path.relative_to(folder).as_posix(), st.st_size, st.st_mtime_ns))
    text = json.dumps(sorted(out), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest(), len(out)


def _label(study: Study, uid: str, folder: Path, base: str) -> str:
    """``<folder>/<sub-folder>`` when the study's files share one sub-folder, else ``""``."""
    paths = [p for s in study.stacks if s.study_uid == uid for p in s.paths]
    if not paths:
        return ""
    common = Path(os.path.commonpath([str(p.parent) for p in paths]))
    if common == folder or not common.is_relative_to(folder):
        return ""
    return f"{base}/{common.relative_to(folder).parts[0]}"


def scan_folder(root: str, folder: str) -> list[StudyTask]:
    """The studies of one study folder (headers only).

    Parameters
    ----------
    root : str
        The cohort folder (names are made relative to it).
    folder : str
        A study folder under ``root`` (or ``root`` itself).

    Returns
    -------
    list of StudyTask
        One task for the folder, or one per StudyInstanceUID when it holds
        several. Names are not yet de-duplicated across folders (see
        :func:`discover`).
    """
    root_p, folder_p = Path(root).resolve(), Path(folder).resolve()
    rel = folder_p.relative_to(root_p).as_posix() if folder_p != root_p else "."
    base = folder_p.name if rel == "." else rel
    digest, n_files = _file_list(folder_p)
    try:
        study = open_study(folder_p)
    except InputError as exc:  # the folder vanished or cannot be read: the worker will say so
        log.warning("%s", exc)
        uids: list[str] = []
    else:
        uids = sorted({s.study_uid for s in study.stacks})
    if len(uids) <= 1:
        return [StudyTask(safe_name(base), str(folder_p), rel, None, digest, n_files)]
    labels = {uid: _label(study, uid, folder_p, base) for uid in uids}
    shared = [lab for lab in labels.values() if list(labels.values()).count(lab) > 1]
    tasks = []
    for uid in uids:
        label = labels[uid]
        if not label or label in shared:  # mixed in one folder: name it by its UID
            label = f"{label or base}-{uid or 'no_study_uid'}"
        tasks.append(StudyTask(safe_name(label), str(folder_p), rel, uid, digest, n_files))
    return tasks


def unique_names(tasks: list[StudyTask]) -> list[StudyTask]:
    """Make names unique (case-insensitively, for file systems that fold case), stably.

    Parameters
    ----------
    tasks : list of StudyTask
        The tasks of every study folder, as :func:`scan_folder` names them.

    Returns
    -------
    list of StudyTask
        Sorted by ``name``; a name shared by several tasks gets a hash of the
        task's folder and StudyInstanceUID.
    """
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.name.lower()] = counts.get(t.name.lower(), 0) + 1
    out = []
    for t in tasks:
        if counts[t.name.lower()] > 1:
            key = f"{t.rel}\0{t.study_uid or ''}".encode("utf-8", "surrogateescape")
            name = f"{t.name[:60]}-{hashlib.sha1(key).hexdigest()[:10]}"
            t = dataclasses.replace(t, name=name)
        out.append(t)
    return sorted(out, key=lambda t: t.name)


def _unchanged(known: Sequence[StudyTask], digest: str, n_files: int) -> bool:
    return bool(known) and all(t.files_digest == digest and t.n_files == n_files for t in known)


def scan_cohort(
    root: str | os.PathLike[str],
    *,
    map_fn=map,
    exclude: tuple[str | os.PathLike[str], ...] = (),
    known: Mapping[str, Sequence[StudyTask]] | None = None,
) -> dict[str, list[StudyTask]]:
    """The tasks of every study folder of a cohort (:func:`scan_folder` on each).

    Parameters
    ----------
    root : path-like
        The cohort folder.
    map_fn : callable, optional
        ``map``-like function used to scan the study folders (a process pool's
        ``map`` scans them in parallel). Not called when no folder needs a scan.
    exclude : tuple of path-like
        Folders under ``root`` that are not studies (see :func:`study_folders`).
    known : mapping, optional
        An earlier scan (what this function returned, e.g. through
        :func:`read_scan`). A folder whose files (names, sizes, modification
        times: ``StudyTask.files_digest``) are unchanged keeps its tasks: its
        files are listed, no header is read. As for the fingerprint, the
        cohort's place does not matter (a cohort copied with its modification
        times keeps its scan).

    Returns
    -------
    dict of str to list of StudyTask
        Study folder relative to ``root`` (POSIX separators, ``.`` for
        ``root`` itself) → its tasks (names not yet unique across folders: see
        :func:`unique_names`), in folder-name order.
    """
    root_p = Path(root).resolve()
    scans: dict[str, list[StudyTask]] = {}
    todo: list[tuple[str, str]] = []
    for folder in (f.resolve() for f in study_folders(root, exclude=exclude)):
        rel = folder.relative_to(root_p).as_posix() if folder != root_p else "."
        prior = (known or {}).get(rel)
        if prior and _unchanged(prior, *_file_list(folder)):
            scans[rel] = [dataclasses.replace(t, folder=str(folder)) for t in prior]
        else:
            scans[rel] = []
            todo.append((rel, str(folder)))
    if todo:
        groups = map_fn(scan_folder, [str(root_p)] * len(todo), [f for _, f in todo])
        for (rel, _), group in zip(todo, groups, strict=True):
            scans[rel] = list(group)
    log.debug("%d study folder(s), %d scanned", len(scans), len(todo))
    return scans


def discover(
    root: str | os.PathLike[str],
    *,
    map_fn=map,
    exclude: tuple[str | os.PathLike[str], ...] = (),
    known: Mapping[str, Sequence[StudyTask]] | None = None,
) -> list[StudyTask]:
    """Every study under a cohort root, sorted by name.

    Parameters
    ----------
    root : path-like
        The cohort folder.
    map_fn : callable, optional
        ``map``-like function used to scan the study folders (a process pool's
        ``map`` scans them in parallel).
    exclude : tuple of path-like
        Folders under ``root`` that are not studies (see :func:`study_folders`).
    known : mapping, optional
        An earlier :func:`scan_cohort`: unchanged folders are not scanned again.

    Returns
    -------
    list of StudyTask
        Sorted by ``name``; names are unique.
    """
    scans = scan_cohort(root, map_fn=map_fn, exclude=exclude, known=known)
    return unique_names([t for group in scans.values() for t in group])


def write_scan(path: str | os.PathLike[str], scans: Mapping[str, Sequence[StudyTask]]) -> None:
    """Keep a :func:`scan_cohort` result in a JSON file (atomically), for :func:`read_scan`.

    Parameters
    ----------
    path : path-like
        The file (a batch keeps it in its output folder).
    scans : mapping of str to sequence of StudyTask
    """
    doc = {
        "backmice_version": __version__,
        "folders": {f: [dataclasses.asdict(t) for t in tasks] for f, tasks in scans.items()},
    }
    write_text(path, json.dumps(doc) + "\n")  # ASCII: undecodable names kept as \udcff escapes


def read_scan(path: str | os.PathLike[str]) -> dict[str, list[StudyTask]]:
    """The scan kept by :func:`write_scan`; empty when missing, unreadable or of another version.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict of str to list of StudyTask
    """
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        if doc.get("backmice_version") != __version__:
            return {}
        return {str(f): [StudyTask(**t) for t in tasks] for f, tasks in doc["folders"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def _options_json(options: object) -> str:
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        options = dataclasses.asdict(options)
    return json.dumps(options, sort_keys=True, default=str)


def fingerprint(task: StudyTask, options: object) -> str:
    """What a result depends on, as a hex digest.

    The sorted file list of the study folder with sizes and modification times,
    the StudyInstanceUID analysed, the analysis options and the backmice version.

    Parameters
    ----------
    task : StudyTask
    options : AnalysisOptions
        Any dataclass (or JSON-ready value) of options.

    Returns
    -------
    str
        SHA-256, hexadecimal.
    """
    doc = {
        "files": task.files_digest,
        "study_uid": task.study_uid,
        "options": _options_json(options),
        "backmice_version": __version__,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()
