"""Scanning folders: what is skipped, what never stops a scan, and the progress callback."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

import backmice
from backmice.io.writer import make_affine, write_series
from tests.conftest import real_file


def _series(folder, n=3):
    return write_series(np.zeros((n, 8, 8)), folder, affine=make_affine((2, 1, 1)))


def test_odd_files_are_skipped_not_fatal(tmp_path):
    _series(tmp_path / "a")
    (tmp_path / "empty.dcm").write_bytes(b"")
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 50)
    (tmp_path / "notes.txt").write_text("reader notes")
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: passed over silently
    study = backmice.open_study(tmp_path)
    assert len(study.stacks) == 1 and study.stacks[0].shape[0] == 3
    skipped = {s.path.name: s.reason for s in study.skipped}
    assert set(skipped) == {"empty.dcm", "junk.dcm", "notes.txt"}
    assert skipped["empty.dcm"] == "not a DICOM file"
    assert skipped["notes.txt"] == "not a DICOM file"


def test_symlink_loop_does_not_trap_the_scan(tmp_path):
    _series(tmp_path / "a")
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    study = backmice.open_study(tmp_path)
    assert len(study.stacks) == 1


def test_non_utf8_file_names(tmp_path):
    folder = tmp_path / "s"
    paths = _series(folder)
    odd = os.fsencode(folder) + b"/caf\xe9_\xff.dcm"
    os.rename(paths[0], odd)  # noqa: PTH104 - bytes path: pathlib cannot name it
    study = backmice.open_study(folder)
    assert study.stacks[0].shape[0] == 3
    backmice.load(study.stacks[0])


def test_progress_is_reported(tmp_path):
    _series(tmp_path, n=4)
    seen = []
    backmice.open_study(tmp_path, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_declared_size_above_the_limit_is_refused(tmp_path, monkeypatch):
    from backmice.io import header

    monkeypatch.setattr(header, "MAX_PIXELS", 10)
    paths = _series(tmp_path)
    study = backmice.open_study(tmp_path)
    assert not study.stacks
    assert all("above the limit" in s.reason for s in study.skipped)
    assert {s.path for s in study.skipped} == set(paths)


def test_missing_path_is_an_input_error(tmp_path):
    with pytest.raises(backmice.InputError, match="no such file or folder"):
        backmice.open_study(tmp_path / "nothing")


def test_scan_reads_no_pixel_data(tmp_path, monkeypatch):
    """open_study must not decode pixels (a folder of 50,000 files stays cheap)."""
    shutil.copy(real_file("MR_small_RLE.dcm"), tmp_path / "a.dcm")
    import pydicom.dataset

    def boom(self, *a, **k):  # pragma: no cover - must not be called
        raise AssertionError("pixel data decoded during the scan")

    monkeypatch.setattr(pydicom.dataset.Dataset, "pixel_array", property(boom))
    study = backmice.open_study(tmp_path)
    assert study.stacks[0].shape == (1, 64, 64)
