"""Compact, lossless encodings of masks and maps for the database.

A mask is stored as its bounding box and ``zlib(np.packbits(crop))``; a signed
distance map as ``zlib(float16)`` (a reader's correction) or exactly (the
analysis' own, ``zlib(float32)``); the analysis' other maps, which an edited
mask is measured with, exactly in their own dtype (:func:`encode_array`). All
decode to arrays on the stack grid without rereading DICOM.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Any

import numpy as np

__all__ = [
    "decode_array",
    "decode_map",
    "decode_mask",
    "encode_array",
    "encode_map",
    "encode_mask",
    "mask_from_json",
    "mask_to_json",
]

Box = tuple[int, int, int, int, int, int]


def encode_mask(mask: np.ndarray) -> tuple[Box, bytes]:
    """Bounding box ``(k0, r0, c0, k1, r1, c1)`` (half-open) and packed bits of a 3D mask.

    Parameters
    ----------
    mask : ndarray of bool, shape (slice, row, col)
        Must hold at least one voxel.

    Returns
    -------
    box : tuple of 6 int
    data : bytes
        ``zlib.compress(np.packbits(mask[box]))`` (C order).
    """
    mask = np.asarray(mask, dtype=bool)
    idx = np.nonzero(mask)
    if not idx[0].size:
        raise ValueError("empty mask")
    lo = [int(i.min()) for i in idx]
    hi = [int(i.max()) + 1 for i in idx]
    crop = mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    box: Box = (lo[0], lo[1], lo[2], hi[0], hi[1], hi[2])
    return box, zlib.compress(np.packbits(crop, axis=None).tobytes(), 6)


def decode_mask(box: Box, data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The full-grid bool mask of :func:`encode_mask`'s output, shape ``shape``."""
    k0, r0, c0, k1, r1, c1 = (int(v) for v in box)
    size = (k1 - k0, r1 - r0, c1 - c0)
    bits = np.unpackbits(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
    crop = bits[: size[0] * size[1] * size[2]].reshape(size).astype(bool)
    out = np.zeros(shape, dtype=bool)
    out[k0:k1, r0:r1, c0:c1] = crop
    return out


def paint(out: np.ndarray, box: Box, data: bytes, value: int) -> None:
    """Set ``out`` to ``value`` where the encoded mask is set (in place, no full-grid copy)."""
    k0, r0, c0, k1, r1, c1 = (int(v) for v in box)
    size = (k1 - k0, r1 - r0, c1 - c0)
    bits = np.unpackbits(np.frombuffer(zlib.decompress(data), dtype=np.uint8))
    crop = bits[: size[0] * size[1] * size[2]].reshape(size).astype(bool)
    out[k0:k1, r0:r1, c0:c1][crop] = value


def encode_map(values: np.ndarray, *, exact: bool = False) -> bytes:
    """``zlib(float16)`` of a float map (NaN kept; about 0.03 mm resolution at 50 mm).

    ``exact=True``: ``zlib`` of the map in float32, or float64 when it is (lossless
    for the analysis' own maps, whose re-measured rows must be the analysis' rows).
    """
    dtype: type[np.floating[Any]] = np.float16
    if exact:
        dtype = np.float64 if np.asarray(values).dtype == np.float64 else np.float32
    return zlib.compress(np.ascontiguousarray(values, dtype=dtype).tobytes(), 6)


def decode_map(data: bytes, shape: tuple[int, int, int]) -> np.ndarray:
    """The map of :func:`encode_map`, shape ``shape``: float32 (float64 if stored so).

    The stored dtype follows from the size (2, 4 or 8 bytes a voxel), so maps
    written before ``exact`` existed read as they did.
    """
    raw = zlib.decompress(data)
    size = int(np.prod(shape))
    dtype = {2 * size: np.float16, 4 * size: np.float32, 8 * size: np.float64}.get(len(raw))
    if dtype is None:
        raise ValueError(f"a stored map of {len(raw)} bytes is not a map of shape {shape}")
    values = np.frombuffer(raw, dtype=dtype).reshape(shape)
    return values.astype(np.float32) if dtype is np.float16 else values.copy()


def encode_array(values: np.ndarray) -> tuple[str, bytes]:
    """An array exactly: its dtype (``"bool"`` or numpy's ``dtype.str``) and ``zlib`` of its bytes.

    A bool array is packed to bits first.
    """
    values = np.ascontiguousarray(values)
    if values.dtype == bool:
        return "bool", zlib.compress(np.packbits(values, axis=None).tobytes(), 6)
    return values.dtype.str, zlib.compress(values.tobytes(), 6)


def decode_array(dtype: str, data: bytes, shape: tuple[int, ...]) -> np.ndarray:
    """The array of :func:`encode_array`, shape ``shape``."""
    raw = zlib.decompress(data)
    size = int(np.prod(shape))
    if dtype == "bool":
        return np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:size].reshape(shape).astype(bool)
    return np.frombuffer(raw, dtype=np.dtype(dtype)).reshape(shape).copy()


def digest(data: bytes) -> str:
    """Short SHA-256 hex digest, to name a blob in the event log."""
    return hashlib.sha256(data).hexdigest()[:16]


def mask_to_json(box: Box, data: bytes) -> dict:
    """A mask as JSON (for the event log and saved pending actions)."""
    return {"box": list(box), "bits": base64.b64encode(data).decode("ascii")}


def mask_from_json(doc: dict) -> tuple[Box, bytes]:
    """Inverse of :func:`mask_to_json`."""
    z0, y0, x0, z1, y1, x1 = (int(v) for v in doc["box"])
    return (z0, y0, x0, z1, y1, x1), base64.b64decode(doc["bits"])
