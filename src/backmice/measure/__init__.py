"""Measuring nodules in millimetres: size and shape of labelled masks (:mod:`.shape`)."""

from __future__ import annotations

from backmice.measure.shape import (
    InPlaneAxes,
    NoduleShape,
    axis_lengths_in_plane,
    centroid_lps,
    distance_stats,
    ellipsoid_axes_mm,
    feret_diameter_mm,
    long_short_axes_mm,
    measure_labels,
    volume_mm3,
    voxel_volume_mm3,
)

__all__ = [
    "InPlaneAxes",
    "NoduleShape",
    "axis_lengths_in_plane",
    "centroid_lps",
    "distance_stats",
    "ellipsoid_axes_mm",
    "feret_diameter_mm",
    "long_short_axes_mm",
    "measure_labels",
    "volume_mm3",
    "voxel_volume_mm3",
]
