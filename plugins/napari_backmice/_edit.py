"""The Edit widget: correct the nodules and the fascia by hand, re-measured as you go.

- **Paint / erase** with napari's own label tools on the nodules layer (label =
  ``nodule_id``; 0 erases): every stroke re-measures the nodules it touched.
- **Split** the selected nodule in two (a watershed at its waist, or across the
  longest axis), **merge** two nodules.
- **Add by click**: while on, a click on a missed nodule grows it from there
  (the fat connected to the click, stopped by its capsule or a size cap).
- **Fascia**: paint the fascia layer (label 1 = deep side) to correct it; the
  signed distance and every nodule's fascia columns follow.

Each change goes through the review :class:`backmice.review.Session` (saved to
the project at once), then the nodules layer and the Review table refresh
(``state.nodules_changed``). All work is in :mod:`backmice.edit`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import napari
import numpy as np
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from backmice.edit import Change
from backmice.errors import InputError
from backmice.review import Session

from ._layers import layer_transform
from ._review import open_session, sync_layers
from ._state import LAYER_FASCIA, LAYER_NODULES, state_for

__all__ = ["LAYER_CUT", "EditWidget", "replay_stroke", "stroke_region"]

#: Shapes layer holding a line to split a nodule along.
LAYER_CUT = "cut line"

log = logging.getLogger(__name__)


def stroke_region(item: Any, shape: tuple[int, ...]) -> tuple[slice, ...] | None:
    """Bounding box of a napari Labels paint event's history item (None if unknown).

    Parameters
    ----------
    item : list
        ``event.value`` of ``layer.events.paint``: history atoms, each a masked
        paint atom (``slice_key``, ``mask``, ``old_values``, ``new_value``) or
        ``(indices, old_values, new_values)``.
    shape : tuple of int
        The layer's data shape.

    Returns
    -------
    tuple of slice or None
        None when an atom is of a kind not known here.
    """
    lo = np.full(len(shape), np.iinfo(np.int64).max)
    hi = np.full(len(shape), -1)
    try:
        for atom in item or ():
            key = getattr(atom, "slice_key", None)
            if key is not None:
                box = [s.indices(n)[:2] for s, n in zip(key, shape, strict=True)]
                start = np.array([b[0] for b in box])
                stop = np.array([b[1] for b in box])
            else:
                indices = atom[0]
                if len(indices) != len(shape):
                    return None
                if not len(indices[0]):
                    continue
                start = np.array([int(np.min(i)) for i in indices])
                stop = np.array([int(np.max(i)) + 1 for i in indices])
            lo = np.minimum(lo, start)
            hi = np.maximum(hi, stop)
    except (TypeError, ValueError, IndexError):
        return None
    if (hi < 0).any():
        return None
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def replay_stroke(item: Any, before: np.ndarray) -> tuple[np.ndarray, tuple[slice, ...]] | None:
    """The labels a paint event leads to, replayed from its history atoms.

    napari emits ``paint`` when it records the edit, which for a single
    ``paint``/``fill`` call is before the data is written; replaying the atoms
    on the labels as they were gives the result either way.

    Parameters
    ----------
    item : list
        ``event.value`` of ``layer.events.paint``.
    before : ndarray, shape (slice, row, col)
        The labels before the stroke.

    Returns
    -------
    (crop, region) or None
        The new labels inside ``region`` (the stroke's bounding box); None
        when the atoms are not understood.
    """
    region = stroke_region(item, before.shape)
    if region is None:
        return None
    lo = np.array([s.start for s in region])
    crop = np.array(before[region], copy=True)
    for atom in item:
        key = getattr(atom, "slice_key", None)
        if key is not None:
            local = tuple(
                slice(a - o, b - o)
                for (a, b), o in zip(
                    (s.indices(n)[:2] for s, n in zip(key, before.shape, strict=True)),
                    lo,
                    strict=True,
                )
            )
            if atom.mask is None:
                crop[local] = atom.new_value
            else:
                crop[local][atom.mask] = atom.new_value
        else:
            indices, _old, new = atom
            if len(indices[0]):
                crop[tuple(np.asarray(i) - o for i, o in zip(indices, lo, strict=True))] = new
    return crop, region


class EditWidget(QWidget):
    """Paint, erase, split, merge and add nodules, and correct the fascia.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self._nodules_layer: Any = None
        self._fascia_layer: Any = None
        self._syncing = False
        #: Seconds the last edit took (re-measure included).
        self.last_edit_s: float | None = None

        self.split_button = QPushButton("Split selected")
        self.split_button.setToolTip("Cut the selected nodule in two where it narrows")
        self.split_button.clicked.connect(self.split_selected)
        self.cut_button = QPushButton("Draw cut line")
        self.cut_button.setToolTip("Draw a line to split along (otherwise split at the waist)")
        self.cut_button.clicked.connect(self.draw_cut)
        self.merge_a = QSpinBox()
        self.merge_b = QSpinBox()
        for box in (self.merge_a, self.merge_b):
            box.setRange(1, 1 << 30)
        self.merge_button = QPushButton("Merge")
        self.merge_button.clicked.connect(
            lambda: self.merge(self.merge_a.value(), self.merge_b.value())
        )
        self.delete_button = QPushButton("Delete selected")
        self.delete_button.clicked.connect(self.delete_selected)
        self.add_button = QPushButton("Add nodule by click")
        self.add_button.setCheckable(True)
        self.add_button.setToolTip("Then click inside a missed nodule: it grows from there")
        self.add_button.toggled.connect(self._on_add_toggled)
        self.cap_spin = QDoubleSpinBox()
        self.cap_spin.setRange(5.0, 200.0)
        self.cap_spin.setValue(60.0)
        self.cap_spin.setSuffix(" mm")
        self.cap_spin.setToolTip("Largest size a grown nodule may reach")
        self.status_label = QLabel(
            "Paint or erase on the 'nodules' layer; paint the 'fascia' layer"
            " (1 = deep) to correct the fascia."
        )
        self.status_label.setWordWrap(True)

        grid = QGridLayout()
        grid.addWidget(self.cut_button, 0, 0)
        grid.addWidget(self.split_button, 0, 1)
        grid.addWidget(self.delete_button, 0, 2)
        grid.addWidget(self.merge_a, 1, 0)
        grid.addWidget(self.merge_b, 1, 1)
        grid.addWidget(self.merge_button, 1, 2)
        grid.addWidget(self.add_button, 2, 0, 1, 2)
        grid.addWidget(self.cap_spin, 2, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(grid)
        layout.addWidget(self.status_label)
        layout.addStretch(1)

        self.state.analysis_ready.connect(self._on_analysis)
        self.viewer.layers.events.inserted.connect(self._connect_layers)
        self.viewer.layers.events.removed.connect(self._connect_layers)
        self._connect_layers()

    # ------------------------------------------------------------------ wiring

    def _on_analysis(self, analysis: Any) -> None:
        self._connect_layers()

    def _connect_layers(self, event: Any = None) -> None:
        layers = self.viewer.layers
        # napari's LayerList has no ``get``.
        nodules = layers[LAYER_NODULES] if LAYER_NODULES in layers else None  # noqa: SIM401
        fascia = layers[LAYER_FASCIA] if LAYER_FASCIA in layers else None  # noqa: SIM401
        if nodules is not self._nodules_layer:
            if self._nodules_layer is not None:
                self._nodules_layer.events.paint.disconnect(self._on_nodules_painted)
                self._remove_click(self._nodules_layer)
            self._nodules_layer = nodules
            if nodules is not None:
                nodules.events.paint.connect(self._on_nodules_painted)
                self._bind_history(nodules, self._compare_nodules)
                if self.add_button.isChecked():
                    nodules.mouse_drag_callbacks.append(self._on_click)
        if fascia is not self._fascia_layer:
            if self._fascia_layer is not None:
                self._fascia_layer.events.paint.disconnect(self._on_fascia_painted)
            self._fascia_layer = fascia
            if fascia is not None:
                fascia.events.paint.connect(self._on_fascia_painted)
                self._bind_history(fascia, self._compare_fascia)

    @staticmethod
    def _bind_history(layer: Any, compare: Any) -> None:
        """Undo / redo on the layer (Ctrl+Z, Ctrl+Shift+Z) are followed like a stroke.

        napari emits no paint event when it undoes one, so these keys are bound
        on this layer to undo as napari does, then compare the whole layer.
        """

        def undo(layer: Any) -> None:
            layer.undo()
            compare()

        def redo(layer: Any) -> None:
            layer.redo()
            compare()

        layer.bind_key("Control-Z", undo, overwrite=True)
        layer.bind_key("Control-Shift-Z", redo, overwrite=True)

    def session(self) -> Session | None:
        """The viewer's review session (opened if needed)."""
        try:
            return open_session(self.viewer, parent=self)
        except Exception as exc:
            self._say(f"Cannot open the project: {exc}", error=True)
            return None

    def _say(self, text: str, *, error: bool = False) -> None:
        self.status_label.setText(text)
        self.status_label.setStyleSheet("color: #e04040;" if error else "")

    def selected(self) -> int | None:
        """The nodule to act on: the Review selection, else the layer's selected label."""
        session = self.state.session
        if isinstance(session, Session) and session.current in session.editor.rows:
            return session.current
        if self._nodules_layer is not None:
            label = int(self._nodules_layer.selected_label)
            if session is not None and label in session.editor.rows:
                return label
        return None

    # ------------------------------------------------------------------ applying

    def _run(self, what: str, fn: Any) -> Change | None:
        """Run one edit on the session, then sync the layers and tell the widgets."""
        session = self.session()
        if session is None:
            self._say(
                "Run an analysis (and set the reader and project) before editing.", error=True
            )
            return None
        layer = self._nodules_layer
        if layer is not None and tuple(layer.metadata.get("axes", (0, 1, 2))) != (0, 1, 2):
            # The layer shows a sagittal or coronal stack transposed; the edits below
            # work in the volume's (slice, row, col) order. Put the layers back.
            self._say(
                f"{what}: editing works on stacks shown in their own slice order (axial); "
                "this one is shown transposed, so nothing was changed.",
                error=True,
            )
            self._syncing = True
            try:
                sync_layers(self.viewer, session, fascia=True)
            finally:
                self._syncing = False
            return None
        t = time.perf_counter()
        try:
            change = fn(session)
        except InputError as exc:
            self._say(f"{what}: {exc}", error=True)
            self._sync_layers(session)
            return None
        self.last_edit_s = time.perf_counter() - t
        self._sync_layers(session, change)
        if session.save_error:
            self._say(f"{what} done but NOT SAVED yet: {session.save_error}", error=True)
        elif change is not None and not change.empty:
            ids = ", ".join(str(i) for i in change.measured) or "-"
            self._say(f"{what}: re-measured {ids} in {self.last_edit_s * 1000:.0f} ms (saved).")
        if change is not None and not change.empty:
            self.state.nodules_changed.emit()
        return change

    def _sync_layers(self, session: Session, change: Change | None = None) -> None:
        """Make the nodules layer show the editor's labels and its features table."""
        self._syncing = True
        try:
            sync_layers(self.viewer, session, fascia=False)
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ events

    def _on_nodules_painted(self, event: Any) -> None:
        if self._syncing:
            return
        session = self.session()
        if session is None:
            self._say("Run an analysis (and set reader and project) before editing.", error=True)
            return
        replayed = replay_stroke(event.value, session.editor.labels)
        if replayed is None:  # unknown atoms: compare the whole layer once napari has written it
            QTimer.singleShot(0, self._compare_nodules)
            return
        crop, region = replayed
        self._run("paint", lambda s: s.set_labels(crop, region=region))

    def _compare_nodules(self) -> None:
        layer = self._nodules_layer
        if layer is not None:
            self._run("paint", lambda s: s.set_labels(np.asarray(layer.data)))

    def _on_fascia_painted(self, event: Any) -> None:
        if self._syncing:
            return
        session = self.session()
        if session is None:
            return
        before = session.editor.deep.astype(np.uint8)
        replayed = replay_stroke(event.value, before)
        if replayed is None:
            QTimer.singleShot(0, self._compare_fascia)
            return
        crop, region = replayed
        before[region] = crop
        self._run("fascia", lambda s: s.set_fascia(before, region=region))

    def _compare_fascia(self) -> None:
        layer = self._fascia_layer
        if layer is not None:
            self._run("fascia", lambda s: s.set_fascia(np.asarray(layer.data)))

    def _on_add_toggled(self, on: bool) -> None:
        layer = self._nodules_layer
        if layer is None:
            return
        self._remove_click(layer)
        if on:
            layer.mouse_drag_callbacks.append(self._on_click)
            self.viewer.layers.selection.active = layer
            layer.mode = "pan_zoom"
            self._say("Click inside the missed nodule.")

    def _remove_click(self, layer: Any) -> None:
        if self._on_click in layer.mouse_drag_callbacks:
            layer.mouse_drag_callbacks.remove(self._on_click)

    def _on_click(self, layer: Any, event: Any) -> None:
        if getattr(event, "type", "mouse_press") != "mouse_press":
            return
        self.add_at(event.position)

    # ------------------------------------------------------------------ actions

    def add_at(self, world: Any) -> Change | None:
        """Grow a missed nodule from a world position (a click), and select it."""
        layer = self._nodules_layer
        if layer is None:
            return None
        index = np.round(np.asarray(layer.world_to_data(world), dtype=float)[-3:]).astype(int)
        cap = self.cap_spin.value()
        change = self._run("add", lambda s: s.grow(tuple(index), max_diameter_mm=cap))
        if change is not None and change.added:
            self.add_button.setChecked(False)
            new = change.added[0]
            session = self.state.session
            if session is not None:
                session.current = new
            self.state.nodule_selected.emit(new)
        return change

    def cut_line(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        """The last line drawn in the ``cut line`` shapes layer, as two (row, col) indices."""
        if LAYER_CUT not in self.viewer.layers or self._nodules_layer is None:
            return None
        shapes = self.viewer.layers[LAYER_CUT]
        lines = [
            d
            for d, kind in zip(shapes.data, shapes.shape_type, strict=True)
            if kind in ("line", "path")
        ]
        if not lines:
            return None
        ends = np.asarray(lines[-1], dtype=float)[[0, -1], -3:]
        world = [shapes.data_to_world(p) for p in ends]
        index = [np.asarray(self._nodules_layer.world_to_data(w), dtype=float)[-2:] for w in world]
        return (tuple(index[0]), tuple(index[1]))

    def split_selected(self) -> Change | None:
        """Split the selected nodule in two: along the drawn cut line if any, else at its waist."""
        nodule_id = self.selected()
        if nodule_id is None:
            self._say("Select a nodule first (Review table or the layer's label).", error=True)
            return None
        line = self.cut_line()
        change = self._run(f"split {nodule_id}", lambda s: s.split(nodule_id, line=line))
        if change is not None and line is not None:
            self.viewer.layers[LAYER_CUT].data = []
        return change

    def draw_cut(self) -> None:
        """Add (or select) the ``cut line`` shapes layer, ready to draw a line."""
        if LAYER_CUT not in self.viewer.layers:
            kwargs: dict[str, Any] = {}
            affine = (
                None
                if self._nodules_layer is None
                else self._nodules_layer.metadata.get("backmice_affine")
            )
            if affine is not None:  # placed like the other layers (mm, LPS world)
                kwargs = layer_transform(affine)
            self.viewer.add_shapes(
                ndim=3, name=LAYER_CUT, edge_color="yellow", edge_width=0.5, **kwargs
            )
        layer = self.viewer.layers[LAYER_CUT]
        self.viewer.layers.selection.active = layer
        layer.mode = "add_line"
        self._say("Draw a line across the nodule, then Split selected.")

    def _merge_clicked(self) -> None:
        self.merge(self.merge_a.value(), self.merge_b.value())

    def merge(self, keep: int, other: int) -> Change | None:
        """Merge nodule ``other`` into ``keep``."""
        return self._run(f"merge {other} into {keep}", lambda s: s.merge(keep, other))

    def delete_selected(self) -> Change | None:
        """Remove the selected nodule (all of its voxels)."""
        nodule_id = self.selected()
        if nodule_id is None:
            self._say("Select a nodule first.", error=True)
            return None
        return self._run(f"delete {nodule_id}", lambda s: s.delete(nodule_id))
