"""Load a stack's pixels into a :class:`~backmice.io.model.Volume`: :func:`load`."""

from __future__ import annotations

import logging

import numpy as np

from backmice.errors import InputError
from backmice.io.model import Role, Stack, Volume
from backmice.io.nifti import load_nifti
from backmice.io.pixels import read_frames

__all__ = ["load"]

log = logging.getLogger(__name__)


def _check_duplicates(stack: Stack, array: np.ndarray) -> list[str]:
    """Compare images found at an already-used position with the slice kept there."""
    if not stack.duplicates:
        return []
    others, _ = read_frames(stack, [ref for _, ref in stack.duplicates])
    warnings = []
    for (k, ref), other in zip(stack.duplicates, others, strict=True):
        kept = stack.frames[k].path.name
        if np.array_equal(other, array[k]):
            warnings.append(f"{ref.path.name} is the same image as {kept} (kept once)")
        else:
            diff = float(np.max(np.abs(other - array[k])))
            lossy = " (a lossy copy)" if ref.lossy and not stack.frames[k].lossy else ""
            warnings.append(
                f"{ref.path.name}{lossy} differs from {kept} at the same position (largest "
                f"difference {diff:g}); used {kept}"
            )
    return warnings


def load(stack: Stack) -> Volume:
    """Read a stack's pixel data.

    Parameters
    ----------
    stack : Stack
        A stack of a :class:`~backmice.io.model.Study` from
        :func:`backmice.open_study` (a DICOM series, or a NIfTI file:
        :func:`backmice.io.nifti.load_nifti`).

    Returns
    -------
    Volume
        ``array`` is float32 ``(slice, row, col)`` with RescaleSlope/Intercept
        applied per slice (colour converted to luminance, the RGB kept in
        ``color``); ultrasound is cropped to its tissue region.

    Raises
    ------
    InputError
        The stack is not an image (a SEG or SR), or a file is truncated or cannot
        be decoded; the message names the file.
    """
    if not stack.role.is_image:
        where = stack.frames[0].path if stack.frames else None
        raise InputError(
            f"a DICOM {'Segmentation' if stack.role is Role.SEG else 'Structured Report'}, "
            "not an image to load",
            path=where,
        )
    if stack.nifti is not None:
        return load_nifti(stack)
    array, colour = read_frames(stack)
    warnings = list(stack.warnings)
    warnings.extend(_check_duplicates(stack, array))
    origin = (0, 0)
    if stack.region is not None:
        r = stack.region
        array = np.ascontiguousarray(array[:, r.y0 : r.y1 + 1, r.x0 : r.x1 + 1])
        if colour is not None:
            colour = np.ascontiguousarray(colour[:, r.y0 : r.y1 + 1, r.x0 : r.x1 + 1])
        origin = (r.y0, r.x0)
    for w in warnings:
        log.warning("%s: %s", stack.description or stack.series_uid, w)
    return Volume.of_stack(
        stack,
        array,
        sop_instance_uids=tuple(f.sop_instance_uid for f in stack.frames),
        frame_numbers=tuple(None if f.frame is None else f.frame + 1 for f in stack.frames),
        warnings=warnings,
        color=colour,
        origin_px=origin,
        overlays=() if stack.region is None else stack.region.overlays,
    )
