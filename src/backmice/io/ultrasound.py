"""Ultrasound calibration from SequenceOfUltrasoundRegions (``docs/SPEC.md``).

Spacing comes only from a 2D tissue region (RegionSpatialFormat 1) whose
physical units are centimetres (code 3) in both directions; the image is
cropped to it and depth is measured from its top (the transducer face).
Spectral, M-mode and other regions are not calibration; those drawn on the
chosen region (a grey or colour bar, a colour-flow box) are kept as its
``overlays`` so the analysis can mask them. No usable region, several 2D
regions whose spacing disagrees, or a region that does not fit the image:
spacing is unknown and measurements are in pixels, with a warning.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from pydicom.dataset import Dataset

from backmice.io.geometry import PLAUSIBLE_PIXEL_MM, plausible_pixel_mm
from backmice.io.model import RegionOverlay, UltrasoundRegion

__all__ = ["select_tissue_region"]

_CM = 3
_TISSUE_2D = 1
#: RegionDataType of tissue (the B-mode image itself).
_TISSUE_DATA = 1
#: Relative difference at which two 2D regions' pixel sizes disagree.
_AGREE = 0.01


def _region(item: Mapping[str, Any] | Dataset) -> UltrasoundRegion | str | None:
    """The item's 2D tissue region; None when it is not one; a reason when it is unusable."""
    try:
        if int(item.get("RegionSpatialFormat", -1)) != _TISSUE_2D:
            return None
        if int(item.get("PhysicalUnitsXDirection", -1)) != _CM:
            return None
        if int(item.get("PhysicalUnitsYDirection", -1)) != _CM:
            return None
        dx = float(_required(item, "PhysicalDeltaX"))
        dy = float(_required(item, "PhysicalDeltaY"))
        box = _box(item)
    except (AttributeError, TypeError, ValueError, OverflowError):
        return None
    finite = math.isfinite(dx * 10.0) and math.isfinite(dy * 10.0)
    if not (finite and dx > 0 and dy > 0) or box[2] <= box[0] or box[3] <= box[1]:
        return None
    if not (plausible_pixel_mm(dx * 10.0) and plausible_pixel_mm(dy * 10.0)):
        return (
            f"the ultrasound region's pixel size ({dx * 10.0:g} x {dy * 10.0:g} mm) is outside "
            f"any plausible size ({PLAUSIBLE_PIXEL_MM[0]:g}-{PLAUSIBLE_PIXEL_MM[1]:g} mm)"
        )
    x0, y0, x1, y1 = box
    return UltrasoundRegion(x0, y0, x1, y1, delta_x_mm=abs(dx) * 10.0, delta_y_mm=abs(dy) * 10.0)


_BOX_KEYS = (
    "RegionLocationMinX0",
    "RegionLocationMinY0",
    "RegionLocationMaxX1",
    "RegionLocationMaxY1",
)


def _box(item: Mapping[str, Any] | Dataset) -> tuple[int, int, int, int]:
    """A region's (x0, y0, x1, y1) in the frame's pixels (raises on a missing or bad value)."""
    x0, y0, x1, y1 = (int(_required(item, k)) for k in _BOX_KEYS)
    return (x0, y0, x1, y1)


def _required(item: Mapping[str, Any] | Dataset, key: str) -> Any:
    """The item's value of ``key`` (TypeError when it is missing: an unusable region)."""
    value = item.get(key)
    if value is None:
        raise TypeError(f"{key} is missing")
    return value


def _overlays(
    regions: Sequence[Mapping[str, Any] | Dataset], region: UltrasoundRegion
) -> tuple[RegionOverlay, ...]:
    """The non-tissue regions that lie on ``region``, in its pixels (clipped to it)."""
    out = []
    for item in regions:
        try:
            kind = int(item.get("RegionDataType", _TISSUE_DATA))
            x0, y0, x1, y1 = _box(item)
        except (AttributeError, TypeError, ValueError, OverflowError):
            continue
        if kind == _TISSUE_DATA:
            continue
        a0, b0 = max(x0, region.x0), max(y0, region.y0)
        a1, b1 = min(x1, region.x1), min(y1, region.y1)
        if a1 < a0 or b1 < b0:
            continue
        out.append(
            RegionOverlay(a0 - region.x0, b0 - region.y0, a1 - region.x0, b1 - region.y0, kind)
        )
    return tuple(out)


def select_tissue_region(
    regions: Sequence[Mapping[str, Any] | Dataset], *, rows: int, cols: int
) -> tuple[UltrasoundRegion | None, list[str]]:
    """The 2D tissue region an ultrasound image is calibrated from.

    Parameters
    ----------
    regions : sequence of mapping or Dataset
        Items of SequenceOfUltrasoundRegions (pydicom datasets, or mappings of
        keyword -> value as :class:`~backmice.io.header.Header` keeps them).
    rows, cols : int
        Size of the stored image, pixels.

    Returns
    -------
    region : UltrasoundRegion or None
        None when the image cannot be calibrated.
    warnings : list of str
        Why not, or what was chosen among several regions.
    """
    if not regions:
        return None, ["no SequenceOfUltrasoundRegions: pixel size unknown, measurements are in px"]
    found = [_region(item) for item in regions]
    tissue = [r for r in found if isinstance(r, UltrasoundRegion)]
    if not tissue:
        reasons = [r for r in found if isinstance(r, str)]
        if reasons:
            return None, [f"{reasons[0]}: pixel size unknown, measurements are in px"]
        return None, [
            "no 2D tissue region calibrated in cm among the ultrasound regions: pixel size "
            "unknown, measurements are in px"
        ]
    warnings: list[str] = []
    first = tissue[0]
    for other in tissue[1:]:
        for a, b in ((first.delta_x_mm, other.delta_x_mm), (first.delta_y_mm, other.delta_y_mm)):
            if abs(a - b) > _AGREE * max(a, b):
                return None, [
                    f"{len(tissue)} 2D tissue regions with different pixel sizes "
                    f"({first.delta_x_mm:.4f} vs {other.delta_x_mm:.4f} mm): calibration "
                    "ambiguous, measurements are in px"
                ]
    # The largest region is the image; equal ones (dual display) keep the first.
    region = max(tissue, key=lambda r: (r.x1 - r.x0) * (r.y1 - r.y0))
    if len(tissue) > 1:
        warnings.append(
            f"{len(tissue)} 2D tissue regions with the same pixel size: using the one at "
            f"columns {region.x0}-{region.x1}, rows {region.y0}-{region.y1}"
        )
    # Vendors write MaxX1 = Columns now and then: one pixel over is rounding, more is
    # an image resized or cropped after calibration, whose pixel size is then wrong.
    if region.x1 > cols or region.y1 > rows or region.x0 < 0 or region.y0 < 0:
        return None, [
            f"the ultrasound region (columns {region.x0}-{region.x1}, rows "
            f"{region.y0}-{region.y1}) does not fit the {cols}x{rows} image: it was resized "
            "or cropped after calibration, so the pixel size is unknown; measurements are in px"
        ]
    clipped = UltrasoundRegion(
        region.x0,
        region.y0,
        min(region.x1, cols - 1),
        min(region.y1, rows - 1),
        region.delta_x_mm,
        region.delta_y_mm,
    )
    overlays = _overlays(regions, clipped)
    if overlays:
        clipped = dataclasses.replace(clipped, overlays=overlays)
    return clipped, warnings
