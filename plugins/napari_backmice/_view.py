"""Open a study in napari with the plugin's widgets docked; screenshot a reading session.

What ``backmice view PATH [--screenshot FILE]`` runs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

from backmice.errors import InputError
from backmice.io import open_study

from ._reader import study_layers
from ._state import LAYER_NODULES, camera, state_for

__all__ = [
    "US_WIDGETS",
    "WIDGETS",
    "dock_widgets",
    "nodule_caption",
    "open_viewer",
    "screenshot_session",
    "show_native_plane",
    "us_caption",
    "widget_names",
]

log = logging.getLogger(__name__)

#: The plugin's widgets (manifest display names), docked in this order.
WIDGETS = ("Analyze", "Review", "Edit", "Measure")
#: The widgets docked for a study of ultrasound images only.
US_WIDGETS = ("Ultrasound", "Measure")


def dock_widgets(
    viewer: Any, *, width: int | None = None, names: tuple[str, ...] = WIDGETS
) -> dict[str, Any]:
    """Dock the plugin widgets ``names`` (manifest display names) on the right of the window.

    Widgets not contributed (yet) are skipped quietly. ``width`` (pixels)
    sets the dock column's width.

    Returns
    -------
    dict of str to QWidget
        The docked widgets by display name.
    """
    docked: dict[str, Any] = {}
    docks = []
    for name in names:
        try:
            dock, widget = viewer.window.add_plugin_dock_widget("backmice", name, tabify=False)
        except (KeyError, ImportError, AttributeError, ModuleNotFoundError) as exc:
            log.info("widget %s not available: %s", name, exc)
            continue
        docked[name] = widget
        docks.append(dock)
    if width and docks:
        from qtpy.QtCore import Qt

        viewer.window._qt_window.resizeDocks(docks, [width] * len(docks), Qt.Orientation.Horizontal)
    return docked


def open_viewer(
    path: str | os.PathLike[str], *, show: bool = True, dock_width: int | None = 460
) -> tuple[Any, dict[str, Any]]:
    """A napari viewer with the study at ``path`` loaded and the widgets docked.

    Parameters
    ----------
    path : path-like
        DICOM folder, file or DICOMDIR.
    show : bool
        Show the window.
    dock_width : int or None
        Width of the widget column, pixels (None: napari's choice).

    Returns
    -------
    viewer : napari.Viewer
    widgets : dict of str to QWidget

    Raises
    ------
    InputError
        No DICOM images under ``path``.
    """
    import napari

    study = open_study(path)
    layers = study_layers(study)
    if not layers:
        raise InputError(f"no DICOM images found ({len(study.skipped)} file(s) skipped)", path=path)
    with warnings.catch_warnings():
        # PyQt5 deprecation and Qt6-only theme notices: not the user's business here.
        warnings.filterwarnings("ignore", message=".*PyQt5 backend is deprecated.*")
        warnings.filterwarnings("ignore", message=".*System theme detection.*")
        viewer = napari.Viewer(title=f"backmice — {Path(path).name}", show=show)
    for data, kwargs, _kind in layers:
        viewer.add_image(data, **kwargs)
    state_for(viewer).study_path = str(study.path)
    shown = [layer for layer in viewer.layers if layer.visible]
    show_native_plane(viewer, shown[0] if shown else viewer.layers[0])
    _canvas_overlay(viewer, "scale_bar").visible = True
    widgets = dock_widgets(viewer, width=dock_width, names=widget_names(layers))
    viewer.reset_view()
    return viewer, widgets


def _is_us(kwargs: dict) -> bool:
    return (kwargs.get("metadata") or {}).get("role") == "us"


def widget_names(layers: list[tuple[Any, dict, str]]) -> tuple[str, ...]:
    """The widgets to dock for a study's layer data: ultrasound only gets :data:`US_WIDGETS`.

    A study with MR and ultrasound gets the MR widgets and the Ultrasound one.
    """
    us = [_is_us(kwargs) for _data, kwargs, _kind in layers]
    if us and all(us):
        return US_WIDGETS
    return (*WIDGETS, "Ultrasound") if any(us) else WIDGETS


def screenshot_session(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    size: tuple[int, int] = (1600, 1000),
    reader: str = "screenshot",
) -> Path:
    """Open, analyse, select the first nodule and save a screenshot of the whole window.

    Parameters
    ----------
    path : path-like
        The study.
    out : path-like
        PNG to write (atomically).
    size : (int, int)
        Window width and height, pixels.
    reader : str
        Reader name of the throw-away review session the picture shows.

    Notes
    -----
    For the rest of the process, Qt settings live in a temporary folder
    (removed at the end), so the user's reader name and project are never
    used or changed; a dialog that still opens is answered "cancel".

    Returns
    -------
    Path
    """
    from qtpy.QtCore import QTimer
    from qtpy.QtWidgets import QApplication

    from backmice._atomic import atomic_path

    _quiet_qt5_notice()
    scratch = Path(tempfile.mkdtemp(prefix="backmice-screenshot-"))
    _scratch_settings(scratch, reader=reader)
    viewer, widgets = open_viewer(path, show=True)
    # Nobody is at the keyboard: a widget that asks (a reader's name) is answered "cancel".
    dismiss = QTimer()
    dismiss.timeout.connect(_reject_modal_dialogs)
    dismiss.start(100)
    try:
        viewer.window._qt_window.resize(*size)
        QApplication.processEvents()
        dock_widgets_width(viewer, 460)
        if "Analyze" not in widgets and "Ultrasound" in widgets:
            _ultrasound_shot(viewer, widgets["Ultrasound"])
            with atomic_path(out) as tmp:
                viewer.screenshot(str(tmp), canvas_only=False)
            return Path(out)
        analyze = widgets.get("Analyze")
        if analyze is None:
            from ._analyze import AnalyzeWidget

            analyze = AnalyzeWidget(viewer)
        analysis = analyze.run(blocking=True)
        state = state_for(viewer)
        if analysis.nodules:
            first = analysis.nodules[0]["nodule_id"]
            analyze.go_to_nodule(first)
            viewer.layers[LAYER_NODULES].selected_label = first
            state.nodule_selected.emit(first)
            text = _canvas_overlay(viewer, "text")
            text.visible = True
            text.position = "top_left"
            text.font_size = 10
            text.color = "white"
            text.text = nodule_caption(analysis.nodules[0])
            measure = widgets.get("Measure")
            if measure is not None:
                _ruler_across(viewer, measure, first)
            viewer.layers.selection.active = viewer.layers[LAYER_NODULES]
        for _ in range(3):
            QApplication.processEvents()
        viewer.reset_view()
        for _ in range(5):
            QApplication.processEvents()
        with atomic_path(out) as tmp:
            viewer.screenshot(str(tmp), canvas_only=False)
    finally:
        dismiss.stop()
        viewer.close()
        shutil.rmtree(scratch, ignore_errors=True)
    return Path(out)


def _ultrasound_shot(viewer: Any, widget: Any) -> None:
    """Ultrasound: lines and automatic candidates on the first frame, the first one captioned."""
    from qtpy.QtWidgets import QApplication

    widget.find_candidates(blocking=True)
    rows = widget.nodules()
    if rows:
        text = _canvas_overlay(viewer, "text")
        text.visible = True
        text.position = "top_left"
        text.font_size = 10
        text.color = "white"
        text.text = us_caption(rows[0], units=widget.state.units)
        widget.table.selectRow(0)
    for _ in range(3):
        QApplication.processEvents()
    viewer.reset_view()
    for _ in range(5):
        QApplication.processEvents()


def us_caption(row: dict, *, units: str = "mm") -> str:
    """One caption about an ultrasound nodule: axes, area, fascia, skin, suggestion."""
    loud = "" if units == "mm" else "  [UNCALIBRATED: px]"
    return (
        f"nodule {row['nodule_id']} ({row['status']}): {row['long_axis_mm']:.1f} x "
        f"{row['short_axis_mm']:.1f} {units}, {row['area_mm2']:.0f} {units}², "
        f"{row['relation']}{loud}\n"
        f"fascia offset {row['fascia_offset_mm']:+.1f} {units}, "
        f"skin depth {row['skin_depth_mm']:.1f} {units}\n"
        f"suggested: {row['suggested_subtype']}"
    )


def show_native_plane(viewer: Any, layer: Any) -> None:
    """Slide along ``layer``'s slice axis, so a sagittal or coronal stack shows in its plane.

    Superior is kept up on the screen when z is displayed vertically.
    """
    axes = tuple((layer.metadata or {}).get("axes", (0, 1, 2)))
    if layer.ndim != 3 or axes == (0, 1, 2):
        return
    normal = axes.index(0)  # the layer axis that runs along the volume's slices
    viewer.dims.order = (normal, *[i for i in range(3) if i != normal])
    with contextlib.suppress(AttributeError, ValueError):  # napari < 0.6 has no orientation
        camera(viewer).orientation = ("towards", "up", "right")


def dock_widgets_width(viewer: Any, width: int) -> None:
    """Hold the plugin's dock column at ``width`` pixels (long one-line labels are clipped)."""
    from qtpy.QtWidgets import QDockWidget

    window = viewer.window._qt_window
    for dock in window.findChildren(QDockWidget):
        if "(backmice)" in dock.windowTitle():
            dock.setMinimumWidth(width)
            dock.setMaximumWidth(width)


def _scratch_settings(folder: Path, *, reader: str) -> None:
    """Point this process's Qt settings at ``folder``, with a reader and a project there.

    The Review widget then opens its store-backed session (in ``folder``) and
    fills its table, without asking anyone and without touching the user's
    own settings or projects.
    """
    from qtpy.QtCore import QSettings

    for fmt in (QSettings.Format.NativeFormat, QSettings.Format.IniFormat):
        QSettings.setPath(fmt, QSettings.Scope.UserScope, str(folder / "settings"))
    settings = QSettings("backmice", "backmice")
    settings.setValue("reader", reader)
    settings.setValue("project", str(folder / "project"))
    settings.sync()


def _ruler_across(viewer: Any, measure: Any, nodule_id: int) -> None:
    """A ruler across a nodule, left to right, on the slice shown (for the docs' picture)."""
    import numpy as np

    nodules = viewer.layers[LAYER_NODULES]
    point = np.asarray(viewer.dims.point, dtype=float)[-3:]
    k = int(np.clip(np.round(nodules.world_to_data(point)[0]), 0, nodules.data.shape[0] - 1))
    rows, cols = np.nonzero(nodules.data[k] == nodule_id)
    if not rows.size:
        return
    r = int(np.median(rows))
    on_row = cols[rows == r]
    layer = measure.ruler_layer()
    if layer is None:
        return
    layer.add_lines(np.array([[k, r, on_row.min() - 0.5], [k, r, on_row.max() + 0.5]]))
    layer.mode = "pan_zoom"


def _canvas_overlay(viewer: Any, name: str) -> Any:
    """A canvas overlay (``viewer.canvas.overlays.<name>`` since napari 0.9, else legacy)."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    found = getattr(overlays, name, None)
    return (
        found
        if found is not None
        else getattr(viewer, f"{name}_overlay", None) or getattr(viewer, name)
    )


def _reject_modal_dialogs() -> None:
    from qtpy.QtWidgets import QApplication, QDialog

    dialog = QApplication.activeModalWidget()
    if isinstance(dialog, QDialog):
        log.info("screenshot: dismissed the dialog %r", dialog.windowTitle())
        dialog.reject()


def _quiet_qt5_notice() -> None:
    """No PyQt5-deprecation toast over the docs' picture (napari shows it once per process)."""
    try:
        import napari._qt.qt_main_window as main_window

        main_window.SHOW_QT_WARNING = False
    except (ImportError, AttributeError):  # pragma: no cover - napari internals moved
        pass


def nodule_caption(row: dict) -> str:
    """One line about a nodule for the canvas: size, fascia relation, suggestion."""
    return (
        f"nodule {row['nodule_id']}: {row['max_diameter_mm']:.1f} mm, "
        f"{row['volume_mm3'] / 1000:.2f} mL, {row['relation']}, {row['side']}\n"
        f"fascia offset {row['fascia_offset_mm']:+.1f} mm, "
        f"skin depth {row['skin_depth_mm']:.1f} mm\n"
        f"suggested: {row['suggested_subtype']}"
    )
