"""Decode the pixels of a stack's frames.

Uncompressed little-endian greyscale frames are read straight from their byte
offset (found while scanning headers) with :func:`numpy.frombuffer`; everything
else (compressed transfer syntaxes, big endian, colour, odd bit depths) goes
through pydicom's decoders (pylibjpeg, openjpeg, libjpeg, RLE, JPEG-LS; GDCM only
when nothing else can). Sizes are checked against :data:`backmice.io.header.MAX_PIXELS`
before anything is allocated, and every decoder failure becomes an
:class:`~backmice.InputError` naming the file.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset

from backmice.errors import DecodeError, InputError
from backmice.io import header
from backmice.io.header import (
    _int,
    _one_line,
    _value,
    dcmread_any,
    open_dicom,
    transfer_syntax_name,
)
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


#: pydicom decoding plugins backmice uses, in order of preference. GDCM is used only
#: when nothing else can decode a transfer syntax: on some malformed frames (JPEG 2000
#: whose component count disagrees with SamplesPerPixel) it throws a C++ exception
#: that aborts the whole Python process instead of raising.
_PLUGINS = ("pylibjpeg", "pyjpegls", "pydicom", "pillow")
#: RLE goes to pydicom's own decoder alone: pylibjpeg-rle panics on corrupt segments
#: (caught, but Rust prints the panic and its backtrace on stderr); pydicom's is about
#: 4x slower (9 ms for a 512x512 frame here) and says what is wrong.
_PLUGINS_RLE = ("pydicom",)


def _pixel_array(ds: Dataset) -> np.ndarray:
    """``ds.pixel_array``, decoded by the plugins of :data:`_PLUGINS` in turn."""
    from pydicom.pixels import get_decoder

    decoder = get_decoder(ds.file_meta.TransferSyntaxUID)  # NotImplementedError if none
    if decoder.is_native:
        return ds.pixel_array
    available = list(decoder.available_plugins)
    preference = _PLUGINS_RLE if decoder.UID == "1.2.840.10008.1.2.5" else _PLUGINS
    plugins = [p for p in preference if p in available] or available
    if not plugins:
        raise RuntimeError(f"no decoder installed for {decoder.UID.name}")
    errors = []
    for plugin in plugins:
        ds.pixel_array_options(decoding_plugin=plugin)
        try:
            return ds.pixel_array
        except MemoryError:
            raise
        except BaseException as exc:
            # Decoders written in Rust (pylibjpeg-rle) report corrupt input as a pyo3
            # PanicException, which is not an Exception; everything else goes on up.
            if not isinstance(exc, Exception) and type(exc).__name__ != "PanicException":
                raise
            errors.append(f"{plugin}: {_plugin_reason(exc, plugin)}")
    raise DecodeError("; ".join(errors))


def _plugin_reason(exc: BaseException, plugin: str) -> str:
    """What one plugin said, without pydicom's "raised by all available plugins" wrapper."""
    text = " ".join(str(exc).split())
    wrapper = "Unable to decode as exceptions were raised by all available plugins: "
    if isinstance(exc, RuntimeError) and text.startswith(wrapper):
        text = text[len(wrapper) :]
        if text.startswith(f"{plugin}: "):
            return text[len(plugin) + 2 :]
        return text
    return _one_line(exc)


def _declared_size(ds: Dataset, stack: Stack, path: Path, ts: str) -> None:
    """Check the size the file declares before a decoder allocates it.

    The header scan checked it too, but the file may have changed since, and
    decoders trust Rows, Columns, NumberOfFrames and SamplesPerPixel blindly.
    """
    missing = [k for k in ("Rows", "Columns") if k not in ds]
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        missing.append("PixelData")
    if missing:
        # pydicom stops at a corrupt or truncated element and returns what it read.
        raise InputError(
            f"cannot decode the pixel data ({ts}): the file is truncated or corrupt "
            f"({', '.join(missing)} not readable)",
            path=path,
        )
    rows = _int(_value(ds, "Rows"), 0) or 0
    cols = _int(_value(ds, "Columns"), 0) or 0
    frames = max(_int(_value(ds, "NumberOfFrames"), 1) or 1, 1)
    samples = _int(_value(ds, "SamplesPerPixel"), 1) or 1
    if (rows, cols) != (stack.rows, stack.cols):
        raise InputError(
            f"declares {rows}x{cols} pixels, not the {stack.rows}x{stack.cols} it was "
            "scanned with (changed since?)",
            path=path,
        )
    if rows * cols * frames * samples > header.MAX_PIXELS:
        raise InputError(
            f"declares {rows}x{cols}x{frames} pixels x {samples} samples, above the limit of "
            f"{header.MAX_PIXELS:,}, what this machine can load (backmice.io.header.MAX_PIXELS)",
            path=path,
        )


