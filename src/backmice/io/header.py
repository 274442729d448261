"""Read what backmice needs from one DICOM file's header, without its pixel data.

:func:`read_header` turns a file into a :class:`Header` (what the file is) and a
list of :class:`FrameHeader` (one per 2D image: geometry and rescale), for
classic single-frame files, classic multi-frame files (cine ultrasound) and
enhanced multi-frame files (per-frame and shared functional groups).
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import os
import stat
import struct
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import UID

from backmice.errors import InputError
from backmice.vocab import Modality

__all__ = [
    "MAX_INFLATED_BYTES",
    "MAX_PIXELS",
    "FrameHeader",
    "Header",
    "MRInfo",
    "dcmread_any",
    "machine_max_pixels",
    "open_dicom",
    "read_header",
]

log = logging.getLogger(__name__)

#: Bytes of memory a loaded element needs at most: the float32 volume, the decoded
#: stored values and the decoder's own buffer.
BYTES_PER_PIXEL = 16


def machine_max_pixels(memory_bytes: int | None = None) -> int:
    """The default :data:`MAX_PIXELS`: what this machine can load, at most ``2**31``.

    Parameters
    ----------
    memory_bytes : int, optional
        Memory to size for; default the machine's physical memory, or the
        process' address-space limit when that is lower.

    Returns
    -------
    int
        ``memory_bytes // BYTES_PER_PIXEL`` elements, between ``2**24`` and ``2**31``
        (about 1.5e9 on a 24 GB machine: a 46,000 x 46,000 image is refused).
    """
    if memory_bytes is None:
        try:
            memory_bytes = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):  # pragma: no cover - not POSIX
            memory_bytes = 2**31 * BYTES_PER_PIXEL
        try:
            import resource

            soft = resource.getrlimit(resource.RLIMIT_AS)[0]
            if soft != resource.RLIM_INFINITY:
                memory_bytes = min(memory_bytes, soft)
        except (ImportError, OSError, ValueError):  # pragma: no cover - not POSIX
            pass
    return int(min(max(memory_bytes // BYTES_PER_PIXEL, 2**24), 2**31))


#: Largest image (rows × cols × frames × samples) backmice allocates, elements.
#: Larger declared sizes are refused before any pixel is read. Sized to the
#: machine (:func:`machine_max_pixels`): 2**31 (8 GiB of float32) at most.
MAX_PIXELS = machine_max_pixels()
#: Largest size a Deflated Explicit VR Little Endian file may inflate to, bytes. pydicom
#: inflates the whole file in memory, so larger ones (zip bombs) are refused first.
MAX_INFLATED_BYTES = 2**30

_DEFLATED = "1.2.840.10008.1.2.1.99"

_SEG_SOP = "1.2.840.10008.5.1.4.1.1.66.4"
_SR_SOP_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
_UNCOMPRESSED_LE = {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}
_LOSSY_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.203",  # HTJ2K
}


class MRInfo(TypedDict, total=False):
    """The MR sequence tags of a file the role rules read (classic or enhanced).

    Times in ms, field strength in T, flip angle in degrees; None where absent.
    """

    scanning_sequence: tuple[str, ...]
    sequence_variant: tuple[str, ...]
    scan_options: tuple[str, ...]
    sequence_name: str
    protocol_name: str
    tr: float | None
    te: float | None
    ti: float | None
    echo_number: int | None
    fat_suppression: str
    field_strength: float | None
    flip_angle: float | None
    contrast_agent: str
    temporal_positions: int | None


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """Geometry and rescale of one 2D image (a file or one frame of it).

    Positions and orientations are None where the file does not say.
    ``pixel_spacing`` is ``(row spacing, column spacing)`` in mm.
    """

    frame: int | None
    position: tuple[float, float, float] | None
    orientation: tuple[float, float, float, float, float, float] | None
    pixel_spacing: tuple[float, float] | None
    slope: float
    intercept: float
    frame_type: tuple[str, ...] = ()
    stack_id: str = ""
    temporal_index: int | None = None
    echo_time: float | None = None


@dataclass(slots=True)
class Header:
    """What one DICOM file is, from its header.

    Attributes follow the DICOM keywords they come from; ``frames`` has one
    :class:`FrameHeader` per 2D image.
    """

    path: Path
    sop_class_uid: str
    sop_instance_uid: str
    modality: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    series_number: int | None
    instance_number: int | None
    description: str
    image_type: tuple[str, ...]
    rows: int
    cols: int
    n_frames: int
    samples_per_pixel: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    transfer_syntax: str
    lossy: bool
    has_pixels: bool
    pixel_offset: int | None
    pixel_length: int | None
    enhanced: bool
    frames: list[FrameHeader] = field(default_factory=list)
    #: Items of SequenceOfUltrasoundRegions: keyword -> value of the keys calibration
    #: reads (plain values, so a header keeps no pydicom objects alive).
    us_regions: list[dict[str, object]] = field(default_factory=list)
    #: MR sequence information used to assign a role.
    mr: MRInfo = field(default_factory=lambda: MRInfo())

    @property
    def is_seg(self) -> bool:
        """A DICOM Segmentation."""
        return self.sop_class_uid == _SEG_SOP or self.modality == Modality.SEG

    @property
    def is_sr(self) -> bool:
        """A DICOM Structured Report."""
        return self.modality == Modality.SR or self.sop_class_uid.startswith(_SR_SOP_PREFIX)


def _floats(value, n: int) -> tuple[float, ...] | None:
    """``value`` as a tuple of ``n`` finite floats, or None."""
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in (value if isinstance(value, list | tuple) else list(value)))
    except (TypeError, ValueError):
        return None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        return None
    return out


def _position(value) -> tuple[float, float, float] | None:
    """ImagePositionPatient as 3 finite floats, or None."""
    out = _floats(value, 3)
    if out is None:
        return None
    x, y, z = out
    return (x, y, z)


def _orientation(value) -> tuple[float, float, float, float, float, float] | None:
    """ImageOrientationPatient as 6 floats, or None unless its two directions span a plane."""
    out = _floats(value, 6)
    if out is None:
        return None
    row, col = out[:3], out[3:]
    norm_r, norm_c = math.hypot(*row), math.hypot(*col)
    if not (norm_r > 1e-6 and norm_c > 1e-6):
        return None
    cross = (
        row[1] * col[2] - row[2] * col[1],
        row[2] * col[0] - row[0] * col[2],
        row[0] * col[1] - row[1] * col[0],
    )
    if math.hypot(*cross) / (norm_r * norm_c) < 1e-3:  # parallel directions
        return None
    rx, ry, rz, cx, cy, cz = out
    return (rx, ry, rz, cx, cy, cz)


def _spacing(value) -> tuple[float, float] | None:
    """PixelSpacing as two positive floats, or None."""
    out = _floats(value, 2)
    if out is None or not (out[0] > 0 and out[1] > 0):
        return None
    return (out[0], out[1])


def _float(value, default: float | None = None) -> float | None:
    """``value`` as a finite float, else ``default``."""
    try:
        out = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return out if math.isfinite(out) else default


def _int(value, default: int | None = None) -> int | None:
    """``value`` as an int, read as pydicom reads IS (``"1e3"`` and ``"2.0"`` are integers)."""
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        pass
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return default
    return int(number) if math.isfinite(number) and number == int(number) else default


def _strs(value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(sys.intern(v.strip().upper()) for v in value.split("\\"))
    try:
        return tuple(sys.intern(str(v).strip().upper()) for v in value)
    except TypeError:
        return (str(value).strip().upper(),)


_BINARY_VRS = {"US": "H", "SS": "h", "UL": "I", "SL": "i", "FD": "d", "FL": "f"}

#: What :func:`backmice.io.ultrasound.select_tissue_region` reads of a region item.
_REGION_KEYS = (
    "RegionSpatialFormat",
    "RegionDataType",
    "PhysicalUnitsXDirection",
    "PhysicalUnitsYDirection",
    "PhysicalDeltaX",
    "PhysicalDeltaY",
    "RegionLocationMinX0",
    "RegionLocationMinY0",
    "RegionLocationMaxX1",
    "RegionLocationMaxY1",
)


@functools.cache
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:  # pragma: no cover - keywords are ours
        raise KeyError(keyword)
    return tag


def _value(ds: Dataset, keyword: str):
    """A top-level element's value, cheaply: numbers and codes straight from the raw bytes.

    pydicom converts and validates every value it is asked for; for the thirty
    tags a header scan needs that is half the time of a scan, so string values
    are decoded as ASCII and binary integers unpacked here. Text with a character
    set (descriptions) and sequences still go through pydicom.
    """
    tag = _tag(keyword)
    if tag not in ds:
        return None
    elem = ds.get_item(tag)
    if not isinstance(elem, RawDataElement):
        return elem.value
    raw = elem.value
    if raw is None:
        return None
    vr = elem.VR or dictionary_VR(tag)
    if vr in _BINARY_VRS:
        little = ds.original_encoding[1] is not False
        code = _BINARY_VRS[vr]
        count = len(raw) // struct.calcsize(code)
        values = struct.unpack(
            ("<" if little else ">") + code * count, raw[: count * struct.calcsize(code)]
        )
        return values[0] if count == 1 else list(values)
    if vr in ("SQ", "OB", "OW", "OF", "OD", "OL", "UN", "LO", "SH", "PN", "LT", "ST", "UT", "UC"):
        return ds.get(keyword)
    text = raw.decode("ascii", "replace").strip("\x00 ")
    return text.split("\\") if "\\" in text else text


def _first(ds: Dataset | None, keyword: str) -> Dataset | None:
    """The first item of sequence ``keyword`` of ``ds``, or None."""
    if ds is None:
        return None
    seq = ds.get(keyword)
    try:
        return seq[0] if seq else None
    except (TypeError, IndexError):
        return None


def _functional(per_frame: Dataset | None, shared: Dataset | None, macro: str) -> Dataset | None:
    """Item of functional group ``macro``: per-frame first, then shared."""
    return _first(per_frame, macro) or _first(shared, macro)


class _BoundedReader(io.BufferedReader):
    """A binary file whose ``read(n)`` never asks for more than what is left of it.

    pydicom reads an element's value with ``fp.read(length)``, and a buffered file
    allocates ``length`` bytes before reading: a corrupt length of 0xFFFFFFF0 is a
    4 GiB allocation for a 10 kB file. Clamping the request to the bytes left makes
    the read come back short. pydicom keeps what a short read gave without a word,
    so :attr:`past_end` records that a read started inside the file and asked for
    more than was left (the file is truncated, or a length is corrupt); a read
    starting exactly at the end is how pydicom finds a complete file's end.
    """

    _size = 0
    past_end = False

    def read(self, size: int | None = -1, /) -> bytes:
        if size is not None and size > 0:
            left = self._size - self.tell()
            if 0 < left < size:
                self.past_end = True
            if size > 1 << 16:
                if left <= 0:
                    return b""
                size = min(size, left)
        return super().read(size)


def _deflated_size_ok(fp: _BoundedReader, path: Path) -> None:
    """Refuse a deflated file that inflates to more than :data:`MAX_INFLATED_BYTES`."""
    head = fp.peek(2048)[:2048]
    if _DEFLATED.encode() not in head:
        return
    # Skip the preamble and the file meta group (always explicit VR little endian).
    pos = 132 if head[128:132] == b"DICM" else 0
    while pos + 8 <= len(head) and head[pos : pos + 2] == b"\x02\x00":
        if head[pos + 4 : pos + 6] in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            pos += 12 + int.from_bytes(head[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(head[pos + 6 : pos + 8], "little")
    start = fp.tell()
    fp.seek(pos)
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    limit = MAX_INFLATED_BYTES
    total = 0
    try:
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or fp.read(1 << 16)
            if not chunk:
                break
            total += len(inflater.decompress(chunk, 1 << 20))
            if total > limit:
                raise InputError(
                    f"deflated data inflates to more than {limit:,} bytes "
                    "(backmice.io.header.MAX_INFLATED_BYTES)",
                    path=path,
                )
    except zlib.error as exc:
        raise InputError(f"corrupt deflated data ({exc})", path=path) from None
    finally:
        fp.seek(start)
        fp.past_end = False  # our chunked reads ran into the end, not pydicom's


@contextlib.contextmanager
def open_dicom(path: str | os.PathLike[str]) -> Iterator[_BoundedReader]:
    """Open a file for pydicom so that no corrupt length makes it allocate more than the file.

    Parameters
    ----------
    path : path-like
        The file.

    Yields
    ------
    io.BufferedReader
        The open file, whose reads are clamped to its size (``past_end`` tells
        whether a read asked for more than was left).

    Raises
    ------
    OSError
        The file cannot be opened.
    InputError
        A deflated file that inflates past :data:`MAX_INFLATED_BYTES`, or whose
        deflated data is corrupt.
    """
    # A FIFO would block the open until someone writes to it, and a device might never end.
    if not stat.S_ISREG(Path(path).stat().st_mode):
        raise InputError("not a regular file", path=path)
    raw = io.FileIO(os.fspath(path), "rb")
    try:
        fp = _BoundedReader(raw)
        fp._size = os.fstat(raw.fileno()).st_size
        _deflated_size_ok(fp, Path(path))
        yield fp
    finally:
        raw.close()


def dcmread_any(fp, *, stop_before_pixels: bool = True) -> Dataset:
    """Read a DICOM file from an open binary file; raw DICOM without preamble too."""
    try:
        return pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels)
    except InvalidDicomError:
        # DICOM written without the 128-byte preamble and "DICM" (old ACR-NEMA style
        # exports): accept it only when it starts like a group 0008 element.
        fp.seek(0)
        start = fp.read(4)
        if len(start) < 4 or start[:2] not in (b"\x08\x00", b"\x02\x00"):
            raise
        fp.seek(0)
        ds = pydicom.dcmread(fp, stop_before_pixels=stop_before_pixels, force=True)
        if "TransferSyntaxUID" not in ds.file_meta:
            implicit, little = ds.original_encoding
            ds.file_meta.TransferSyntaxUID = (
                pydicom.uid.ImplicitVRLittleEndian
                if implicit
                else pydicom.uid.ExplicitVRLittleEndian
                if little
                else pydicom.uid.ExplicitVRBigEndian
            )
        return ds


def read_header(path: str | os.PathLike[str]) -> Header:
    """Read the header of one DICOM file.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    Header

    Raises
    ------
    InputError
        The file is not DICOM, cannot be read, or declares an image backmice
        refuses (see :data:`MAX_PIXELS`); the message says which.
    """
    path = Path(path)
    try:
        with open_dicom(path) as fp:
            ds = dcmread_any(fp)
            size = fp._size
            if fp.past_end:
                raise InputError(
                    f"truncated file: it ends ({size} bytes) inside an element of its header, "
                    "or an element's length is corrupt",
                    path=path,
                )
            offset = fp.tell()
            head = fp.read(12)  # the pixel data element's header, if that is what follows
            if _is_deflated(ds):
                # pydicom read the inflated copy, so the file position says nothing:
                # read it all (inflated size checked) and name the pixel element found.
                fp.seek(0)
                full = dcmread_any(fp, stop_before_pixels=False)
                tags = [t for t in (0x7FE00010, 0x7FE00008, 0x7FE00009) if t in full]
                head = struct.pack("<HH", tags[0] >> 16, tags[0] & 0xFFFF) if tags else b""
    except InputError:
        raise
    except InvalidDicomError:
        raise InputError("not a DICOM file", path=path) from None
    except (OSError, EOFError) as exc:
        raise InputError(f"cannot read the file ({_one_line(exc)})", path=path) from None
    except RecursionError:
        raise InputError("corrupt DICOM header (sequences nested too deeply)", path=path) from None
    except MemoryError:
        raise
    except Exception as exc:  # pydicom raises many kinds on corrupt headers
        raise InputError(f"corrupt DICOM header ({_one_line(exc)})", path=path) from None
    try:
        return _header_from_dataset(path, ds, offset, head, size)
    except (InputError, MemoryError):
        raise
    except RecursionError:
        raise InputError("corrupt DICOM header (sequences nested too deeply)", path=path) from None
    except Exception as exc:  # pydicom converts values lazily, and raises then
        raise InputError(f"unreadable DICOM header ({_one_line(exc)})", path=path) from None


def _is_deflated(ds: Dataset) -> bool:
    meta = getattr(ds, "file_meta", None)
    return meta is not None and str(meta.get("TransferSyntaxUID", "")) == _DEFLATED


def _one_line(exc: BaseException) -> str:
    """``Type: message`` on one line (decoder messages span several)."""
    text = " ".join(str(exc).split())
    return f"{exc.__class__.__name__}: {text}" if text else exc.__class__.__name__


def _pixel_element(
    path: Path, offset: int, head: bytes, size: int, ts: str
) -> tuple[bool, int | None, int | None]:
    """Whether pixel data follows the header, and where its value starts and how long
    it is (uncompressed little endian only; None otherwise)."""
    # (7FE0,0010/0008/0009) PixelData, FloatPixelData, DoubleFloatPixelData, either byte order.
    pixel_tags = {
        b"\xe0\x7f\x10\x00",
        b"\xe0\x7f\x08\x00",
        b"\xe0\x7f\x09\x00",
        b"\x7f\xe0\x00\x10",
        b"\x7f\xe0\x00\x08",
        b"\x7f\xe0\x00\x09",
    }
    has_pixels = head[:4] in pixel_tags
    if not has_pixels or ts not in _UNCOMPRESSED_LE or len(head) < 12:
        return has_pixels, None, None
    if ts == "1.2.840.10008.1.2":  # implicit VR: tag, 4-byte length
        length = int.from_bytes(head[4:8], "little")
        start = offset + 8
    elif head[4:6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"UN"):
        length = int.from_bytes(head[8:12], "little")
        start = offset + 12
    else:
        return has_pixels, None, None
    if length == 0xFFFFFFFF:  # undefined length: encapsulated despite the syntax
        return has_pixels, None, None
    if start + length > size:
        raise InputError(
            f"truncated file: the pixel data needs {length} bytes from byte {start}, "
            f"but the file ends at {size}",
            path=path,
        )
    return has_pixels, start, length


def _header_from_dataset(path: Path, ds: Dataset, offset: int, head: bytes, size: int) -> Header:
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", "") if meta is not None else "") or (
        "1.2.840.10008.1.2" if ds.is_implicit_VR else "1.2.840.10008.1.2.1"
    )
    sop_class = str(_value(ds, "SOPClassUID") or (meta or {}).get("MediaStorageSOPClassUID", ""))
    if sop_class == "1.2.840.10008.1.3.10":
        raise InputError("a DICOMDIR (an index of files, not an image)", path=path)

    rows = _int(_value(ds, "Rows"), 0) or 0
    cols = _int(_value(ds, "Columns"), 0) or 0
    n_frames = max(_int(_value(ds, "NumberOfFrames"), 1) or 1, 1)
    samples = _int(_value(ds, "SamplesPerPixel"), 1) or 1
    bits_allocated = _int(_value(ds, "BitsAllocated"), 16) or 16
    has_pixels, pixel_offset, pixel_length = _pixel_element(path, offset, head, size, ts)

    if has_pixels:
        if rows <= 0 or cols <= 0:
            raise InputError(f"image with Rows={rows} and Columns={cols}", path=path)
        if samples not in (1, 3) or bits_allocated not in (1, 8, 16, 32, 64):
            raise InputError(
                f"unsupported pixel format (SamplesPerPixel={samples}, "
                f"BitsAllocated={bits_allocated})",
                path=path,
            )
        n_pixels = rows * cols * n_frames * samples
        if n_pixels > MAX_PIXELS:
            raise InputError(
                f"declares {rows}x{cols}x{n_frames} pixels ({n_pixels:,}), above the limit of "
                f"{MAX_PIXELS:,}, what this machine can load (backmice.io.header.MAX_PIXELS)",
                path=path,
            )
        if pixel_length is not None:
            expected = n_pixels * bits_allocated // 8
            if bits_allocated >= 8 and pixel_length < expected:
                raise InputError(
                    f"pixel data holds {pixel_length} bytes but Rows x Columns x frames x "
                    f"samples x bits declare {expected}",
                    path=path,
                )

    lossy = ts in _LOSSY_SYNTAXES or str(_value(ds, "LossyImageCompression")).strip() == "01"
    description = str(ds.get("SeriesDescription", "") or "").strip()
    image_type = _strs(_value(ds, "ImageType"))
    shared = _first(ds, "SharedFunctionalGroupsSequence")
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
    enhanced = shared is not None or bool(per_frame_seq)

    header = Header(
        path=path,
        # Strings that repeat across the files of a study are interned: a scan of
        # 50,000 files keeps one copy of each, not 50,000.
        sop_class_uid=sys.intern(sop_class),
        sop_instance_uid=str(_value(ds, "SOPInstanceUID") or ""),
        modality=sys.intern(str(_value(ds, "Modality") or "").strip().upper()),
        study_uid=sys.intern(str(_value(ds, "StudyInstanceUID") or "")),
        series_uid=sys.intern(str(_value(ds, "SeriesInstanceUID") or "")),
        frame_of_reference_uid=sys.intern(str(_value(ds, "FrameOfReferenceUID") or "")),
        series_number=_int(_value(ds, "SeriesNumber")),
        instance_number=_int(_value(ds, "InstanceNumber")),
        description=sys.intern(description),
        image_type=image_type,
        rows=rows,
        cols=cols,
        n_frames=n_frames,
        samples_per_pixel=samples,
        photometric=sys.intern(
            str(_value(ds, "PhotometricInterpretation") or "MONOCHROME2").strip().upper()
        ),
        bits_allocated=bits_allocated,
        bits_stored=_int(_value(ds, "BitsStored"), bits_allocated) or bits_allocated,
        pixel_representation=_int(_value(ds, "PixelRepresentation"), 0) or 0,
        transfer_syntax=sys.intern(ts),
        lossy=lossy,
        has_pixels=has_pixels,
        pixel_offset=pixel_offset,
        pixel_length=pixel_length,
        enhanced=enhanced,
        us_regions=_us_regions(ds),
    )
    header.mr = _mr_info(ds, shared)
    if has_pixels:
        header.frames = _frames(ds, header, shared, per_frame_seq)
    return header


def _us_regions(ds: Dataset) -> list[dict[str, object]]:
    """SequenceOfUltrasoundRegions as plain values (what calibration reads, nothing else)."""
    if _tag("SequenceOfUltrasoundRegions") not in ds:
        return []
    items = ds.get("SequenceOfUltrasoundRegions") or []
    regions = []
    for item in items:
        region = {}
        for key in _REGION_KEYS:
            value = _value(item, key)
            if value is not None:
                region[key] = value
        regions.append(region)
    return regions


def _mr_info(ds: Dataset, shared: Dataset | None) -> MRInfo:
    """Sequence tags used by the role rules (classic tags, or enhanced equivalents)."""
    info: MRInfo = {
        "scanning_sequence": _strs(_value(ds, "ScanningSequence")),
        "sequence_variant": _strs(_value(ds, "SequenceVariant")),
        "scan_options": _strs(_value(ds, "ScanOptions")),
        "sequence_name": str(ds.get("SequenceName", "") or ds.get("PulseSequenceName", "") or ""),
        "protocol_name": str(ds.get("ProtocolName", "") or ""),
        "tr": _float(_value(ds, "RepetitionTime")),
        "te": _float(_value(ds, "EchoTime")),
        "ti": _float(_value(ds, "InversionTime")),
        "echo_number": _int(_value(ds, "EchoNumbers")),
        "fat_suppression": str(_value(ds, "SpectrallySelectedSuppression") or "").upper(),
        # For the in/opposed-phase decision and the choice among T1 stacks (roles.py).
        "field_strength": _float(_value(ds, "MagneticFieldStrength")),
        "flip_angle": _float(_value(ds, "FlipAngle")),
        "contrast_agent": str(_value(ds, "ContrastBolusAgent") or "").strip(),
        "temporal_positions": _int(_value(ds, "NumberOfTemporalPositions")),
    }
    timing = _first(shared, "MRTimingAndRelatedParametersSequence")
    if timing is not None and info["tr"] is None:
        info["tr"] = _float(timing.get("RepetitionTime"))
    if timing is not None and info["flip_angle"] is None:
        info["flip_angle"] = _float(timing.get("FlipAngle"))
    modifier = _first(shared, "MRModifierSequence")
    if modifier is not None and not info["fat_suppression"]:
        info["fat_suppression"] = str(modifier.get("SpectrallySelectedSuppression", "")).upper()
    if info["te"] is None:
        echo = _first(shared, "MREchoSequence")
        if echo is not None:
            info["te"] = _float(echo.get("EffectiveEchoTime"))
    if _value(ds, "InversionRecovery") == "YES" and "IR" not in info["scanning_sequence"]:
        info["scanning_sequence"] = (*info["scanning_sequence"], "IR")
    return info


def _frames(
    ds: Dataset, header: Header, shared: Dataset | None, per_frame_seq
) -> list[FrameHeader]:
    slope = _float(_value(ds, "RescaleSlope"), 1.0) or 1.0
    intercept = _float(_value(ds, "RescaleIntercept"), 0.0) or 0.0
    if not header.enhanced:
        position = _position(_value(ds, "ImagePositionPatient"))
        orientation = _orientation(_value(ds, "ImageOrientationPatient"))
        spacing = _spacing(_value(ds, "PixelSpacing"))
        common: dict[str, Any] = {  # the fields every frame shares
            "position": position,
            "orientation": orientation,
            "pixel_spacing": spacing,
            "slope": slope,
            "intercept": intercept,
            "echo_time": header.mr.get("te"),
        }
        if header.n_frames == 1:
            return [FrameHeader(frame=None, **common)]
        # Classic multi-frame (cine ultrasound, secondary capture): frames share geometry.
        return [FrameHeader(frame=i, **common) for i in range(header.n_frames)]

    items = list(per_frame_seq or [])
    frames = []
    for i in range(header.n_frames):
        item = items[i] if i < len(items) else None
        pos_item = _functional(item, shared, "PlanePositionSequence")
        ori_item = _functional(item, shared, "PlaneOrientationSequence")
        meas_item = _functional(item, shared, "PixelMeasuresSequence")
        pvt_item = _functional(item, shared, "PixelValueTransformationSequence")
        type_item = _functional(item, shared, "MRImageFrameTypeSequence") or _functional(
            item, shared, "CTImageFrameTypeSequence"
        )
        content = _first(item, "FrameContentSequence")
        echo = _functional(item, shared, "MREchoSequence")
        frames.append(
            FrameHeader(
                frame=i,
                position=_position(_value(pos_item, "ImagePositionPatient")) if pos_item else None,
                orientation=(
                    _orientation(_value(ori_item, "ImageOrientationPatient")) if ori_item else None
                ),
                pixel_spacing=_spacing(_value(meas_item, "PixelSpacing")) if meas_item else None,
                slope=(
                    (_float(_value(pvt_item, "RescaleSlope"), slope) or slope)
                    if pvt_item
                    else slope
                ),
                intercept=(
                    _float(_value(pvt_item, "RescaleIntercept"), intercept)
                    if pvt_item
                    else intercept
                )
                or 0.0,
                frame_type=_strs(_value(type_item, "FrameType")) if type_item else (),
                stack_id=str(_value(content, "StackID") or "").strip() if content else "",
                temporal_index=_int(_value(content, "TemporalPositionIndex")) if content else None,
                echo_time=_float(_value(echo, "EffectiveEchoTime")) if echo else None,
            )
        )
    return frames


def transfer_syntax_name(uid: str) -> str:
    """A readable name for a transfer syntax UID."""
    try:
        return UID(uid).name
    except Exception:  # pragma: no cover - pydicom knows every standard UID
        return uid
