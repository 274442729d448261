"""The Measure widget: a ruler in mm and a per-side fat ROI.

Ruler
    A Shapes layer of lines (``LAYER_RULERS``) placed in the image's geometry,
    so its vertices are ``(slice, row, col)`` indices; a line's length is
    ``|A (v1 - v0)|`` with ``A`` the volume's index-to-LPS matrix, which is
    right for anisotropic and oblique series. The length shows as text on the
    line and follows every edit.
ROI
    Rectangles or polygons (``LAYER_ROIS``) drawn on a slice; inside each, the
    mean and median Dixon fat fraction (or T1 fat score) are reported for the
    patient's left and right of the body's midsagittal plane (the same midline
    the analysis uses for ``side``), for grading multifidus fatty replacement.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtWidgets import (
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from backmice.vocab import Side

from ._layers import layer_transform
from ._state import state_for

if TYPE_CHECKING:
    import napari

    from backmice.analysis import Analysis

__all__ = [
    "LAYER_ROIS",
    "LAYER_RULERS",
    "MeasureWidget",
    "RoiStats",
    "line_lengths_mm",
    "midline_x_mm",
    "roi_stats",
]

log = logging.getLogger(__name__)

LAYER_RULERS = "rulers"
#: Ruler line and text: magenta reads on white fat and on dark muscle alike.
RULER_COLOUR = "#ff3df5"
LAYER_ROIS = "ROIs"


def line_lengths_mm(lines: list[np.ndarray], affine: np.ndarray) -> np.ndarray:
    """Length in mm of each line given by its end points in ``(slice, row, col)`` index.

    Parameters
    ----------
    lines : list of ndarray, each shape (2, 3)
        End points as (fractional) voxel indices.
    affine : ndarray of shape (4, 4)
        Index → LPS mm.

    Returns
    -------
    ndarray of float, shape (n,)
    """
    linear = np.asarray(affine, dtype=float)[:3, :3]
    out = [float(np.linalg.norm(linear @ (np.asarray(v)[-1] - np.asarray(v)[0]))) for v in lines]
    return np.asarray(out, dtype=float)


def midline_x_mm(analysis: Analysis) -> float | None:
    """LPS x of the body's midsagittal plane, as the analysis finds it for ``side``.

    The mean x of the body mask's voxels (sub-sampled by 2 in-plane); None
    without calibration.
    """
    from backmice.analysis import midline_x_mm as body_midline

    if not analysis.volume.calibrated:
        return None
    return body_midline(analysis.body.mask, analysis.volume.affine)


@dataclass(frozen=True, slots=True)
class RoiStats:
    """Fat inside one ROI on one side.

    Attributes
    ----------
    roi : int
        1-based index of the shape in the ROI layer.
    slice : int
        Slice index the ROI lies on.
    side : Side
        ``left`` or ``right`` (patient), or ``midline`` for an ROI when the
        midline is unknown (uncalibrated).
    n_pixels : int
    area_mm2 : float
    mean, median : float
        Of the fat fraction (Dixon) or fat score (T1); NaN when empty.
    quantity : str
        ``fat_fraction`` or ``fat_score``.
    """

    roi: int
    slice: int
    side: Side
    n_pixels: int
    area_mm2: float
    mean: float
    median: float
    quantity: str


def roi_stats(
    shapes: list[np.ndarray],
    analysis: Analysis,
    *,
    shapes_affine: np.ndarray | None = None,
) -> list[RoiStats]:
    """Mean and median fat in each drawn ROI, split at the body midline.

    Parameters
    ----------
    shapes : list of ndarray, each shape (n_vertices, 3)
        Polygons/rectangles, in the index of ``shapes_affine``; each is taken
        to ``(slice, row, col)`` of the analysis volume and rasterised on its
        (rounded) slice.
    analysis : Analysis
    shapes_affine : ndarray of shape (4, 4), optional
        Index → LPS of the shapes' layer; default the analysis volume's.

    Returns
    -------
    list of RoiStats
        For each ROI, one entry per side that it covers.
    """
    from skimage.draw import polygon2mask

    fat = analysis.fat
    values = fat.fat_fraction if fat.fat_fraction is not None else fat.score
    quantity = "fat_fraction" if fat.fat_fraction is not None else "fat_score"
    affine = analysis.volume.affine
    shape = values.shape
    pixel_mm2 = float(np.linalg.norm(np.cross(affine[:3, 1], affine[:3, 2])))
    midline = midline_x_mm(analysis)
    rows, cols = np.mgrid[0 : shape[1], 0 : shape[2]]
    out: list[RoiStats] = []
    to_volume = (
        np.eye(4) if shapes_affine is None else np.linalg.inv(affine) @ np.asarray(shapes_affine)
    )
    for i, vertices in enumerate(shapes, start=1):
        vertices = np.asarray(vertices, dtype=float)
        vertices = (to_volume[:3, :3] @ vertices.T).T + to_volume[:3, 3]
        k = int(np.clip(np.round(vertices[:, 0].mean()), 0, shape[0] - 1))
        mask = polygon2mask(shape[1:], vertices[:, 1:])
        if midline is None:
            sides = {Side.MIDLINE: mask}
        else:
            x = affine[0, 3] + affine[0, 0] * k + affine[0, 1] * rows + affine[0, 2] * cols
            # LPS +x is the patient's left.
            sides = {Side.LEFT: mask & (x > midline), Side.RIGHT: mask & (x <= midline)}
        for side, part in sides.items():
            n = int(part.sum())
            if n == 0:
                continue
            v = values[k][part]
            out.append(
                RoiStats(
                    roi=i,
                    slice=k,
                    side=side,
                    n_pixels=n,
                    area_mm2=n * pixel_mm2,
                    mean=float(np.mean(v)),
                    median=float(np.median(v)),
                    quantity=quantity,
                )
            )
    return out


def _reference_image(viewer: Any) -> Any:
    """The layer whose geometry new shapes take: the analysed image, else the first image."""
    analysis = state_for(viewer).analysis
    images = [layer for layer in viewer.layers if layer.__class__.__name__ == "Image"]
    if analysis is not None:
        for layer in images:
            if (layer.metadata or {}).get("series_uid") == analysis.volume.series_uid:
                return layer
    return images[0] if images else None


class MeasureWidget(QWidget):
    """Ruler (lines with their length in mm) and per-side fat ROI.

    Parameters
    ----------
    napari_viewer : napari.Viewer
    """

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.state = state_for(napari_viewer)
        self.ruler_button = QPushButton("Ruler (draw lines)")
        self.roi_button = QPushButton("ROI (draw rectangles or polygons)")
        self.measure_button = QPushButton("Measure ROIs")
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(["ROI", "slice", "side", "area mm²", "mean", "median"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        for w in (self.ruler_button, self.roi_button, self.measure_button, self.table, self.status):
            layout.addWidget(w)
        self.ruler_button.clicked.connect(self.ruler_layer)
        self.roi_button.clicked.connect(self.roi_layer)
        self.measure_button.clicked.connect(self.measure_rois)
        self.stats: list[RoiStats] = []

    # --- geometry ----------------------------------------------------------------------------

    def _affine(self) -> np.ndarray | None:
        """Index → LPS of the layer new shapes share their geometry with."""
        from ._state import LAYER_NODULES

        if LAYER_NODULES in self.viewer.layers:
            return np.asarray(self.viewer.layers[LAYER_NODULES].metadata["backmice_affine"])
        ref = _reference_image(self.viewer)
        if ref is None:
            return None
        return np.asarray((ref.metadata or {}).get("backmice_affine"), dtype=float)

    def _shapes_layer(self, name: str, **kwargs: Any) -> Any:
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
        else:
            affine = self._affine()
            if affine is None or affine.shape != (4, 4):
                self.status.setText("Open a study first.")
                return None
            layer = self.viewer.add_shapes(
                name=name,
                ndim=3,
                metadata={"backmice_affine": affine},
                units=self.viewer.layers[0].units if len(self.viewer.layers) else None,
                **layer_transform(affine),
                **kwargs,
            )
        self.viewer.layers.selection.active = layer
        return layer

    # --- ruler -------------------------------------------------------------------------------

    def ruler_layer(self) -> Any:
        """The rulers layer (created on first use), active, in line-drawing mode."""
        existed = LAYER_RULERS in self.viewer.layers
        layer = self._shapes_layer(
            LAYER_RULERS,
            edge_color=RULER_COLOUR,
            edge_width=0.6,
            features={"length_mm": np.zeros(0)},
            text={
                "string": "{length_mm:.1f} mm",
                "color": RULER_COLOUR,
                "size": 12,
                "anchor": "upper_left",
                # Above the line's start, by a few voxels of the layer.
                "translation": [0, -4, 0],
            },
        )
        if layer is None:
            return None
        if not existed:
            layer.events.data.connect(self._update_lengths)
        layer.mode = "add_line"
        return layer

    def _update_lengths(self, event: Any = None) -> None:
        layer = self.viewer.layers[LAYER_RULERS]
        affine = np.asarray(layer.metadata["backmice_affine"], dtype=float)
        lengths = line_lengths_mm(list(layer.data), affine)
        features = layer.features
        if len(features) != len(lengths):
            import pandas as pd

            features = pd.DataFrame({"length_mm": lengths})
        else:
            features = features.copy()
            features["length_mm"] = lengths
        layer.features = features
        layer.refresh_text()

    def ruler_lengths(self) -> np.ndarray:
        """Length of every ruler line, mm."""
        if LAYER_RULERS not in self.viewer.layers:
            return np.zeros(0)
        layer = self.viewer.layers[LAYER_RULERS]
        return line_lengths_mm(list(layer.data), layer.metadata["backmice_affine"])

    # --- ROI ---------------------------------------------------------------------------------

    def roi_layer(self) -> Any:
        """The ROI layer (created on first use), active, in rectangle mode."""
        existed = LAYER_ROIS in self.viewer.layers
        layer = self._shapes_layer(
            LAYER_ROIS, edge_color="cyan", face_color=[0, 1, 1, 0.15], edge_width=0.5
        )
        if layer is None:
            return None
        if not existed:
            layer.events.data.connect(lambda event=None: self.measure_rois())
        layer.mode = "add_rectangle"
        return layer

    def measure_rois(self) -> list[RoiStats]:
        """Measure every ROI and fill the table; returns the numbers."""
        analysis = self.state.analysis
        if analysis is None:
            self.status.setText("Run Analyze first: the ROI reads its fat map.")
            return []
        if LAYER_ROIS not in self.viewer.layers:
            return []
        layer = self.viewer.layers[LAYER_ROIS]
        self.stats = roi_stats(
            [np.asarray(s) for s in layer.data],
            analysis,
            shapes_affine=np.asarray(layer.metadata["backmice_affine"], dtype=float),
        )
        self.table.setRowCount(len(self.stats))
        for i, s in enumerate(self.stats):
            cells = (
                str(s.roi),
                str(s.slice),
                str(s.side),
                f"{s.area_mm2:.0f}",
                f"{s.mean:.3f}",
                f"{s.median:.3f}",
            )
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))
        quantity = self.stats[0].quantity.replace("_", " ") if self.stats else "fat"
        self.status.setText(f"{len(self.stats)} row(s); values are the {quantity}.")
        return self.stats
