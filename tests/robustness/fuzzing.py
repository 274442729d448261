"""Hostile DICOM: seed files, the ways they get broken, and what backmice may do with them.

Shared by the robustness tests (a bounded, reproducible number of examples per
class, see :data:`SUITE_EXAMPLES`) and ``bench/fuzz.py`` (long runs with
hypothesis or atheris). A *case* is a small folder of files (``name -> bytes``)
made from real files of pydicom and pydicom-data, or from series written by
:mod:`backmice.io.writer`, by one class of damage (:data:`CLASSES`). The oracle,
:func:`check`, runs :func:`backmice.open_study` on each file and on the folder
and :func:`backmice.load` on every image stack, and allows exactly:

- ``open_study`` returns a :class:`~backmice.Study` (for a single file it may
  raise :class:`~backmice.InputError` naming that file, e.g. an unreadable
  DICOMDIR); every file of the folder is in a stack, in ``skipped`` with a
  reason, or named in a stack's warnings (a second copy of one instance);
- ``load`` returns a :class:`~backmice.Volume` of the stack's shape, or raises
  :class:`~backmice.InputError` whose ``path`` is one of the stack's files and
  whose ``problem`` is a non-empty sentence.

Anything else (another exception, a hang past the time limit, a memory error
under a bounded address space) is a :class:`Violation`.

Every mutation draws its choices from a :class:`Chooser`, so the same code runs
under hypothesis (:func:`case_strategy`) and atheris (:class:`ProviderChooser`).
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import os
import signal
import struct
import tempfile
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.tag import Tag

import backmice
from backmice.errors import InputError

__all__ = [
    "CLASSES",
    "LONG_SEEDS",
    "SUITE_EXAMPLES",
    "SUITE_SEEDS",
    "Case",
    "Chooser",
    "Result",
    "Violation",
    "case_strategy",
    "check",
    "make_case",
]

# --------------------------------------------------------------------------- seeds

#: Real files the suite mutates: small, and between them every code path of the
#: loader (uncompressed LE/BE/implicit, RLE, JPEG, JPEG-LS, JPEG 2000, enhanced
#: multi-frame, palette and RGB ultrasound, SEG, SR, non-image, no preamble).
SUITE_SEEDS: tuple[str, ...] = (
    "MR_small.dcm",
    "MR_small_RLE.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_jp2klossless.dcm",
    "MR_small_jpeg_ls_lossless.dcm",
    "emri_small.dcm",
    "emri_small_RLE.dcm",
    "OBXXXX1A_rle.dcm",
    "SC_rgb_jpeg_dcmtk.dcm",
    "JPEG2000.dcm",
    "CT_small.dcm",
    "liver_1frame.dcm",
    "test-SR.dcm",
    "rtplan.dcm",
    "OT-PAL-8-face.dcm",
    "image_dfl.dcm",
    "gen:series",
    "gen:enhanced",
    "gen:us",
)

#: The long run (``bench/fuzz.py``) adds larger files and more vendors.
LONG_SEEDS: tuple[str, ...] = (
    *SUITE_SEEDS,
    "MR_small_expb.dcm",
    "MR_small_padded.dcm",
    "emri_small_big_endian.dcm",
    "emri_small_jpeg_2k_lossless.dcm",
    "emri_small_jpeg_ls_lossless.dcm",
    "OBXXXX1A.dcm",
    "OBXXXX1A_2frame.dcm",
    "OBXXXX1A_expb.dcm",
    "US1_UNCR.dcm",
    "US1_J2KR.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "MR2_J2KR.dcm",
    "MR-SIEMENS-DICOM-WithOverlays.dcm",
    "SC_rgb.dcm",
    "SC_ybr_full_uncompressed.dcm",
    "ExplVR_BigEnd.dcm",
    "JPEG-LL.dcm",
    "693_J2KR.dcm",
    "liver.dcm",
    "examples_palette.dcm",
    "gdcm-US-ALOKA-16.dcm",
    "gen:series_rle",
)

_DICOMDIR = "DICOMDIR"


def _read_real(name: str) -> bytes:
    from tests.conftest import real_file

    return real_file(name).read_bytes()


@functools.cache
def _generated() -> dict[str, dict[str, bytes]]:
    """Seeds written by backmice's own writer (small, with known structure)."""
    from pydicom.uid import RLELossless

    from backmice.io.writer import make_affine, write_series, write_ultrasound

    rng = np.random.default_rng(0)
    out: dict[str, dict[str, bytes]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = rng.integers(0, 1000, size=(4, 8, 10)).astype(float)
        affine = make_affine((2.0, 0.7, 0.7), origin=(-10.0, 5.0, 30.0))
        for key, kwargs in (
            ("series", {}),
            ("enhanced", {"enhanced": True}),
            ("series_rle", {"transfer_syntax": RLELossless}),
        ):
            paths = write_series(data, root / key, affine=affine, seed=1, **kwargs)
            out[key] = {f"{key}_{i}.dcm": p.read_bytes() for i, p in enumerate(paths)}
        image = rng.integers(0, 255, size=(24, 32)).astype(np.uint8)
        us = write_ultrasound(image, root / "us.dcm", region=(2, 3, 29, 21), delta_mm=(0.2, 0.25))
        out["us"] = {"us.dcm": us.read_bytes()}
    return out


@functools.cache
def seed_files(name: str) -> dict[str, bytes]:
    """The files of a seed: ``gen:...`` seeds are written by backmice, others are real."""
    if name.startswith("gen:"):
        return _generated()[name[4:]]
    return {name: _read_real(name)}


# --------------------------------------------------------------------------- choosing


class Chooser(Protocol):
    """Where a mutation's choices come from (hypothesis, atheris, a random generator)."""

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        ...


class HypothesisChooser:
    """Choices drawn by a hypothesis ``draw`` function (so failing cases shrink)."""

    def __init__(self, draw) -> None:
        from hypothesis import strategies as st

        self._draw, self._st = draw, st

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self._draw(self._st.integers(lo, hi))


class ProviderChooser:
    """Choices from an atheris ``FuzzedDataProvider`` (0 once the input is used up)."""

    def __init__(self, provider) -> None:
        self._p = provider

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return self._p.ConsumeIntInRange(lo, hi)


class RandomChooser:
    """Choices from a numpy random generator."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def integer(self, lo: int, hi: int) -> int:
        """An integer in ``[lo, hi]``."""
        return int(self._rng.integers(lo, hi, endpoint=True))


def _pick(ch: Chooser, options):
    options = list(options)
    return options[ch.integer(0, len(options) - 1)]


# --------------------------------------------------------------------------- layout


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a file's element lengths and pixel data are (found by parsing it)."""

    #: ``(offset, width, little_endian)`` of element length fields.
    lengths: tuple[tuple[int, int, bool], ...]
    #: ``(start, end)`` of the PixelData value, or None.
    pixels: tuple[int, int] | None
    #: Offsets of the item headers inside encapsulated pixel data (offset table first).
    fragments: tuple[int, ...]
    encapsulated: bool
    little: bool


_LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}


