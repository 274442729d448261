"""The Review widget: the nodules as a sortable table, accept / reject / next, tags, notes.

Each viewer has one review :class:`backmice.review.Session` (``state.session``)
on the latest analysis, opened in an annotation project (``backmice.db``) for a
reader. The reader's name is asked once and remembered in the settings
(``QSettings("backmice", "backmice")``, key ``reader``), as is the last project
folder (key ``project``; default: :func:`default_project_folder`, in the user's
data folder, never beside the DICOM, which may be read-only or shared). Every
action is written to the project at once (autosave); when a write fails the
review stays in memory, the widget says so in red, and the Save button (or the
next action) writes what is pending.

The table leads with what a reader decides on (:data:`TABLE_COLUMNS`: id,
relation, size, depth, status, subtype), then every other SPEC column, and
shows several rows at once.

Keys: **A** accept, **R** reject, **N** next unreviewed nodule, **T** tag with
the subtype shown. Clicking a row moves the viewer to the nodule (its
centroid's slice, centred and zoomed to it).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import napari
import numpy as np
from qtpy.QtCore import QSettings, Qt
from qtpy.QtGui import QColor, QKeySequence
from qtpy.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QShortcut,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backmice.review import REVIEW_COLUMNS, Session
from backmice.vocab import Status, Subtype

from ._state import LAYER_FASCIA, LAYER_NODULES, camera, state_for

__all__ = [
    "TABLE_COLUMNS",
    "TABLE_HEADERS",
    "ReviewWidget",
    "default_project_folder",
    "go_to_nodule",
    "open_session",
    "settings",
    "sync_layers",
]

log = logging.getLogger(__name__)

#: The columns a reader decides on, first: id, relation, size, depth, status, subtype.
_LEADING = (
    "nodule_id",
    "relation",
    "max_diameter_mm",
    "skin_depth_mm",
    "status",
    "subtype",
)
#: The table's columns: the leading ones, then the rest of the review row in SPEC order.
TABLE_COLUMNS: tuple[str, ...] = (*_LEADING, *(c for c in REVIEW_COLUMNS if c not in _LEADING))
#: Header text of each column (short names for the leading ones, else the SPEC column).
TABLE_HEADERS: tuple[str, ...] = tuple(
    {"nodule_id": "id", "max_diameter_mm": "size mm", "skin_depth_mm": "depth mm"}.get(c, c)
    for c in TABLE_COLUMNS
)
#: Rows the table shows at least, before it scrolls.
_MIN_ROWS = 6

#: Text shown after the rule-based suggestion until the reader confirms a tag.
SUGGESTED = " (suggested)"

#: Row colours by status.
_STATUS_COLOURS = {
    str(Status.ACCEPTED): QColor(60, 150, 60, 90),
    str(Status.REJECTED): QColor(170, 60, 60, 90),
}


def settings() -> QSettings:
    """The plugin's settings (reader name, last project folder)."""
    return QSettings("backmice", "backmice")


def _reader_name(parent: QWidget | None, *, ask: bool = True) -> str | None:
    """The remembered reader name, asked once (a dialog) when there is none."""
    stored = settings().value("reader", "", type=str)
    if stored or not ask:
        return stored or None
    name, ok = QInputDialog.getText(parent, "backmice", "Reader name (saved with every tag):")
    name = name.strip() if ok else ""
    if name:
        settings().setValue("reader", name)
    return name or None


def default_project_folder() -> Path:
    """The annotation project used until the reader picks one: in the user's data folder.

    ``platformdirs.user_data_path("backmice") / "project"`` (on Linux
    ``$XDG_DATA_HOME/backmice/project``, by default ``~/.local/share/backmice/project``):
    writable, private to the user, and not beside the DICOM (which may be on a
    read-only or shared drive).
    """
    import platformdirs

    return platformdirs.user_data_path("backmice", appauthor=False) / "project"


def _project_folder() -> Path:
    stored = settings().value("project", "", type=str)
    return Path(stored) if stored else default_project_folder()


