"""``--resume`` with nothing to do lists the files and reads no DICOM; a changed study is redone."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

import backmice.analysis
import backmice.batch.runner as runner
import backmice.batch.summary as summary
import backmice.batch.worker as worker
import backmice.io
from backmice.batch import run
from backmice.batch.discover import read_scan
from tests.batch.conftest import SAMPLES
from tests.conftest import build_once

# The package exports a function of the same name: take the module itself.
discover_module = importlib.import_module("backmice.batch.discover")

TABLES = ("nodules.csv", "nodules.parquet", "studies.csv", "summary.png")


def _forbid(monkeypatch, *targets: tuple[object, str]) -> None:
    """Make each ``(module, attribute)`` fail the test when called."""

    def make(name):
        def refuse(*args, **kwargs):
            raise AssertionError(f"{name} was called")

        return refuse

    for module, attr in targets:
        monkeypatch.setattr(module, attr, make(f"{module.__name__}.{attr}"))


def _mtimes(out) -> dict[str, int]:
    return {name: (out / name).stat().st_mtime_ns for name in TABLES}


def _touch(folder) -> None:
    """Move one file's modification time 5 s on (its content is unchanged)."""
    path = sorted(p for p in folder.rglob("*") if p.is_file())[0]
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))


def _analyse_cohort(base: Path):
    shutil.copytree(SAMPLES / "dixon", base / "cohort" / "a")
    shutil.copytree(SAMPLES / "us", base / "cohort" / "us")
    frame = run(base / "cohort", base / "out", workers=0, qc=False)
    return base, frame


@pytest.fixture(scope="session")
def analysed(tmp_path_factory):
    """A cohort of two quick studies (Dixon, ultrasound), analysed once per run (read-only)."""
    return build_once(tmp_path_factory, "resume-cheap", _analyse_cohort)


@pytest.fixture
def done(analysed, tmp_path):
    """A copy of the analysed cohort and its batch folder (modification times kept)."""
    base, frame = analysed
    # copy2 keeps the modification times: fingerprints and the kept scan still hold.
    shutil.copytree(base, tmp_path / "copy")
    root, out = tmp_path / "copy" / "cohort", tmp_path / "copy" / "out"
    return root, out, frame


def test_nothing_to_do_reads_no_header_no_pixel_and_starts_no_worker(done, monkeypatch):
    root, out, frame = done
    before = _mtimes(out)
    records = {p.name: (p / "batch.json").stat().st_mtime_ns for p in (out / "studies").iterdir()}
    _forbid(
        monkeypatch,
        # the header scan, the analysis (which loads the pixel data), the workers
        (discover_module, "open_study"),
        (discover_module, "scan_folder"),
        (worker, "open_study"),
        (runner, "analyze_study"),
        (backmice.io, "load"),
        (backmice.analysis, "load"),
        (runner, "_Pool"),
        (runner, "_Dask"),
        (runner, "_Serial"),
        # the tables and the picture are already what they would be
        (runner, "write_tables"),
        (summary, "summary_figure"),
    )
    seen = []
    again = run(root, out, workers=2, resume=True, progress=lambda r, d, t: seen.append((r, d, t)))
    assert seen == [(None, 2, 2)]  # both reused, nothing analysed
    pd.testing.assert_frame_equal(again, frame)
    assert _mtimes(out) == before
    assert records == {
        p.name: (p / "batch.json").stat().st_mtime_ns for p in (out / "studies").iterdir()
    }


def test_a_changed_study_is_scanned_and_analysed_again_and_only_it(done, monkeypatch):
    root, out, frame = done
    scanned = []
    real_scan = discover_module.scan_folder

    def spy(root_s, folder):
        scanned.append(Path(folder).name)
        return real_scan(root_s, folder)

    monkeypatch.setattr(discover_module, "scan_folder", spy)
    _touch(root / "a")
    seen = []
    again = run(root, out, workers=0, resume=True, progress=lambda r, d, t: seen.append(r))
    assert scanned == ["a"]  # the unchanged folder's headers are not read again
    assert [r.study for r in seen[1:]] == ["a"]  # and only the changed study is redone
    pd.testing.assert_frame_equal(again, frame)
    assert (out / "nodules.csv").stat().st_mtime_ns >= (
        out / "studies" / "a" / "nodules.csv"
    ).stat().st_mtime_ns  # the tables were written after it


def test_a_folder_that_now_holds_two_studies_is_split(done):
    """The kept scan is not trusted once the folder's files change."""
    root, out, _ = done
    shutil.copytree(SAMPLES / "us", root / "a" / "more_us")
    seen = []
    run(root, out, workers=0, resume=True, qc=False, progress=lambda r, d, t: seen.append(r))
    names = sorted(r.study for r in seen[1:])
    assert len(names) == 2 and all(n.startswith("a") for n in names), names
    assert len(read_scan(out / runner.SCAN_FILE)["a"]) == 2


@pytest.mark.parametrize("lost", ["nodules.csv", "nodules.parquet", "summary.png", "studies.csv"])
def test_missing_or_stale_tables_are_written_again(done, lost):
    root, out, frame = done
    (out / lost).unlink()
    again = run(root, out, workers=0, resume=True)
    assert (out / lost).is_file()
    pd.testing.assert_frame_equal(again, frame)


def test_a_study_result_newer_than_the_tables_rewrites_them(done, monkeypatch):
    """A run killed after a study landed and before its tables: the next resume writes them."""
    root, out, _ = done
    _touch(out / "studies" / "us")
    written = []
    real = runner.write_tables
    monkeypatch.setattr(runner, "write_tables", lambda *a: written.append(1) or real(*a))
    run(root, out, workers=0, resume=True, summary=False)
    assert written


def test_a_kept_scan_of_another_version_or_garbage_is_ignored(done):
    root, out, _ = done
    scan = out / runner.SCAN_FILE
    kept = read_scan(scan)
    assert sorted(kept) == ["a", "us"]
    scan.write_text("{not json")
    assert read_scan(scan) == {}
    scan.write_text('{"backmice_version": "0.0.0-another", "folders": {"x": []}}')
    assert read_scan(scan) == {}
    seen = []
    run(root, out, workers=0, resume=True, progress=lambda r, d, t: seen.append(r))
    assert seen == [None]  # scanned again: still nothing to analyse
    again = read_scan(scan)
    assert {rel: [(t.name, t.files_digest) for t in ts] for rel, ts in again.items()} == {
        rel: [(t.name, t.files_digest) for t in ts] for rel, ts in kept.items()
    }
    assert all(t.folder == str((root / rel).resolve()) for rel, ts in again.items() for t in ts)


def test_the_kept_scan_keeps_names_that_are_not_utf8(tmp_path):
    from backmice.batch import StudyTask
    from backmice.batch.discover import write_scan

    odd = "caf\udce9"  # a Latin-1 byte in a folder name, as os.listdir gives it
    task = StudyTask(odd, str(tmp_path / odd), odd, None, "0" * 64, 3)
    write_scan(tmp_path / "scan.json", {odd: [task]})
    assert read_scan(tmp_path / "scan.json") == {odd: [task]}