def _meta_lengths(data: bytes) -> list[tuple[int, int, bool]]:
    out = []
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        vr = data[pos + 4 : pos + 6].decode("latin-1")
        if vr in _LONG_VRS:
            out.append((pos + 8, 4, True))
            pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        else:
            out.append((pos + 6, 2, True))
            pos += 8 + int.from_bytes(data[pos + 6 : pos + 8], "little")
    return out


def _walk_lengths(ds: Dataset, implicit: bool, little: bool) -> Iterator[tuple[int, int, bool]]:
    for elem in ds._dict.values():
        if isinstance(elem, RawDataElement):
            tell, vr = elem.value_tell, elem.VR
        else:
            tell, vr = getattr(elem, "file_tell", None), elem.VR
        if tell is None:
            continue
        if implicit or vr in _LONG_VRS:
            yield (tell - 4, 4, little)
        else:
            yield (tell - 2, 2, little)
        if vr == "SQ" or (not isinstance(elem, RawDataElement) and elem.VR == "SQ"):
            with contextlib.suppress(Exception):
                for item in ds[elem.tag].value:
                    yield from _walk_lengths(item, implicit, little)


@functools.cache
def layout(seed: str, name: str) -> Layout:
    """Parse one seed file to find its element lengths and pixel data."""
    data = seed_files(seed)[name]
    ds = pydicom.dcmread(io.BytesIO(data), force=True)
    implicit, little = ds.original_encoding
    lengths = _meta_lengths(data)
    with contextlib.suppress(Exception):
        lengths.extend(_walk_lengths(ds, bool(implicit), little is not False))
    lengths = [(o, w, le) for o, w, le in lengths if o >= 0 and o + w <= len(data)]
    pixels = None
    fragments: list[int] = []
    encapsulated = False
    elem = ds._dict.get(Tag(0x7FE00010))
    if isinstance(elem, RawDataElement) and elem.value is not None:
        start = elem.value_tell
        pixels = (start, start + len(elem.value))
        encapsulated = elem.length == 0xFFFFFFFF
        if encapsulated:
            pos = start
            while pos + 8 <= pixels[1] and data[pos : pos + 4] == b"\xfe\xff\x00\xe0":
                fragments.append(pos)
                pos += 8 + int.from_bytes(data[pos + 4 : pos + 8], "little")
    return Layout(tuple(lengths), pixels, tuple(fragments), encapsulated, little is not False)


# --------------------------------------------------------------------------- cases


@dataclass(slots=True, repr=False)
class Case:
    """Files to write into a folder, and how they were made (for crash reports)."""

    cls: str
    files: dict[str, bytes]
    how: list[str] = field(default_factory=list)
    #: Load every image stack (False where only the scan is under test).
    load: bool = True

    def write(self, folder: Path) -> list[Path]:
        """Write the files into ``folder``; returns their paths."""
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, data in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            paths.append(path)
        return paths

    def describe(self) -> str:
        """One line: the class and what was done."""
        return f"[{self.cls}] " + "; ".join(self.how)

    def __repr__(self) -> str:
        return f"<Case {self.describe()}>"


def _seed_case(cls: str, ch: Chooser, seeds: tuple[str, ...]) -> tuple[Case, str, str]:
    """A case holding an intact seed; returns it, the seed and the file to damage."""
    seed = _pick(ch, seeds)
    files = dict(seed_files(seed))
    name = _pick(ch, sorted(files))
    return Case(cls, files, [f"seed {seed}, file {name}"]), seed, name


# -- byte-level damage --------------------------------------------------------------------------


