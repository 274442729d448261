"""Decode the pixels of a stack's frames.

Uncompressed little-endian greyscale frames are read straight from their byte
offset (found while scanning headers) with :func:`numpy.frombuffer`; everything
else (compressed transfer syntaxes, big endian, colour, odd bit depths) goes
through pydicom's decoders (pylibjpeg, openjpeg, libjpeg, RLE, JPEG-LS, GDCM).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from backmice.errors import InputError
from backmice.io.header import dcmread_any, transfer_syntax_name
from backmice.io.model import FrameRef, Stack

__all__ = ["LUMA_WEIGHTS", "read_frames"]

log = logging.getLogger(__name__)

#: ITU-R BT.601 weights from RGB to luminance.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _stored_dtype(stack: Stack) -> np.dtype:
    kind = "i" if stack.pixel_representation else "u"
    return np.dtype(f"<{kind}{stack.bits_allocated // 8}")


def _fast_path(stack: Stack, ref: FrameRef) -> bool:
    return (
        ref.pixel_offset is not None
        and stack.samples_per_pixel == 1
        and stack.bits_allocated in (8, 16, 32)
        and stack.photometric in ("MONOCHROME1", "MONOCHROME2")
    )


def _fix_bits(raw: np.ndarray, stack: Stack) -> np.ndarray:
    """Mask unused high bits, or sign-extend signed values stored in fewer bits."""
    unused = stack.bits_allocated - stack.bits_stored
    if unused <= 0 or stack.bits_stored <= 0:
        return raw
    if stack.pixel_representation:
        return (raw << unused) >> unused
    return raw & np.array((1 << stack.bits_stored) - 1, dtype=raw.dtype)


def _read_raw(
    path: Path, offset: int, frames: Sequence[int | None], shape: tuple[int, int], dtype: np.dtype
) -> dict[int | None, np.ndarray]:
    """Frames of an uncompressed file, read from their byte offset."""
    frame_bytes = shape[0] * shape[1] * dtype.itemsize
    indices = [0 if f is None else f for f in frames]
    first, last = min(indices), max(indices)
    with path.open("rb") as fp:
        fp.seek(offset + first * frame_bytes)
        buf = fp.read((last - first + 1) * frame_bytes)
    if len(buf) < (last - first + 1) * frame_bytes:
        raise InputError(
            f"truncated pixel data: {len(buf)} bytes where {(last - first + 1) * frame_bytes} "
            "were expected",
            path=path,
        )
    block = np.frombuffer(buf, dtype=dtype).reshape(-1, *shape)
    return {f: block[(0 if f is None else f) - first] for f in frames}


def _to_rgb8(ds: Dataset, arr: np.ndarray) -> np.ndarray:
    """Colour pixels as 8-bit RGB (palette colour through its lookup table)."""
    from pydicom.pixels import apply_color_lut

    if str(ds.get("PhotometricInterpretation", "")).upper() == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        # 16-bit lookup tables give 0..65535; some (big-endian files read by pydicom)
        # come out 0..255 despite the descriptor: scale by what the table holds.
        if arr.dtype.itemsize > 1 and arr.max(initial=0) > 255:
            arr = arr >> 8
    elif arr.dtype.itemsize > 1:
        top = max(int(ds.get("BitsStored", 8)) - 8, 0)
        arr = arr >> top
    return np.clip(arr, 0, 255).astype(np.uint8)


def _decode_file(path: Path, stack: Stack) -> tuple[np.ndarray, bool]:
    """All frames of a file through pydicom: ``(frames, rows, cols[, 3])``, and is-colour."""
    ds = None
    try:
        with path.open("rb") as fp:
            ds = dcmread_any(fp, stop_before_pixels=False)
        arr = ds.pixel_array
    except Exception as exc:
        meta = getattr(ds, "file_meta", None) or {}
        ts = transfer_syntax_name(str(meta.get("TransferSyntaxUID", "")))
        raise InputError(
            f"cannot decode the pixel data ({ts}): {exc.__class__.__name__}: {exc}", path=path
        ) from None
    n_frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    photometric = str(ds.get("PhotometricInterpretation", "")).upper()
    colour = photometric == "PALETTE COLOR" or int(ds.get("SamplesPerPixel", 1) or 1) == 3
    if colour:
        arr = _to_rgb8(ds, arr)
        if n_frames == 1 and arr.ndim == 3:
            arr = arr[np.newaxis]
    elif n_frames == 1 and arr.ndim == 2:
        arr = arr[np.newaxis]
    expected = (stack.rows, stack.cols)
    if arr.shape[1:3] != expected:
        raise InputError(f"decoded image is {arr.shape[1:3]}, not {expected}", path=path)
    return arr, colour


def read_frames(
    stack: Stack, refs: Sequence[FrameRef] | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode frames of a stack, rescaled.

    Parameters
    ----------
    stack : Stack
        The stack (pixel format, size).
    refs : sequence of FrameRef, optional
        Which frames, in output order; default all of ``stack.frames``.

    Returns
    -------
    values : ndarray of float32, shape (n, rows, cols)
        RescaleSlope × stored + RescaleIntercept, per frame; the luminance for
        colour images.
    colour : ndarray of uint8, shape (n, rows, cols, 3), or None
        RGB for colour images.

    Raises
    ------
    InputError
        A file is truncated or its pixel data cannot be decoded (the message
        names the file and the transfer syntax).
    """
    refs = list(stack.frames if refs is None else refs)
    n = len(refs)
    out = np.empty((n, stack.rows, stack.cols), dtype=np.float32)
    colour: np.ndarray | None = None
    by_path: dict[Path, list[int]] = defaultdict(list)
    for k, ref in enumerate(refs):
        by_path[ref.path].append(k)
    dtype = _stored_dtype(stack) if stack.bits_allocated in (8, 16, 32) else None
    for path, ks in by_path.items():
        first = refs[ks[0]]
        if dtype is not None and _fast_path(stack, first):
            raw = _read_raw(
                path,
                first.pixel_offset,
                [refs[k].frame for k in ks],
                (stack.rows, stack.cols),
                dtype,
            )
            for k in ks:
                out[k] = _fix_bits(raw[refs[k].frame], stack)
        else:
            decoded, is_colour = _decode_file(path, stack)
            for k in ks:
                index = refs[k].frame or 0
                if index >= len(decoded):
                    raise InputError(
                        f"frame {index + 1} requested but the file decodes to {len(decoded)}",
                        path=path,
                    )
                frame = decoded[index]
                if is_colour:
                    if colour is None:
                        colour = np.zeros((n, stack.rows, stack.cols, 3), dtype=np.uint8)
                    colour[k] = frame
                    out[k] = frame.astype(np.float32) @ LUMA_WEIGHTS
                else:
                    out[k] = frame
        for k in ks:
            ref = refs[k]
            if ref.slope != 1.0:
                out[k] *= np.float32(ref.slope)
            if ref.intercept != 0.0:
                out[k] += np.float32(ref.intercept)
    return out, colour
