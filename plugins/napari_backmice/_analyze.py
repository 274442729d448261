"""The Analyze widget: choose the stack and method, preview the fat threshold, run.

Thin over :mod:`backmice.analysis`:

- the stack and method drop-downs map to ``analyze(..., series_uid=,
  options=AnalysisOptions(method=))`` ("auto" lets :func:`choose_stacks` pick);
- the threshold slider previews ``fat score >= threshold`` on the current slice
  only: the fat score is computed once per stack in a background worker
  (:func:`backmice.preview.fat_score`, the same stages as the analysis), and an
  update is :func:`backmice.preview.threshold_slice` on the slice shown;
- Run calls :func:`backmice.analysis.analyze` in a background worker with a
  progress bar, then adds the nodule labels, the fascia (the deep side as an
  editable labels layer: label 1 = deep to the fascia, drawn as its contour)
  and the body outline, and hands the analysis to the other widgets through
  :func:`napari_backmice._state.state_for`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from backmice.analysis import Analysis, AnalysisOptions, analyze
from backmice.preview import FatScore, fat_score, threshold_slice
from backmice.segment import Method

from ._layers import (
    WORLD_AXIS_LABELS,
    display_view,
    layer_transform,
    layer_units,
    world_from_lps,
)
from ._state import LAYER_BODY, LAYER_FASCIA, LAYER_NODULES, LAYER_PREVIEW, camera, state_for

if TYPE_CHECKING:
    import napari

__all__ = ["AnalyzeWidget", "FatScore", "result_layers"]

log = logging.getLogger(__name__)

AUTO = "auto"
#: Colours of the result layers (RGBA): the fascia orange, the body outline green.
FASCIA_COLOUR = (1.0, 0.55, 0.0, 1.0)
BODY_COLOUR = (0.3, 0.9, 0.3, 1.0)
PREVIEW_COLOUR = (1.0, 0.9, 0.0, 1.0)


def _layer_meta(analysis: Analysis) -> dict[str, Any]:
    return {
        "backmice_affine": np.asarray(analysis.volume.affine, dtype=float),
        "series_uid": analysis.volume.series_uid,
        "units": analysis.volume.units,
        "study": analysis.study,
        # The writers' needs: the source series (DICOM SEG references it) and the rows.
        "source_paths": [str(p) for p in analysis.stacks[0].paths] if analysis.stacks else [],
    }


def result_layers(analysis: Analysis) -> list[tuple[Any, dict, str]]:
    """Layer data tuples of an analysis: nodules, fascia (deep side) and body outline.

    Parameters
    ----------
    analysis : Analysis

    Returns
    -------
    list of (data, kwargs, "labels")
        ``LAYER_NODULES``: uint32 labels, label = ``nodule_id``, the SPEC rows in
        ``metadata["nodules"]``. ``LAYER_FASCIA``: uint8, 1 deep to the fascia,
        drawn as a contour (paint to correct it). ``LAYER_BODY``: uint8 body
        mask drawn as its outline. All in the analysis volume's geometry; for
        an axial volume the data are the analysis' own ``(slice, row, col)``
        arrays, otherwise views transposed by ``metadata["axes"]``
        (:func:`napari_backmice._layers.display_view`).
    """
    affine = analysis.volume.affine
    arrays = {
        # A copy: painting the layer must not change what the analysis found.
        LAYER_NODULES: analysis.labels.astype(np.uint32, copy=True),
        LAYER_FASCIA: analysis.fascia.deep.astype(np.uint8),
        LAYER_BODY: analysis.body.mask.astype(np.uint8),
    }
    style = {
        LAYER_NODULES: {"opacity": 0.6},
        LAYER_FASCIA: {"opacity": 0.9, "colormap": _single_colour(FASCIA_COLOUR)},
        LAYER_BODY: {"opacity": 0.8, "colormap": _single_colour(BODY_COLOUR)},
    }
    out = []
    for name, array in arrays.items():
        data, layer_affine, axes = display_view(array, affine)
        meta = {**_layer_meta(analysis), "backmice_affine": layer_affine, "axes": axes}
        if name == LAYER_NODULES:
            meta["nodules"] = analysis.nodules
        kwargs = {
            **layer_transform(layer_affine),
            "units": layer_units(analysis.volume.units),
            "axis_labels": WORLD_AXIS_LABELS,
            "name": name,
            "metadata": meta,
            **style[name],
        }
        out.append((data, kwargs, "labels"))
    return out


def _single_colour(rgba: tuple[float, float, float, float]):
    from napari.utils.colormaps import DirectLabelColormap

    return DirectLabelColormap(color_dict={None: (0, 0, 0, 0), 0: (0, 0, 0, 0), 1: rgba})


def _find_layer(viewer: Any, name: str) -> Any:
    """The layer called ``name``, or None (napari's LayerList has no ``get``)."""
    try:
        return viewer.layers[name]
    except KeyError:
        return None


class _Relay(QObject):
    """Carries progress from the worker thread to the GUI thread (queued)."""

    progress = Signal(str, float)


class AnalyzeWidget(QWidget):
    """Choose stack and method, preview the fat threshold, run the analysis.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.fat_score: FatScore | None = None
        self.analysis: Analysis | None = None
        self._worker: Any = None
        self._preview_worker: Any = None
        self._preview_slice: int | None = None
        self._preview_score: np.ndarray | None = None
        self._relay = _Relay()
        self._relay.progress.connect(self._on_progress)

        self.stack_box = QComboBox()
        self.method_box = QComboBox()
        self.method_box.addItems([AUTO, *(str(m) for m in Method)])
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setValue(50)
        self.threshold_label = QLabel("0.50")
        self.preview_button = QPushButton("Preview threshold")
        self.preview_button.setCheckable(True)
        self.preview_button.setToolTip(
            "Show fat score >= threshold on the current slice (the score is computed once)"
        )
        self.run_button = QPushButton("Run analysis")
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.status = QLabel("Open a study, then Run.")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.addRow("Stack", self.stack_box)
        form.addRow("Method", self.method_box)
        row = QHBoxLayout()
        row.addWidget(self.slider)
        row.addWidget(self.threshold_label)
        form.addRow("Fat threshold", row)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.preview_button)
        layout.addWidget(self.run_button)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addStretch(1)

        self.slider.valueChanged.connect(self._on_threshold)
        self.preview_button.toggled.connect(self._on_preview_toggled)
        self.run_button.clicked.connect(lambda: self.run())
        self.viewer.dims.events.current_step.connect(self._on_step)
        self.viewer.layers.events.inserted.connect(self._refresh_stacks)
        self.viewer.layers.events.removed.connect(self._refresh_stacks)
        self._refresh_stacks()

    # --- choices -----------------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        """The fat threshold on the slider (0..1)."""
        return self.slider.value() / 100.0

    def _refresh_stacks(self, event: Any = None) -> None:
        current = self.stack_box.currentData()
        self.stack_box.blockSignals(True)
        self.stack_box.clear()
        self.stack_box.addItem(AUTO, None)
        for layer in self.viewer.layers:
            meta = getattr(layer, "metadata", {}) or {}
            if meta.get("study_path") and meta.get("series_uid"):
                self.stack_box.addItem(
                    layer.name, (meta["study_path"], meta["series_uid"], meta.get("role", ""))
                )
        index = max(0, self.stack_box.findData(current)) if current is not None else 0
        self.stack_box.setCurrentIndex(index)
        self.stack_box.blockSignals(False)

    def study_path(self) -> str | None:
        """The study to analyse: the chosen stack's, else the first loaded one's."""
        data = self.stack_box.currentData()
        if data:
            return data[0]
        for layer in self.viewer.layers:
            path = (getattr(layer, "metadata", {}) or {}).get("study_path")
            if path:
                return path
        return self.state.study_path

    def _choices(self) -> tuple[str | None, Method | None, str | None]:
        """(study path, method, series UID) for the analysis.

        A Dixon fat or water stack chosen means the Dixon method on its fat +
        water pair (which may be two series), so no series is imposed then. An
        in-phase or opposed-phase echo chosen keeps its series: both its echoes
        are used when they share it (``inout``), else the echo itself.
        """
        data = self.stack_box.currentData()
        method = (
            None if self.method_box.currentText() == AUTO else Method(self.method_box.currentText())
        )
        series = data[1] if data else None
        if data and str(data[2]) in ("dixon_fat", "dixon_water") and method in (None, Method.DIXON):
            return self.study_path(), Method.DIXON, None
        return self.study_path(), method, series

    # --- threshold preview -------------------------------------------------------------------

    def _on_threshold(self, value: int) -> None:
        self.threshold_label.setText(f"{value / 100:.2f}")
        self.update_preview()

    def _on_step(self, event: Any = None) -> None:
        self.update_preview()

    def _on_preview_toggled(self, on: bool) -> None:
        if not on:
            if LAYER_PREVIEW in self.viewer.layers:
                self.viewer.layers[LAYER_PREVIEW].visible = False
            return
        if self.fat_score is not None:
            self._show_preview_layer()
            return
        self.start_preview()

    def start_preview(self) -> Any:
        """Compute the fat score of the chosen stack in a background worker.

        Returns
        -------
        napari.qt.threading.FunctionWorker
            Already started; the preview shows when it returns.
        """
        from napari.qt.threading import create_worker

        path, method, series = self._choices()
        if path is None:
            self.status.setText("Open a study first.")
            self.preview_button.setChecked(False)
            return None
        self.status.setText("Computing the fat score for the preview…")
        worker = create_worker(fat_score, path, method=method, series_uid=series)
        worker.returned.connect(self._on_score)
        worker.errored.connect(self._on_error)
        self._preview_worker = worker
        worker.start()
        return worker

    def _on_score(self, fat_score: FatScore) -> None:
        self.fat_score = fat_score
        self.status.setText(f"Fat score ready ({fat_score.method}); move the slider.")
        if self.preview_button.isChecked():
            self._show_preview_layer()

    def _show_preview_layer(self) -> None:
        assert self.fat_score is not None
        score = self.fat_score
        view, view_aff, axes = display_view(score.score, score.affine)
        self._preview_score = view
        layer = _find_layer(self.viewer, LAYER_PREVIEW)
        if layer is None or layer.data.shape != view.shape:
            if layer is not None:
                self.viewer.layers.remove(layer)
            layer = self.viewer.add_labels(
                np.zeros(view.shape, dtype=np.uint8),
                name=LAYER_PREVIEW,
                opacity=0.45,
                colormap=_single_colour(PREVIEW_COLOUR),
                metadata={
                    "backmice_affine": view_aff,
                    "axes": axes,
                    "series_uid": score.series_uid,
                },
                units=self.viewer.layers[0].units if len(self.viewer.layers) else None,
                **layer_transform(view_aff),
            )
            layer.editable = False
            self._preview_slice = None
        layer.visible = True
        self.update_preview()

    def current_slice(self, layer: Any) -> int:
        """The data slice index of ``layer`` at the viewer's current position."""
        point = np.asarray(self.viewer.dims.point, dtype=float)
        if len(point) != layer.ndim:
            point = point[-layer.ndim :]
        index = np.asarray(layer.world_to_data(point), dtype=float)
        return int(np.clip(np.round(index[0]), 0, layer.data.shape[0] - 1))

    def update_preview(self) -> None:
        """Threshold the fat score on the current slice only and redraw the overlay."""
        if self.fat_score is None or LAYER_PREVIEW not in self.viewer.layers:
            return
        layer = self.viewer.layers[LAYER_PREVIEW]
        if not layer.visible:
            return
        k = self.current_slice(layer)
        data = layer.data
        if self._preview_slice is not None and self._preview_slice != k:
            data[self._preview_slice] = 0
        threshold_slice(self._preview_score, k, self.threshold, out=data[k])
        self._preview_slice = k
        layer.refresh()

    # --- the analysis ------------------------------------------------------------------------

    def run(self, *, blocking: bool = False) -> Any:
        """Run the analysis with the chosen stack, method and threshold.

        Parameters
        ----------
        blocking : bool
            Run in this thread and return the Analysis (the command line's
            screenshot); by default a background worker is started and returned.

        Returns
        -------
        napari.qt.threading.FunctionWorker, or Analysis when ``blocking``; for an
        ultrasound stack the docked Ultrasound widget (nothing runs here).
        """
        path, method, series = self._choices()
        if path is None:
            self.status.setText("Open a study first.")
            return None
        if self._ultrasound_only():
            return self._hand_to_ultrasound()
        options = AnalysisOptions(method=method, threshold=self.threshold)
        self.run_button.setEnabled(False)
        self.progress.setValue(0)
        self.status.setText("Running…")
        self.state.study_path = path
        if blocking:
            try:
                analysis = analyze(
                    path, options=options, series_uid=series, progress=self._relay.progress.emit
                )
            except Exception as exc:
                self._on_error(exc)
                raise
            self._on_done(analysis)
            return analysis
        from napari.qt.threading import create_worker

        worker = create_worker(
            analyze, path, options=options, series_uid=series, progress=self._relay.progress.emit
        )
        worker.returned.connect(self._on_done)
        worker.errored.connect(self._on_error)
        self._worker = worker
        worker.start()
        return worker

    def _ultrasound_only(self) -> bool:
        """The chosen stack is ultrasound, or (auto) every loaded stack is."""
        data = self.stack_box.currentData()
        if data:
            return str(data[2]) == "us"
        roles = [
            (getattr(layer, "metadata", {}) or {}).get("role")
            for layer in self.viewer.layers
            if (getattr(layer, "metadata", {}) or {}).get("study_path")
        ]
        return bool(roles) and all(role == "us" for role in roles)

    def _hand_to_ultrasound(self) -> Any:
        """Ultrasound is analysed in the Ultrasound widget (lines, a click seeds): dock it."""
        try:
            _dock, widget = self.viewer.window.add_plugin_dock_widget("backmice", "Ultrasound")
        except (KeyError, ImportError, AttributeError) as exc:
            self.status.setText(f"Ultrasound: open the Ultrasound widget ({exc}).")
            return None
        self.status.setText(
            "Ultrasound is measured in the Ultrasound widget: Find fascia, then click a nodule."
        )
        return widget

    def _on_progress(self, stage: str, fraction: float) -> None:
        self.progress.setValue(round(100 * fraction))
        self.status.setText(f"{stage}…")

    def _on_error(self, exc: BaseException) -> None:
        self.run_button.setEnabled(True)
        self.status.setText(f"Failed: {exc}")
        log.error("analysis failed: %s", exc)

    def _on_done(self, analysis: Analysis) -> None:
        self.analysis = analysis
        self.run_button.setEnabled(True)
        self.progress.setValue(100)
        for data, kwargs, _kind in result_layers(analysis):
            name = kwargs["name"]
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            layer = self.viewer.add_labels(data, **kwargs)
            if name in (LAYER_FASCIA, LAYER_BODY):
                layer.contour = 2 if name == LAYER_FASCIA else 1
        if analysis.nodules:
            import pandas as pd

            self.viewer.layers[LAYER_NODULES].features = pd.DataFrame(
                [{"index": 0}] + [{"index": r["nodule_id"], **r} for r in analysis.nodules]
            )
        self.fat_score = FatScore(
            analysis.fat.score, analysis.volume.affine, analysis.method, analysis.volume.series_uid
        )
        if self.preview_button.isChecked():
            self._show_preview_layer()
        self._show_only_analysed(analysis)
        self.viewer.layers.selection.active = self.viewer.layers[LAYER_NODULES]
        n = len(analysis.nodules)
        self.status.setText(
            f"{n} nodule(s) by {analysis.method} in "
            f"{sum(analysis.timings.values()):.1f} s"
            + (f"; {len(analysis.warnings)} warning(s)" if analysis.warnings else "")
        )
        self.state.set_analysis(analysis)

    def _show_only_analysed(self, analysis: Analysis) -> None:
        """Of the study's image layers, leave only the analysed stack's visible."""
        from napari.layers import Image

        volume = analysis.volume
        images = [
            layer
            for layer in self.viewer.layers
            if isinstance(layer, Image) and (layer.metadata or {}).get("series_uid")
        ]
        analysed = [
            layer
            for layer in images
            if layer.metadata["series_uid"] == volume.series_uid
            and layer.metadata.get("role") == str(volume.role)
        ]
        if len(analysed) != 1:  # not one layer to keep: change nothing
            return
        for layer in images:
            layer.visible = layer is analysed[0]

    def go_to_nodule(self, nodule_id: int) -> None:
        """Move the viewer to a nodule's centroid slice and centre it."""
        if self.analysis is None:
            return
        row = next((r for r in self.analysis.nodules if r["nodule_id"] == nodule_id), None)
        if row is None:
            return
        world = world_from_lps([row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]])
        point = list(self.viewer.dims.point)
        point[-3:] = world
        self.viewer.dims.point = point
        camera(self.viewer).center = tuple(world[-2:])
