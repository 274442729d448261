"""The Ultrasound widget: skin and fascia lines, a nodule seeded by a click, measurements in mm.

Thin over :mod:`backmice.ultrasound` (``docs/ultrasound.md``):

- **Frame**: the cine frame measured; it follows the viewer's frame slider
  (and moves it).
- **Find fascia** runs :func:`~backmice.ultrasound.analyze_frame` without a
  seed (despeckle, skin line, fascia line) in a background worker and shows
  the skin (green) and the fascia (orange) as two editable paths of one
  Shapes layer (``LAYER_US_LINES``). Its vertices are **world coordinates**:
  ``(frame, depth mm, across mm)`` of the ultrasound image layer (pixels when
  the image is not calibrated), so they overlay the image exactly; the path
  is the pipeline's line simplified to within half a pixel.
- **A click** on the image (pan/zoom mode, no drag) seeds a nodule: the world
  position becomes ``(row, col)`` of the cropped tissue region and
  ``analyze_frame(..., seed_rc=, fascia=)`` runs in a worker. Until the reader
  edits the fascia or a nodule is already there, the pipeline refines the
  fascia around the new nodule (as ``backmice analyze --seed`` does); after
  that the current, possibly edited, line is used as given. The outline is a
  Labels layer (``LAYER_US_NODULES``, label = ``nodule_id``; painting it
  re-measures), the long and short axes a Shapes layer (``LAYER_US_AXES``).
- **Editing a path** (moving its vertices) re-measures every nodule against
  the edited lines with :func:`~backmice.ultrasound.measure_mask` (a few tens
  of milliseconds, in the GUI thread).
- **Find candidates** runs the automatic candidate search (no seed) and adds
  what it finds with status ``candidate``.
- **Save** writes what ``backmice analyze`` writes for ultrasound
  (:func:`~backmice.ultrasound.write_ultrasound`: nodules.csv, nodules.json,
  labels.nii.gz, fascia.nii.gz, qc.png) with the lines and nodules as they
  are in the viewer.

An uncalibrated image (no usable ultrasound region) is measured in pixels and
the widget says so in red above the table; every column header says ``px``.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from qtpy.QtCore import Signal
from qtpy.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backmice.io import Role, Stack, Volume, load, open_study
from backmice.ultrasound import (
    UltrasoundAnalysis,
    UltrasoundResult,
    analyze_frame,
    choose_ultrasound,
    edited_frame,
    remeasure_frame,
    result_rows,
    side_from_header,
    write_ultrasound,
)

from ._layers import layer_transform, world_affine
from ._state import state_for

if TYPE_CHECKING:
    import napari

__all__ = [
    "LAYER_US_AXES",
    "LAYER_US_LINES",
    "LAYER_US_NODULES",
    "FrameState",
    "UltrasoundWidget",
    "frame_result",
    "is_ultrasound_layer",
    "line_from_world",
    "line_to_world",
    "remeasure",
    "simplify_line",
]

log = logging.getLogger(__name__)

#: Shapes layer of two paths: the skin (index 0) and the fascia (index 1), world coordinates.
LAYER_US_LINES = "us lines"
#: Labels layer of the nodules on the measured frame (label = ``nodule_id``).
LAYER_US_NODULES = "us nodules"
#: Shapes layer of each nodule's long and short axis (not editable).
LAYER_US_AXES = "us axes"
#: Colours as in ``qc.png``: skin green, fascia orange, axes yellow.
SKIN_COLOUR = "#4caf50"
FASCIA_COLOUR = "#ff8c00"
AXES_COLOUR = "#ffe600"
#: Nodule outlines: cyan, as in ``qc.png`` (reads on grey speckle, unlike napari's label colours).
NODULE_COLOUR = (0.0, 0.9, 1.0, 1.0)
#: The displayed path stays within this many pixels of the pipeline's line.
SIMPLIFY_PX = 0.5
#: Keys :func:`measure_mask` returns (replaced on a re-measure).
_MEASURED = (
    "long_axis_mm",
    "short_axis_mm",
    "max_diameter_mm",
    "area_mm2",
    "axis_1_mm",
    "axis_2_mm",
    "fascia_offset_mm",
    "fascia_min_mm",
    "fascia_max_mm",
    "relation",
    "skin_depth_mm",
    "x_mm",
    "depth_mm",
    "fascia_depth_mm",
    "long_axis_ends_rc",
    "short_axis_ends_rc",
)
#: Table columns: (header, row key, number format or None).
_TABLE = (
    ("#", "nodule_id", None),
    ("status", "status", None),
    ("long", "long_axis_mm", "{:.1f}"),
    ("short", "short_axis_mm", "{:.1f}"),
    ("area", "area_mm2", "{:.0f}"),
    ("skin depth", "skin_depth_mm", "{:.1f}"),
    ("fascia offset", "fascia_offset_mm", "{:+.1f}"),
    ("fascia min", "fascia_min_mm", "{:+.1f}"),
    ("relation", "relation", None),
    ("suggested", "suggested_subtype", None),
)


# --- geometry ------------------------------------------------------------------------------------


def is_ultrasound_layer(layer: Any) -> bool:
    """True for an image layer the backmice reader made from an ultrasound stack."""
    meta = getattr(layer, "metadata", None) or {}
    return layer.__class__.__name__ == "Image" and meta.get("role") == str(Role.US)


def line_to_world(line: NDArray, frame: int, affine: NDArray) -> NDArray:
    """World points of a ``(col, row)`` line of the tissue region on one frame.

    Parameters
    ----------
    line : ndarray of shape (n, 2)
        ``(col, row)`` pixels of the region (as :func:`analyze_frame` gives them).
    frame : int
        The cine frame (0-based).
    affine : ndarray of shape (4, 4)
        The image layer's ``metadata["backmice_affine"]`` (index → LPS).

    Returns
    -------
    ndarray of shape (n, 3)
        World ``(frame, depth, across)``: mm when calibrated, else pixels.
    """
    p = np.asarray(line, dtype=float)
    index = np.column_stack([np.full(len(p), float(frame)), p[:, 1], p[:, 0], np.ones(len(p))])
    return (world_affine(affine) @ index.T).T[:, :3]


def line_from_world(points: NDArray, affine: NDArray) -> tuple[NDArray, float]:
    """``(col, row)`` pixels of the region and the frame of world points (inverse of the above).

    Returns
    -------
    line : ndarray of shape (n, 2)
        ``(col, row)`` sorted by column.
    frame : float
        The mean frame index of the points.
    """
    w = np.asarray(points, dtype=float)
    homog = np.column_stack([w, np.ones(len(w))])
    index = (np.linalg.inv(world_affine(affine)) @ homog.T).T
    line = np.column_stack([index[:, 2], index[:, 1]])
    return line[np.argsort(line[:, 0], kind="stable")], float(index[:, 0].mean())


def simplify_line(line: NDArray, *, tolerance_px: float = SIMPLIFY_PX) -> NDArray:
    """The line with fewer vertices (Douglas-Peucker), within ``tolerance_px`` rows of it.

    A path of one vertex per column cannot be edited by hand; this one can. The
    tolerance holds for the row at every column (the pipeline's lines are rows
    as a function of the column), not only perpendicular to the line.

    Parameters
    ----------
    line : ndarray of shape (n, 2)
        ``(col, row)`` points, sorted by column.
    tolerance_px : float
        Largest row difference between the line and the simplified one, pixels.

    Returns
    -------
    ndarray of shape (m, 2)
        A subset of the points, the first and last kept.
    """
    from skimage.measure import approximate_polygon

    p = np.asarray(line, dtype=float)
    if len(p) < 3:
        return p
    p = p[np.argsort(p[:, 0], kind="stable")]
    tol = tolerance_px
    for _ in range(8):
        out = approximate_polygon(p, tolerance=tol)
        if np.max(np.abs(np.interp(p[:, 0], out[:, 0], out[:, 1]) - p[:, 1])) <= tolerance_px:
            return out
        tol *= 0.7
    return p


def _nodule_colours() -> Any:
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: NODULE_COLOUR, 0: (0.0, 0.0, 0.0, 0.0)})


def _contour_of(mask: NDArray) -> NDArray:
    """The outline of a mask as ``(row, col)`` points (the longest iso-contour at 0.5)."""
    from skimage.measure import find_contours

    padded = np.pad(mask.astype(float), 1)
    contours = find_contours(padded, 0.5)
    if not contours:
        return np.zeros((0, 2))
    return max(contours, key=len) - 1.0


# --- one frame's state ---------------------------------------------------------------------------


@dataclass(slots=True)
class FrameState:
    """What the widget holds for the frame being measured.

    Attributes
    ----------
    frame : int
    image : ndarray of float32, shape (row, col)
        The frame's tissue region (grey).
    despeckled : ndarray of float32, shape (row, col)
    spacing_mm : (float, float)
        ``(row, col)``; ``(1, 1)`` when uncalibrated.
    calibrated : bool
    skin, fascia : ndarray of shape (n, 2)
        The current ``(col, row)`` lines (as found or as edited).
    fixed : bool
        The fascia is the reader's (edited) or already measured against: new
        seeds use it as given instead of letting the pipeline refine it.
    nodules : list of dict
        Rows as :func:`analyze_frame` gives them (``contour`` included).
    masks : list of ndarray of bool
        Each nodule's pixels, in the order of ``nodules``.
    warnings : list of str
    """

    frame: int
    image: NDArray
    despeckled: NDArray
    spacing_mm: tuple[float, float]
    calibrated: bool
    skin: NDArray
    fascia: NDArray
    fixed: bool = False
    nodules: list[dict] = field(default_factory=list)
    masks: list[NDArray] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def units(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return "mm" if self.calibrated else "px"


#: Every nodule of the frame measured again against the current lines (the
#: core's :func:`backmice.ultrasound.frame.remeasure_frame`, one owner of a row).
remeasure = remeasure_frame


def frame_result(
    state: FrameState,
    volume: Volume,
    *,
    stack: Stack | None = None,
    study: str = "",
) -> UltrasoundResult:
    """The :class:`~backmice.ultrasound.UltrasoundResult` of the frame as the reader left it.

    Rows carry every SPEC column plus :data:`~backmice.ultrasound.EXTRA_COLUMNS`
    (as ``backmice analyze`` writes them), measured against the current lines.
    """
    analysis = edited_frame(
        image=state.image,
        despeckled=state.despeckled,
        spacing_mm=state.spacing_mm,
        calibrated=state.calibrated,
        skin=state.skin,
        fascia=state.fascia,
        nodules=state.nodules,
        masks=state.masks,
        warnings=state.warnings,
    )
    where = stack.frames[0].path if stack is not None and stack.frames else None
    table = result_rows(
        analysis,
        study=study,
        series_uid=volume.series_uid,
        frame=state.frame,
        side=side_from_header(where),
    )
    return UltrasoundResult(
        study=study,
        volume=volume,
        frame=state.frame,
        analysis=analysis,
        nodules=table,
        stack=stack,
        warnings=list(dict.fromkeys([*volume.warnings, *state.warnings])),
    )


def _forget(viewer: Any, callback: Any) -> Any:
    """A slot that takes the widget's click callback off the viewer (when the widget goes)."""

    def forget(*_args: Any) -> None:
        if callback in viewer.mouse_drag_callbacks:
            viewer.mouse_drag_callbacks.remove(callback)

    return forget