def _decode_file(path: Path, stack: Stack) -> tuple[np.ndarray, bool]:
    """All frames of a file through pydicom: ``(frames, rows, cols[, 3])``, and is-colour."""
    try:
        with open_dicom(path) as fp:
            ds = dcmread_any(fp, stop_before_pixels=False)
    except (InputError, MemoryError):
        raise
    except OSError as exc:
        raise InputError(f"cannot read the file ({_one_line(exc)})", path=path) from None
    except Exception as exc:  # pydicom raises many kinds on a corrupt file
        raise InputError(f"corrupt DICOM file ({_one_line(exc)})", path=path) from None
    meta = getattr(ds, "file_meta", None) or {}
    ts = transfer_syntax_name(str(meta.get("TransferSyntaxUID", "")))
    _declared_size(ds, stack, path, ts)
    try:
        arr = _pixel_array(ds)
    except MemoryError:
        raise
    except Exception as exc:  # every decoder failure, in one place
        problem = str(exc) if isinstance(exc, DecodeError) else _one_line(exc)
        problem = " ".join(problem.split())
        raise InputError(f"cannot decode the pixel data ({ts}): {problem}", path=path) from None
    n_frames = max(_int(_value(ds, "NumberOfFrames"), 1) or 1, 1)
    photometric = str(_value(ds, "PhotometricInterpretation") or "").strip().upper()
    colour = photometric == "PALETTE COLOR" or (_int(_value(ds, "SamplesPerPixel"), 1) == 3)
    trailing: tuple[int, ...]  # the axes after (frame, row, col)
    if colour:
        try:
            arr = _to_rgb8(ds, arr)
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            raise InputError(
                f"cannot convert the colour pixel data to RGB ({photometric}): {_one_line(exc)}",
                path=path,
            ) from None
        if n_frames == 1 and arr.ndim == 3:
            arr = arr[np.newaxis]
        expected_ndim, trailing = 4, (3,)  # (frame, row, col, RGB)
    else:
        if n_frames == 1 and arr.ndim == 2:
            arr = arr[np.newaxis]
        expected_ndim, trailing = 3, ()
    expected = (stack.rows, stack.cols)
    if arr.ndim != expected_ndim or arr.shape[1:3] != expected or arr.shape[3:] != trailing:
        shape = "x".join(map(str, arr.shape))
        raise InputError(
            f"decoded pixel data is {shape}, not frames of {stack.rows}x{stack.cols}"
            + (" RGB" if colour else ""),
            path=path,
        )
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
        names the file and the transfer syntax), or the stack is larger than
        :data:`backmice.io.header.MAX_PIXELS` (nothing is allocated then).
    """
    refs = list(stack.frames if refs is None else refs)
    n = len(refs)
    if n * stack.rows * stack.cols > header.MAX_PIXELS:
        raise InputError(
            f"the stack is {n}x{stack.rows}x{stack.cols} pixels, above the limit of "
            f"{header.MAX_PIXELS:,}, what this machine can load (backmice.io.header.MAX_PIXELS)",
            path=refs[0].path,
        )
    out = np.empty((n, stack.rows, stack.cols), dtype=np.float32)
    colour: np.ndarray | None = None
    by_path: dict[Path, list[int]] = defaultdict(list)
    for k, ref in enumerate(refs):
        by_path[ref.path].append(k)
    dtype = _stored_dtype(stack) if stack.bits_allocated in (8, 16, 32) else None
    for path, ks in by_path.items():
        first = refs[ks[0]]
        offset = first.pixel_offset
        if dtype is not None and offset is not None and _fast_path(stack, first):
            raw = _read_raw(
                path,
                offset,
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
