"""The annotation project: one SQLite database (``backmice.db``) per project folder.

See ``docs/store.md`` for the model and the guarantees. In short: every user
action is one ``BEGIN IMMEDIATE`` transaction that writes the new state and an
append-only event; a write that fails for a reason the user can fix (full disk,
read-only folder, a lock held too long) raises :class:`StoreError` and keeps the
action in :attr:`Project.pending` until :meth:`Project.flush` writes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import functools
import json
import logging
import math
import os
import sqlite3
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backmice.errors import InputError, NotAProjectError, StoreError
from backmice.store import _codec
from backmice.store._schema import MIGRATIONS, SCHEMA_VERSION
from backmice.vocab import COLUMNS, DETAILS, Status, Subtype

if TYPE_CHECKING:
    from backmice.analysis import Analysis
    from backmice.measure.nodules import SiteMaps
    from backmice.measure.red_flags import RedFlagRules

__all__ = [
    "DB_NAME",
    "Action",
    "Event",
    "NotAProjectError",
    "PendingAction",
    "Project",
    "ReaderState",
    "StoreError",
    "StudyRecord",
]

log = logging.getLogger(__name__)

#: The maps of :class:`backmice.measure.nodules.SiteMaps` the store keeps for
#: re-measuring (``site_maps`` table); the fascia is the study's own column and
#: the subcutaneous fat enters only through its reference signal (``params``).
_SITE_MAPS = ("skin_depth_mm", "image", "fat", "fat_fraction", "fat_share")

#: File name of the database inside a project folder.
DB_NAME = "backmice.db"
#: ``PRAGMA application_id`` of a backmice database ("BMic").
APPLICATION_ID = 0x424D6963

_BUSY = {"SQLITE_BUSY", "SQLITE_LOCKED"}
#: Errors that mean "this file or folder cannot be written".
_NO_WRITE = {"SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_READONLY_DIRECTORY"}
_REASONS = {
    "SQLITE_FULL": "the disk is full (or the database reached its size limit)",
    "SQLITE_READONLY": "the database is read-only (is the folder or the file write-protected?)",
    "SQLITE_BUSY": "the database is locked by another process for longer than the timeout",
    "SQLITE_LOCKED": "the database is locked by another connection",
    "SQLITE_CORRUPT": "the database file is corrupt",
    "SQLITE_NOTADB": "not a database file (or a corrupt one)",
    "SQLITE_CANTOPEN": "the database file cannot be opened (missing folder or no permission)",
    "SQLITE_PERM": "no permission to write the database",
    "SQLITE_IOERR": "an input/output error on the disk",
}


class Action(enum.StrEnum):
    """What a reader can do (``Project.record``); stored as these strings."""

    ACCEPT = "accept"
    REJECT = "reject"
    RESET = "reset"
    SET_SUBTYPE = "set_subtype"
    SET_NOTE = "set_note"
    EDIT_MASK = "edit_mask"
    ADD_NODULE = "add_nodule"
    DELETE_NODULE = "delete_nodule"
    MERGE = "merge"
    SPLIT = "split"
    EDIT_FASCIA = "edit_fascia"


#: Actions on the review of one existing nodule, and the status they set.
_REVIEW = {
    Action.ACCEPT: Status.ACCEPTED,
    Action.REJECT: Status.REJECTED,
    Action.RESET: Status.CANDIDATE,
    Action.SET_SUBTYPE: None,
    Action.SET_NOTE: None,
}


@dataclass(frozen=True, slots=True)
class Event:
    """One entry of the append-only event log.

    Attributes
    ----------
    id : int
        Increasing with time of writing.
    study : str or None
    reader : str or None
    at : str
        When the user did it, ISO 8601 UTC (``2026-01-02T03:04:05.678Z``).
    action : str
        An :class:`Action` value, or ``add_study`` / ``reanalysis``.
    nodule_id : int or None
    before, after : dict or None
        The state the action changed, before and after (JSON values).
    """

    id: int
    study: str | None
    reader: str | None
    at: str
    action: str
    nodule_id: int | None
    before: dict | None
    after: dict | None


@dataclass(frozen=True, slots=True)
class ReaderState:
    """One reader's progress on one study.

    Attributes
    ----------
    n_nodules : int
        Nodules in this reader's view.
    n_reviewed : int
        Of those, accepted or rejected by this reader.
    done : bool
        Every nodule reviewed (a study without nodules is done once the reader has
        recorded anything on it).
    updated : str
        The reader's last action on the study (ISO 8601 UTC).
    """

    n_nodules: int
    n_reviewed: int
    done: bool
    updated: str


@dataclass(frozen=True, slots=True)
class StudyRecord:
    """A study of the project and its review state.

    Attributes
    ----------
    key : str
        The study's stable name in the project.
    source : str or None
        Folder or file it was analysed from.
    study_uid : str or None
        StudyInstanceUID, where known.
    n_nodules : int
        Automatic candidates.
    added : str
        When it was (last) added, ISO 8601 UTC.
    readers : dict of str to ReaderState
        Every reader who has recorded anything on it.
    shape : tuple of 3 int
        Grid of the analysed stack, ``(slice, row, col)``.
    affine : ndarray, shape (4, 4)
        Index to LPS mm.
    series_uid : str or None
        The analysed series.
    method : str or None
        ``t1`` or ``dixon``.
    params : dict
        The analysis parameters as stored (method, threshold, warnings, ...).
    """

    key: str
    source: str | None
    study_uid: str | None
    n_nodules: int
    added: str
    readers: dict[str, ReaderState]
    shape: tuple[int, int, int]
    affine: np.ndarray
    series_uid: str | None
    method: str | None = None
    params: dict = field(default_factory=dict)


@dataclass(slots=True)
class PendingAction:
    """A reader's action not yet written (see :attr:`Project.pending`).

    Everything needed to write it later, already validated and encoded (masks
    packed, values as JSON), with the time the user did it.
    """

    study: str
    action: Action
    reader: str
    at: str
    nodule_id: int | None = None
    value: Any = None
    masks: list[dict] = field(default_factory=list)
    rows: list[dict | None] = field(default_factory=list)
    fascia: bytes | None = None

    def to_json(self) -> dict:
        """A JSON-able dict (the fascia map base64-encoded)."""
        import base64

        doc = dataclasses.asdict(self)
        doc["action"] = str(self.action)
        doc["fascia"] = None if self.fascia is None else base64.b64encode(self.fascia).decode()
        return doc

    @classmethod
    def from_json(cls, doc: dict) -> PendingAction:
        """Inverse of :meth:`to_json`."""
        import base64

        doc = dict(doc)
        doc["action"] = Action(doc["action"])
        if doc.get("fascia") is not None:
            doc["fascia"] = base64.b64decode(doc["fascia"])
        return cls(**doc)


def pending_rescue_path(db: str | os.PathLike[str]) -> Path:
    """Where :meth:`Project.__exit__` saves actions it could not write (a new file each time)."""
    import hashlib

    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    tag = hashlib.sha1(str(Path(db).resolve()).encode()).hexdigest()[:8]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return cache / "backmice" / "pending" / f"{Path(db).stem}-{tag}-{stamp}.json"


def now_iso() -> str:
    """The current time, ISO 8601 UTC with milliseconds and a ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _jsonable(value: Any) -> Any:
    """Numbers, strings, lists and dicts only; NaN becomes None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def _dumps(value: Any) -> str:
    return json.dumps(_jsonable(value), allow_nan=False, separators=(",", ":"))


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _cannot_write(code: str | None) -> bool:
    """Whether SQLite's error means the database cannot be written here (it may be read).

    A read-only folder or file, missing permissions, a full disk, or an I/O error
    making the WAL index (which a full disk gives on opening).
    """
    code = code or ""
    return code in _NO_WRITE or code == "SQLITE_FULL" or code.startswith("SQLITE_IOERR")


def _error_name(exc: sqlite3.Error) -> str:
    return getattr(exc, "sqlite_errorname", "") or ""


def _is_busy(exc: sqlite3.Error) -> bool:
    name = _error_name(exc)
    return name.split("_")[0:2] == ["SQLITE", "BUSY"] or name in _BUSY or "locked" in str(exc)


class Project:
    """An annotation project: studies, candidates, readers' reviews and edits, the event log.

    Open with :meth:`open`; see ``docs/store.md``.

    Attributes
    ----------
    path : Path
        The database file.
    pending : list of PendingAction
        Actions that could not be written yet, oldest first; :meth:`flush` writes them.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, retries: int = 5) -> None:
        self._conn = conn
        self.path = path
        self.pending: list[PendingAction] = []
        self._warned_no_maps: set[str] = set()  # studies re-measured without their maps
        self.readonly = False
        self._retries = retries

    # ----------------------------------------------------------------- opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        create: bool = True,
        readonly: bool = False,
        timeout_s: float = 30.0,
    ) -> Project:
        """Open (or create) the project at ``path``.

        Parameters
        ----------
        path : path-like
            The project folder (database ``path/backmice.db``) or the database file.
        create : bool
            Create the folder and database if missing; otherwise a missing
            database raises :class:`NotAProjectError`.
        readonly : bool
            Open for reading only (no migration, every write raises :class:`StoreError`).
            A project in a folder that cannot be written opens this way by itself.
        timeout_s : float
            How long a write waits for another process's lock, per attempt (s).

        Returns
        -------
        Project

        Raises
        ------
        NotAProjectError
            No project there and ``create`` is False.
        StoreError
            Not a backmice database, corrupt, from a newer backmice, or cannot be
            created or migrated (read-only, disk full).
        """
        path = Path(path)
        db = path if path.suffix == ".db" or path.is_file() else path / DB_NAME
        if not db.exists():
            if not create or readonly:
                raise NotAProjectError("not a backmice project (no backmice.db)", path=db)
            try:
                db.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the project folder: {exc}", path=db) from exc
        try:
            return cls._connect(db, timeout_s, "ro" if readonly else "rw")
        except StoreError as exc:
            if not _cannot_write(exc.code) or not db.is_file():
                raise
            # A read-only folder or a full disk: SQLite cannot make the WAL index
            # beside the database. Read the file as it is, when no WAL data is left over.
            wal = db.with_name(db.name + "-wal")
            if wal.exists() and wal.stat().st_size:
                raise StoreError(
                    "the folder is read-only and the database has unsaved WAL data "
                    f"({wal.name}): open it once where it can be written",
                    path=db,
                    code=exc.code,
                ) from exc
            project = cls._connect(db, timeout_s, "immutable")
            why = (
                "the disk is full" if exc.code == "SQLITE_FULL" else "the folder cannot be written"
            )
            if (exc.code or "").startswith("SQLITE_IOERR"):
                why = "the disk cannot be written (full?)"
            log.warning("%s: read-only (%s); edits will fail", db, why)
            return project

    @classmethod
    def _connect(cls, db: Path, timeout_s: float, mode: str) -> Project:
        """Connect in ``mode``: ``rw``, ``ro`` (no writes) or ``immutable`` (a read-only folder)."""
        try:
            if mode == "rw":
                conn = sqlite3.connect(db, timeout=timeout_s, isolation_level=None)
            else:
                query = "mode=ro" if mode == "ro" else "immutable=1"
                uri = f"{db.resolve().as_uri()}?{query}"
                conn = sqlite3.connect(uri, timeout=timeout_s, isolation_level=None, uri=True)
        except sqlite3.Error as exc:
            name = _error_name(exc)
            raise StoreError(_REASONS.get(name, str(exc)), path=db, code=name) from exc
        project = cls(conn, db)
        project.readonly = mode != "rw"
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            project._migrate()
            if mode == "rw":
                mode_now = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode_now.lower() != "wal":
                    with contextlib.suppress(sqlite3.OperationalError):
                        conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise project._error(exc) from exc
        return project

    def _migrate(self) -> None:
        conn = self._conn
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        app = conn.execute("PRAGMA application_id").fetchone()[0]
        if version == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if tables:
                raise StoreError("not a backmice project database (unknown tables)", path=self.path)
        elif app != APPLICATION_ID:
            raise StoreError("not a backmice project database (other application)", path=self.path)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"made by a newer backmice (schema v{version}; this one reads up to "
                f"v{SCHEMA_VERSION}): upgrade backmice",
                path=self.path,
            )
        if version < SCHEMA_VERSION and self.readonly:
            raise StoreError(
                f"schema v{version} needs migrating to v{SCHEMA_VERSION}, and the database is "
                "opened read-only: open it once where it can be written",
                path=self.path,
            )
        if version < SCHEMA_VERSION:
            # WAL first (outside a transaction), so the migration is crash-safe too.
            with contextlib.suppress(sqlite3.OperationalError):
                conn.execute("PRAGMA journal_mode = WAL")
        while version < SCHEMA_VERSION:
            target = version + 1

            def step(cur: sqlite3.Connection, v: int = version, target: int = target) -> None:
                # Another process may have migrated meanwhile: check under the lock.
                if cur.execute("PRAGMA user_version").fetchone()[0] != v:
                    return
                for statement in _statements(MIGRATIONS[v]):
                    cur.execute(statement)
                cur.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                cur.execute(f"PRAGMA user_version = {target}")
                cur.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_migrated', ?)",
                    (f"v{v} -> v{target} at {now_iso()}",),
                )

            self._transaction(step)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            log.info("%s: schema now v%d", self.path, version)

    def close(self) -> None:
        """Close the database.

        Raises
        ------
        StoreError
            Actions are still pending (nothing is dropped: call :meth:`flush` or
            :meth:`save_pending` first); the connection stays open.
        """
        if self.pending:
            raise StoreError(
                f"{len(self.pending)} action(s) not yet written: flush() or save_pending() first",
                path=self.path,
            )
        self._conn.close()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        """Leave the ``with`` block: write what is pending, or save it where it is safe.

        Pending actions are flushed once more; if that fails they are saved with
        :meth:`save_pending` under ``$XDG_CACHE_HOME/backmice/pending/`` (default
        ``~/.cache``) and the file is named in an error log message, so that
        :meth:`load_pending` can replay them later.
        """
        if self.pending:
            with contextlib.suppress(StoreError, InputError):
                self.flush()
        if self.pending:
            try:
                saved = self.save_pending(pending_rescue_path(self.path))
            except OSError as exc:
                log.error(
                    "%s: %d action(s) could not be written nor saved (%s); they are lost "
                    "when this process ends",
                    self.path,
                    len(self.pending),
                    exc,
                )
                return
            log.error(
                "%s: %d action(s) could not be written; saved to %s: replay them with "
                "Project.load_pending(...) and flush()",
                self.path,
                len(self.pending),
                saved,
            )
            self.pending.clear()
        self._conn.close()

    # ----------------------------------------------------------- transactions

    def _error(self, exc: sqlite3.Error) -> StoreError:
        name = _error_name(exc)
        base = name.split("_")
        reason = _REASONS.get(name) or _REASONS.get("_".join(base[:2]))
        return StoreError(f"{reason} ({exc})" if reason else str(exc), path=self.path, code=name)

    def _transaction(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """Run ``fn(conn)`` in one ``BEGIN IMMEDIATE`` transaction, retrying when locked."""
        delay = 0.05
        for attempt in range(self._retries + 1):
            last = attempt == self._retries
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if _is_busy(exc) and not last:
                    time.sleep(delay)
                    delay *= 2
                    continue
                raise self._error(exc) from exc
            try:
                result = fn(self._conn)
                self._conn.execute("COMMIT")
                return result
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    if _is_busy(exc) and not last:
                        time.sleep(delay)
                        delay *= 2
                        continue
                    raise self._error(exc) from exc
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def _read(self, sql: str, params: Iterable[Any] = ()) -> list[sqlite3.Row]:
        try:
            cur = self._conn.execute(sql, tuple(params))
            cur.row_factory = sqlite3.Row
            return cur.fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc

    # ------------------------------------------------------------ adding studies

    def add_analysis(
        self,
        analysis: Analysis,
        *,
        study: str | None = None,
        reader: str | None = None,
        source: str | os.PathLike[str] | None = None,
    ) -> str:
        """Store an analysis (its study, stacks, parameters, candidates, masks and fascia).

        Parameters
        ----------
        analysis : backmice.analysis.Analysis
        study : str, optional
            The study's key in the project; default ``analysis.study``.
        reader : str, optional
            Who added it (for the event log).
        source : path-like, optional
            Where the study was read from; default the common folder of the stacks' files.

        Returns
        -------
        str
            The study key. Re-adding a study replaces its automatic candidates and
            keeps the readers' reviews whose ``nodule_id`` is still there
            (``docs/store.md``).
        """
        key = _key(study if study is not None else analysis.study)
        volume = analysis.volume
        affine = np.asarray(volume.affine if volume.calibrated else np.eye(4), dtype=float)
        labels = np.asarray(analysis.labels)
        if source is None:
            paths = [str(p) for s in analysis.stacks for p in s.paths]
            source = os.path.commonpath(paths) if paths else None
        study_uid = next((s.study_uid for s in analysis.stacks if s.study_uid), None)
        stacks = [
            {
                "series_uid": s.series_uid,
                "role": str(s.role),
                "description": s.description,
                "shape": list(s.shape),
                "spacing_mm": list(s.spacing_mm),
                "affine": np.asarray(s.affine).tolist(),
            }
            for s in analysis.stacks
        ]
        if not stacks:
            stacks = [
                {
                    "series_uid": volume.series_uid,
                    "role": str(getattr(volume, "role", "other")),
                    "description": "",
                    "shape": list(labels.shape),
                    "spacing_mm": list(volume.spacing_mm),
                    "affine": affine.tolist(),
                }
            ]
        # What the analysis measured its nodules with: an edited mask is measured
        # with the same (measure_nodule), so an unchanged one gives its row back.
        site = _site_of(analysis)
        params = {
            "method": str(analysis.method),
            "threshold": getattr(analysis.fat, "threshold", None),
            "warnings": list(analysis.warnings),
            "sacrum_top_z_mm": getattr(analysis, "sacrum_top_z_mm", None),
        }
        rules = getattr(analysis, "red_flag_rules", None)
        if rules is not None:  # what its red flags were raised by, for every re-measure
            params["red_flag_rules"] = dataclasses.asdict(rules)
        maps: dict[str, np.ndarray] = {}
        if site is not None:
            params.update(midline_x_mm=site.midline_x_mm, sat_signal=site.sat_signal)
            maps = {
                name: getattr(site, name)
                for name in _SITE_MAPS
                if getattr(site, name) is not None and getattr(site, name).shape == labels.shape
            }
        return self._add_study(
            key,
            source=None if source is None else str(source),
            study_uid=study_uid,
            method=str(analysis.method),
            units=str(getattr(volume, "units", "mm")),
            labels=labels,
            affine=affine,
            params=params,
            stacks=stacks,
            rows=analysis.nodules,
            fascia=np.asarray(analysis.fascia.signed_mm),
            reader=reader,
            site=maps,
        )

    def add_result_dir(self, path: str | os.PathLike[str], *, study: str | None = None) -> str:
        """Import what ``backmice analyze --out DIR`` wrote.

        Parameters
        ----------
        path : path-like
            The result folder: ``nodules.json``, ``labels.nii.gz``, ``fascia.nii.gz``.
        study : str, optional
            The study's key; default the ``study`` of ``nodules.json``.

        Returns
        -------
        str
            The study key.

        Raises
        ------
        InputError
            A file is missing or malformed (the message names it).
        """
        import SimpleITK as sitk

        folder = Path(path)
        doc_path = folder / "nodules.json"
        try:
            doc = json.loads(doc_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError("no nodules.json: not a backmice result folder", path=folder) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"cannot read nodules.json: {exc}", path=doc_path) from exc
        if not isinstance(doc, dict) or not isinstance(doc.get("nodules"), list):
            raise InputError("no 'nodules' list", path=doc_path)

        def read(name: str) -> tuple[np.ndarray, np.ndarray]:
            file = folder / name
            if not file.is_file():
                raise InputError(f"missing {name}", path=folder)
            try:
                image = sitk.ReadImage(str(file))
            except RuntimeError as exc:
                raise InputError(f"cannot read the image: {exc}", path=file) from exc
            if image.GetDimension() != 3:
                raise InputError("not a 3D image", path=file)
            return sitk.GetArrayFromImage(image), _affine_from_itk(image)

        labels, affine = read("labels.nii.gz")
        fascia, fascia_affine = read("fascia.nii.gz")
        if fascia.shape != labels.shape or not np.allclose(fascia_affine, affine, atol=1e-3):
            raise InputError("fascia.nii.gz and labels.nii.gz differ in grid", path=folder)
        if not np.issubdtype(labels.dtype, np.integer):
            raise InputError("labels are not integers", path=folder / "labels.nii.gz")
        rows = doc["nodules"]
        for row in rows:
            if not isinstance(row, dict) or not isinstance(row.get("nodule_id"), int):
                raise InputError("a nodule without an integer nodule_id", path=doc_path)
        key = _key(study if study is not None else doc.get("study") or folder.name)
        sources = [str(p) for p in doc.get("source_files") or []]
        study_uid = _study_uid(sources)
        series = doc.get("series") or []
        stacks = [
            {
                "series_uid": s.get("series_uid", ""),
                "role": s.get("role", "other"),
                "description": s.get("description", ""),
                "shape": s.get("shape", list(labels.shape)),
                "spacing_mm": s.get("spacing_mm", []),
                "affine": affine.tolist() if i == 0 else None,
            }
            for i, s in enumerate(series)
            if isinstance(s, dict)
        ]
        params = {
            k: doc.get(k)
            for k in (
                "method",
                "threshold",
                "warnings",
                "backmice_version",
                "sacrum_top_z_mm",
                "red_flag_rules",
                # Ultrasound: where the region's labels lie in the stored frames.
                "modality",
                "region_origin_px",
                "frame",
            )
        }
        params["result_dir"] = str(folder.resolve())
        return self._add_study(
            key,
            source=os.path.commonpath(sources) if sources else str(folder.resolve()),
            study_uid=study_uid,
            method=doc.get("method"),
            units=str(doc.get("units") or "mm"),
            labels=labels.astype(np.uint32),
            affine=affine,
            params=params,
            stacks=stacks,
            rows=rows,
            fascia=fascia.astype(np.float32),
            reader=None,
        )

    def _add_study(
        self,
        key: str,
        *,
        source: str | None,
        study_uid: str | None,
        method: str | None,
        units: str,
        labels: np.ndarray,
        affine: np.ndarray,
        params: dict,
        stacks: list[dict],
        rows: list[dict],
        fascia: np.ndarray,
        reader: str | None,
        site: dict[str, np.ndarray] | None = None,
    ) -> str:
        if labels.ndim != 3:
            raise InputError(f"labels must be 3D (slice, row, col), got shape {labels.shape}")
        if fascia.shape != labels.shape:
            raise InputError("the fascia map and the labels differ in shape")
        shape = tuple(int(n) for n in labels.shape)
        from scipy import ndimage

        boxes = ndimage.find_objects(labels.astype(np.int64, copy=False))
        encoded = []
        for row in rows:
            nid = int(row["nodule_id"])
            box = boxes[nid - 1] if 0 < nid <= len(boxes) else None
            if box is None:
                raise InputError(f"nodule {nid} has no voxels in the labels")
            crop = labels[box] == nid
            lo = [b.start for b in box]
            hi = [b.stop for b in box]
            bits = _codec.encode_mask(crop)[1]
            # encode_mask crops again; the crop is already tight, so keep its box.
            full_box = (lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
            r = {c: row.get(c) for c in COLUMNS}
            r.update({k: row[k] for k in DETAILS if row.get(k) is not None})
            r["study"] = key
            encoded.append((nid, _dumps(r), _dumps(full_box), bits))
        # The analysis' own map, exactly: rows are re-measured with it.
        fascia_blob = _codec.encode_map(fascia, exact=True)
        site_blobs = [(name, *_codec.encode_array(a)) for name, a in (site or {}).items()]
        at = now_iso()

        def write(cur: sqlite3.Connection) -> None:
            old = cur.execute(
                "SELECT key, shape, affine FROM studies WHERE key = ?", (key,)
            ).fetchone()
            if old is not None and (
                tuple(json.loads(old[1])) != shape
                or not np.allclose(json.loads(old[2]), affine, atol=1e-3)
            ):
                # Readers' masks and fascia corrections live on the old grid.
                raise InputError(
                    f"study {key!r} is already in the project on another grid "
                    f"({tuple(json.loads(old[1]))}, now {shape}): add it under another name "
                    "(study=...)",
                    path=self.path,
                )
            new_ids = {e[0] for e in encoded}
            before = None
            if old is not None:
                before = self._reanalysis_cleanup(cur, key, new_ids)
            cur.execute(
                # An upsert, not REPLACE: a REPLACE deletes the row first, and the
                # cascade would take the readers' reviews with it.
                "INSERT INTO studies (key, source, study_uid, method, units, shape, affine, "
                "params, fascia, added, added_by) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (key) DO UPDATE SET source = excluded.source, "
                "study_uid = excluded.study_uid, method = excluded.method, "
                "units = excluded.units, shape = excluded.shape, affine = excluded.affine, "
                "params = excluded.params, fascia = excluded.fascia, added = excluded.added, "
                "added_by = excluded.added_by",
                (
                    key,
                    source,
                    study_uid,
                    method,
                    units,
                    _dumps(shape),
                    _dumps(affine),
                    _dumps(params),
                    fascia_blob,
                    at,
                    reader,
                ),
            )
            cur.executemany(
                "INSERT INTO stacks (study, position, series_uid, role, description, shape, "
                "spacing_mm, affine) VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        key,
                        i,
                        s["series_uid"],
                        s["role"],
                        s["description"],
                        _dumps(s["shape"]),
                        _dumps(s["spacing_mm"]),
                        None if s.get("affine") is None else _dumps(s["affine"]),
                    )
                    for i, s in enumerate(stacks)
                ],
            )
            cur.executemany(
                "INSERT INTO nodules (study, nodule_id, row, box, mask) VALUES (?,?,?,?,?)",
                [(key, *e) for e in encoded],
            )
            cur.execute("DELETE FROM site_maps WHERE study = ?", (key,))
            cur.executemany(
                "INSERT INTO site_maps (study, name, dtype, data) VALUES (?,?,?,?)",
                [(key, *b) for b in site_blobs],
            )
            self._log(
                cur,
                study=key,
                reader=reader,
                at=at,
                action="reanalysis" if old is not None else "add_study",
                nodule_id=None,
                before=before,
                after={"nodule_ids": sorted(new_ids), "source": source, "params": params},
            )

        self._transaction(write)
        log.info("%s: study %s stored with %d nodule(s)", self.path, key, len(encoded))
        return key

    def _reanalysis_cleanup(self, cur: sqlite3.Connection, key: str, new_ids: set[int]) -> dict:
        """Before re-adding a study: drop its candidates and what only made sense for them.

        Reviews and mask edits of ids still among the new candidates are kept, and
        so are nodules readers added (renumbered above the new candidates when
        their id is now taken). What is dropped is returned for the event log.
        """
        added = {
            (r[0], r[1])
            for r in cur.execute(
                "SELECT nodule_id, reader FROM nodule_edits WHERE study = ? AND kind = 'added'",
                (key,),
            )
        }
        dropped = [
            dict(zip(("nodule_id", "reader", "status", "subtype", "note"), r, strict=True))
            for r in cur.execute(
                "SELECT nodule_id, reader, status, subtype, note FROM reviews WHERE study = ? "
                "ORDER BY nodule_id, reader",
                (key,),
            )
            if r[0] not in new_ids and (r[0], r[1]) not in added
        ]
        for d in dropped:
            cur.execute(
                "DELETE FROM reviews WHERE study = ? AND nodule_id = ? AND reader = ?",
                (key, d["nodule_id"], d["reader"]),
            )
        dropped_edits = [
            {"nodule_id": r[0], "reader": r[1], "kind": r[2]}
            for r in cur.execute(
                "SELECT nodule_id, reader, kind FROM nodule_edits WHERE study = ? "
                "AND kind != 'added' ORDER BY nodule_id, reader",
                (key,),
            )
            if r[0] not in new_ids
        ]
        for d in dropped_edits:
            cur.execute(
                "DELETE FROM nodule_edits WHERE study = ? AND nodule_id = ? AND reader = ?",
                (key, d["nodule_id"], d["reader"]),
            )
        renumbered = []
        used = set(new_ids) | {nid for nid, _ in added}
        for nid, reader in sorted(added):
            if nid not in new_ids:
                continue
            new = max(used) + 1
            used.add(new)
            row = json.loads(
                cur.execute(
                    "SELECT row FROM nodule_edits WHERE study = ? AND nodule_id = ? AND reader = ?",
                    (key, nid, reader),
                ).fetchone()[0]
            )
            row["nodule_id"] = new
            for table in ("nodule_edits", "reviews"):
                cur.execute(
                    f"UPDATE {table} SET nodule_id = ? WHERE study = ? AND nodule_id = ? "
                    "AND reader = ?",
                    (new, key, nid, reader),
                )
            cur.execute(
                "UPDATE nodule_edits SET row = ? WHERE study = ? AND nodule_id = ? AND reader = ?",
                (_dumps(row), key, new, reader),
            )
            renumbered.append({"reader": reader, "from": nid, "to": new})
        cur.execute("DELETE FROM nodules WHERE study = ?", (key,))
        cur.execute("DELETE FROM stacks WHERE study = ?", (key,))
        return {
            "dropped_reviews": dropped,
            "dropped_edits": dropped_edits,
            "renumbered": renumbered,
        }

    # --------------------------------------------------------------- reading

    def _study_row(self, key: str) -> sqlite3.Row:
        rows = self._read("SELECT * FROM studies WHERE key = ?", (key,))
        if not rows:
            raise InputError(f"no study {key!r} in the project", path=self.path)
        return rows[0]

    def _grid(self, key: str) -> tuple[tuple[int, int, int], np.ndarray]:
        row = self._study_row(key)
        return tuple(json.loads(row["shape"])), np.asarray(json.loads(row["affine"]), dtype=float)

    def study(self, key: str) -> StudyRecord:
        """One study and its review state (see :meth:`studies`)."""
        return self._record_of(self._study_row(key))

    def studies(self) -> list[StudyRecord]:
        """Every study of the project, by key, with each reader's review state.

        Returns
        -------
        list of StudyRecord
        """
        return [self._record_of(r) for r in self._read("SELECT * FROM studies ORDER BY key")]

    def _record_of(self, row: sqlite3.Row) -> StudyRecord:
        key = row["key"]
        n_auto = self._read("SELECT count(*) AS n FROM nodules WHERE study = ?", (key,))[0]["n"]
        readers: dict[str, ReaderState] = {}
        for r in self._read(
            "SELECT reader, max(at) AS updated FROM events WHERE study = ? AND reader IS NOT NULL "
            "AND action NOT IN ('add_study', 'reanalysis') GROUP BY reader ORDER BY reader",
            (key,),
        ):
            ids = self._visible_ids(key, r["reader"])
            reviewed = {
                x["nodule_id"]
                for x in self._read(
                    "SELECT nodule_id FROM reviews WHERE study = ? AND reader = ? "
                    "AND status != 'candidate'",
                    (key, r["reader"]),
                )
            }
            n_rev = len(reviewed & ids)
            readers[r["reader"]] = ReaderState(
                n_nodules=len(ids),
                n_reviewed=n_rev,
                done=n_rev == len(ids),
                updated=r["updated"],
            )
        series = self._read(
            "SELECT series_uid FROM stacks WHERE study = ? ORDER BY position LIMIT 1", (key,)
        )
        return StudyRecord(
            key=key,
            source=row["source"],
            study_uid=row["study_uid"],
            n_nodules=n_auto,
            added=row["added"],
            readers=readers,
            shape=tuple(json.loads(row["shape"])),
            affine=np.asarray(json.loads(row["affine"]), dtype=float),
            series_uid=series[0]["series_uid"] if series else None,
            method=row["method"],
            params=json.loads(row["params"]),
        )

    def stacks(self, study: str) -> list[dict]:
        """The stacks a study was measured on, the analysed one first.

        Returns
        -------
        list of dict
            ``series_uid``, ``role``, ``description``, ``shape`` (slice, row, col),
            ``spacing_mm`` (None where unknown) and ``affine`` (4x4 list, or None
            when not known, as for the water stack of an imported result folder).
        """
        self._study_row(study)
        return [
            {
                "series_uid": r["series_uid"],
                "role": r["role"],
                "description": r["description"],
                "shape": tuple(json.loads(r["shape"])),
                "spacing_mm": tuple(json.loads(r["spacing_mm"])),
                "affine": _loads(r["affine"]),
            }
            for r in self._read("SELECT * FROM stacks WHERE study = ? ORDER BY position", (study,))
        ]

    def _visible_ids(self, key: str, reader: str | None) -> set[int]:
        """The nodule ids in this reader's view (no masks read)."""
        ids = {
            r["nodule_id"]
            for r in self._read("SELECT nodule_id FROM nodules WHERE study = ?", (key,))
        }
        sql = "SELECT nodule_id, kind FROM nodule_edits WHERE study = ?"
        params: list[Any] = [key]
        if reader is not None:
            sql += " AND reader = ?"
            params.append(reader)
        latest = {r["nodule_id"]: r["kind"] for r in self._read(sql + " ORDER BY event", params)}
        for nid, kind in latest.items():
            if kind == "deleted":
                ids.discard(nid)
            else:
                ids.add(nid)
        return ids

    def _edits(self, key: str, reader: str | None) -> dict[int, sqlite3.Row]:
        """Per nodule id, the reader's edit (None: the latest edit by anyone)."""
        if reader is not None:
            rows = self._read(
                "SELECT * FROM nodule_edits WHERE study = ? AND reader = ?", (key, reader)
            )
        else:
            rows = self._read("SELECT * FROM nodule_edits WHERE study = ? ORDER BY event", (key,))
        return {r["nodule_id"]: r for r in rows}

    def _geometry(self, key: str, reader: str | None) -> dict[int, tuple[dict, list, bytes]]:
        """Per nodule id, as this reader sees it: (SPEC row, box, mask bits), by id."""
        out = {
            r["nodule_id"]: (json.loads(r["row"]), json.loads(r["box"]), r["mask"])
            for r in self._read(
                "SELECT nodule_id, row, box, mask FROM nodules WHERE study = ?", (key,)
            )
        }
        for nid, e in self._edits(key, reader).items():
            if e["kind"] == "deleted":
                out.pop(nid, None)
            else:
                out[nid] = (json.loads(e["row"]), json.loads(e["box"]), e["mask"])
        return dict(sorted(out.items()))

    def _fascia_edit(self, key: str, reader: str | None) -> sqlite3.Row | None:
        sql = "SELECT * FROM fascia_edits WHERE study = ?"
        params: list[Any] = [key]
        if reader is not None:
            sql += " AND reader = ?"
            params.append(reader)
        rows = self._read(sql + " ORDER BY id DESC LIMIT 1", params)
        return rows[0] if rows else None

    def nodules(self, study: str, *, reader: str | None = None) -> list[dict]:
        """The study's nodules as SPEC rows with a reader's review.

        Parameters
        ----------
        study : str
            Study key.
        reader : str, optional
            Whose review and edits; None: the latest by anyone, per nodule.

        Returns
        -------
        list of dict
            By ``nodule_id``: every column of :data:`backmice.vocab.COLUMNS`, the
            :data:`backmice.vocab.DETAILS` the row has (``red_flag_criteria``),
            ``note`` (str or None) and ``notes`` (dict reader → note).
        """
        self._study_row(study)
        geometry = self._geometry(study, reader)
        reviews = self._reviews(study, reader)
        notes: dict[int, dict[str, str]] = {}
        for r in self._read(
            "SELECT nodule_id, reader, note FROM reviews WHERE study = ? AND note IS NOT NULL "
            "AND note != '' ORDER BY reader",
            (study,),
        ):
            notes.setdefault(r["nodule_id"], {})[r["reader"]] = r["note"]
        out = []
        edit = self._fascia_edit(study, reader)
        if edit is not None:  # a corrected fascia: its distances, not the automatic ones
            shape, affine = self._grid(study)
            signed = _codec.decode_map(edit["map"], shape)
            from backmice.measure.nodules import fascia_columns

            params = json.loads(self._study_row(study)["params"] or "{}")
            sacrum, rules = params.get("sacrum_top_z_mm"), _red_flag_rules(params)
            for row, box, bits in geometry.values():
                mask = _codec.decode_mask(tuple(box), bits, shape)
                row.update(
                    fascia_columns(
                        mask, signed, affine, row=row, sacrum_top_z_mm=sacrum, rules=rules
                    )
                )
        for nid, (row, _box, _bits) in sorted(geometry.items()):
            row = {
                **{c: row.get(c) for c in COLUMNS},
                **{k: row[k] for k in DETAILS if row.get(k) is not None},
            }
            row["study"] = study
            row["nodule_id"] = nid
            review = reviews.get(nid)
            if review is None:
                row.update(status=str(Status.CANDIDATE), subtype=None, reader=None, updated=None)
                row["note"] = None
            else:
                row.update(
                    status=review["status"],
                    subtype=review["subtype"],
                    reader=review["reader"],
                    updated=review["updated"],
                )
                row["note"] = review["note"] or None
            row["notes"] = notes.get(nid, {})
            out.append(row)
        return out

    def _reviews(self, study: str, reader: str | None) -> dict[int, sqlite3.Row]:
        if reader is not None:
            rows = self._read(
                "SELECT * FROM reviews WHERE study = ? AND reader = ?", (study, _reader(reader))
            )
        else:
            rows = self._read("SELECT * FROM reviews WHERE study = ? ORDER BY event", (study,))
        return {r["nodule_id"]: r for r in rows}  # the latest wins

    def labels(self, study: str, *, reader: str | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The nodule labels on the analysed stack's grid.

        Parameters
        ----------
        study : str
        reader : str, optional
            With this reader's mask edits; None: the latest edit by anyone.

        Returns
        -------
        labels : ndarray of uint32, shape (slice, row, col)
            The label is the ``nodule_id``; 0 elsewhere.
        affine : ndarray of float64, shape (4, 4)
            Index to LPS mm.
        """
        shape, affine = self._grid(study)
        out = np.zeros(shape, dtype=np.uint32)
        for nid, (_row, box, bits) in sorted(self._geometry(study, reader).items()):
            _codec.paint(out, tuple(box), bits, nid)
        return out, affine

    def mask(self, study: str, nodule_id: int, *, reader: str | None = None) -> np.ndarray:
        """One nodule's mask, bool ``(slice, row, col)`` on the study grid."""
        shape, _ = self._grid(study)
        geometry = self._geometry(study, reader)
        if nodule_id not in geometry:
            raise InputError(f"no nodule {nodule_id} in study {study!r}", path=self.path)
        _row, box, bits = geometry[nodule_id]
        return _codec.decode_mask(tuple(box), bits, shape)

    def fascia(self, study: str, *, reader: str | None = None) -> np.ndarray:
        """The signed distance to the fascia, float32 mm (+ superficial), ``(slice, row, col)``.

        The reader's latest correction if they made one; with ``reader=None`` the
        latest correction by anyone; otherwise the automatic map.
        """
        row = self._study_row(study)
        shape = tuple(json.loads(row["shape"]))
        edit = self._fascia_edit(study, reader)
        return _codec.decode_map(row["fascia"] if edit is None else edit["map"], shape)

    def readers(self) -> list[str]:
        """Every reader who has recorded anything, sorted."""
        return [
            r["reader"]
            for r in self._read(
                "SELECT DISTINCT reader FROM events WHERE reader IS NOT NULL "
                "AND action NOT IN ('add_study', 'reanalysis') ORDER BY reader"
            )
        ]

    def events(self, study: str | None = None, *, reader: str | None = None) -> list[Event]:
        """The event log, oldest first, optionally of one study and/or one reader."""
        sql, params = "SELECT * FROM events WHERE 1 = 1", []
        if study is not None:
            sql += " AND study = ?"
            params.append(study)
        if reader is not None:
            sql += " AND reader = ?"
            params.append(reader)
        return [_event(r) for r in self._read(sql + " ORDER BY id", params)]

    def progress(self) -> dict[str, dict[str, int]]:
        """Per reader: ``studies`` (in the project), ``started``, ``done``, ``nodules_reviewed``."""
        studies = self.studies()
        out: dict[str, dict[str, int]] = {}
        for reader in self.readers():
            states = [s.readers[reader] for s in studies if reader in s.readers]
            out[reader] = {
                "studies": len(studies),
                "started": len(states),
                "done": sum(s.done for s in states),
                "nodules_reviewed": sum(s.n_reviewed for s in states),
            }
        return out

    # --------------------------------------------------------------- recording

    def record(
        self,
        study: str,
        action: Action | str,
        *,
        reader: str,
        nodule_id: int | None = None,
        value: Any = None,
        mask: np.ndarray | None = None,
        row: dict | list[dict] | None = None,
    ) -> Event:
        """Record one reader action, in one transaction (see ``docs/store.md`` for each action).

        Parameters
        ----------
        study : str
        action : Action or str
        reader : str
            Who does it (non-empty).
        nodule_id : int, optional
            The nodule acted on.
        value : object, optional
            Subtype, note text, ids to merge, or the corrected fascia map.
        mask : ndarray, optional
            bool (edit_mask, add_nodule, merge) or int parts (split) on the study grid.
        row : dict or list of dict, optional
            The re-measured SPEC row(s) of a new mask.

        Returns
        -------
        Event
            The event written.

        Raises
        ------
        InputError
            Bad arguments (nothing is written or queued).
        StoreError
            The write failed (disk full, read-only, locked): the action is kept in
            :attr:`pending` and :meth:`flush` writes it later.
        """
        pending = self._prepare(study, action, reader, nodule_id, value, mask, row)
        self.pending.append(pending)
        return self.flush()[-1]

    def flush(self) -> list[Event]:
        """Write the pending actions, oldest first.

        Returns
        -------
        list of Event
            The events written (empty when nothing was pending).

        Raises
        ------
        StoreError
            Writing failed again; what was not written stays in :attr:`pending`.
        InputError
            A pending action is no longer valid (its nodule was deleted by another
            reader meanwhile); it is dropped from :attr:`pending` and the rest kept.
        """
        written: list[Event] = []
        while self.pending:
            act = self.pending[0]
            try:
                event = self._transaction(functools.partial(self._apply, act=act))
            except InputError:
                self.pending.pop(0)
                raise
            self.pending.pop(0)
            written.append(event)
        return written

    def save_pending(self, path: str | os.PathLike[str]) -> Path:
        """Write :attr:`pending` as JSON to ``path`` (atomically) and return the path."""
        from backmice._atomic import write_text

        doc = {"database": str(self.path), "pending": [p.to_json() for p in self.pending]}
        return write_text(path, json.dumps(doc) + "\n")

    def load_pending(self, path: str | os.PathLike[str]) -> int:
        """Queue the actions of a :meth:`save_pending` file after the current ones; how many."""
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            actions = [PendingAction.from_json(p) for p in doc["pending"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"not a saved pending-actions file: {exc}", path=path) from exc
        self.pending.extend(actions)
        return len(actions)

    def _prepare(
        self,
        study: str,
        action: Action | str,
        reader: str,
        nodule_id: int | None,
        value: Any,
        mask: np.ndarray | None,
        row: dict | list[dict] | None,
    ) -> PendingAction:
        try:
            action = Action(action)
        except ValueError:
            raise InputError(
                f"unknown action {action!r}; one of: {', '.join(a.value for a in Action)}"
            ) from None
        reader = _reader(reader)
        self._study_row(study)
        act = PendingAction(study=study, action=action, reader=reader, at=now_iso())
        if action in _REVIEW:
            act.nodule_id = self._check_nodule(study, reader, nodule_id)
            if action is Action.SET_SUBTYPE:
                act.value = None if value in (None, "") else str(_subtype(value))
            elif action is Action.SET_NOTE:
                if value is not None and not isinstance(value, str):
                    raise InputError(f"a note is text, not {type(value).__name__}")
                act.value = value or ""
            return act
        shape, affine = self._grid(study)
        if action is Action.EDIT_FASCIA:
            signed = np.asarray(value, dtype=np.float32) if value is not None else None
            if signed is None or signed.shape != shape:
                got = None if signed is None else signed.shape
                raise InputError(
                    f"edit_fascia needs value = a signed map of shape {shape}, not {got}"
                )
            act.fascia = _codec.encode_map(signed)
            act.value = _jsonable(row) if isinstance(row, dict) else None
            return act
        geometry = self._geometry(study, reader)
        signed = self.fascia(study, reader=reader)
        if action is Action.DELETE_NODULE:
            act.nodule_id = self._check_nodule(study, reader, nodule_id)
            return act
        if action is Action.ADD_NODULE:
            if nodule_id is not None:
                if isinstance(nodule_id, bool) or not isinstance(nodule_id, (int, np.integer)):
                    raise InputError(f"nodule_id must be an integer, not {nodule_id!r}")
                if int(nodule_id) < 1 or int(nodule_id) in geometry:
                    raise InputError(f"nodule_id {nodule_id} is taken (or not positive)")
                act.nodule_id = int(nodule_id)
            m = _bool_mask(mask, shape)
            act.masks = [_codec.mask_to_json(*_codec.encode_mask(m))]
            act.rows = [self._row_for(study, m, row, None, affine, signed)]
            return act
        act.nodule_id = self._check_nodule(study, reader, nodule_id)
        base = geometry[act.nodule_id][0]
        if action is Action.EDIT_MASK:
            m = _bool_mask(mask, shape)
            act.masks = [_codec.mask_to_json(*_codec.encode_mask(m))]
            act.rows = [self._row_for(study, m, row, base, affine, signed)]
            return act
        if action is Action.MERGE:
            others = [value] if isinstance(value, (int, np.integer)) else list(value or [])
            if not others:
                raise InputError("merge needs value = the ids merged into nodule_id")
            ids = [self._check_nodule(study, reader, i) for i in others]
            if act.nodule_id in ids or len(set(ids)) != len(ids):
                raise InputError(f"merge of nodule {act.nodule_id} with itself: {ids}")
            act.value = ids
            if mask is None:
                m = np.zeros(shape, dtype=bool)
                for i in [act.nodule_id, *ids]:
                    _codec.paint(m, tuple(geometry[i][1]), geometry[i][2], True)
            else:
                m = _bool_mask(mask, shape)
            act.masks = [_codec.mask_to_json(*_codec.encode_mask(m))]
            act.rows = [self._row_for(study, m, row, base, affine, signed)]
            return act
        if action is Action.SPLIT:
            parts = np.asarray(mask) if mask is not None else None
            if parts is None or parts.shape != shape or not np.issubdtype(parts.dtype, np.integer):
                raise InputError(f"split needs mask = integer parts 1..n of shape {shape}")
            n = int(parts.max())
            rows = list(row) if isinstance(row, (list, tuple)) else [None] * n
            if n < 2 or len(rows) != n:
                raise InputError(f"split needs at least 2 parts and one row per part (got {n})")
            for k in range(1, n + 1):
                m = parts == k
                if not m.any():
                    raise InputError(f"split part {k} is empty")
                act.masks.append(_codec.mask_to_json(*_codec.encode_mask(m)))
                act.rows.append(self._row_for(study, m, rows[k - 1], base, affine, signed))
            return act
        raise AssertionError(action)  # pragma: no cover

    def _row_for(
        self,
        study: str,
        mask: np.ndarray,
        row: Any,
        base: dict | None,
        affine: np.ndarray,
        signed: np.ndarray,
    ) -> dict:
        """The SPEC row of a new mask: the caller's, or re-measured from the mask and maps."""
        if row is not None:
            if not isinstance(row, dict):
                raise InputError(f"row must be a dict of SPEC columns, not {type(row).__name__}")
            keys = (*COLUMNS, *(k for k in DETAILS if row.get(k) is not None))
            return _jsonable({c: row.get(c) for c in keys})
        record = self._study_row(study)
        params = json.loads(record["params"] or "{}")
        site = self._site(study, params)
        if site is None and study not in self._warned_no_maps:
            self._warned_no_maps.add(study)
            log.warning(
                "study %s: the project has no maps of its analysis (added from a result "
                "folder, or stored before schema v3): an edited mask is re-measured from its "
                "shape and the fascia only (volume_mm3 counts voxels; skin depth, side and fat "
                "are kept from before). Add the analysis itself (Project.add_analysis) to "
                "re-measure every column.",
                study,
            )
        measured = _remeasure(
            mask,
            affine,
            signed,
            base,
            study=study,
            site=site,
            sacrum_top_z_mm=params.get("sacrum_top_z_mm"),
            calibrated=(record["units"] or "mm") == "mm",
            rules=_red_flag_rules(params),
        )
        if base is None:  # a new nodule: the series the study was read on, in its units
            stacks = self.stacks(study)
            measured["series_uid"] = stacks[0]["series_uid"] if stacks else None
            measured["units"] = self._study_row(study)["units"] or "mm"
        return _jsonable(measured)

    def _site(self, study: str, params: dict) -> SiteMaps | None:
        """The maps the study's analysis measured with (its fascia aside), or None.

        None for a study stored without them (imported from a result folder, or
        stored before schema v3): its rows are re-measured from the mask and the
        fascia only (:func:`_remeasure`).
        """
        from backmice.measure.nodules import SiteMaps

        shape, _ = self._grid(study)
        maps = {
            r["name"]: _codec.decode_array(r["dtype"], r["data"], shape)
            for r in self._read("SELECT name, dtype, data FROM site_maps WHERE study = ?", (study,))
        }
        if not {"skin_depth_mm", "image", "fat"} <= set(maps):
            return None
        return SiteMaps(
            signed_fascia_mm=np.zeros(shape, dtype=np.float32),  # the caller's fascia
            skin_depth_mm=maps["skin_depth_mm"],
            image=maps["image"],
            subcutaneous=None,
            fat=maps["fat"],
            midline_x_mm=params.get("midline_x_mm"),
            fat_fraction=maps.get("fat_fraction"),
            sacrum_top_z_mm=params.get("sacrum_top_z_mm"),
            fat_share=maps.get("fat_share"),
            sat_signal=_number(params.get("sat_signal")),
        )

    def _check_nodule(self, study: str, reader: str, nodule_id: object) -> int:
        """``nodule_id`` (anything a caller passed) as a visible nodule's id, else InputError."""
        if nodule_id is None:
            raise InputError("this action needs a nodule_id")
        if isinstance(nodule_id, bool) or not isinstance(nodule_id, (int, np.integer)):
            raise InputError(f"nodule_id must be an integer, not {nodule_id!r}")
        if int(nodule_id) not in self._visible_ids(study, reader):
            raise InputError(f"no nodule {nodule_id} in study {study!r} (reader {reader})")
        return int(nodule_id)

    def _apply(self, cur: sqlite3.Connection, act: PendingAction) -> Event:
        if act.action in _REVIEW:
            return self._apply_review(cur, act)
        if act.action is Action.EDIT_FASCIA:
            return self._apply_fascia(cur, act)
        return self._apply_geometry(cur, act)

    def _apply_fascia(self, cur: sqlite3.Connection, act: PendingAction) -> Event:
        old = self._fascia_edit(act.study, act.reader)
        before = (
            {"fascia": "automatic"}
            if old is None
            else {"fascia_edit": old["id"], "digest": _codec.digest(old["map"])}
        )
        after = {"digest": _codec.digest(act.fascia or b""), "correction": act.value}
        event = self._log(
            cur,
            study=act.study,
            reader=act.reader,
            at=act.at,
            action=str(act.action),
            nodule_id=None,
            before=before,
            after=after,
        )
        # fascia_edits.event links the stored map to this event (the log stays small).
        cur.execute(
            "INSERT INTO fascia_edits (study, reader, map, correction, updated, event) "
            "VALUES (?,?,?,?,?,?)",
            (act.study, act.reader, act.fascia, _dumps(act.value), act.at, event.id),
        )
        return event

    @staticmethod
    def _id_names_another_nodule(
        cur: sqlite3.Connection, study: str, nodule_id: int, mask: dict
    ) -> bool:
        """Whether ``nodule_id`` already names a different nodule in some reader's view.

        The same id is kept for the same nodule (the new mask overlaps it: a reader
        importing another's SEG, or adding a nodule back); a nodule elsewhere that
        another reader added under that id means the id must change.
        """
        rows = cur.execute(
            "SELECT box, mask FROM nodules WHERE study = ?1 AND nodule_id = ?2 "
            "UNION ALL SELECT box, mask FROM nodule_edits "
            "WHERE study = ?1 AND nodule_id = ?2 AND kind != 'deleted'",
            (study, int(nodule_id)),
        ).fetchall()
        if not rows:
            return False
        shape = tuple(
            json.loads(
                cur.execute("SELECT shape FROM studies WHERE key = ?", (study,)).fetchone()[0]
            )
        )
        new = _codec.decode_mask(*_codec.mask_from_json(mask), shape)
        return not any(
            (new & _codec.decode_mask(json.loads(box), bits, shape)).any()
            for box, bits in rows
            if box is not None and bits is not None
        )

    def _apply_geometry(self, cur: sqlite3.Connection, act: PendingAction) -> Event:
        geometry = self._geometry(act.study, act.reader)
        auto = {
            r[0] for r in cur.execute("SELECT nodule_id FROM nodules WHERE study = ?", (act.study,))
        }
        own_added = {
            r[0]
            for r in cur.execute(
                "SELECT nodule_id FROM nodule_edits WHERE study = ? AND reader = ? "
                "AND kind = 'added'",
                (act.study, act.reader),
            )
        }

        def state(nid: int) -> dict | None:
            if nid not in geometry:
                return None
            row, box, bits = geometry[nid]
            return {"row": row, "mask": _codec.mask_to_json(tuple(box), bits)}

        def next_id() -> int:
            used = cur.execute(
                "SELECT max(m) FROM (SELECT max(nodule_id) AS m FROM nodules WHERE study = ?1 "
                "UNION ALL SELECT max(nodule_id) FROM nodule_edits WHERE study = ?1 "
                "UNION ALL SELECT max(nodule_id) FROM reviews WHERE study = ?1)",
                (act.study,),
            ).fetchone()[0]
            return int(used or 0) + 1

        writes: list[tuple[int, str, dict | None, dict | None]] = []  # id, kind, row, mask
        if act.action is Action.ADD_NODULE:
            nid = act.nodule_id if act.nodule_id is not None else next_id()
            if nid in geometry:
                raise InputError(f"nodule_id {nid} is taken in study {act.study!r}")
            if act.nodule_id is not None and self._id_names_another_nodule(
                cur, act.study, nid, act.masks[0]
            ):
                # Another reader's nodule (or an automatic one this reader deleted) has
                # it: ids name one nodule for every reader, so take a new one.
                nid = next_id()
            writes.append((nid, "added", act.rows[0], act.masks[0]))
            touched = [nid]
        else:
            nid = int(act.nodule_id or 0)
            if nid not in geometry:
                raise InputError(f"no nodule {nid} in study {act.study!r} any more")
            kind = "added" if nid in own_added else "edit"
            if act.action is Action.DELETE_NODULE:
                writes.append((nid, "deleted", None, None))
                touched = [nid]
            elif act.action is Action.EDIT_MASK:
                writes.append((nid, kind, act.rows[0], act.masks[0]))
                touched = [nid]
            elif act.action is Action.MERGE:
                for other in act.value:
                    if other not in geometry:
                        raise InputError(f"no nodule {other} in study {act.study!r} any more")
                writes.append((nid, kind, act.rows[0], act.masks[0]))
                writes += [(int(o), "deleted", None, None) for o in act.value]
                touched = [nid, *(int(o) for o in act.value)]
            else:  # split
                writes.append((nid, kind, act.rows[0], act.masks[0]))
                touched = [nid]
                first = next_id()
                for k, (part, part_mask) in enumerate(
                    zip(act.rows[1:], act.masks[1:], strict=True)
                ):
                    writes.append((first + k, "added", part, part_mask))
                    touched.append(first + k)
        before = {str(i): state(i) for i in touched}
        after: dict[str, Any] = {}
        for i, kind, written, m in writes:
            if written is not None:
                written = {**written, "nodule_id": i, "study": act.study}
            after[str(i)] = None if kind == "deleted" else {"row": written, "mask": m}
        summary: dict[str, Any] = {"nodules": after}
        if act.action in (Action.ADD_NODULE, Action.SPLIT):
            summary["nodule_ids"] = [w[0] for w in writes]
        if act.action is Action.ADD_NODULE:
            summary["nodule_id"] = writes[0][0]
        event = self._log(
            cur,
            study=act.study,
            reader=act.reader,
            at=act.at,
            action=str(act.action),
            nodule_id=nid,
            before={"nodules": before},
            after=summary,
        )
        for i, kind, _row, m in writes:
            if kind == "deleted" and i not in auto and i in own_added:
                # A nodule this reader added and now removes: nothing left of it.
                cur.execute(
                    "DELETE FROM nodule_edits WHERE study = ? AND nodule_id = ? AND reader = ?",
                    (act.study, i, act.reader),
                )
                continue
            row = (after.get(str(i)) or {}).get("row")
            box, bits = _codec.mask_from_json(m) if m is not None else (None, None)
            cur.execute(
                "INSERT OR REPLACE INTO nodule_edits (study, nodule_id, reader, kind, row, box, "
                "mask, updated, event) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    act.study,
                    i,
                    act.reader,
                    kind,
                    None if row is None else _dumps(row),
                    None if box is None else _dumps(box),
                    bits,
                    act.at,
                    event.id,
                ),
            )
        return event

    def _apply_review(self, cur: sqlite3.Connection, act: PendingAction) -> Event:
        if act.nodule_id not in self._visible_ids(act.study, act.reader):
            raise InputError(f"no nodule {act.nodule_id} in study {act.study!r} any more")
        old = cur.execute(
            "SELECT status, subtype, note FROM reviews WHERE study = ? AND nodule_id = ? "
            "AND reader = ?",
            (act.study, act.nodule_id, act.reader),
        ).fetchone()
        before = dict(zip(("status", "subtype", "note"), old, strict=True)) if old else None
        state = dict(before or {"status": str(Status.CANDIDATE), "subtype": None, "note": None})
        status = _REVIEW[act.action]
        if status is not None:
            state["status"] = str(status)
        elif act.action is Action.SET_SUBTYPE:
            state["subtype"] = act.value
        else:
            state["note"] = act.value
        event = self._log(
            cur,
            study=act.study,
            reader=act.reader,
            at=act.at,
            action=str(act.action),
            nodule_id=act.nodule_id,
            before=before,
            after=state,
        )
        cur.execute(
            "INSERT OR REPLACE INTO reviews (study, nodule_id, reader, status, subtype, note, "
            "updated, event) VALUES (?,?,?,?,?,?,?,?)",
            (
                act.study,
                act.nodule_id,
                act.reader,
                state["status"],
                state["subtype"],
                state["note"],
                act.at,
                event.id,
            ),
        )
        return event

    def _log(
        self,
        cur: sqlite3.Connection,
        *,
        study: str | None,
        reader: str | None,
        at: str,
        action: str,
        nodule_id: int | None,
        before: Any,
        after: Any,
    ) -> Event:
        before_j = None if before is None else _dumps(before)
        after_j = None if after is None else _dumps(after)
        c = cur.execute(
            "INSERT INTO events (study, reader, at, action, nodule_id, before, after) "
            "VALUES (?,?,?,?,?,?,?)",
            (study, reader, at, action, nodule_id, before_j, after_j),
        )
        return Event(
            id=int(c.lastrowid or 0),
            study=study,
            reader=reader,
            at=at,
            action=action,
            nodule_id=nodule_id,
            before=_loads(before_j),
            after=_loads(after_j),
        )


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (triggers keep their inner ``;``)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def _event(r: sqlite3.Row) -> Event:
    return Event(
        id=r["id"],
        study=r["study"],
        reader=r["reader"],
        at=r["at"],
        action=r["action"],
        nodule_id=r["nodule_id"],
        before=_loads(r["before"]),
        after=_loads(r["after"]),
    )


def _key(study: object) -> str:
    key = str(study).strip() if study is not None else ""
    if not key:
        raise InputError("a study needs a non-empty name")
    return key


def _reader(reader: object) -> str:
    if not isinstance(reader, str) or not reader.strip():
        raise InputError(f"a reader needs a non-empty name, not {reader!r}")
    return reader.strip()


def _subtype(value: object) -> Subtype:
    try:
        return Subtype(str(value))
    except ValueError:
        raise InputError(
            f"unknown subtype {value!r}; one of: {', '.join(s.value for s in Subtype)}"
        ) from None


def _affine_from_itk(image: Any) -> np.ndarray:
    """4x4 index ``(slice, row, col)`` → LPS affine of a SimpleITK image (x = col)."""
    spacing = np.asarray(image.GetSpacing(), dtype=float)  # col, row, slice
    direction = np.asarray(image.GetDirection(), dtype=float).reshape(3, 3)
    affine = np.eye(4)
    affine[:3, 2] = direction[:, 0] * spacing[0]
    affine[:3, 1] = direction[:, 1] * spacing[1]
    affine[:3, 0] = direction[:, 2] * spacing[2]
    affine[:3, 3] = image.GetOrigin()
    return affine


def _study_uid(sources: list[str]) -> str | None:
    """StudyInstanceUID of the first source file that still exists, from its header."""
    import pydicom

    for src in sources[:3]:
        try:
            ds = pydicom.dcmread(src, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
        except Exception:  # a moved or unreadable source: the uid stays unknown
            continue
        uid = str(getattr(ds, "StudyInstanceUID", "") or "")
        if uid:
            return uid
    return None


def _bool_mask(mask: Any, shape: tuple[int, int, int]) -> np.ndarray:
    if mask is None:
        raise InputError("this action needs a mask")
    m = np.asarray(mask)
    if m.shape != tuple(shape):
        raise InputError(f"the mask has shape {m.shape}, the study grid is {tuple(shape)}")
    m = m.astype(bool, copy=False)
    if not m.any():
        raise InputError("the mask is empty (to remove a nodule, use delete_nodule)")
    return m


def _remeasure(
    mask: np.ndarray,
    affine: np.ndarray,
    signed: np.ndarray,
    base: dict | None,
    *,
    study: str,
    site: SiteMaps | None = None,
    sacrum_top_z_mm: float | None = None,
    calibrated: bool = True,
    rules: RedFlagRules | None = None,
) -> dict:
    """The row of a new mask, measured as the analysis measures; the review columns from ``base``.

    ``rules`` are the red-flag rules the analysis raised its flags by (default
    the published ones).

    With the study's maps (``site``) every column is measured again by
    :func:`backmice.measure.nodules.measure_nodule`, the analysis' own
    measurement, over the fascia ``signed`` (the reader's correction, if any).
    Without them (a study imported from a result folder) only the shape and
    the fascia columns are (``volume_mm3`` then counts voxels, without the
    analysis' partial-volume and end-slab corrections) and the rest is ``base``'s.
    """
    from dataclasses import replace

    from backmice.measure.nodules import fascia_columns, measure_nodule
    from backmice.measure.red_flags import apply_checks, size_check
    from backmice.measure.shape import measure_labels

    row = {c: (base or {}).get(c) for c in COLUMNS}
    row.update({k: base[k] for k in DETAILS if base and base.get(k) is not None})
    if base is None:
        row.update(status=str(Status.CANDIDATE), red_flags="", units="mm")
    if site is not None:
        measured = measure_nodule(
            mask,
            affine,
            replace(site, signed_fascia_mm=signed),
            study=study,
            series_uid=row.get("series_uid") or "",
            calibrated=calibrated,
            rules=rules,
        )
        if measured is None:  # pragma: no cover - _bool_mask refuses an empty mask
            raise InputError("the mask is empty")
        review = ("nodule_id", "series_uid", "subtype", "status", "reader", "updated")
        measured.update({k: row[k] for k in review if base is not None})
        return measured
    (shape,) = measure_labels(mask.view(np.uint8), affine, ids=[1])
    measured_shape = shape.as_row()
    del measured_shape["nodule_id"]
    row.update(study=study, **measured_shape)
    calibrated = (row.get("units") or "mm") == "mm"
    check = size_check(shape.max_diameter_mm, rules=rules, calibrated=calibrated)
    row.update(apply_checks(row, [check]))
    row.update(
        fascia_columns(mask, signed, affine, row=row, sacrum_top_z_mm=sacrum_top_z_mm, rules=rules)
    )
    return row


def _red_flag_rules(params: dict) -> RedFlagRules | None:
    """The red-flag rules a study's analysis used (stored in its params); None: the defaults."""
    stored = params.get("red_flag_rules")
    if not isinstance(stored, dict):
        return None
    from backmice.measure.red_flags import RedFlagRules

    known = {f.name for f in dataclasses.fields(RedFlagRules)}
    return RedFlagRules(**{k: v for k, v in stored.items() if k in known})


def _site_of(analysis: Analysis) -> SiteMaps | None:
    """The maps an analysis measured with, its reference signal computed; None without them.

    An object that only looks like an :class:`~backmice.analysis.Analysis`
    (labels, rows and fascia, as the store's tests build) has none.
    """
    from dataclasses import replace

    from backmice.analysis import site_maps
    from backmice.measure.nodules import sat_signal_of

    try:
        site = site_maps(analysis)
    except AttributeError:
        return None
    return replace(site, sat_signal=sat_signal_of(site))


def _number(value: Any) -> float | None:
    """A stored number (JSON has no NaN: it comes back as None)."""
    return None if value is None else float(value)
