"""What the fuzzing found, one small deterministic test per bug (see docs/robustness.md)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest

import backmice
from backmice import InputError
from backmice.io import header
from backmice.io.writer import make_affine, write_series
from tests.conftest import real_file
from tests.robustness.fuzzing import _dataset, _save, _set_raw, bounded_memory, layout

pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


def _mutated(name: str, out: Path, **values: tuple[str, bytes]) -> Path:
    """Copy of a real file with elements replaced by raw bytes: keyword=(VR, bytes)."""
    ds = _dataset(real_file(name).read_bytes())
    for keyword, (vr, raw) in values.items():
        _set_raw(ds, keyword, raw, vr, ds.original_encoding)
    out.write_bytes(_save(ds))
    return out


def _us(value: int) -> tuple[str, bytes]:
    return "US", struct.pack("<H", value)


def _only(path) -> backmice.Stack:
    study = backmice.open_study(path)
    assert len(study.stacks) == 1, (study.stacks, study.skipped)
    return study.stacks[0]


def test_gdcm_never_gets_a_frame_that_aborts_the_process(tmp_path):
    """GDCM (pydicom's first JPEG 2000 plugin when installed) throws a C++ exception on a
    codestream whose component count disagrees with SamplesPerPixel, which aborts Python.
    Run in a child process, so that a regression fails this test, not the whole run."""
    path = _mutated(
        "MR_small_jp2klossless.dcm",
        tmp_path / "spp3.dcm",
        SamplesPerPixel=_us(3),
        PlanarConfiguration=_us(0),
    )
    code = textwrap.dedent(f"""
        import backmice
        stack = backmice.open_study({str(path)!r}).stacks[0]
        try:
            backmice.load(stack)
        except backmice.InputError as exc:
            print("refused:", exc.problem)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "refused: cannot decode the pixel data (JPEG 2000" in done.stdout
    assert "terminate called" not in done.stderr


def test_corrupt_rle_without_a_rust_panic(tmp_path, capfd):
    """One byte changed in an RLE segment makes pylibjpeg-rle panic (a pyo3
    PanicException, not an Exception, printed with its backtrace on stderr)."""
    data = bytearray(real_file("MR_small_RLE.dcm").read_bytes())
    assert data[2106] == 0xFB
    data[2106] = 0xB7  # found by tests/robustness/fuzzing.py (compressed_frames)
    path = tmp_path / "rle.dcm"
    path.write_bytes(bytes(data))
    try:
        volume = backmice.load(_only(path))
    except InputError as exc:
        assert exc.path == str(path) and "RLE Lossless" in exc.problem
    else:
        assert volume.array.shape == (1, 64, 64)
    assert "panicked" not in capfd.readouterr().err


@pytest.mark.parametrize("name", ["MR_small.dcm", "MR_small_bigendian.dcm", "MR_small_RLE.dcm"])
def test_huge_element_length_allocates_nothing(tmp_path, name):
    """A length of 0xFFFFFFF0 made pydicom ask the buffered file for 4 GiB."""
    data = bytearray(real_file(name).read_bytes())
    lay = layout(name, name)
    start, _ = lay.pixels
    big = 0xFFFFFFF0.to_bytes(4, "little" if lay.little else "big")
    if not lay.encapsulated:
        data[start - 4 : start] = big  # the pixel data's own length
    else:  # a 4-byte length of the header (past the file meta)
        offset = next(o for o, w, _ in lay.lengths if w == 4 and o > 300)
        data[offset : offset + 4] = big
    path = tmp_path / name
    path.write_bytes(bytes(data))
    tracemalloc.start()
    try:
        with bounded_memory(2**30):
            study = backmice.open_study(path)
            for stack in study.stacks:
                try:  # the read comes back short: refused, or the pixels were all there
                    assert backmice.load(stack).array.shape == stack.shape
                except InputError as exc:
                    assert exc.path == str(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**24
    assert study.stacks or study.skipped


def test_number_of_frames_read_as_pydicom_reads_it(tmp_path):
    """``NumberOfFrames = "1e9"`` is 10**9 frames to pydicom (and its decoders), not 1."""
    path = _mutated(
        "MR_small_jp2klossless.dcm", tmp_path / "frames.dcm", NumberOfFrames=("IS", b"1e9 ")
    )
    study = backmice.open_study(path)
    assert not study.stacks
    assert "above the limit" in study.skipped[0].reason


def test_declared_size_is_checked_again_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "a.dcm"
    shutil.copy(real_file("MR_small_RLE.dcm"), path)
    stack = _only(path)
    monkeypatch.setattr(header, "MAX_PIXELS", 64 * 64 - 1)
    with pytest.raises(InputError, match="above the limit"):
        backmice.load(stack)


@pytest.mark.parametrize(
    "iop", [b"1\\0\\0\\1\\0\\0", b"0\\0\\0\\0\\1\\0", b"nan\\0\\0\\0\\1\\0", b"1\\0\\0\\0\\1"]
)
def test_unusable_orientation_is_uncalibrated_not_dropped(tmp_path, iop):
    """Parallel or zero directions made building the stack raise, and the blanket
    ``except`` around it dropped the file without a word."""
    path = _mutated("MR_small.dcm", tmp_path / "iop.dcm", ImageOrientationPatient=("DS", iop))
    stack = _only(path)
    assert not stack.calibrated and stack.spacing_mm == (None, None, None)
    assert any("ImageOrientationPatient missing or unusable" in w for w in stack.warnings)
    assert backmice.load(stack).array.shape == (1, 64, 64)


@pytest.mark.parametrize("spacing", [b"0\\0", b"-0.3\\0.3", b"inf\\1", b"1e309\\1"])
def test_zero_or_negative_pixel_spacing_is_uncalibrated(tmp_path, spacing):
    path = _mutated("MR_small.dcm", tmp_path / "ps.dcm", PixelSpacing=("DS", spacing))
    stack = _only(path)
    assert stack.spacing_mm == (None, None, None) and stack.units == "px"


def test_images_in_one_plane_are_uncalibrated(tmp_path):
    positions = [(0.0, 0.0, 0.0), (5.0, 0.0, 0.0), (10.0, 0.0, 0.0), (15.0, 0.0, 0.0)]
    write_series(np.zeros((4, 6, 6)), tmp_path, affine=make_affine((1, 1, 1)), positions=positions)
    stack = _only(tmp_path)
    assert not stack.calibrated
    assert any("same plane" in w for w in stack.warnings)
    assert backmice.load(stack).array.shape == (4, 6, 6)


def test_mixed_bit_depths_in_one_series_split(tmp_path):
    """The stack's pixel format came from its first file and was applied to all."""
    paths = write_series(np.ones((4, 6, 6)), tmp_path, affine=make_affine((2, 1, 1)))
    ds = pydicom.dcmread(paths[3])
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
    ds.PixelData = np.ones((6, 6), np.uint8).tobytes()
    ds.save_as(paths[3])
    study = backmice.open_study(tmp_path)
    assert sorted(s.shape[0] for s in study.stacks) == [1, 3]
    for stack in study.stacks:
        assert np.all(backmice.load(stack).array == 1)


def test_palette_without_lookup_tables_is_refused(tmp_path):
    ds = pydicom.dcmread(real_file("OT-PAL-8-face.dcm"), force=True)
    del ds.BluePaletteColorLookupTableData
    path = tmp_path / "pal.dcm"
    ds.save_as(path)
    with pytest.raises(InputError, match="cannot convert the colour pixel data"):
        backmice.load(_only(path))


def test_deflate_bomb_is_refused_before_inflating(tmp_path, monkeypatch):
    """pydicom inflates a whole deflated file in memory: 1 kB can become 1 GiB."""
    ds = pydicom.dcmread(real_file("image_dfl.dcm"))
    ds.add_new(0x00091010, "LO", "BOMB")  # a private block, then 16 MiB of zeros
    ds.add_new(0x00091011, "OB", bytes(16 * 2**20))
    path = tmp_path / "bomb.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(header, "MAX_INFLATED_BYTES", 2**20)
    study = backmice.open_study(path)
    assert "inflates to more than" in study.skipped[0].reason
    # The real file is fine.
    stack = _only(real_file("image_dfl.dcm"))
    assert backmice.load(stack).array.shape == stack.shape == (1, 512, 512)
    broken = tmp_path / "broken.dcm"
    data = real_file("image_dfl.dcm").read_bytes()
    broken.write_bytes(data[:-200] + bytes(zlib.compress(b"x"))[:5])
    assert backmice.open_study(broken).skipped


def test_segmentation_without_pixels_and_uid_does_not_break_sorting(tmp_path):
    ds = pydicom.dcmread(real_file("liver_1frame.dcm"))
    del ds.PixelData
    del ds.SeriesInstanceUID
    ds.save_as(tmp_path / "seg.dcm")
    shutil.copy(real_file("MR_small.dcm"), tmp_path / "mr.dcm")
    study = backmice.open_study(tmp_path)
    assert {str(s.role) for s in study.stacks} == {"seg", "t2"}


@pytest.mark.parametrize(
    ("key", "value"),
    [("PhysicalDeltaX", float("inf")), ("PhysicalDeltaY", float("nan")), ("PhysicalDeltaX", 0)],
)
def test_ultrasound_region_with_unusable_pixel_size_is_uncalibrated(tmp_path, key, value):
    ds = pydicom.dcmread(real_file("OBXXXX1A_rle.dcm"))
    for item in ds.SequenceOfUltrasoundRegions:
        setattr(item, key, value)
    ds.save_as(tmp_path / "us.dcm")
    stack = _only(tmp_path / "us.dcm")
    assert not stack.calibrated and stack.spacing_mm == (None, None, None)


def test_ultrasound_region_with_an_unknown_vr_is_read_as_bytes(tmp_path):
    """pydicom raised NotImplementedError converting it, outside the header's try."""
    data = bytearray(real_file("OBXXXX1A_rle.dcm").read_bytes())
    at = data.index(b"\x18\x00\x2e\x60FD")  # PhysicalDeltaY of the first region
    data[at + 4 : at + 6] = b"F@"
    path = tmp_path / "us.dcm"
    path.write_bytes(bytes(data))
    study = backmice.open_study(path)
    assert study.stacks or study.skipped


def test_decoder_messages_are_one_line(tmp_path):
    data = bytearray(real_file("MR_small_jpeg_ls_lossless.dcm").read_bytes())
    lay = layout("MR_small_jpeg_ls_lossless.dcm", "MR_small_jpeg_ls_lossless.dcm")
    start = lay.fragments[1] + 8
    data[start + 10 : start + 30] = b"\xff" * 20  # the frame header's marker sizes
    path = tmp_path / "jls.dcm"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as err:
        backmice.load(_only(path))
    problem = err.value.problem
    assert "\n" not in problem
    # Each plugin's reason once, without pydicom's wrapper around it.
    assert "pylibjpeg: libjpeg error" in problem and "pyjpegls: Decoding error" in problem
    assert "Unable to decode" not in problem


def test_a_stack_above_the_limit_is_refused_before_allocating(tmp_path, monkeypatch):
    write_series(np.zeros((3, 8, 8)), tmp_path, affine=make_affine((2, 1, 1)))
    stack = _only(tmp_path)
    monkeypatch.setattr(header, "MAX_PIXELS", 2 * 8 * 8)  # each file fits, the stack does not
    with pytest.raises(InputError, match="the stack is 3x8x8 pixels, above the limit"):
        backmice.load(stack)


def test_a_file_cut_inside_its_header_says_truncated(tmp_path):
    """pydicom keeps a short read without a word: the file looked like a non-image."""
    data = real_file("MR_small.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:700])
    [skipped] = backmice.open_study(tmp_path).skipped
    assert skipped.reason.startswith("truncated file: it ends (700 bytes) inside an element")


def test_an_unreadable_sop_class_is_not_printed_raw(tmp_path):
    path = _mutated(
        "rtplan.dcm", tmp_path / "plan.dcm", SOPClassUID=("UI", b"1.2.840\x00\x08\nrubbish")
    )
    [skipped] = backmice.open_study(path).skipped
    assert skipped.reason == "not an image (an unreadable SOPClassUID)"


def test_a_segmentation_with_frames_in_two_orientations_is_one_stack(tmp_path):
    """Found by atheris: orientations were compared as if they were unit vectors, so each
    frame of this SEG made a group of its own, and each group claimed all three frames."""
    ds = pydicom.dcmread(real_file("liver.dcm"))
    item = ds.SharedFunctionalGroupsSequence[0].PlaneOrientationSequence[0]
    item.ImageOrientationPatient = [0.5, 0.5, 0, 0, 0.5, 0.5]
    ds.save_as(tmp_path / "seg.dcm")
    stack = _only(tmp_path / "seg.dcm")
    assert stack.shape == (3, 512, 512) and len(stack.frames) == 3


def test_orientation_vectors_that_are_not_unit_vectors_still_make_one_stack(tmp_path):
    """Comparing orientations assumed unit vectors: with IOP = (0.5, 0, 0, 0, 0.5, 0)
    every slice became a stack of its own."""
    paths = write_series(np.zeros((4, 6, 6)), tmp_path, affine=make_affine((2, 1, 1)))
    for path in paths:
        ds = pydicom.dcmread(path)
        ds.ImageOrientationPatient = [0.5, 0, 0, 0, 0.5, 0]
        ds.save_as(path)
    stack = _only(tmp_path)
    assert stack.shape == (4, 6, 6) and stack.spacing_mm == pytest.approx((2, 1, 1))
