"""A reader's review of one study, saved to the annotation store as it happens.

A :class:`Session` holds an analysis, the reader's name, an
:class:`~backmice.edit.Editor` on the analysis' labels and fascia, and the
current rows (SPEC columns plus the reader's ``note``). Each action (accept,
reject, tag, note, a mask edit, a fascia correction) changes the rows and is
written to the :class:`backmice.store.Project` at once (autosave): one
``Project.record`` call per change, each its own transaction.

If a write fails (a full disk, a read-only folder), the review in memory is
kept, :attr:`Session.save_error` says why, ``on_save_error`` callbacks are told,
and the store keeps the action pending; the next action, or :meth:`Session.save`,
writes it.

:meth:`Session.open` restores a previous review exactly: statuses, subtypes,
notes, edited masks and the corrected fascia. Nothing here imports napari or Qt.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backmice.edit import Change, Editor
from backmice.errors import InputError, StoreError
from backmice.vocab import COLUMNS, Status, Subtype

if TYPE_CHECKING:
    from backmice.analysis import Analysis

__all__ = ["REVIEW_COLUMNS", "Session"]

log = logging.getLogger(__name__)

#: The columns of a review row: the SPEC columns and the reader's free-text note.
REVIEW_COLUMNS: tuple[str, ...] = (*COLUMNS, "note")

#: Columns that belong to the review, not to the measurement.
_REVIEW_KEYS = ("status", "subtype", "reader", "updated", "note")


def _action(name: str) -> Any:
    from backmice.store import Action

    return Action(name)


def _last_changes(project: Any, study: str, reader: str) -> dict[int, str]:
    """When ``reader`` last changed each nodule (review or mask edit), from the event log."""
    out: dict[int, str] = {}
    for event in project.events(study, reader=reader):
        action = str(event.action)
        if action in ("delete_nodule", "edit_fascia"):
            continue
        after = event.after if isinstance(event.after, dict) else {}
        ids = {event.nodule_id, after.get("nodule_id"), *(after.get("nodule_ids") or ())}
        for i in ids:
            if i is not None:
                out[int(i)] = event.at
    return out


class Session:
    """One reader's store-backed review of one analysed study.

    Build it with :meth:`open`.

    Attributes
    ----------
    project : backmice.store.Project
        Where every action is recorded.
    study : str
        The study's key in the project.
    reader : str
        Who is reviewing.
    analysis : backmice.analysis.Analysis
    editor : backmice.edit.Editor
        The labels, fascia and measurements being edited.
    save_error : str or None
        Why the last write failed (None once everything is written).
    on_save_error : list of callable
        Each is called with the message when a write fails.
    """

    def __init__(
        self,
        project: Any,
        study: str,
        analysis: Analysis,
        editor: Editor,
        *,
        reader: str,
        notes: dict[int, str] | None = None,
    ) -> None:
        if not reader or not reader.strip():
            raise InputError("a review needs the reader's name")
        self.project = project
        self.study = study
        self.reader = reader.strip()
        self.analysis = analysis
        self.editor = editor
        self.notes: dict[int, str] = dict(notes or {})
        self.save_error: str | None = None
        self.on_save_error: list[Callable[[str], None]] = []
        self.current: int | None = self.editor.ids[0] if self.editor.ids else None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        project: Any,
        analysis_or_study: Analysis | str | os.PathLike[str],
        *,
        reader: str,
        reanalyse: bool = False,
    ) -> Session:
        """Open (or resume) ``reader``'s review of a study.

        Parameters
        ----------
        project : backmice.store.Project or path-like
            An open project, or its folder (opened, created if missing).
        analysis_or_study : Analysis or str or path-like
            An analysis (added to the project if the study is not there yet),
            or a study folder/file to analyse.
        reader : str
            The reader's name.
        reanalyse : bool
            Store the given analysis even if the study is already in the
            project (its candidates are replaced; reviews of surviving ids stay).

        Returns
        -------
        Session
            With the reader's statuses, subtypes, notes, mask edits and fascia
            correction restored from the project.
        """
        from backmice.analysis import Analysis, analyze
        from backmice.store import Project

        if not isinstance(project, Project):
            project = Project.open(project)
        if isinstance(analysis_or_study, Analysis):
            analysis = analysis_or_study
        else:
            path = Path(analysis_or_study)
            if not path.exists():
                raise InputError("no such study", path=path)
            analysis = analyze(path)
        known = {s.key for s in project.studies()}
        key = analysis.study
        if reanalyse or key not in known:
            key = project.add_analysis(analysis, reader=reader)
        return cls._restore(project, key, analysis, reader=reader)

    @classmethod
    def _restore(cls, project: Any, key: str, analysis: Analysis, *, reader: str) -> Session:
        labels, _affine = project.labels(key, reader=reader)
        stored = {int(r["nodule_id"]): r for r in project.nodules(key, reader=reader)}
        signed = np.asarray(project.fascia(key, reader=reader), dtype=np.float32)
        editor = Editor.from_analysis(analysis)
        edited_fascia = not np.array_equal(signed < 0, analysis.fascia.deep)
        # The signed map is stored at half precision; the deep side it bounds is
        # exact, and the map is recomputed from it as the editor computed it.
        editor.deep = signed < 0 if edited_fascia else analysis.fascia.deep.copy()
        if edited_fascia:
            editor.site.signed_fascia_mm = editor.signed_fascia()
        editor.set_labels(labels)
        editor.remeasure()
        notes = {}
        changed = _last_changes(project, key, reader)
        for nodule_id, row in editor.rows.items():
            old = stored.get(nodule_id)
            if old is None:
                continue
            for key_ in ("status", "subtype", "reader", "updated"):
                row[key_] = old.get(key_)
            if nodule_id in changed:  # a mask edit is a change too (SPEC: who last changed it)
                row["reader"], row["updated"] = reader, changed[nodule_id]
            if old.get("note"):
                notes[nodule_id] = old["note"]
        # Ids are never reused: the next new one is above every id the store knows.
        editor._next_id = max([editor._next_id, *(i + 1 for i in stored)])
        log.info("review of %s by %s: %d nodule(s)", key, reader, len(editor.rows))
        return cls(project, key, analysis, editor, reader=reader, notes=notes)

    # ------------------------------------------------------------------ reading

    @property
    def ids(self) -> list[int]:
        """Nodule ids, ascending."""
        return self.editor.ids

    def row(self, nodule_id: int) -> dict:
        """The review row of one nodule (:data:`REVIEW_COLUMNS`)."""
        row = self.editor.rows[int(nodule_id)]
        out = {key: row.get(key) for key in COLUMNS}
        out["note"] = self.notes.get(int(nodule_id), "")
        return out

    @property
    def rows(self) -> list[dict]:
        """Every review row, by ``nodule_id``."""
        return [self.row(i) for i in self.ids]

    def next(self, after: int | None = None, *, unreviewed: bool = True) -> int | None:
        """The next nodule after ``after`` (default the current one), wrapping around.

        Parameters
        ----------
        after : int, optional
        unreviewed : bool
            Skip nodules already accepted or rejected (when any is left).

        Returns
        -------
        int or None
            Also made :attr:`current`; None when there is no nodule.
        """
        ids = self.ids
        if not ids:
            self.current = None
            return None
        start = self.current if after is None else after
        pos = 0 if start is None else int(np.searchsorted(ids, start, side="right"))
        order = ids[pos:] + ids[:pos]
        if unreviewed:
            todo = [i for i in order if self.editor.rows[i]["status"] == Status.CANDIDATE]
            order = todo or order
        self.current = order[0]
        return self.current

    # ------------------------------------------------------------------ writing

    def _record(self, action: str, **kwargs: Any) -> Any:
        """Write one action; on failure keep going in memory and say so."""
        try:
            # The store queues this behind anything still pending and writes in order.
            event = self.project.record(self.study, _action(action), reader=self.reader, **kwargs)
        except StoreError as exc:
            self._failed(str(exc))
            return None
        except InputError as exc:
            # The project refused the action (it disagrees with what it holds): the
            # change stays on screen but is not saved, and the reader is told so.
            self._failed(f"the project refused {action}: {exc}")
            return None
        self.save_error = None
        return event

    def _failed(self, message: str) -> None:
        self.save_error = message
        log.warning("not saved yet (kept in memory, retried on the next change): %s", message)
        for callback in list(self.on_save_error):
            callback(message)

    def save(self) -> bool:
        """Write every pending action now.

        Returns
        -------
        bool
            True when nothing is left unwritten.
        """
        try:
            self.project.flush()
        except StoreError as exc:
            self._failed(str(exc))
            return False
        self.save_error = None
        return True

    @property
    def unsaved(self) -> int:
        """Number of actions waiting to be written."""
        return len(getattr(self.project, "pending", ()) or ())

    def _stamp(self, nodule_id: int, event: Any) -> None:
        row = self.editor.rows[nodule_id]
        row["reader"] = self.reader
        at = getattr(event, "at", None)
        if at is None:
            from datetime import UTC, datetime

            at = datetime.now(UTC).isoformat(timespec="seconds")
        row["updated"] = at

    def _nodule(self, nodule_id: int | None) -> int:
        if nodule_id is None:
            raise InputError(f"no nodule to review in study {self.study}")
        nodule_id = int(nodule_id)
        if nodule_id not in self.editor.rows:
            raise InputError(f"no nodule {nodule_id} in study {self.study}")
        return nodule_id

    # ------------------------------------------------------------------ review actions

    def accept(self, nodule_id: int | None = None) -> None:
        """Accept a nodule (default the current one)."""
        self._status(nodule_id, Status.ACCEPTED, "accept")

    def reject(self, nodule_id: int | None = None) -> None:
        """Reject a nodule (default the current one)."""
        self._status(nodule_id, Status.REJECTED, "reject")

    def reset(self, nodule_id: int | None = None) -> None:
        """Back to ``candidate`` (the subtype and note stay)."""
        self._status(nodule_id, Status.CANDIDATE, "reset")

    def _status(self, nodule_id: int | None, status: Status, action: str) -> None:
        nodule_id = self._nodule(self.current if nodule_id is None else nodule_id)
        self.editor.rows[nodule_id]["status"] = str(status)
        self.current = nodule_id
        self._stamp(nodule_id, self._record(action, nodule_id=nodule_id))

    def set_subtype(self, nodule_id: int, subtype: Subtype | str | None) -> None:
        """Tag a nodule with a subtype of the SPEC vocabulary (None clears the tag).

        Raises
        ------
        InputError
            Not a :class:`~backmice.vocab.Subtype`.
        """
        nodule_id = self._nodule(nodule_id)
        if subtype is not None:
            try:
                subtype = Subtype(subtype)
            except ValueError:
                raise InputError(f"{subtype!r} is not a subtype") from None
        self.editor.rows[nodule_id]["subtype"] = None if subtype is None else str(subtype)
        self._stamp(nodule_id, self._record("set_subtype", nodule_id=nodule_id, value=subtype))

    def note(self, nodule_id: int, text: str) -> None:
        """Set the reader's free-text note of a nodule (empty clears it)."""
        nodule_id = self._nodule(nodule_id)
        text = str(text or "")
        if text:
            self.notes[nodule_id] = text
        else:
            self.notes.pop(nodule_id, None)
        self._stamp(nodule_id, self._record("set_note", nodule_id=nodule_id, value=text))

    # ------------------------------------------------------------------ mask edits

    def _record_change(self, change: Change) -> Change:
        """Write each nodule an edit touched: edited masks, added and removed nodules."""
        for i in change.removed:
            self.notes.pop(i, None)
            self._record("delete_nodule", nodule_id=i)
        for i in change.measured:
            row = self.editor.rows[i]
            if i in change.added:
                event = self._record("add_nodule", nodule_id=i, mask=self.editor.mask(i), row=row)
                stored = (getattr(event, "after", None) or {}).get("nodule_id")
                if stored is not None and int(stored) != i:
                    # Another reader has a nodule with this id: the store numbered it.
                    change = self._renumber(i, int(stored), change)
                    i = int(stored)
            else:
                event = self._record("edit_mask", nodule_id=i, mask=self.editor.mask(i), row=row)
            self._stamp(i, event)
        return change

    def set_labels(self, labels: np.ndarray, *, region: tuple[slice, ...] | None = None) -> Change:
        """A paint or erase stroke: new labels (see :meth:`backmice.edit.Editor.set_labels`)."""
        return self._record_change(self.editor.set_labels(labels, region=region))

    def paint(self, where: np.ndarray, nodule_id: int) -> Change:
        """Paint voxels into a nodule (0 erases); see :meth:`backmice.edit.Editor.paint`."""
        return self._record_change(self.editor.paint(where, nodule_id))

    def grow(self, seed: Sequence[int], **options: Any) -> Change:
        """Add a missed nodule grown from a seed voxel (:meth:`backmice.edit.Editor.grow`)."""
        return self._record_change(self.editor.grow(seed, **options))

    def merge(self, keep: int, other: int) -> Change:
        """Merge nodule ``other`` into ``keep``; one ``merge`` action."""
        keep, other = self._nodule(keep), self._nodule(other)
        change = self.editor.merge(keep, other)
        self.notes.pop(other, None)
        event = self._record(
            "merge",
            nodule_id=keep,
            value=[other],
            mask=self.editor.mask(keep),
            row=self.editor.rows[keep],
        )
        self._stamp(keep, event)
        return change

    def split(
        self, nodule_id: int, *, line: tuple[Sequence[float], Sequence[float]] | None = None
    ) -> Change:
        """Split a nodule in two (:meth:`backmice.edit.Editor.split`); one ``split`` action."""
        nodule_id = self._nodule(nodule_id)
        change = self.editor.split(nodule_id, line=line)
        (new_id,) = change.added
        parts = np.zeros(self.editor.labels.shape, dtype=np.uint8)
        parts[self.editor.mask(nodule_id)] = 1
        parts[self.editor.mask(new_id)] = 2
        rows = [self.editor.rows[nodule_id], self.editor.rows[new_id]]
        event = self._record("split", nodule_id=nodule_id, mask=parts, row=rows)
        stored = (getattr(event, "after", None) or {}).get("nodule_ids")
        if stored and len(stored) == 2 and int(stored[1]) != new_id:
            # The store numbered the new part: follow it.
            change = self._renumber(new_id, int(stored[1]), change)
            new_id = int(stored[1])
        for i in (nodule_id, new_id):
            self._stamp(i, event)
        return change

    def _renumber(self, old: int, new: int, change: Change) -> Change:
        ed = self.editor
        box = ed.bbox(old)
        crop = ed.labels[box]
        crop[crop == old] = new
        ed._boxes[new] = ed._boxes.pop(old)
        row = ed.rows.pop(old)
        row["nodule_id"] = new
        ed.rows[new] = row
        ed._next_id = max(ed._next_id, new + 1)
        swap = {old: new}
        return Change(
            measured=tuple(swap.get(i, i) for i in change.measured),
            removed=change.removed,
            added=tuple(swap.get(i, i) for i in change.added),
        )

    def delete(self, nodule_id: int) -> Change:
        """Remove a nodule from this reader's view (erase all of it)."""
        nodule_id = self._nodule(nodule_id)
        return self.paint(self.editor.mask(nodule_id), 0)

    # ------------------------------------------------------------------ fascia

    def set_fascia(self, deep: np.ndarray, *, region: tuple[slice, ...] | None = None) -> Change:
        """Correct the fascia from an edited deep side; every nodule re-measured.

        One ``edit_fascia`` action holds the new signed map (mm, + superficial);
        the nodules' fascia columns follow from it (re-measured on reopening).
        """
        change = self.editor.set_fascia(deep, region=region)
        if change.empty:
            return change
        self._record("edit_fascia", value=self.editor.site.signed_fascia_mm)
        return change

    # ------------------------------------------------------------------ export

    def export_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the current rows as CSV (SPEC columns, :func:`backmice.report.write_csv`)."""
        from backmice.report import write_csv

        return write_csv(path, self.table())

    def export_dicom(self, out: str | os.PathLike[str], *, sr: bool = True) -> list[Path]:
        """Write this reader's view of the study as a DICOM SEG (and a Comprehensive 3D SR).

        Uses :mod:`backmice.export` on what the project holds (so only saved
        changes are exported: call :meth:`save` first if :attr:`unsaved`).

        Parameters
        ----------
        out : path-like
            Folder; ``seg.dcm`` and ``sr.dcm`` are written into it.
        sr : bool
            Also write the SR.

        Returns
        -------
        list of Path

        Raises
        ------
        InputError
            Unsaved changes, no nodules, or the source DICOM files are gone.
        """
        from backmice.export import build_seg, build_sr, from_project
        from backmice.export.pipeline import save_dataset

        if self.unsaved:
            raise InputError(f"{self.unsaved} change(s) not saved yet; save before exporting")
        matches = [a for a in from_project(self.project.path, reader=self.reader)]
        ann = next((a for a in matches if a.study == self.study), None)
        if ann is None or not ann.rows:
            raise InputError(f"no nodules to export in study {self.study}")
        out = Path(out)
        seg = build_seg(ann)
        written = [save_dataset(out / "seg.dcm", seg)]
        if sr:
            written.append(save_dataset(out / "sr.dcm", build_sr(ann, seg, reader=self.reader)))
        return written

    def table(self) -> list[dict]:
        """The rows with SPEC columns only."""
        return [{k: r.get(k) for k in COLUMNS} for r in self.rows]

    def changed_rows(self, ids: Iterable[int]) -> list[dict]:
        """Rows of the given ids still present."""
        return [self.row(i) for i in ids if i in self.editor.rows]
