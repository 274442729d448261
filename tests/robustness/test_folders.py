"""Strange folders: FIFOs, dangling links, unreadable files and folders, odd DICOMDIRs, many files.

(Symlink loops, empty files and non-UTF-8 names are in ``tests/io/test_scan.py``.)
Tests run as root in CI, where ``chmod 000`` does not stop a read, so an unreadable
file or folder is simulated by refusing it at the system call.
"""

from __future__ import annotations

import io
import os
import shutil
import tracemalloc
from pathlib import Path

import numpy as np
import pydicom
import pytest

import backmice
from backmice.io import header
from backmice.io.writer import make_affine, write_series
from tests.conftest import real_file
from tests.robustness.fuzzing import _dataset, _save, _set_raw, time_limit

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom, on broken files

#: Files in the many-files test (bench/bench_load.py --scan-files 50000 for the real thing).
MANY_FILES = 2000
#: Largest memory a scan may keep per file, bytes (measured: about 1.9 KiB).
RETAINED_PER_FILE = 6 * 1024
#: Largest memory a scan may use on top of what it keeps, bytes (measured: about 35 KiB).
TRANSIENT = 4 * 2**20


def _series(folder: Path, n: int = 3) -> list[Path]:
    return write_series(np.zeros((n, 8, 8)), folder, affine=make_affine((2, 1, 1)))


def test_fifo_is_skipped_without_blocking(tmp_path):
    _series(tmp_path / "s")
    os.mkfifo(tmp_path / "s" / "pipe.dcm")  # opening it for reading would wait for a writer
    with time_limit(30):
        study = backmice.open_study(tmp_path)
        with pytest.raises(backmice.InputError, match="neither a file nor a folder"):
            backmice.open_study(tmp_path / "s" / "pipe.dcm")
    assert study.stacks[0].shape[0] == 3
    assert {s.path.name: s.reason for s in study.skipped} == {"pipe.dcm": "not a regular file"}


def test_dangling_symlink_is_skipped(tmp_path):
    _series(tmp_path)
    (tmp_path / "gone.dcm").symlink_to(tmp_path / "nowhere.dcm")
    study = backmice.open_study(tmp_path)
    assert study.stacks[0].shape[0] == 3
    [skipped] = study.skipped
    assert skipped.path.name == "gone.dcm"
    assert skipped.reason.startswith("cannot read the file (FileNotFoundError")


def test_unreadable_file_is_skipped(tmp_path, monkeypatch):
    paths = _series(tmp_path)
    locked = str(paths[1])
    real_fileio = io.FileIO

    def fileio(name, *args, **kwargs):
        if os.fspath(name) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_fileio(name, *args, **kwargs)

    monkeypatch.setattr(header.io, "FileIO", fileio)
    study = backmice.open_study(tmp_path)
    assert study.stacks[0].shape[0] == 2
    assert [(str(s.path), s.reason) for s in study.skipped] == [
        (
            locked,
            f"cannot read the file (PermissionError: [Errno 13] Permission denied: '{locked}')",
        )
    ]


def test_unreadable_folder_is_skipped(tmp_path, monkeypatch):
    _series(tmp_path / "ok")
    _series(tmp_path / "locked")
    locked = os.fspath(tmp_path / "locked")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    study = backmice.open_study(tmp_path)
    assert len(study.stacks) == 1
    assert [(str(s.path), s.reason) for s in study.skipped] == [
        (locked, "cannot list folder: Permission denied")
    ]


def test_folder_named_like_a_file(tmp_path):
    _series(tmp_path / "IM0001.dcm")
    for path in (tmp_path, tmp_path / "IM0001.dcm"):
        study = backmice.open_study(path)
        assert study.stacks[0].shape[0] == 3 and not study.skipped