def _truncated(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, seed, name = _seed_case("truncated", ch, seeds)
    data = case.files[name]
    lay = layout(seed, name)
    # Half the cuts land in the header (before the pixel data), where parsing is.
    end = lay.pixels[0] + 16 if lay.pixels and ch.integer(0, 1) else len(data) - 1
    at = ch.integer(0, max(min(end, len(data) - 1), 0))
    case.files[name] = data[:at]
    case.how.append(f"cut at byte {at} of {len(data)}")
    return case


def _overwritten(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, seed, name = _seed_case("overwritten", ch, seeds)
    data = bytearray(case.files[name])
    lay = layout(seed, name)
    header_end = min(lay.pixels[0] if lay.pixels else len(data), len(data))
    for _ in range(ch.integer(1, 8)):
        hi = header_end - 1 if ch.integer(0, 3) else len(data) - 1
        at = ch.integer(0, max(hi, 0))
        value = ch.integer(0, 255)
        if ch.integer(0, 1):
            value = data[at] ^ (1 << ch.integer(0, 7))  # a single bit flip
        data[at] = value
        case.how.append(f"byte {at} = 0x{value:02x}")
    case.files[name] = bytes(data)
    return case


_HUGE_4 = (0xFFFFFFF0, 0xFFFFFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0, 1, 3)
_HUGE_2 = (0xFFFF, 0xFFF0, 0x7FFF, 0, 1, 3)


def _huge_length(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, seed, name = _seed_case("huge_length", ch, seeds)
    data = bytearray(case.files[name])
    lay = layout(seed, name)
    for _ in range(ch.integer(1, 2)):
        offset, width, little = _pick(ch, lay.lengths)
        options = _HUGE_4 if width == 4 else _HUGE_2
        choice = ch.integer(0, len(options) + 1)
        if choice < len(options):
            value = options[choice]
        else:  # just past the end of the file
            value = min(len(data) - offset + ch.integer(-8, 64), (1 << (8 * width)) - 1)
            value = max(value, 0)
        data[offset : offset + width] = value.to_bytes(width, "little" if little else "big")
        case.how.append(f"length field at byte {offset} ({width} bytes) = 0x{value:x}")
    case.files[name] = bytes(data)
    return case


def _junk(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """Not DICOM at all, or DICOM-looking starts followed by rubbish."""
    kind = ch.integer(0, 5)
    n = ch.integer(0, 300)
    body = bytes(ch.integer(0, 255) for _ in range(n))
    if kind == 0:
        data, how = body, f"{n} random bytes"
    elif kind == 1:
        data, how = b"\x00" * 128 + b"DICM" + body, "preamble + DICM + random bytes"
    elif kind == 2:
        data, how = b"\x08\x00" + body, "a group 0008 start (no preamble) + random bytes"
    elif kind == 3:
        data, how = b"\x02\x00" + body, "a group 0002 start (no preamble) + random bytes"
    elif kind == 4:
        depth = ch.integer(50, 3000)
        item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
        seq = b"\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff"  # ReferencedSeriesSequence
        data = b"\x00" * 128 + b"DICM" + _meta_bytes("1.2.840.10008.1.2.1") + (seq + item) * depth
        how = f"sequences nested {depth} deep"
    else:
        data, how = b"", "an empty file"
    return Case("junk", {"junk.dcm": data}, [how])


def _meta_bytes(transfer_syntax: str, sop_class: str = "1.2.840.10008.5.1.4.1.1.4") -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = "1.2.3.4.5"
    buf = pydicom.filebase.DicomBytesIO()
    buf.is_little_endian, buf.is_implicit_VR = True, False
    write_file_meta_info(buf, meta, enforce_standard=True)
    return buf.getvalue()


def _body_start(data: bytes) -> int:
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":
        vr = data[pos + 4 : pos + 6].decode("latin-1")
        if vr in _LONG_VRS:
            pos += 12 + int.from_bytes(data[pos + 8 : pos + 12], "little")
        else:
            pos += 8 + int.from_bytes(data[pos + 6 : pos + 8], "little")
    return pos


def _with_transfer_syntax(data: bytes, uid: str) -> bytes:
    """The same body under a file meta that declares another transfer syntax."""
    ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
    sop = str(ds.file_meta.get("MediaStorageSOPClassUID", "1.2.840.10008.5.1.4.1.1.4"))
    return b"\x00" * 128 + b"DICM" + _meta_bytes(uid, sop) + data[_body_start(data) :]


# -- structural damage (through pydicom) --------------------------------------------------------


def _dataset(data: bytes) -> Dataset:
    return pydicom.dcmread(io.BytesIO(data), force=True)


def _save(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds)
    return buf.getvalue()


def _set_raw(ds: Dataset, keyword: str, value: bytes, vr: str, encoding) -> None:
    """Put ``value`` into ``ds`` as raw bytes, past pydicom's validation."""
    implicit, little = encoding
    tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
    if len(value) % 2:
        value += b" " if vr not in ("OB", "UI", "US", "UL", "SS", "SL") else b"\x00"
    ds[tag] = RawDataElement(
        tag, None if implicit else vr, len(value), value, 0, bool(implicit), little is not False
    )


def _pack(value: int, code: str, little) -> bytes:
    return struct.pack(("<" if little is not False else ">") + code, value)


def _datasets_with(ds: Dataset, keyword: str) -> list[Dataset]:
    """``ds`` and every nested item that holds ``keyword`` (without converting other values)."""
    tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
    found = [ds] if tag in ds._dict else []
    for key, elem in list(ds._dict.items()):
        vr = elem.VR
        if vr is None:
            try:
                vr = pydicom.datadict.dictionary_VR(key)
            except KeyError:
                continue
        if vr != "SQ":
            continue
        try:
            items = ds[key].value or []
        except Exception:  # a value broken by an earlier mutation
            continue
        for item in items:
            found.extend(_datasets_with(item, keyword))
    return found


_FORMAT_KEYWORDS = {
    "Rows": "US",
    "Columns": "US",
    "BitsAllocated": "US",
    "BitsStored": "US",
    "HighBit": "US",
    "SamplesPerPixel": "US",
    "PixelRepresentation": "US",
    "PlanarConfiguration": "US",
    "NumberOfFrames": "IS",
    "PhotometricInterpretation": "CS",
}
_US_VALUES = (0, 1, 2, 3, 4, 7, 8, 12, 15, 16, 17, 24, 31, 32, 33, 48, 64, 255, 256, 4096, 65535)
_IS_VALUES = (
    "0",
    "-1",
    "2",
    "3",
    "10",
    "65536",
    "1000000",
    "2147483648",
    "1e9",
    "1e2",
    "abc",
    "",
    "1.5",
    "nan",
    "99999999999999999999",
)
_PHOTOMETRIC = (
    "MONOCHROME1",
    "MONOCHROME2",
    "RGB",
    "PALETTE COLOR",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_RCT",
    "YBR_ICT",
    "HSV",
    "",
    "GARBAGE\\MORE",
)


def _pixel_format(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, _, name = _seed_case("pixel_format", ch, seeds)
    ds = _dataset(case.files[name])
    enc = ds.original_encoding
    for _ in range(ch.integer(1, 3)):
        keyword = _pick(ch, sorted(_FORMAT_KEYWORDS))
        vr = _FORMAT_KEYWORDS[keyword]
        if vr == "US":
            current = int(ds.get(keyword, 0) or 0) if keyword in ds else 0
            options = (*_US_VALUES, current + 1, max(current - 1, 0), current * 2, current // 2)
            value = min(_pick(ch, options), 65535)
            _set_raw(ds, keyword, _pack(value, "H", enc[1]), vr, enc)
        elif vr == "IS":
            value = _pick(ch, _IS_VALUES)
            _set_raw(ds, keyword, value.encode(), vr, enc)
        else:
            value = _pick(ch, _PHOTOMETRIC)
            _set_raw(ds, keyword, value.encode(), vr, enc)
        case.how.append(f"{keyword} = {value!r}")
    case.files[name] = _save(ds)
    return case


def _no_pixels(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, seed, name = _seed_case("no_pixels", ch, seeds)
    data = case.files[name]
    lay = layout(seed, name)
    kind = ch.integer(0, 3)
    if kind == 0 or lay.pixels is None:
        ds = _dataset(data)
        for keyword in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"):
            if keyword in ds:
                del ds[keyword]
        case.files[name] = _save(ds)
        case.how.append("PixelData removed")
        return case
    start, end = lay.pixels
    raw = data[start:end]
    if kind == 1:
        value = b""
        case.how.append("PixelData empty")
    elif kind == 2:
        keep = ch.integer(0, max(len(raw) - 1, 0)) & ~1
        value = raw[:keep]
        case.how.append(f"PixelData cut to {keep} of {len(raw)} bytes (its length says so)")
    else:
        value = raw + raw
        case.how.append("PixelData doubled")
    # The value and its 4-byte length (OB/OW and implicit VR both have one), in place.
    length = len(value).to_bytes(4, "little" if lay.little else "big")
    case.files[name] = data[: start - 4] + length + value + data[end:]
    return case


_COMPRESSED_SYNTAXES = (
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K lossless
    "1.2.840.10008.1.2.1.99",  # deflated
    "1.2.840.10008.1.2.2",  # big endian
    "1.2.840.10008.1.2",  # implicit
    "1.2.840.10008.1.2.1",  # explicit
    "1.2.3.4.5.6",  # unknown
)


def _compressed_frames(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    encapsulated = tuple(s for s in seeds if _has_fragments(s))
    case, seed, name = _seed_case("compressed_frames", ch, encapsulated or seeds)
    data = bytearray(case.files[name])
    lay = layout(seed, name)
    kind = ch.integer(0, 5) if lay.fragments else 5
    frags = lay.fragments
    if kind == 0:  # rubbish inside a fragment's compressed stream
        k = ch.integer(1 if len(frags) > 1 else 0, len(frags) - 1)
        start = frags[k] + 8
        end = frags[k + 1] if k + 1 < len(frags) else lay.pixels[1]
        for _ in range(ch.integer(1, 16)):
            at = ch.integer(start, max(end - 1, start))
            if at < len(data):
                data[at] = ch.integer(0, 255)
        case.how.append(f"bytes changed in fragment {k}")
    elif kind == 1:  # a fragment's stream cut short, the length kept consistent
        k = ch.integer(1 if len(frags) > 1 else 0, len(frags) - 1)
        start = frags[k] + 8
        end = frags[k + 1] if k + 1 < len(frags) else lay.pixels[1] - 8
        old = end - start
        new = ch.integer(0, max(old, 0)) & ~1
        data[frags[k] + 4 : frags[k] + 8] = new.to_bytes(4, "little")
        del data[start + new : end]
        case.how.append(f"fragment {k} cut from {old} to {new} bytes")
    elif kind == 2:  # a fragment's length field lies
        k = ch.integer(0, len(frags) - 1)
        value = _pick(ch, (*_HUGE_4, 2, 7))
        data[frags[k] + 4 : frags[k] + 8] = value.to_bytes(4, "little")
        case.how.append(f"item {k} length = 0x{value:x}")
    elif kind == 3:  # the basic offset table says something wrong
        count = ch.integer(1, 6)
        table = b"".join(ch.integer(0, 0xFFFFFFFF).to_bytes(4, "little") for _ in range(count))
        bot = frags[0]
        old_len = int.from_bytes(data[bot + 4 : bot + 8], "little")
        data[bot + 4 : bot + 8 + old_len] = len(table).to_bytes(4, "little") + table
        case.how.append(f"basic offset table replaced by {count} random offsets")
    elif kind == 4:  # the sequence delimiter or every fragment gone
        if ch.integer(0, 1):
            del data[frags[-1] :]
            case.how.append("fragments after the offset table removed, file ends there")
        else:
            end = lay.pixels[1]
            tail = bytes(data[end - 8 : end])
            if tail == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00":
                del data[end - 8 : end]
            case.how.append("sequence delimiter removed")
    else:  # the file says another transfer syntax than its data has
        uid = _pick(ch, _COMPRESSED_SYNTAXES)
        data = bytearray(_with_transfer_syntax(bytes(data), uid))
        case.how.append(f"TransferSyntaxUID = {uid}")
    case.files[name] = bytes(data)
    return case


@functools.cache
def _has_fragments(seed: str) -> bool:
    return any(layout(seed, name).fragments for name in seed_files(seed))


_DS_GARBAGE = (
    "nan\\nan\\nan",
    "inf\\0\\0",
    "-inf\\1\\1",
    "abc",
    "1\\2",
    "1\\2\\3\\4",
    "1e309\\0\\0",
    "1e300\\1e300\\1e300",
    "",
    "0\\0",
    "-1\\-1",
    "0\\0\\0\\0\\0\\0",
    "1\\0\\0\\1\\0\\0",
    "1\\0\\0\\-1\\0\\0",
    "1\\0\\0\\0\\1",
    "0.5\\0.5\\0\\0\\0.5\\0.5",
    "1e-30\\0\\0\\0\\1e-30\\0",
    "1\\0\\0\\0\\1\\0",
    "0\\1\\0\\0\\0\\-1",
    "1e-9\\1e-9",
    "1e9\\1e9",
    "0",
    "-0.5",
    "1e38",
    "3.5e38",
    "\x00\x00",
)
_GEOMETRY_KEYWORDS = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "RescaleSlope",
    "RescaleIntercept",
    "SliceThickness",
    "SpacingBetweenSlices",
    "EchoTime",
    "RepetitionTime",
    "InstanceNumber",
)


def _geometry_file(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    case, _, name = _seed_case("geometry_values", ch, seeds)
    ds = _dataset(case.files[name])
    enc = ds.original_encoding
    for _ in range(ch.integer(1, 3)):
        keyword = _pick(ch, _GEOMETRY_KEYWORDS)
        holders = _datasets_with(ds, keyword) or [ds]
        value = _pick(ch, _DS_GARBAGE)
        vr = "IS" if keyword == "InstanceNumber" else "DS"
        targets = holders if ch.integer(0, 1) else [_pick(ch, holders)]
        for target in targets:
            _set_raw(target, keyword, value.encode("latin-1"), vr, enc)
        case.how.append(f"{keyword} = {value!r} in {len(targets)} place(s)")
    case.files[name] = _save(ds)
    return case


_REGION_KEYS = {
    "RegionLocationMinX0": ("UL", (0, 1, 5, 30, 31, 32, 640, 0x7FFFFFFF, 0xFFFFFFFF)),
    "RegionLocationMinY0": ("UL", (0, 1, 5, 22, 23, 24, 480, 0x7FFFFFFF, 0xFFFFFFFF)),
    "RegionLocationMaxX1": ("UL", (0, 1, 5, 30, 31, 32, 640, 0x7FFFFFFF, 0xFFFFFFFF)),
    "RegionLocationMaxY1": ("UL", (0, 1, 5, 22, 23, 24, 480, 0x7FFFFFFF, 0xFFFFFFFF)),
    "PhysicalDeltaX": ("FD", (0.0, -0.01, math.nan, math.inf, 1e300, 1e-300, 5e-324, 0.02)),
    "PhysicalDeltaY": ("FD", (0.0, -0.01, math.nan, math.inf, 1e300, 1e-300, 5e-324, 0.02)),
    "PhysicalUnitsXDirection": ("US", (0, 3, 4, 65535)),
    "PhysicalUnitsYDirection": ("US", (0, 3, 4, 65535)),
    "RegionSpatialFormat": ("US", (0, 1, 2, 65535)),
}


def _ultrasound_regions(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    with_regions = tuple(s for s in seeds if _has_regions(s)) or seeds
    case, _, name = _seed_case("ultrasound_regions", ch, with_regions)
    ds = _dataset(case.files[name])
    enc = ds.original_encoding
    regions = ds.get("SequenceOfUltrasoundRegions")
    kind = ch.integer(0, 5) if regions else 0
    if kind == 0:
        ds.SequenceOfUltrasoundRegions = []
        case.how.append("SequenceOfUltrasoundRegions emptied")
    elif kind == 1:
        item = regions[ch.integer(0, len(regions) - 1)]
        key = _pick(ch, sorted(_REGION_KEYS))
        if key in item:
            del item[key]
        case.how.append(f"{key} removed")
    elif kind == 2:
        regions.append(Dataset())
        regions[-1].update(regions[0])
        regions[-1].PhysicalDeltaX = float(regions[0].get("PhysicalDeltaX", 0.01)) * 2
        case.how.append("a second 2D region with another pixel size")
    else:
        for _ in range(ch.integer(1, 4)):
            item = regions[ch.integer(0, len(regions) - 1)]
            key = _pick(ch, sorted(_REGION_KEYS))
            vr, options = _REGION_KEYS[key]
            value = _pick(ch, options)
            code = {"UL": "I", "US": "H", "FD": "d"}[vr]
            _set_raw(item, key, _pack(value, code, enc[1]), vr, enc)
            case.how.append(f"{key} = {value!r}")
    case.files[name] = _save(ds)
    return case


@functools.cache
def _has_regions(seed: str) -> bool:
    return any(
        b"\x18\x00\x11\x60" in data or b"\x00\x18\x60\x11" in data
        for data in seed_files(seed).values()
    )


def _series_geometry(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """A generated series (or enhanced file) whose images disagree with each other."""
    seed = _pick(ch, ("gen:series", "gen:series", "gen:enhanced", "gen:series_rle"))
    files = dict(seed_files(seed))
    names = sorted(files)
    case = Case("series_geometry", files, [f"seed {seed}"])
    datasets = {n: _dataset(files[n]) for n in names}
    for _ in range(ch.integer(1, 3)):
        name = _pick(ch, names)
        ds = datasets[name]
        other = datasets[_pick(ch, names)]
        enc = ds.original_encoding
        kind = ch.integer(0, 10)
        holders_ipp = _datasets_with(ds, "ImagePositionPatient") or [ds]
        holders_iop = _datasets_with(ds, "ImageOrientationPatient") or [ds]
        target_ipp = _pick(ch, holders_ipp)
        target_iop = _pick(ch, holders_iop)
        if kind == 0:  # same position as another image (its raw element, as it is)
            ipp = _datasets_with(other, "ImagePositionPatient")
            if ipp:
                tag = Tag(0x00200032)
                target_ipp[tag] = ipp[0].get_item(tag)
            case.how.append(f"{name}: position of another image")
        elif kind == 1:  # orientation off by a small or a large angle
            angle = _pick(ch, (0.3, 0.9, 5.0, 45.0, 90.0, 180.0))
            c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
            target_iop.ImageOrientationPatient = [c, s, 0.0, -s, c, 0.0]
            case.how.append(f"{name}: orientation turned {angle} degrees in plane")
        elif kind == 2:
            value = _pick(ch, _DS_GARBAGE)
            _set_raw(target_iop, "ImageOrientationPatient", value.encode("latin-1"), "DS", enc)
            case.how.append(f"{name}: ImageOrientationPatient = {value!r}")
        elif kind == 3:
            value = _pick(ch, _DS_GARBAGE)
            _set_raw(target_ipp, "ImagePositionPatient", value.encode("latin-1"), "DS", enc)
            case.how.append(f"{name}: ImagePositionPatient = {value!r}")
        elif kind == 4:  # a position far away, or in the plane (no advance along the normal)
            offset = _pick(ch, ((0, 0, 1e6), (5.0, 0, 0), (0, 7.0, 0), (0, 0, 1e-3), (0, 0, -2.0)))
            try:
                old = [float(v) for v in target_ipp.get("ImagePositionPatient", [0, 0, 0])][:3]
            except (TypeError, ValueError, OverflowError):  # made rubbish by an earlier step
                old = []
            if len(old) == 3:
                target_ipp.ImagePositionPatient = [a + b for a, b in zip(old, offset, strict=True)]
            case.how.append(f"{name}: position moved by {offset}")
        elif kind == 5:
            holders = _datasets_with(ds, "PixelSpacing") or [ds]
            value = _pick(ch, ("0\\0", "-1\\-1", "0.7\\0.8", "1\\1", "nan\\1", "0.7"))
            _set_raw(_pick(ch, holders), "PixelSpacing", value.encode(), "DS", enc)
            case.how.append(f"{name}: PixelSpacing = {value!r}")
        elif kind == 6:  # another image's identity
            ds.SOPInstanceUID = other.SOPInstanceUID
            case.how.append(f"{name}: SOPInstanceUID of another image")
        elif kind == 7:
            keyword = _pick(ch, ("BitsAllocated", "BitsStored", "PixelRepresentation", "Rows"))
            value = _pick(ch, (8, 12, 1, 0, 4, 32))
            _set_raw(ds, keyword, _pack(value, "H", enc[1]), "US", enc)
            case.how.append(f"{name}: {keyword} = {value}")
        elif kind == 8:  # geometry removed from one image
            keyword = _pick(ch, ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing"))
            for holder in _datasets_with(ds, keyword):
                del holder[keyword]
            case.how.append(f"{name}: {keyword} removed")
        elif kind == 9:  # enhanced: per-frame items removed or NumberOfFrames lies
            if "PerFrameFunctionalGroupsSequence" in ds and ch.integer(0, 1):
                seq = ds.PerFrameFunctionalGroupsSequence
                keep = ch.integer(0, len(seq))
                ds.PerFrameFunctionalGroupsSequence = list(seq)[:keep]
                case.how.append(f"{name}: {keep} per-frame item(s) kept")
            else:
                value = _pick(ch, ("0", "2", "5", "100"))
                _set_raw(ds, "NumberOfFrames", value.encode(), "IS", enc)
                case.how.append(f"{name}: NumberOfFrames = {value}")
        else:
            uid = _pick(ch, ("", "1.2.3", "garbage uid"))
            _set_raw(ds, "SeriesInstanceUID", uid.encode(), "UI", enc)
            case.how.append(f"{name}: SeriesInstanceUID = {uid!r}")
    for name in names:
        files[name] = _save(datasets[name])
    return case


@functools.cache
def _dicomdir_files() -> dict[str, bytes]:
    from tests.conftest import real_file

    root = real_file(_DICOMDIR).parent
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


_FILE_IDS = (
    "..\\..\\..\\etc\\passwd",
    "\\etc\\passwd",
    "/etc/passwd",
    "NOSUCH\\FILE",
    "77654033\\CR1",
    "a\x00b",
    "",
    "X" * 300,
    "..",
    ".",
)


def _dicomdir(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """A DICOMDIR whose records point at missing, odd or outside files, or that is damaged."""
    files = dict(_dicomdir_files())
    case = Case("dicomdir", files, [], load=False)
    data = files[_DICOMDIR]
    kind = ch.integer(0, 2)
    if kind == 0:
        ds = _dataset(data)
        records = list(ds.DirectoryRecordSequence)
        enc = ds.original_encoding
        for _ in range(ch.integer(1, 4)):
            record = records[ch.integer(0, len(records) - 1)]
            value = _pick(ch, _FILE_IDS)
            _set_raw(record, "ReferencedFileID", value.encode("latin-1"), "CS", enc)
            case.how.append(f"ReferencedFileID = {value!r}")
        files[_DICOMDIR] = _save(ds)
    elif kind == 1:
        at = ch.integer(0, len(data) - 1)
        files[_DICOMDIR] = data[:at]
        case.how.append(f"DICOMDIR cut at byte {at}")
    else:
        buf = bytearray(data)
        for _ in range(ch.integer(1, 8)):
            at = ch.integer(0, len(buf) - 1)
            buf[at] = ch.integer(0, 255)
            case.how.append(f"DICOMDIR byte {at} = 0x{buf[at]:02x}")
        files[_DICOMDIR] = bytes(buf)
    # Some referenced files are gone.
    for name in sorted(files):
        if name != _DICOMDIR and ch.integer(0, 15) == 0:
            del files[name]
            case.how.append(f"{name} deleted")
    return case


def _single_slice(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """One MR slice: one file of a series, or a series whose images all share one position."""
    seed = _pick(ch, ("gen:series", "gen:series_rle", "MR_small.dcm", "gen:enhanced"))
    files = dict(seed_files(seed))
    names = sorted(files)
    case = Case("single_slice", files, [f"seed {seed}"])
    kind = ch.integer(0, 1) if len(names) > 1 else 1
    if kind == 0:
        keep = _pick(ch, names)
        case.files = {keep: files[keep]}
        case.how.append(f"only {keep} kept")
    else:
        first = None
        for name in names:
            ds = _dataset(files[name])
            holders = _datasets_with(ds, "ImagePositionPatient")
            for holder in holders:
                if first is None:
                    first = [float(v) for v in holder.ImagePositionPatient]
                holder.ImagePositionPatient = first
            files[name] = _save(ds)
        case.how.append("every image (or frame) at the first one's position")
    return case


_ABSURD_PIXEL = ("1e-300\\1e-300", "1e-5\\1e-5", "1e3\\1e3", "1e6\\1e6", "2e-79\\0.5", "5e-324\\1")
_ABSURD_DELTA = (2e-79, 1e306, 1e-300, 5e-324, 1e-5, 100.0, 1e30)
_ABSURD_STEP = (1e5, 1e300, 3e3, 1e-3, 0.02)


def _absurd_spacing(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """PixelSpacing, slice positions or ultrasound pixel sizes far outside any real device's."""
    seed = _pick(ch, ("gen:series", "gen:enhanced", "gen:us", "MR_small.dcm"))
    files = dict(seed_files(seed))
    case = Case("absurd_spacing", files, [f"seed {seed}"])
    kind = ch.integer(0, 1)
    delta, pixel, step = _pick(ch, _ABSURD_DELTA), _pick(ch, _ABSURD_PIXEL), _pick(ch, _ABSURD_STEP)
    for i, name in enumerate(sorted(files)):
        ds = _dataset(files[name])
        enc = ds.original_encoding
        regions = ds.get("SequenceOfUltrasoundRegions")
        if regions:
            for item in regions:
                item.PhysicalDeltaX = item.PhysicalDeltaY = delta
            case.how.append(f"{name}: PhysicalDeltaX/Y = {delta!r} cm")
        elif kind == 0:
            for holder in _datasets_with(ds, "PixelSpacing") or [ds]:
                _set_raw(holder, "PixelSpacing", pixel.encode(), "DS", enc)
            case.how.append(f"{name}: PixelSpacing = {pixel!r}")
        else:
            for k, holder in enumerate(_datasets_with(ds, "ImagePositionPatient")):
                holder.ImagePositionPatient = [0.0, 0.0, (i + k) * step]
            case.how.append(f"{name}: positions {step!r} mm apart")
        files[name] = _save(ds)
    return case


#: Type 2 and 3 attributes anonymisers empty or remove.
_ANONYMISED = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionName",
    "StudyDescription",
    "SeriesDescription",
    "SeriesNumber",
    "InstanceNumber",
    "Manufacturer",
    "BodyPartExamined",
    "FrameOfReferenceUID",
    "StudyInstanceUID",
)


def _anonymised(ch: Chooser, seeds: tuple[str, ...]) -> Case:
    """Headers as anonymisers leave them: type 2 and 3 attributes emptied or removed."""
    case, _, name = _seed_case("anonymised", ch, seeds)
    names = sorted(case.files) if ch.integer(0, 1) else [name]
    chosen = [_pick(ch, _ANONYMISED) for _ in range(ch.integer(1, 8))]
    empty = bool(ch.integer(0, 1))
    for n in names:
        ds = _dataset(case.files[n])
        for keyword in chosen:
            if keyword not in ds:
                continue
            if empty:
                _set_raw(ds, keyword, b"", ds[keyword].VR, ds.original_encoding)
            else:
                del ds[keyword]
        case.files[n] = _save(ds)
    case.how.append(f"{'emptied' if empty else 'removed'}: {', '.join(sorted(set(chosen)))}")
    return case


#: The classes of bad input: name -> (what is done, case maker).
CLASSES: dict[str, tuple[str, Callable[[Chooser, tuple[str, ...]], Case]]] = {
    "truncated": ("file cut at any byte (half the cuts inside the header)", _truncated),
    "overwritten": ("1-8 bytes overwritten or bit-flipped, mostly in the header", _overwritten),
    "huge_length": (
        "an element length set to 0xFFFFFFF0, 0xFFFFFFFF, 0x7FFFFFFF, odd, 0 or just past the end",
        _huge_length,
    ),
    "pixel_format": (
        "Rows, Columns, BitsAllocated, BitsStored, HighBit, SamplesPerPixel, NumberOfFrames, "
        "PixelRepresentation, PlanarConfiguration or PhotometricInterpretation that disagree "
        "with the pixel data",
        _pixel_format,
    ),
    "no_pixels": ("PixelData removed, empty, cut short or doubled", _no_pixels),
    "compressed_frames": (
        "encapsulated frames with rubbish in the stream, cut fragments, lying item lengths, "
        "a random offset table, no delimiter, or a TransferSyntaxUID that lies",
        _compressed_frames,
    ),
    "geometry_values": (
        "ImagePositionPatient, ImageOrientationPatient, PixelSpacing, RescaleSlope/Intercept "
        "etc. NaN, inf, 1e309, rubbish text, wrong counts, zero or negative spacing, parallel "
        "or zero direction vectors (in functional groups too)",
        _geometry_file,
    ),
    "ultrasound_regions": (
        "SequenceOfUltrasoundRegions empty, items missing keys, bounds past the image or "
        "2**32-1, pixel sizes 0, negative, NaN, inf or denormal, two disagreeing regions",
        _ultrasound_regions,
    ),
    "series_geometry": (
        "images of one series (or frames of an enhanced file) that disagree: same position, "
        "turned or broken orientation, positions in-plane or far away, different spacing, bit "
        "depth or size, duplicated SOPInstanceUID, geometry missing in one, per-frame items "
        "missing, NumberOfFrames lying",
        _series_geometry,
    ),
    "dicomdir": (
        "a DICOMDIR cut or overwritten, records pointing at missing files, outside the media "
        "(../.., absolute paths), empty or NUL names, referenced files deleted",
        _dicomdir,
    ),
    "junk": (
        "not DICOM: random bytes, a DICM preamble or a bare group 0002/0008 start followed by "
        "rubbish, sequences nested 3000 deep, empty files",
        _junk,
    ),
    "single_slice": (
        "one MR slice: one file of a series, or every image (or frame) at one position",
        _single_slice,
    ),
    "absurd_spacing": (
        "PixelSpacing 1e-300 to 1e6 mm, slices 1e-3 to 1e300 mm apart, ultrasound "
        "PhysicalDeltaX/Y 2e-79 to 1e306 cm",
        _absurd_spacing,
    ),
    "anonymised": (
        "type 2 and 3 attributes (patient, study, institution, UIDs) emptied or removed, "
        "as anonymisers leave them",
        _anonymised,
    ),
}

#: Examples per class in the test suite (``tests/robustness/test_fuzz.py``);
#: ``docs/robustness.md`` states these numbers and a test keeps them equal.
SUITE_EXAMPLES: dict[str, int] = {
    "truncated": 150,
    "overwritten": 200,
    "huge_length": 150,
    "pixel_format": 200,
    "no_pixels": 80,
    "compressed_frames": 150,
    "geometry_values": 150,
    "ultrasound_regions": 80,
    "series_geometry": 120,
    "dicomdir": 25,
    "junk": 80,
    "single_slice": 12,  # every case there is (hypothesis runs each once)
    "absurd_spacing": 40,
    "anonymised": 40,
}


def make_case(cls: str, ch: Chooser, seeds: tuple[str, ...] = SUITE_SEEDS) -> Case:
    """One case of class ``cls`` with choices from ``ch``."""
    return CLASSES[cls][1](ch, seeds)


def case_strategy(cls: str, seeds: tuple[str, ...] = SUITE_SEEDS):
    """A hypothesis strategy of cases of class ``cls``."""
    from hypothesis import strategies as st

    @st.composite
    def cases(draw) -> Case:
        return make_case(cls, HypothesisChooser(draw), seeds)

    return cases()


# --------------------------------------------------------------------------- the oracle


class Violation(AssertionError):
    """backmice did something other than load or refuse with an InputError."""


class Hang(BaseException):
    """The time limit of one case ran out (a BaseException so nothing swallows it)."""


@dataclass(slots=True)
class Result:
    """What happened to one case: a count per outcome."""

    outcomes: Counter[str] = field(default_factory=Counter)


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`Hang` in the main thread after ``seconds`` (0: no limit)."""
    if not seconds:
        yield
        return

    def _alarm(signum, frame):
        raise Hang(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _violation(what: str, exc: BaseException | None = None) -> Violation:
    text = what
    if exc is not None:
        text += "\n" + "".join(traceback.format_exception(exc))
    return Violation(text)


def _check_input_error(exc: InputError, allowed: set[str], what: str) -> None:
    if exc.path is None or exc.path not in allowed:
        raise _violation(f"{what}: InputError names {exc.path!r}, not one of the files", exc)
    if not isinstance(exc.problem, str) or not exc.problem.strip():
        raise _violation(f"{what}: InputError without a problem", exc)
    if "\n" in exc.problem:
        raise _violation(f"{what}: the problem is not one line: {exc.problem!r}", exc)


def _check_stack(stack: backmice.Stack, what: str) -> None:
    if len(stack.frames) != stack.shape[0] or any(int(v) < 0 for v in stack.shape):
        raise _violation(f"{what}: {len(stack.frames)} frames for shape {stack.shape}")
    for s in stack.spacing_mm:
        if s is not None and not (math.isfinite(s) and s > 0):
            raise _violation(f"{what}: spacing {stack.spacing_mm}")
    if stack.calibrated and stack.role.is_image:
        from backmice.io.geometry import PLAUSIBLE_PIXEL_MM, PLAUSIBLE_SLICE_MM

        low, high = PLAUSIBLE_PIXEL_MM
        row, col = stack.spacing_mm[1:]
        if any(s is not None and not low <= s <= high for s in (row, col)):
            raise _violation(f"{what}: calibrated with pixels of {row} x {col} mm")
        if stack.spacing_mm[0] is not None and stack.spacing_mm[0] > PLAUSIBLE_SLICE_MM:
            raise _violation(f"{what}: calibrated with slices {stack.spacing_mm[0]} mm apart")
    affine = np.asarray(stack.affine)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise _violation(f"{what}: affine\n{affine}")
    if stack.calibrated and stack.role.is_image and stack.shape[0] > 1 and not det(affine):
        raise _violation(f"{what}: calibrated with a singular affine\n{affine}")


def det(affine: np.ndarray) -> float:
    """Determinant of the affine's 3x3 part."""
    return float(np.linalg.det(affine[:3, :3]))


def _load(stack: backmice.Stack, result: Result, what: str) -> None:
    files = {str(p) for p in stack.paths} | {str(ref.path) for _, ref in stack.duplicates}
    try:
        volume = backmice.load(stack)
    except InputError as exc:
        if stack.role.is_image:
            _check_input_error(exc, files, what)
            result.outcomes["load refused"] += 1
        else:
            result.outcomes["not an image (refused)"] += 1
        return
    except Violation:
        raise
    except Exception as exc:
        raise _violation(f"{what}: load raised {type(exc).__name__}", exc) from None
    if not stack.role.is_image:
        raise _violation(f"{what}: a {stack.role} stack loaded")
    if volume.array.shape != stack.shape or volume.array.dtype != np.float32:
        raise _violation(
            f"{what}: volume {volume.array.shape} {volume.array.dtype}, stack {stack.shape}"
        )
    if volume.modality == "MR" and volume.array.shape[0] == 1 and min(volume.array.shape) >= 8:
        _n4_single_slice(volume, what)
    result.outcomes["loaded"] += 1


def _n4_single_slice(volume: backmice.Volume, what: str) -> None:
    """N4 on one slice (it refused a spacing of 0 before it ran in 2D)."""
    from backmice.segment.bias import n4_correct

    spacing = tuple(1.0 if s is None else float(s) for s in volume.spacing_mm)
    image = np.nan_to_num(np.abs(volume.array)) + 1.0
    try:
        corrected, _ = n4_correct(image, np.ones(image.shape, dtype=bool), spacing_mm=spacing)
    except Exception as exc:
        raise _violation(f"{what}: N4 on a single slice raised {type(exc).__name__}", exc) from None
    if corrected.shape != image.shape:
        raise _violation(f"{what}: N4 on a single slice gave {corrected.shape}")


def check(folder: Path, files: list[Path], *, load: bool = True, timeout: float = 60) -> Result:
    """Run backmice over a case folder and check that it did only what is allowed.

    Parameters
    ----------
    folder : Path
        The case's folder.
    files : list of Path
        The files written into it.
    load : bool
        Load every image stack too.
    timeout : float
        Seconds before the case counts as a hang (0: no limit).

    Returns
    -------
    Result

    Raises
    ------
    Violation
        Any other exception, a hang, a stack that is not self-consistent, a file
        that disappeared without a word.
    """
    result = Result()
    try:
        with time_limit(timeout):
            _check(folder, files, load, result)
    except Hang as exc:
        raise _violation(f"hang: {exc}") from None
    return result


def _check(folder: Path, files: list[Path], load: bool, result: Result) -> None:
    for path in files:
        if path.name == _DICOMDIR or len(files) == 1:
            what = f"open_study({path.name})"
            try:
                study = backmice.open_study(path)
            except InputError as exc:
                _check_input_error(exc, {str(path)}, what)
                result.outcomes["open refused"] += 1
                continue
            except Exception as exc:
                raise _violation(f"{what} raised {type(exc).__name__}", exc) from None
            if path.name == _DICOMDIR:
                result.outcomes["DICOMDIR followed"] += 1
            elif study.skipped:
                result.outcomes["skipped"] += 1
    try:
        study = backmice.open_study(folder)
    except Exception as exc:
        raise _violation(f"open_study(folder) raised {type(exc).__name__}", exc) from None
    for s in study.skipped:
        if not isinstance(s.reason, str) or not s.reason.strip() or "\n" in s.reason:
            raise _violation(f"skipped {s.path} with reason {s.reason!r}")
    used = {str(p) for stack in study.stacks for p in stack.paths}
    used |= {str(ref.path) for stack in study.stacks for _, ref in stack.duplicates}
    used |= {str(s.path) for s in study.skipped}
    said = " ".join(w for stack in study.stacks for w in stack.warnings)
    lost = [p for p in files if str(p) not in used and p.name not in said and p.parent == folder]
    # A SEG or SR without pixel data is listed as a stack of no frames (no path to name).
    frameless = sum(1 for stack in study.stacks if not stack.frames and not stack.role.is_image)
    if len(lost) > frameless:
        raise _violation(f"{lost[0].name} is neither in a stack nor skipped nor mentioned")
    for i, stack in enumerate(study.stacks):
        what = f"stack {i} ({stack.role}, {stack.shape})"
        _check_stack(stack, what)
        if load:
            _load(stack, result, what)
    if not study.stacks:
        result.outcomes["nothing loadable"] += 1


@contextlib.contextmanager
def bounded_memory(headroom: int) -> Iterator[None]:
    """Limit the address space to what is mapped now plus ``headroom`` bytes (Linux)."""
    import resource

    try:
        with open("/proc/self/statm") as f:  # noqa: PTH123
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = mapped + headroom
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