def open_session(viewer: Any, *, parent: QWidget | None = None, ask: bool = True) -> Session | None:
    """The viewer's review session, opened on its analysis if there is none yet.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    parent : QWidget, optional
        Parent of the dialog asking the reader's name.
    ask : bool
        Ask the reader's name when none is remembered.

    Returns
    -------
    Session or None
        None without an analysis or a reader.
    """
    state = state_for(viewer)
    session = state.session
    if isinstance(session, Session) and session.analysis is state.analysis:
        return session
    if state.analysis is None:
        return None
    reader = _reader_name(parent, ask=ask)
    folder = _project_folder()
    if reader is None:
        return None
    if isinstance(session, Session):  # a new analysis: finish the previous review's project
        _close(session)
    state.session = Session.open(folder, state.analysis, reader=reader)
    sync_layers(viewer, state.session)
    return state.session


def _axes(layer: Any) -> tuple[int, int, int]:
    """Which volume axis each of the layer's axes is ((0, 1, 2) unless shown transposed)."""
    return tuple(int(a) for a in layer.metadata.get("axes", (0, 1, 2)))


def sync_layers(viewer: Any, session: Session, *, fascia: bool = True) -> None:
    """Make the nodules (and fascia) layers show the session's labels and deep side.

    A reopened review may hold mask and fascia edits the analysis' own layers
    do not; the nodules layer's ``features`` table gets the current rows.
    """
    layers = viewer.layers
    editor = session.editor
    if LAYER_NODULES in layers:
        layer = layers[LAYER_NODULES]
        # A sagittal or coronal stack is shown through a transposed view (metadata axes).
        shown = np.transpose(editor.labels, _axes(layer))
        if layer.data.shape == shown.shape and not np.array_equal(layer.data, shown):
            layer.data[...] = shown
            layer.refresh()
        # What the layer's writers (NIfTI, DICOM SEG) export: the reviewed rows.
        layer.metadata["nodules"] = session.rows
        try:
            import pandas as pd

            layer.features = pd.DataFrame(
                [{"index": 0}] + [{"index": r["nodule_id"], **r} for r in session.rows]
            )
        except Exception as exc:  # the features table is a convenience only
            log.debug("features not updated: %s", exc)
    if fascia and LAYER_FASCIA in layers:
        layer = layers[LAYER_FASCIA]
        deep = layer.data != 0
        shown = np.transpose(editor.deep, _axes(layer))
        if deep.shape == shown.shape and not np.array_equal(deep, shown):
            layer.data[...] = shown.astype(layer.data.dtype)
            layer.refresh()


def _close(session: Session) -> None:
    """Close a session's project, unless changes are still waiting to be written."""
    if session.unsaved and not session.save():
        log.warning("keeping %s open: %d change(s) not written yet", session.study, session.unsaved)
        return
    try:
        session.project.close()
    except Exception as exc:  # already closed, or pending again: nothing more to do here
        log.debug("closing %s: %s", session.project.path, exc)


