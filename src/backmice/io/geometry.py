"""Slice order, spacing and the index-to-patient affine of a stack of 2D images.

Everything here follows DICOM's definitions: ImageOrientationPatient holds the
direction of increasing column index (first three values) and of increasing
row index (last three), PixelSpacing is ``(between rows, between columns)``,
and ImagePositionPatient is the centre of the first transmitted pixel. Slices
are ordered by their position along the slice normal and spaced by the real
distance between positions (never SliceThickness or SpacingBetweenSlices).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from backmice.errors import GeometryError

__all__ = [
    "ORIENTATION_TOLERANCE_DEG",
    "PLAUSIBLE_PIXEL_MM",
    "PLAUSIBLE_SLICE_MM",
    "GeometryError",
    "StackGeometry",
    "orientation_label",
    "plane_affine",
    "plausible_pixel_mm",
    "slice_normal",
    "stack_geometry",
]

#: A stack within this angle (degrees) of a cardinal plane is called by that plane's name.
ORIENTATION_TOLERANCE_DEG = 10.0
#: Relative deviation of one slice gap from the typical gap that counts as non-uniform.
SPACING_TOLERANCE = 0.01
#: Absolute spacing deviation (mm) always tolerated (rounding of positions in headers).
SPACING_TOLERANCE_MM = 0.01
#: Pixel sizes (mm) any imaging device could have written, from a micrometre to a
#: decimetre: a PixelSpacing or an ultrasound PhysicalDelta outside this range is
#: a corrupt or hostile header, and the image is measured in px (``1e-300`` or
#: ``1e6`` mm made every mm-sized filter of the analysis allocate terabytes).
PLAUSIBLE_PIXEL_MM = (1e-3, 100.0)
#: Largest distance (mm) between neighbouring slices of one stack: two metres
#: holds any body.
PLAUSIBLE_SLICE_MM = 2000.0


def plausible_pixel_mm(value: float) -> bool:
    """Whether a pixel size in mm is within :data:`PLAUSIBLE_PIXEL_MM`."""
    return PLAUSIBLE_PIXEL_MM[0] <= value <= PLAUSIBLE_PIXEL_MM[1]


def slice_normal(orientation: tuple[float, ...] | np.ndarray) -> np.ndarray:
    """Unit normal of the image plane, ``row_dir × col_dir`` (LPS).

    Parameters
    ----------
    orientation : sequence of 6 float
        ImageOrientationPatient.

    Returns
    -------
    ndarray of shape (3,)
    """
    o = np.asarray(orientation, dtype=np.float64)
    normal = np.cross(o[:3], o[3:6])
    norm = np.linalg.norm(normal)
    if not norm >= 1e-6:  # also NaN
        raise GeometryError("ImageOrientationPatient has parallel row and column directions")
    return normal / norm


def plane_affine(row_mm: float = 1.0, col_mm: float = 1.0) -> np.ndarray:
    """Affine of an image without patient geometry (ultrasound, or no position tags).

    Maps index ``(frame, row, col)`` to image-plane coordinates: x across the
    columns, y down the rows (for ultrasound, depth from the transducer face),
    and z = frame number. In mm when the pixel size is known, else in pixels.

    Returns
    -------
    ndarray of shape (4, 4)
    """
    affine = np.zeros((4, 4))
    affine[0, 2] = col_mm
    affine[1, 1] = row_mm
    affine[2, 0] = 1.0
    affine[3, 3] = 1.0
    return affine


def orientation_label(orientation: tuple[float, ...] | np.ndarray | None) -> str | None:
    """``axial``, ``sagittal``, ``coronal`` or ``oblique`` for an image orientation.

    A plane whose normal lies within :data:`ORIENTATION_TOLERANCE_DEG` of a
    patient axis is named after it (axial: normal along z, sagittal: x,
    coronal: y); anything else is ``oblique``. None without orientation.
    """
    if orientation is None:
        return None
    try:
        normal = np.abs(slice_normal(orientation))
    except GeometryError:
        return None
    axis = int(np.argmax(normal))
    if normal[axis] < np.cos(np.deg2rad(ORIENTATION_TOLERANCE_DEG)):
        return "oblique"
    return ("sagittal", "coronal", "axial")[axis]


@dataclass(slots=True)
class StackGeometry:
    """Where the slices of a stack are.

    Attributes
    ----------
    order : ndarray of int
        Indices of the input images in slice order, one per distinct position.
    duplicates : list of (int, int)
        ``(kept, other)`` input indices of images that share a position.
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col)`` to LPS mm.
    spacing_mm : tuple of 3 (float or None)
        ``(slice, row, col)``; the slice spacing is None for a single slice.
    positions_mm : ndarray of float
        Position of each slice along the normal, mm.
    warnings : list of str
    """

    order: np.ndarray
    duplicates: list[tuple[int, int]]
    affine: np.ndarray
    spacing_mm: tuple[float | None, float | None, float | None]
    positions_mm: np.ndarray
    warnings: list[str] = field(default_factory=list)


def stack_geometry(
    positions: np.ndarray,
    orientation: tuple[float, ...] | np.ndarray,
    pixel_spacing: tuple[float, float],
    *,
    preference: np.ndarray | None = None,
) -> StackGeometry:
    """Order images along the slice normal and build the stack's affine.

    Parameters
    ----------
    positions : ndarray of shape (n, 3)
        ImagePositionPatient of each image, LPS mm.
    orientation : sequence of 6 float
        ImageOrientationPatient shared by the images.
    pixel_spacing : (float, float)
        PixelSpacing ``(row spacing, column spacing)``, mm.
    preference : ndarray of shape (n,), optional
        Lower is better: which image to keep where several share a position
        (e.g. prefer a lossless copy). Ties keep the earlier image.

    Returns
    -------
    StackGeometry

    Raises
    ------
    GeometryError
        The orientation's directions are parallel, most images share one plane,
        or positions are so large that spacing overflows.
    """
    with np.errstate(over="ignore", invalid="ignore"):
        return _stack_geometry(positions, orientation, pixel_spacing, preference)


def _stack_geometry(
    positions: np.ndarray,
    orientation: tuple[float, ...] | np.ndarray,
    pixel_spacing: tuple[float, float],
    preference: np.ndarray | None,
) -> StackGeometry:
    positions = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    o = np.asarray(orientation, dtype=np.float64)
    row_dir, col_dir = o[:3] / np.linalg.norm(o[:3]), o[3:6] / np.linalg.norm(o[3:6])
    normal = slice_normal(o)
    n = len(positions)
    pref = np.zeros(n) if preference is None else np.asarray(preference, dtype=np.float64)

    depth = positions @ normal
    order = np.lexsort((np.arange(n), pref, np.round(depth, 3)))
    warnings: list[str] = []

    # Images at the same place (within 0.01 mm) are one slice stored more than once.
    kept: list[int] = []
    duplicates: list[tuple[int, int]] = []
    for idx in order:
        if kept and np.linalg.norm(positions[idx] - positions[kept[-1]]) < 0.01:
            duplicates.append((kept[-1], int(idx)))
        else:
            kept.append(int(idx))
    kept_arr = np.asarray(kept, dtype=np.intp)
    pos = positions[kept_arr]
    d = depth[kept_arr]
    dy, dx = float(pixel_spacing[0]), float(pixel_spacing[1])
    if not (plausible_pixel_mm(dy) and plausible_pixel_mm(dx)):
        raise GeometryError(
            f"PixelSpacing {dy:g} x {dx:g} mm is outside any plausible pixel size "
            f"({PLAUSIBLE_PIXEL_MM[0]:g}-{PLAUSIBLE_PIXEL_MM[1]:g} mm)"
        )

    affine = np.eye(4)
    affine[:3, 1] = col_dir * dy  # increasing row index moves along the column direction
    affine[:3, 2] = row_dir * dx
    affine[:3, 3] = pos[0]
    if len(kept) == 1:
        affine[:3, 0] = normal
        if not np.all(np.isfinite(affine)):
            raise GeometryError("image position or pixel spacing out of range")
        return StackGeometry(kept_arr, duplicates, affine, (None, dy, dx), d - d[0], warnings)

    gaps = np.diff(d)
    typical = float(np.median(gaps))
    if not typical > 0:
        raise GeometryError(
            "most images lie in the same plane (their positions do not advance along the "
            "slice normal)"
        )
    if typical > PLAUSIBLE_SLICE_MM:
        raise GeometryError(
            f"slices {typical:g} mm apart (more than {PLAUSIBLE_SLICE_MM:g} mm): the positions "
            "are not those of one stack"
        )
    step = (pos[-1] - pos[0]) / (len(kept) - 1)
    slice_spacing = float(step @ normal)
    tolerance = max(SPACING_TOLERANCE_MM, SPACING_TOLERANCE * typical)
    if np.any(np.abs(gaps - typical) > tolerance):
        slice_spacing = typical
        step = normal * typical
        missing = [(i, g) for i, g in enumerate(gaps) if g > 1.5 * typical]
        for i, g in missing:
            k = round(g / typical) - 1
            warnings.append(
                f"{g:.2f} mm gap between slices at {d[i]:.2f} and {d[i + 1]:.2f} mm along the "
                f"normal where the typical gap is {typical:.2f} mm: about {k} slice(s) missing"
            )
        if len(missing) < int(np.sum(np.abs(gaps - typical) > tolerance)):
            warnings.append(
                f"non-uniform slice spacing: gaps from {gaps.min():.3f} to {gaps.max():.3f} mm "
                f"(typical {typical:.3f} mm)"
            )
        warnings.append(
            f"the volume assumes a uniform {typical:.3f} mm slice spacing; true slice positions "
            "are in slice_positions_mm"
        )
    else:
        shear = step - normal * slice_spacing
        if np.linalg.norm(shear) > max(0.01, 0.01 * slice_spacing):
            angle = np.degrees(np.arctan2(np.linalg.norm(shear), slice_spacing))
            warnings.append(
                f"slices are sheared by {angle:.1f} degrees (gantry tilt): the affine keeps it"
            )
    affine[:3, 0] = step
    if not (np.all(np.isfinite(affine)) and np.isfinite(slice_spacing)):
        raise GeometryError("image positions too far apart to compute a slice spacing")
    return StackGeometry(kept_arr, duplicates, affine, (slice_spacing, dy, dx), d - d[0], warnings)
