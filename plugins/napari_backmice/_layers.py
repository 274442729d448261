"""Where the plugin's layers live in napari's world, and how volumes become layers.

The world convention
--------------------
napari's world axes are **(z, y, x) of DICOM patient coordinates (LPS, mm)**:
axis 0 is superior (+z), axis 1 posterior (+y), axis 2 the patient's left
(+x). That is LPS with its axis order reversed, so an axial stack indexed
``(slice, row, col)`` lines up with the world axes and shows as radiologists
read it: the slider steps through axial slices, the patient's left on the
screen's right, the back at the bottom.

Every layer the plugin makes (images, nodule labels, the fascia, the body
outline, rulers and ROIs) is placed with :func:`layer_transform` of the
volume's affine, so they all overlay. A world position ``(z, y, x)`` is the
LPS point ``(x, y, z)``: :func:`lps_from_world` and :func:`world_from_lps`.

napari draws a 2D slice only of a layer whose data axes run roughly along the
world axes it slices (a sagittal stack's index (slice, row, col) runs along
(x, z, y): napari cannot invert that and fails to draw). Such a stack is shown
through a transposed view of its array (:func:`display_axes`, no copy), and
``metadata["backmice_affine"]`` is always the affine of the *layer's* data
index (:func:`view_affine`); ``metadata["axes"]`` says which volume axis each
layer axis is (``(0, 1, 2)`` for an axial stack, which is never transposed).

Ultrasound has no patient coordinates: its world is the image plane in mm
(axis 1 depth below the transducer face, axis 2 across), with frames of a cine
on axis 0, counted, not in mm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from backmice.io import Role, Stack, Volume

__all__ = [
    "WORLD_AXIS_LABELS",
    "display_axes",
    "display_view",
    "image_layer_data",
    "layer_name",
    "layer_transform",
    "layer_units",
    "lps_from_world",
    "view_affine",
    "world_affine",
    "world_from_lps",
]

#: Axis labels of the world (MR and everything in patient coordinates).
WORLD_AXIS_LABELS = ("z (S)", "y (P)", "x (L)")
#: Axis labels of an ultrasound image plane.
US_AXIS_LABELS = ("frame", "depth", "across")

#: Reverses LPS (x, y, z) into the world order (z, y, x), homogeneous.
_REVERSE = np.array(
    [[0, 0, 1, 0], [0, 1, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]],
    dtype=float,
)


def world_affine(affine: np.ndarray) -> np.ndarray:
    """The napari data-to-world matrix of a volume's index-to-LPS affine.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        ``(slice, row, col, 1)`` → LPS mm, as :attr:`backmice.Volume.affine`.

    Returns
    -------
    ndarray of shape (4, 4)
        ``(slice, row, col, 1)`` → world ``(z, y, x, 1)`` mm.
    """
    return _REVERSE @ np.asarray(affine, dtype=float)


def lps_from_world(world: Sequence[float] | np.ndarray) -> np.ndarray:
    """LPS mm ``(..., 3)`` of world points ``(..., 3)`` (the axis order reversed)."""
    return np.asarray(world, dtype=float)[..., ::-1]


def world_from_lps(lps: Sequence[float] | np.ndarray) -> np.ndarray:
    """World points ``(..., 3)`` of LPS mm ``(..., 3)``."""
    return np.asarray(lps, dtype=float)[..., ::-1]


def display_axes(affine: np.ndarray) -> tuple[int, int, int]:
    """Which volume axis each layer axis shows, so the layer's axes run along the world's.

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col)`` → LPS mm.

    Returns
    -------
    tuple of 3 int
        ``axes[i]`` is the volume axis shown as layer axis ``i``: ``(0, 1, 2)``
        for axial stacks; ``(1, 2, 0)`` for a sagittal one (rows run along z,
        columns along y, slices along x). Oblique stacks take the nearest.
    """
    linear = world_affine(affine)[:3, :3]
    owners = np.argmax(np.abs(linear), axis=0)  # the world axis each volume axis runs along
    if sorted(owners.tolist()) != [0, 1, 2]:
        return (0, 1, 2)
    return tuple(int(np.flatnonzero(owners == i)[0]) for i in range(3))  # type: ignore[return-value]


def view_affine(affine: np.ndarray, axes: Sequence[int]) -> np.ndarray:
    """The index → LPS affine of the view ``np.transpose(array, axes)``."""
    permute = np.zeros((4, 4))
    permute[3, 3] = 1.0
    for i, j in enumerate(axes):
        permute[j, i] = 1.0  # volume index j = view index i
    return np.asarray(affine, dtype=float) @ permute


def display_view(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, tuple]:
    """The array as napari can draw it: ``(view, view_affine, axes)`` (a view, no copy).

    Extra trailing axes (RGB) are kept last.
    """
    axes = display_axes(affine)
    if axes == (0, 1, 2):
        return array, np.asarray(affine, dtype=float), axes
    order = (*axes, *range(3, array.ndim))
    return np.transpose(array, order), view_affine(affine, axes), axes


def layer_transform(affine: np.ndarray) -> dict[str, Any]:
    """napari layer keywords (scale, translate, rotate, shear) for a volume's affine.

    The world matrix (:func:`world_affine`) is decomposed (QR) so that
    ``layer.scale`` is the voxel spacing in mm (negative on the first axis for
    a mirrored grid) and the rotation carries the orientation (oblique series
    included), with a shear only for non-orthogonal grids (gantry tilt); their
    composition is exactly the affine in world order. (napari's own
    decomposition gets mirrored grids wrong.)

    Parameters
    ----------
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col)`` → LPS mm.

    Returns
    -------
    dict
        ``scale``, ``translate``, ``rotate`` (3×3), ``shear`` (3 values).
    """
    matrix = world_affine(affine)
    linear = matrix[:3, :3]
    # linear = rotation @ shear @ diag(scale), napari's order of composition.
    # QR gives rotation @ upper; the signs are fixed so the scale is positive,
    # except that a mirrored grid (det < 0) takes its mirror in the first axis.
    rotation, upper = np.linalg.qr(linear)
    signs = np.sign(np.diag(upper))
    signs[signs == 0] = 1.0
    rotation, upper = rotation * signs, signs[:, None] * upper
    if np.linalg.det(rotation) < 0:
        rotation[:, 0] *= -1.0
        upper[0, :] *= -1.0
    scale = np.diag(upper).copy()
    shear_matrix = upper / scale[None, :]
    return {
        "scale": tuple(float(v) for v in scale),
        "translate": tuple(float(v) for v in matrix[:3, 3]),
        "rotate": rotation,
        "shear": np.array([shear_matrix[0, 1], shear_matrix[0, 2], shear_matrix[1, 2]]),
    }


def layer_units(units: str, *, ultrasound: bool = False) -> tuple[str, str, str]:
    """napari layer ``units`` (pint names) for a volume's ``units`` (``mm`` or ``px``).

    The scale bar follows them. Ultrasound frames are counted (dimensionless).
    """
    plane = "mm" if units == "mm" else "pixel"
    first = "dimensionless" if ultrasound else plane
    return (first, plane, plane)


def layer_name(item: Stack | Volume) -> str:
    """A layer name from a stack's role and description, e.g. ``t1: T1 AX``."""
    description = item.description.strip() or item.series_uid[-12:] or "series"
    return f"{item.role}: {description}"