def go_to_nodule(viewer: Any, row: dict, *, zoom: bool = True) -> None:
    """Move the viewer to a nodule: its centroid's slice, centred, zoomed to it.

    World positions go through the nodules layer (``data_to_world``), so they
    agree with how the layers were placed from the volume's affine.

    Parameters
    ----------
    viewer : napari.viewer.Viewer
    row : dict
        The nodule's row (``centroid_*_mm`` in LPS, ``max_diameter_mm``).
    zoom : bool
        Zoom so the nodule fills about a third of the canvas.
    """
    if LAYER_NODULES not in viewer.layers:
        return
    layer = viewer.layers[LAYER_NODULES]
    affine = layer.metadata.get("backmice_affine")
    if affine is None:
        return
    lps = np.array([row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"], 1.0])
    index = (np.linalg.inv(np.asarray(affine, dtype=float)) @ lps)[:3]
    index[0] = np.round(index[0])  # on a slice
    world = np.asarray(layer.data_to_world(index), dtype=float)
    for axis, value in enumerate(world[-3:]):
        viewer.dims.set_point(viewer.dims.ndim - 3 + axis, float(value))
    camera(viewer).center = tuple(float(v) for v in world[-3:])
    size = row.get("max_diameter_mm")
    if zoom and size and math.isfinite(size) and size > 0:
        canvas = getattr(viewer, "_canvas_size", None) or (600, 600)
        camera(viewer).zoom = float(min(canvas)) / (3.0 * float(size))


class _Item(QTableWidgetItem):
    """A cell that sorts by its value (numbers as numbers, empty last)."""

    def __init__(self, value: Any) -> None:
        if isinstance(value, float):
            text = "" if math.isnan(value) else f"{value:.1f}"
        else:
            text = "" if value is None else str(value)
        super().__init__(text)
        self.value = value
        self.setFlags(self.flags() & ~Qt.ItemIsEditable)

    def _key(self) -> tuple:
        v = self.value
        if isinstance(v, (int, float)) and not (isinstance(v, float) and math.isnan(v)):
            return (0, float(v), "")
        return (1 if v not in (None, "") else 2, 0.0, str(v or ""))

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, _Item):
            return self._key() < other._key()
        return super().__lt__(other)


class _Table(QTableWidget):
    """The nodule table: letter keys are review shortcuts, not a jump to matching text."""

    def __init__(self, rows: int, columns: int, keys: dict[int, Any]) -> None:
        super().__init__(rows, columns)
        self._keys = keys

    def keyboardSearch(self, search: str) -> None:
        return

    def keyPressEvent(self, event: Any) -> None:
        slot = self._keys.get(event.key())
        if slot is not None and not (event.modifiers() & ~Qt.KeypadModifier):
            slot()
            event.accept()
            return
        super().keyPressEvent(event)


class ReviewWidget(QWidget):
    """Review the nodules of the current analysis, saved to the project as you go.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.session: Session | None = None
        self._filling = False

        self.project_edit = QLineEdit()
        self.project_edit.setPlaceholderText(f"default: {default_project_folder()}")
        self.project_edit.setText(settings().value("project", "", type=str))
        self.project_edit.editingFinished.connect(self._on_project_edited)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_project)
        self.reader_label = QLabel()
        change_reader = QPushButton("Reader…")
        change_reader.clicked.connect(self._change_reader)

        self.table = _Table(
            0,
            len(TABLE_COLUMNS),
            {Qt.Key_A: self.accept, Qt.Key_R: self.reject, Qt.Key_N: self.next, Qt.Key_T: self.tag},
        )
        self.table.setHorizontalHeaderLabels(list(TABLE_HEADERS))
        for c, key in enumerate(TABLE_COLUMNS):
            self.table.horizontalHeaderItem(c).setToolTip(key)
        # Several rows visible at once, however the dock is laid out.
        self.table.verticalHeader().setDefaultSectionSize(self.table.fontMetrics().height() + 8)
        self.table.setMinimumHeight(
            self.table.horizontalHeader().sizeHint().height()
            + _MIN_ROWS * self.table.verticalHeader().defaultSectionSize()
            + 2 * self.table.frameWidth()
        )
        self.table.setSortingEnabled(True)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.itemSelectionChanged.connect(self._on_row_selected)

        self.accept_button = QPushButton("Accept (A)")
        self.reject_button = QPushButton("Reject (R)")
        self.next_button = QPushButton("Next (N)")
        self.accept_button.clicked.connect(self.accept)
        self.reject_button.clicked.connect(self.reject)
        self.next_button.clicked.connect(self.next)

        self.subtype_combo = QComboBox()
        self.subtype_combo.addItem("(no subtype)", None)
        for subtype in Subtype:
            self.subtype_combo.addItem(str(subtype), str(subtype))
        self.subtype_combo.activated.connect(self._on_subtype_chosen)
        self.tag_button = QPushButton("Tag (T)")
        self.tag_button.setToolTip("Confirm the subtype shown (the suggestion, if not changed)")
        self.tag_button.clicked.connect(self.tag)
        self.suggestion_label = QLabel()
        self.note_edit = QLineEdit()
        self.note_edit.setPlaceholderText("note (saved on Enter or leaving the field)")
        self.note_edit.editingFinished.connect(self._on_note)

        self.save_button = QPushButton("Save")
        self.save_button.setToolTip("Write what could not be saved (it is retried on every change)")
        self.save_button.clicked.connect(self.save)
        self.csv_button = QPushButton("Export CSV…")
        self.csv_button.clicked.connect(self._export_csv_dialog)
        self.dicom_button = QPushButton("Export SEG + SR…")
        self.dicom_button.setToolTip("DICOM Segmentation and Structured Report of this review")
        self.dicom_button.clicked.connect(self._export_dicom_dialog)
        self.status_label = QLabel("Run an analysis to review its nodules.")
        self.status_label.setWordWrap(True)

        grid = QGridLayout()
        grid.addWidget(QLabel("Project"), 0, 0)
        grid.addWidget(self.project_edit, 0, 1)
        grid.addWidget(browse, 0, 2)
        grid.addWidget(self.reader_label, 1, 1)
        grid.addWidget(change_reader, 1, 2)
        buttons = QHBoxLayout()
        for b in (self.accept_button, self.reject_button, self.next_button):
            buttons.addWidget(b)
        tags = QHBoxLayout()
        tags.addWidget(self.subtype_combo, 1)
        tags.addWidget(self.tag_button)
        out = QHBoxLayout()
        out.addWidget(self.save_button)
        out.addWidget(self.csv_button)
        out.addWidget(self.dicom_button)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addLayout(tags)
        layout.addWidget(self.suggestion_label)
        layout.addWidget(self.note_edit)
        layout.addLayout(out)
        layout.addWidget(self.status_label)

        for key, slot in (
            ("A", self.accept),
            ("R", self.reject),
            ("N", self.next),
            ("T", self.tag),
        ):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.WidgetWithChildrenShortcut)
            shortcut.activated.connect(slot)
            # Also from the canvas (napari's key bindings; layer keys take precedence).
            self.viewer.bind_key(key.lower(), self._key_handler(slot), overwrite=True)

        self._show_reader()
        self.state.analysis_ready.connect(self._on_analysis)
        self.state.nodules_changed.connect(self.refresh)
        self.state.nodule_selected.connect(self._on_nodule_selected)
        if self.state.analysis is not None:
            self._on_analysis(self.state.analysis)

    # ------------------------------------------------------------------ session

    @staticmethod
    def _key_handler(slot: Any) -> Any:
        def handler(viewer: Any) -> None:
            slot()

        return handler

    def _show_reader(self) -> None:
        name = settings().value("reader", "", type=str)
        self.reader_label.setText(f"Reader: {name}" if name else "Reader: (asked when needed)")

    def _change_reader(self) -> None:
        name, ok = QInputDialog.getText(self, "backmice", "Reader name:")
        if ok and name.strip():
            settings().setValue("reader", name.strip())
            self._show_reader()
            self._reopen()

    def _browse_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Annotation project folder")
        if folder:
            self.project_edit.setText(folder)
            self._on_project_edited()

    def _on_project_edited(self) -> None:
        text = self.project_edit.text().strip()
        if text != settings().value("project", "", type=str):
            settings().setValue("project", text)
            self._reopen()

    def _reopen(self) -> None:
        if isinstance(self.state.session, Session):
            _close(self.state.session)
        self.state.session = None
        if self.state.analysis is not None:
            self._on_analysis(self.state.analysis)

    def _on_analysis(self, analysis: Any) -> None:
        try:
            self.session = open_session(self.viewer, parent=self)
        except Exception as exc:  # a project that cannot be opened: say so, keep the viewer
            log.error("cannot open the review: %s", exc)
            self.session = None
            self._say(f"Cannot open the project: {exc}", error=True)
            return
        self._show_reader()
        if self.session is None:
            self._say("Set a project folder and a reader name to review.", error=True)
            self.refresh()
            return
        if not self.project_edit.text():
            self.project_edit.setText(str(self.session.project.path.parent))
        if self._on_save_error not in self.session.on_save_error:
            self.session.on_save_error.append(self._on_save_error)
        self._say(f"Reviewing {self.session.study} as {self.session.reader}.")
        self.refresh()

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #e04040;" if error else "")

    def _on_save_error(self, message: str) -> None:
        pending = self.session.unsaved if self.session else 0
        self._say(
            f"NOT SAVED ({pending} change(s) kept, retried on the next change): {message}",
            error=True,
        )

    def _after_action(self) -> None:
        if self.session is not None and self.session.save_error is None:
            self._say(f"Saved ({self.session.study}, {self.session.reader}).")
        self.refresh()
        self.state.nodules_changed.emit()

    # ------------------------------------------------------------------ table

    def refresh(self) -> None:
        """Refill the table from the session's rows (keeps the selection and sort)."""
        rows = self.session.rows if self.session is not None else []
        if self.session is not None and LAYER_NODULES in self.viewer.layers:
            # What the nodules layer's writers (NIfTI, DICOM SEG) export.
            self.viewer.layers[LAYER_NODULES].metadata["nodules"] = rows
        current = self.current_id()
        self._filling = True
        sorting = self.table.isSortingEnabled()
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            colour = _STATUS_COLOURS.get(str(row.get("status")))
            for c, key in enumerate(TABLE_COLUMNS):
                item = _Item(row.get(key))
                if colour is not None:
                    item.setBackground(colour)
                self.table.setItem(r, c, item)
        self.table.setSortingEnabled(sorting)
        for c in range(len(_LEADING)):  # the leading columns fit the dock's width
            self.table.resizeColumnToContents(c)
        self._filling = False
        if current is not None:
            self.select(current, move=False)
        self._show_current()

    def _row_of(self, nodule_id: int) -> int | None:
        col = TABLE_COLUMNS.index("nodule_id")
        for r in range(self.table.rowCount()):
            item = self.table.item(r, col)
            if item is not None and item.value == nodule_id:
                return r
        return None

    def current_id(self) -> int | None:
        """The nodule selected in the table (or the session's current one)."""
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if rows:
            item = self.table.item(rows[0].row(), TABLE_COLUMNS.index("nodule_id"))
            if item is not None:
                return int(item.value)
        if self.session is not None and self.session.current in self.session.editor.rows:
            return self.session.current
        return None

    def select(self, nodule_id: int, *, move: bool = True) -> None:
        """Select a nodule's row (and move the viewer to it)."""
        r = self._row_of(nodule_id)
        if r is None:
            return
        self._filling = True
        self.table.selectRow(r)
        self._filling = False
        if move:
            self._on_row_selected()
        elif self.session is not None:
            self.session.current = nodule_id
            self._show_current()

    def _on_row_selected(self) -> None:
        if self._filling or self.session is None:
            return
        nodule_id = self.current_id()
        if nodule_id is None or nodule_id not in self.session.editor.rows:
            return
        self.session.current = nodule_id
        go_to_nodule(self.viewer, self.session.row(nodule_id))
        if LAYER_NODULES in self.viewer.layers:
            self.viewer.layers[LAYER_NODULES].selected_label = nodule_id
        self._show_current()
        self.state.nodule_selected.emit(nodule_id)

    def _on_nodule_selected(self, nodule_id: Any) -> None:
        if nodule_id is not None and nodule_id != self.current_id():
            self.select(int(nodule_id), move=False)
            self._show_current()

    def _show_current(self) -> None:
        """Subtype drop-down and note of the current nodule."""
        nodule_id = self.current_id()
        self._filling = True
        try:
            if self.session is None or nodule_id is None:
                self.suggestion_label.setText("")
                self.note_edit.setText("")
                return
            row = self.session.row(nodule_id)
            suggested = row.get("suggested_subtype")
            for i in range(self.subtype_combo.count()):
                value = self.subtype_combo.itemData(i)
                text = "(no subtype)" if value is None else value
                if value is not None and value == suggested and not row.get("subtype"):
                    text += SUGGESTED
                self.subtype_combo.setItemText(i, text)
            shown = row.get("subtype") or suggested
            self.subtype_combo.setCurrentIndex(max(self.subtype_combo.findData(shown), 0))
            if row.get("subtype"):
                self.suggestion_label.setText(
                    f"Nodule {nodule_id}: {row['status']}, tagged {row['subtype']}"
                    f" by {row.get('reader') or '?'} (suggested: {suggested})"
                )
                self.suggestion_label.setStyleSheet("")
            else:
                self.suggestion_label.setText(
                    f"Nodule {nodule_id}: {row['status']}; {suggested} is only a suggestion"
                    " — press Tag (T) to confirm or choose another subtype"
                )
                self.suggestion_label.setStyleSheet("color: #d08020; font-style: italic;")
            self.note_edit.setText(row.get("note") or "")
        finally:
            self._filling = False

    # ------------------------------------------------------------------ actions

    def _target(self) -> int | None:
        if self.session is None:
            return None
        return self.current_id()

    def accept(self) -> None:
        """Accept the current nodule and go to the next unreviewed one."""
        self._status("accept")

    def reject(self) -> None:
        """Reject the current nodule and go to the next unreviewed one."""
        self._status("reject")

    def _status(self, action: str) -> None:
        nodule_id = self._target()
        if nodule_id is None:
            return
        getattr(self.session, action)(nodule_id)
        self._after_action()
        self.next()

    def next(self) -> None:
        """Select the next unreviewed nodule (wrapping around) and go to it."""
        if self.session is None:
            return
        nodule_id = self.session.next(self.current_id())
        if nodule_id is not None:
            self.select(nodule_id)

    def tag(self) -> None:
        """Tag the current nodule with the subtype shown in the drop-down."""
        nodule_id = self._target()
        if nodule_id is None:
            return
        self.session.set_subtype(nodule_id, self.subtype_combo.currentData())
        self._after_action()

    def _on_subtype_chosen(self, index: int) -> None:
        if not self._filling:
            self.tag()

    def _on_note(self) -> None:
        if self._filling:
            return
        nodule_id = self._target()
        if nodule_id is None:
            return
        text = self.note_edit.text()
        if text != (self.session.notes.get(nodule_id) or ""):
            self.session.note(nodule_id, text)
            self._after_action()

    def save(self) -> bool:
        """Write what is pending; True when everything is saved."""
        if self.session is None:
            return True
        ok = self.session.save()
        if ok:
            self._say(f"Saved ({self.session.study}, {self.session.reader}).")
        return ok

    def export_csv(self, path: str | Path) -> Path | None:
        """Write the current rows as CSV (SPEC columns)."""
        if self.session is None:
            return None
        out = self.session.export_csv(path)
        self._say(f"Wrote {out}")
        return out

    def _export_csv_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export CSV", "nodules.csv", "CSV (*.csv)")
        if path:
            self.export_csv(path)

    def export_dicom(self, folder: str | Path) -> list[Path]:
        """Write ``seg.dcm`` and ``sr.dcm`` of this review into ``folder`` (saves first)."""
        if self.session is None:
            return []
        if self.session.unsaved and not self.save():
            return []
        try:
            written = self.session.export_dicom(folder)
        except Exception as exc:  # missing source files, nothing to export: say so
            self._say(f"Export failed: {exc}", error=True)
            return []
        self._say("Wrote " + ", ".join(str(p) for p in written))
        return written

    def _export_dicom_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export SEG + SR into")
        if folder:
            self.export_dicom(folder)