def test_dicomdir_with_missing_outside_and_broken_records(tmp_path):
    media = tmp_path / "media"
    shutil.copytree(real_file("DICOMDIR").parent, media)
    ds = _dataset((media / "DICOMDIR").read_bytes())
    records = [r for r in ds.DirectoryRecordSequence if "ReferencedFileID" in r]
    enc = ds.original_encoding
    bad_ids = {
        0: b"..\\..\\etc\\passwd",  # leaves the media
        1: b"NOSUCH\\FILE",  # missing
        2: b"X" * 300,  # too long for the file system
        3: b"a\x00b ",  # a NUL inside
    }
    for i, value in bad_ids.items():
        _set_raw(records[i], "ReferencedFileID", value, "CS", enc)
    (media / "DICOMDIR").write_bytes(_save(ds))
    study = backmice.open_study(media / "DICOMDIR")
    reasons = [s.reason for s in study.skipped]
    assert sum("not a plain name below the DICOMDIR's folder" in r for r in reasons) == 2
    assert sum("listed in the DICOMDIR but missing" in r for r in reasons) == 2
    assert study.stacks  # the other records are followed
    assert not any("etc" in str(s.path) and s.path.exists() for s in study.skipped)


def test_truncated_dicomdir_is_followed_as_far_as_it_goes(tmp_path):
    media = tmp_path / "media"
    shutil.copytree(real_file("DICOMDIR").parent, media)
    data = (media / "DICOMDIR").read_bytes()
    (media / "DICOMDIR").write_bytes(data[: len(data) // 3])
    study = backmice.open_study(media / "DICOMDIR")
    assert study.stacks
    [note] = [s for s in study.skipped if s.path.name == "DICOMDIR"]
    assert note.reason.startswith("the DICOMDIR is truncated: only its first")


def test_unreadable_dicomdir_is_an_input_error(tmp_path):
    (tmp_path / "DICOMDIR").write_bytes(b"\x00" * 128 + b"DICM" + b"\xff" * 64)
    with pytest.raises(backmice.InputError) as err:
        backmice.open_study(tmp_path / "DICOMDIR")
    assert err.value.path == str(tmp_path / "DICOMDIR")
    assert err.value.problem.startswith("unreadable DICOMDIR")


def many_files(root: Path, n: int, per_series: int = 32) -> None:
    """``n`` tiny (4x4) MR files in series of ``per_series``, one folder per series.

    One series is written by backmice's writer; the others are byte copies with
    their SeriesInstanceUID and SOPInstanceUIDs rewritten (same length), which is
    fifty times faster than writing each file.
    """
    template = write_series(
        np.zeros((per_series, 4, 4)), root / "_t", affine=make_affine((1, 1, 1))
    )
    series_uid = pydicom.dcmread(template[0], stop_before_pixels=True).SeriesInstanceUID
    files = []
    for path in template:
        sop = pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID
        files.append((path.read_bytes(), sop))
    shutil.rmtree(root / "_t")
    for k in range(n):
        s, i = divmod(k, per_series)
        data, sop = files[i]
        data = data.replace(series_uid.encode(), (series_uid[:-6] + f"{s:06d}").encode())
        data = data.replace(sop.encode(), (sop[:-12] + f"{s:06d}{i:06d}").encode())
        folder = root / f"S{s:04d}"
        folder.mkdir(exist_ok=True)
        (folder / f"IM{i:04d}").write_bytes(data)


@pytest.mark.slow
def test_many_files_are_scanned_in_bounded_memory(tmp_path):
    """Memory kept per file is small and does not grow with the number of files.

    tracemalloc makes a scan five times slower, so it traces two windows of 200
    files, early and late in a scan of :data:`MANY_FILES`, through the progress callback.
    """
    many_files(tmp_path, MANY_FILES)
    windows = {200: 400, MANY_FILES - 200: MANY_FILES}
    measured: dict[int, tuple[int, int]] = {}
    calls = 0

    def progress(done: int, total: int) -> None:
        nonlocal calls
        calls += 1
        if done in windows:
            tracemalloc.start()
        elif done in windows.values():
            measured[done] = tracemalloc.get_traced_memory()
            tracemalloc.stop()

    study = backmice.open_study(tmp_path, progress=progress)
    assert calls == MANY_FILES
    assert len(study.stacks) == -(-MANY_FILES // 32) and not study.skipped
    assert sum(s.shape[0] for s in study.stacks) == MANY_FILES
    early, late = (measured[end] for end in sorted(measured))
    for kept, peak in (early, late):
        assert kept / 200 < RETAINED_PER_FILE
        assert peak - kept < TRANSIENT
    assert late[0] < 1.5 * early[0] + 200 * 512  # no growth with the files already seen