def _load(study_path: str, series_uid: str | None) -> tuple[Volume, Stack]:
    study = open_study(study_path)
    stack = choose_ultrasound(study, series_uid=series_uid or None)
    return load(stack), stack


def _spacing(volume: Volume) -> tuple[float, float] | None:
    if not volume.calibrated:
        return None
    return (float(volume.spacing_mm[1]), float(volume.spacing_mm[2]))


# --- the widget ----------------------------------------------------------------------------------


class UltrasoundWidget(QWidget):
    """Frame, fascia, a nodule from a click, its measurements in mm, save.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    #: Emitted after every change of the lines or the nodules (and after a save).
    changed = Signal()

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state_shared = state_for(napari_viewer)
        self.volume: Volume | None = None
        self.stack: Stack | None = None
        self.state: FrameState | None = None
        #: Seconds the last re-measure after an edit took.
        self.last_remeasure_s: float | None = None
        self._workers: list[Any] = []
        self._syncing = False
        self._image: Any = None

        self.frame_spin = QSpinBox()
        self.frame_spin.setPrefix("frame ")
        self.frame_spin.setToolTip("The cine frame measured (follows the viewer's slider)")
        self.fascia_button = QPushButton("Find fascia")
        self.fascia_button.setToolTip("Despeckle, find the skin and the fascia (editable paths)")
        self.candidates_button = QPushButton("Find candidates")
        self.candidates_button.setToolTip("Automatic candidates (oval, above the fascia)")
        self.seed_button = QPushButton("Click seeds a nodule")
        self.seed_button.setCheckable(True)
        self.seed_button.setChecked(True)
        self.seed_button.setToolTip(
            "A click on the image (pan/zoom mode, without dragging) grows a nodule from there"
        )
        self.clear_button = QPushButton("Clear nodules")
        self.save_button = QPushButton("Save…")
        self.save_button.setToolTip("Write nodules.csv/json, labels, fascia map and qc.png")
        self.units_label = QLabel("")
        self.units_label.setWordWrap(True)
        self.table = QTableWidget(0, len(_TABLE))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.status = QLabel("Open an ultrasound image, then Find fascia or click a nodule.")
        self.status.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.frame_spin)
        top.addWidget(self.fascia_button)
        top.addWidget(self.candidates_button)
        second = QHBoxLayout()
        second.addWidget(self.seed_button)
        second.addWidget(self.clear_button)
        second.addWidget(self.save_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(second)
        layout.addWidget(self.units_label)
        layout.addWidget(self.table)
        layout.addWidget(self.status)

        self.fascia_button.clicked.connect(lambda: self.find_fascia())
        self.candidates_button.clicked.connect(lambda: self.find_candidates())
        self.clear_button.clicked.connect(self.clear_nodules)
        self.save_button.clicked.connect(lambda: self.save())
        self.frame_spin.valueChanged.connect(self._on_frame_spin)
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.mouse_drag_callbacks.append(self._on_mouse)
        self.destroyed.connect(_forget(self.viewer, self._on_mouse))
        self.viewer.layers.events.inserted.connect(self._on_layers)
        self.viewer.layers.events.removed.connect(self._on_layers)
        self._refresh_table()
        self._on_layers()

    # --- the image ---------------------------------------------------------------------------

    def image_layer(self) -> Any:
        """The ultrasound image layer (the first one), or None."""
        if self._image is not None and self._image in self.viewer.layers:
            return self._image
        self._image = next((ly for ly in self.viewer.layers if is_ultrasound_layer(ly)), None)
        return self._image

    def _affine(self) -> NDArray:
        layer = self.image_layer()
        return np.asarray(layer.metadata["backmice_affine"], dtype=float)

    def _on_layers(self, event: Any = None) -> None:
        layer = self.image_layer()
        if layer is None:
            return
        frames = int(layer.data.shape[0])
        self.frame_spin.setRange(0, max(0, frames - 1))
        self.frame_spin.setEnabled(frames > 1)
        units = (layer.metadata or {}).get("units", "mm")
        self._say_units(units == "mm")
        self._on_step()

    def _say_units(self, calibrated: bool) -> None:
        if calibrated:
            self.units_label.setText("Lengths in mm, areas in mm² (calibrated ultrasound region).")
            self.units_label.setStyleSheet("")
        else:
            self.units_label.setText(
                "UNCALIBRATED: no usable ultrasound region. Every length is in PIXELS (px), "
                "areas in px², although the file columns say _mm."
            )
            self.units_label.setStyleSheet("color: #ff3030; font-weight: bold;")
        for i, (header, key, _fmt) in enumerate(_TABLE):
            unit = "mm" if calibrated else "px"
            text = header
            if key.endswith("_mm"):
                text = f"{header} {unit}"
            elif key == "area_mm2":
                text = f"{header} {unit}²"
            self.table.setHorizontalHeaderItem(i, QTableWidgetItem(text))

    def _ensure_volume(self, path: str | None, series_uid: str | None) -> tuple[Volume, Any]:
        """The ultrasound series of the image layer, loaded once (safe in a worker)."""
        volume = self.volume
        if volume is None or (series_uid and volume.series_uid != series_uid):
            if path is None:
                raise ValueError("the ultrasound layer does not say where it came from")
            self.volume, self.stack = _load(path, series_uid)
        return self.volume, self.stack

    # --- frame -------------------------------------------------------------------------------

    @property
    def frame(self) -> int:
        """The cine frame measured (0-based)."""
        return int(self.frame_spin.value())

    def _viewer_frame(self) -> int | None:
        layer = self.image_layer()
        if layer is None:
            return None
        point = np.asarray(self.viewer.dims.point, dtype=float)[-3:]
        index = np.asarray(layer.world_to_data(point), dtype=float)
        return int(np.clip(np.round(index[0]), 0, layer.data.shape[0] - 1))

    def _on_step(self, event: Any = None) -> None:
        k = self._viewer_frame()
        if k is not None and k != self.frame:
            self.frame_spin.blockSignals(True)
            self.frame_spin.setValue(k)
            self.frame_spin.blockSignals(False)

    def _on_frame_spin(self, value: int) -> None:
        layer = self.image_layer()
        if layer is None or self._viewer_frame() == value:
            return
        world = np.asarray(layer.data_to_world([value, 0, 0]), dtype=float)
        step = list(self.viewer.dims.point)
        step[-3] = float(world[0])
        self.viewer.dims.point = step

    # --- background work ---------------------------------------------------------------------

    def _start(self, fn: Any, done: Any, *, blocking: bool, what: str) -> Any:
        """Run ``fn()`` in a napari worker (or here when ``blocking``), then ``done(result)``."""
        self.status.setText(f"{what}…")
        if blocking:
            try:
                result = fn()
            except Exception as exc:
                self._on_error(exc)
                raise
            done(result)
            return result
        from napari.qt.threading import create_worker

        worker = create_worker(fn)
        worker.returned.connect(done)
        worker.errored.connect(self._on_error)
        worker.finished.connect(lambda: self._workers.remove(worker))
        self._workers.append(worker)
        worker.start()
        return worker

    def _on_error(self, exc: BaseException) -> None:
        self.status.setText(f"Failed: {exc}")
        self.status.setStyleSheet("color: #ff3030;")
        log.error("ultrasound: %s", exc)

    def _frame_job(self, *, seed_rc: tuple[float, float] | None, candidates: bool) -> Any:
        """Work for a worker: the analysis of the current frame with the current lines.

        Everything the job needs from the GUI is taken here, in the GUI thread.
        """
        frame = self.frame
        state = self.state if self.state is not None and self.state.frame == frame else None
        fascia = state.fascia.copy() if state is not None and state.fixed else None
        skin = state.skin.copy() if state is not None else None
        meta = dict(self.image_layer().metadata or {})
        path = meta.get("study_path") or self.state_shared.study_path

        def job() -> tuple[int, UltrasoundAnalysis]:
            volume, _stack = self._ensure_volume(path, meta.get("series_uid"))
            if not 0 <= frame < volume.array.shape[0]:
                raise ValueError(f"frame {frame} does not exist")
            analysis = analyze_frame(
                volume.array[frame],
                spacing_mm=_spacing(volume),
                seed_rc=seed_rc,
                fascia=fascia,
                skin=skin,
                candidates=candidates,
                color=None if volume.color is None else volume.color[frame],
                overlays=volume.overlays,
            )
            return frame, analysis

        return job

    # --- actions -----------------------------------------------------------------------------

    def find_fascia(self, *, blocking: bool = False) -> Any:
        """Find the skin and fascia lines of the current frame (nodules are cleared).

        Returns
        -------
        napari.qt.threading.FunctionWorker, or ``(frame, UltrasoundAnalysis)`` when ``blocking``.
        """
        if self.image_layer() is None:
            self.status.setText("Open an ultrasound image first.")
            return None
        self.state = None
        job = self._frame_job(seed_rc=None, candidates=False)
        return self._start(job, self._on_lines, blocking=blocking, what="Finding the fascia")

    def find_candidates(self, *, blocking: bool = False) -> Any:
        """Search the current frame for automatic candidates (status ``candidate``)."""
        if self.image_layer() is None:
            self.status.setText("Open an ultrasound image first.")
            return None
        job = self._frame_job(seed_rc=None, candidates=True)
        return self._start(job, self._on_nodules, blocking=blocking, what="Finding candidates")

    def seed_at(self, seed_rc: tuple[float, float], *, blocking: bool = False) -> Any:
        """Grow a nodule from ``(row, col)`` of the tissue region on the current frame."""
        if self.image_layer() is None:
            self.status.setText("Open an ultrasound image first.")
            return None
        rows, cols = self.image_layer().data.shape[1:3]
        r, c = (float(v) for v in seed_rc)
        if not (-0.5 <= r <= rows - 0.5 and -0.5 <= c <= cols - 0.5):
            self.status.setText("The click is outside the image.")
            return None
        job = self._frame_job(seed_rc=(r, c), candidates=False)
        return self._start(
            job,
            self._on_nodules,
            blocking=blocking,
            what=f"Growing a nodule from row {r:.0f}, column {c:.0f}",
        )

    def seed_at_world(self, world: Any, *, blocking: bool = False) -> Any:
        """Seed a nodule at a world position (as napari's mouse events give it)."""
        layer = self.image_layer()
        if layer is None:
            return None
        point = np.asarray(world, dtype=float)[-3:]
        index = np.asarray(layer.world_to_data(point), dtype=float)
        frame = int(np.clip(np.round(index[0]), 0, layer.data.shape[0] - 1))
        if frame != self.frame:
            self.frame_spin.setValue(frame)
        return self.seed_at((index[1], index[2]), blocking=blocking)

    def _on_mouse(self, viewer: Any, event: Any) -> Any:
        """A click without a drag, in pan/zoom mode, seeds a nodule."""
        if not self.seed_button.isChecked() or self.image_layer() is None:
            return
        active = viewer.layers.selection.active
        if active is not None and getattr(active, "mode", "pan_zoom") != "pan_zoom":
            return
        start = np.asarray(event.position, dtype=float)
        yield
        moved = False
        while event.type == "mouse_move":
            moved = True
            yield
        if moved and np.linalg.norm(np.asarray(event.position, dtype=float) - start) > 1e-6:
            return
        self.seed_at_world(start)

    def clear_nodules(self) -> None:
        """Drop every nodule of the frame (the lines stay)."""
        if self.state is None:
            return
        self.state.nodules, self.state.masks = [], []
        self._show_nodules()
        self._refresh_table()
        self.changed.emit()

    # --- results -----------------------------------------------------------------------------

    def _new_state(self, frame: int, analysis: UltrasoundAnalysis) -> FrameState:
        return FrameState(
            frame=frame,
            image=analysis.image,
            despeckled=analysis.despeckled,
            spacing_mm=analysis.spacing_mm,
            calibrated=analysis.calibrated,
            skin=analysis.skin,
            fascia=analysis.fascia,
            warnings=list(analysis.warnings),
        )

    def _on_lines(self, result: tuple[int, UltrasoundAnalysis]) -> None:
        frame, analysis = result
        self.state = self._new_state(frame, analysis)
        self._say_units(analysis.calibrated)
        self._show_lines()
        self._show_nodules()
        self._refresh_table()
        self.status.setStyleSheet("")
        self.status.setText(
            "Skin (green) and fascia (orange) found; drag the fascia's vertices to correct it "
            "(select the 'us lines' layer, direct mode). Click a nodule to measure it."
        )
        self.changed.emit()

    def _on_nodules(self, result: tuple[int, UltrasoundAnalysis]) -> None:
        frame, analysis = result
        state = self.state
        if state is None or state.frame != frame:
            state = self.state = self._new_state(frame, analysis)
        elif not state.fixed:
            state.fascia = analysis.fascia  # refined around the nodule(s), as the CLI does
        state.warnings = list(dict.fromkeys([*state.warnings, *analysis.warnings]))
        next_id = max((int(n["nodule_id"]) for n in state.nodules), default=0) + 1
        added = 0
        for n in analysis.nodules:
            mask = analysis.labels == int(n["nodule_id"])
            if not mask.any():
                continue
            if n["found_by"] == "automatic" and any(
                (m & mask).sum() > 0.5 * mask.sum() for m in state.masks
            ):
                continue  # a candidate already there (seeded or found before)
            state.nodules.append({**n, "nodule_id": next_id})
            state.masks.append(mask)
            next_id += 1
            added += 1
        if state.nodules:
            state.fixed = True
        self._say_units(state.calibrated)
        self._remeasure()
        self._show_lines()
        self._show_nodules()
        self._refresh_table()
        self.status.setStyleSheet("")
        if added:
            self.status.setText(f"{added} nodule(s) added on frame {frame}.")
        else:
            self.status.setText("No nodule found there.")
        self.changed.emit()

    def _remeasure(self) -> None:
        state = self.state
        if state is None or not state.nodules:
            return
        t0 = time.perf_counter()
        state.nodules, _signed = remeasure(
            state.nodules,
            state.masks,
            spacing_mm=state.spacing_mm,
            calibrated=state.calibrated,
            fascia=state.fascia,
            skin=state.skin,
        )
        self.last_remeasure_s = time.perf_counter() - t0

    # --- layers ------------------------------------------------------------------------------

    def _find(self, name: str) -> Any:
        return self.viewer.layers[name] if name in self.viewer.layers else None  # noqa: SIM401

    def lines_layer(self) -> Any:
        """The Shapes layer of the skin (path 0) and fascia (path 1), or None."""
        return self._find(LAYER_US_LINES)

    def _show_lines(self) -> None:
        state = self.state
        if state is None:
            return
        affine = self._affine()
        paths = [
            line_to_world(simplify_line(state.skin), state.frame, affine),
            line_to_world(simplify_line(state.fascia), state.frame, affine),
        ]
        layer = self.lines_layer()
        self._syncing = True
        try:
            if layer is None:
                image = self.image_layer()
                layer = self.viewer.add_shapes(
                    paths,
                    shape_type="path",
                    name=LAYER_US_LINES,
                    edge_color=[SKIN_COLOUR, FASCIA_COLOUR],
                    edge_width=0.25 if state.calibrated else 3.0,
                    ndim=3,
                    units=image.units,
                    metadata={"backmice_affine": affine, "lines": ("skin", "fascia")},
                )
                layer.events.data.connect(self._on_lines_edited)
            else:
                layer.data = [(p, "path") for p in paths]
                layer.edge_color = [SKIN_COLOUR, FASCIA_COLOUR]
        finally:
            self._syncing = False

    def _on_lines_edited(self, event: Any) -> None:
        if self._syncing or self.state is None:
            return
        action = str(getattr(event, "action", "changed"))
        if "changed" not in action.lower():
            return
        layer = self.lines_layer()
        if layer is None or len(layer.data) != 2:
            self.status.setText("The 'us lines' layer must hold two paths: the skin, the fascia.")
            return
        affine = self._affine()
        skin, _ = line_from_world(layer.data[0], affine)
        fascia, _ = line_from_world(layer.data[1], affine)
        self.set_lines(skin=skin, fascia=fascia)

    def set_lines(self, *, skin: NDArray | None = None, fascia: NDArray | None = None) -> None:
        """Use these ``(col, row)`` lines (edited by hand) and re-measure every nodule."""
        state = self.state
        if state is None:
            return
        if skin is not None:
            state.skin = np.asarray(skin, dtype=float)
        if fascia is not None:
            state.fascia = np.asarray(fascia, dtype=float)
        state.fixed = True
        self._remeasure()
        self._show_axes()
        self._refresh_table()
        took = f" in {self.last_remeasure_s * 1000:.0f} ms" if self.last_remeasure_s else ""
        self.status.setStyleSheet("")
        self.status.setText(f"Lines edited; {len(state.nodules)} nodule(s) re-measured{took}.")
        self.changed.emit()

    def _show_nodules(self) -> None:
        state = self.state
        image = self.image_layer()
        if state is None or image is None:
            return
        shape = tuple(image.data.shape[:3])
        data = np.zeros(shape, dtype=np.uint32)
        for row, mask in zip(state.nodules, state.masks, strict=True):
            data[state.frame][mask & (data[state.frame] == 0)] = int(row["nodule_id"])
        layer = self._find(LAYER_US_NODULES)
        affine = self._affine()
        self._syncing = True
        try:
            if layer is None or layer.data.shape != shape:
                if layer is not None:
                    self.viewer.layers.remove(layer)
                layer = self.viewer.add_labels(
                    data,
                    name=LAYER_US_NODULES,
                    opacity=0.9,
                    colormap=_nodule_colours(),
                    units=image.units,
                    metadata={"backmice_affine": affine, "units": state.units},
                    **layer_transform(affine),
                )
                layer.contour = 2
                layer.events.paint.connect(self._on_painted)
            else:
                layer.data = data
        finally:
            self._syncing = False
        self._show_axes()

    def _show_axes(self) -> None:
        state = self.state
        if state is None:
            return
        affine = self._affine()
        lines = []
        for n in state.nodules:
            for key in ("long_axis_ends_rc", "short_axis_ends_rc"):
                e = np.asarray(n[key], dtype=float)
                lines.append(line_to_world(e[:, ::-1], state.frame, affine))
        layer = self._find(LAYER_US_AXES)
        if layer is not None:
            self.viewer.layers.remove(layer)
        if lines:
            layer = self.viewer.add_shapes(
                lines,
                shape_type="line",
                name=LAYER_US_AXES,
                edge_color=AXES_COLOUR,
                edge_width=0.15 if state.calibrated else 2.0,
                ndim=3,
                units=self.image_layer().units,
            )
            layer.editable = False
        # Keep the editable lines on top and active for editing.
        lines_layer = self.lines_layer()
        if lines_layer is not None:
            layers = self.viewer.layers
            layers.move(layers.index(lines_layer), len(layers))
            self.viewer.layers.selection.active = lines_layer
            lines_layer.mode = "pan_zoom"

    def _on_painted(self, event: Any = None) -> None:
        """A paint or erase on the nodules layer: re-measure from the painted masks."""
        state = self.state
        layer = self._find(LAYER_US_NODULES)
        if self._syncing or state is None or layer is None:
            return
        data = np.asarray(layer.data[state.frame])
        keep_rows, keep_masks = [], []
        for row in state.nodules:
            mask = data == int(row["nodule_id"])
            if mask.any():
                keep_rows.append({**row, "contour": _contour_of(mask)})
                keep_masks.append(mask)
        state.nodules, state.masks = keep_rows, keep_masks
        self._remeasure()
        self._show_axes()
        self._refresh_table()
        self.changed.emit()

    # --- table -------------------------------------------------------------------------------

    def nodules(self) -> list[dict]:
        """The current rows (a copy), measured against the current lines."""
        return [dict(n) for n in (self.state.nodules if self.state is not None else [])]

    def _refresh_table(self) -> None:
        rows = self.nodules()
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            for j, (_header, key, fmt) in enumerate(_TABLE):
                value = row.get(key)
                if fmt is not None and isinstance(value, int | float) and math.isfinite(value):
                    text = fmt.format(value)
                else:
                    text = "" if value is None else str(value)
                self.table.setItem(i, j, QTableWidgetItem(text))

    # --- save --------------------------------------------------------------------------------

    def result(self) -> UltrasoundResult | None:
        """The frame as the reader left it, as the command line's result object."""
        if self.state is None or self.volume is None:
            return None
        layer = self.image_layer()
        path = (layer.metadata or {}).get("study_path") if layer is not None else None
        study = Path(path).name if path else ""
        return frame_result(self.state, self.volume, stack=self.stack, study=study)

    def save(self, folder: str | os.PathLike[str] | None = None, *, blocking: bool = False) -> Any:
        """Write the files of ``backmice analyze`` for this frame into ``folder`` (asked if None).

        Returns
        -------
        napari.qt.threading.FunctionWorker, or dict of str to Path when ``blocking``.
        """
        result = self.result()
        if result is None:
            self.status.setText("Nothing to save yet: find the fascia or click a nodule.")
            return None
        if folder is None:
            folder = QFileDialog.getExistingDirectory(self, "Save the ultrasound analysis to")
            if not folder:
                return None
        out = Path(folder)

        def done(written: dict) -> None:
            self.status.setStyleSheet("")
            self.status.setText(f"Saved {', '.join(p.name for p in written.values())} to {out}")
            self.changed.emit()

        return self._start(
            lambda: write_ultrasound(result, out), done, blocking=blocking, what="Saving"
        )