def image_layer_data(volume: Volume, *, name: str | None = None) -> tuple[Any, dict, str]:
    """A napari layer data tuple ``(data, kwargs, "image")`` for a loaded volume.

    MR: the float32 array in mm, grey, contrast from its 1st-99.5th percentiles.
    Ultrasound: the RGB picture when the file has colour, frames on axis 0.
    ``metadata`` keeps the LPS affine (``backmice_affine``), the series UID and
    the units so the writer and widgets recover the geometry exactly.
    """
    is_us = volume.role is Role.US
    array = volume.color if volume.color is not None else volume.array
    data, affine, axes = display_view(array, volume.affine)
    kwargs: dict[str, Any] = layer_transform(affine)
    kwargs["name"] = name or layer_name(volume)
    kwargs["metadata"] = {
        "backmice_affine": affine,
        "axes": axes,
        "volume_affine": np.asarray(volume.affine, dtype=float),
        "series_uid": volume.series_uid,
        "role": str(volume.role),
        "units": volume.units,
    }
    kwargs["axis_labels"] = US_AXIS_LABELS if is_us else WORLD_AXIS_LABELS
    kwargs["units"] = layer_units(volume.units, ultrasound=is_us)
    if volume.color is not None:
        kwargs["rgb"] = True
        return data, kwargs, "image"
    sample = array[:: max(1, array.shape[0] // 8), ::2, ::2]
    lo, hi = np.percentile(sample, [1.0, 99.5]) if sample.size else (0.0, 1.0)
    if hi <= lo:
        hi = lo + 1.0
    kwargs["contrast_limits"] = (float(lo), float(hi))
    kwargs["colormap"] = "gray"
    return data, kwargs, "image"
