"""Ultrasound in a batch: which studies are ultrasound, uncalibrated images, the tables."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import shutil

import pandas as pd
import pydicom
import pytest

from backmice.analysis import AnalysisOptions
from backmice.batch import ULTRASOUND, is_ultrasound_study, run
from backmice.batch.tables import nodule_dtypes
from backmice.batch.worker import RECORD_FILE
from backmice.io import Role, open_study
from backmice.segment import Method
from backmice.vocab import COLUMNS
from tests.batch.conftest import SAMPLES, sr_only_study, uncalibrated_us_study


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """One folder holding the Dixon sample and the ultrasound sample (not split)."""
    folder = tmp_path_factory.mktemp("both")
    shutil.copytree(SAMPLES / "dixon", folder / "dixon")
    shutil.copytree(SAMPLES / "us", folder / "us")
    return open_study(folder)


def test_ultrasound_only_is_ultrasound_unless_an_mri_method_is_forced():
    study = open_study(SAMPLES / "us")
    assert is_ultrasound_study(study)
    assert not is_ultrasound_study(study, method=Method.T1)
    assert not is_ultrasound_study(study, method="dixon")
    uid = study.stacks[0].series_uid
    assert is_ultrasound_study(study, method=Method.T1, series_uid=uid)  # the series says so
    assert is_ultrasound_study(study, method=Method.T1, ultrasound_asked=True)


def test_mr_images_keep_a_study_on_mri(both, tmp_path):
    assert not is_ultrasound_study(both)
    assert not is_ultrasound_study(open_study(SAMPLES / "dixon"))
    us = next(s.series_uid for s in both.stacks if s.role is Role.US)
    mr = next(s.series_uid for s in both.stacks if s.modality == "MR")
    assert is_ultrasound_study(both, series_uid=us)
    assert is_ultrasound_study(both, ultrasound_asked=True)
    assert not is_ultrasound_study(both, series_uid=mr)
    # no ultrasound at all: never ultrasound, whatever is asked
    assert not is_ultrasound_study(
        open_study(sr_only_study(tmp_path / "sr")), ultrasound_asked=True
    )


@pytest.fixture(scope="module")
def us_batch(tmp_path_factory):
    """A batch (in this process) over a calibrated and an uncalibrated ultrasound study."""
    root = tmp_path_factory.mktemp("us_cohort")
    shutil.copytree(SAMPLES / "us", root / "mm")
    uncalibrated_us_study(root / "px")
    out = tmp_path_factory.mktemp("us_out")
    frame = run(root, out, workers=0, qc=False, summary=True)
    with (out / "studies.csv").open() as fh:
        rows = {r["study"]: r for r in csv.DictReader(fh)}
    return root, out, frame, rows


def test_uncalibrated_ultrasound_says_px_in_its_message(us_batch):
    _, out, _, rows = us_batch
    assert {n: r["status"] for n, r in rows.items()} == {"mm": "ok", "px": "ok"}
    px = rows["px"]
    assert px["method"] == ULTRASOUND and px["series_description"] == "US BACK TRANS"
    assert "UNCALIBRATED" in px["message"] and "in px" in px["message"]
    assert "UNCALIBRATED" not in rows["mm"]["message"]
    doc = json.loads((out / "studies" / "px" / "nodules.json").read_text())
    assert doc["units"] == "px" and doc["pixel_mm"] is None and doc["study"] == "px"
    assert json.loads((out / "studies" / "px" / RECORD_FILE).read_text())["method"] == ULTRASOUND
    assert not (out / "studies" / "mm" / "qc.png").exists()  # qc=False reaches ultrasound too
    assert (rows["px"]["units"], rows["mm"]["units"]) == ("px", "mm")


def test_the_command_line_says_uncalibrated_loudly(us_batch):
    from rich.console import Console

    from backmice.batch import StudyRecord, StudyStatus
    from backmice.cli.batch import _Lines

    root, out, _, _ = us_batch
    code, stdout = _quiet_batch(root, out, "--resume")  # nothing re-runs; the summary reads
    assert code == 0 and "2 unchanged (resumed)" in stdout
    assert "1 stud(ies) UNCALIBRATED: every length is in PIXELS, not mm (units px): px" in stdout
    buffer = io.StringIO()
    lines = _Lines(Console(file=buffer, width=200))
    lines(StudyRecord("px", StudyStatus.OK, units="px"), 1, 2)
    lines(StudyRecord("mm", StudyStatus.OK, units="mm"), 2, 2)
    px, mm = buffer.getvalue().splitlines()
    assert px.startswith("[1/2] px: ok 0 nodule(s)") and "UNCALIBRATED" in px
    assert "UNCALIBRATED" not in mm


def _quiet_batch(root, out, *argv: str) -> tuple[int, str]:
    from backmice.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", str(root), "--out", str(out), "--workers=0", "--quiet", *argv])
    return code, buffer.getvalue()


def test_ultrasound_only_tables_keep_fixed_dtypes(us_batch):
    _, out, frame, rows = us_batch
    assert int(rows["mm"]["n_nodules"]) == len(frame) == 1
    stored = pd.read_parquet(out / "nodules.parquet")
    pd.testing.assert_frame_equal(frame, stored)
    assert tuple(stored.columns) == COLUMNS
    for column, dtype in nodule_dtypes().items():  # columns all empty (NaN) stay float64
        if dtype == "str":
            assert pd.api.types.is_string_dtype(stored[column]), column
        else:
            assert stored[column].dtype == dtype, column
    assert stored["volume_mm3"].isna().all() and stored["centroid_z_mm"].isna().all()
    assert (stored["side"] == "").all() and stored.loc[0, "study"] == "mm"
    with (out / "nodules.csv").open() as fh:
        assert tuple(next(csv.reader(fh))) == COLUMNS
    assert (out / "summary.png").stat().st_size > 0


def test_forcing_an_mri_method_leaves_an_ultrasound_study_without_a_stack(tmp_path):
    shutil.copytree(SAMPLES / "us", tmp_path / "root" / "us")
    run(
        tmp_path / "root",
        tmp_path / "out",
        workers=0,
        options=AnalysisOptions(method=Method.T1),
        summary=False,
    )
    with (tmp_path / "out" / "studies.csv").open() as fh:
        (row,) = csv.DictReader(fh)
    assert row["status"] == "no_stack" and row["message"].startswith("us: no T1 stack")
    assert row["message"].endswith("; its ultrasound is analysed without --method")


def test_mr_images_without_a_usable_stack_say_the_ultrasound_was_left_out(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(SAMPLES / "us", root / "s" / "us")
    fat = sorted((SAMPLES / "dixon").rglob("*.dcm"))[0]  # one Dixon fat image, no water
    for f in (root / "s" / "us").rglob("*.dcm"):  # one study: the MR image's StudyInstanceUID
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = pydicom.dcmread(fat, stop_before_pixels=True).StudyInstanceUID
        ds.save_as(f, enforce_file_format=True)
    shutil.copy(fat, root / "s" / "fat.dcm")
    run(root, tmp_path / "out", workers=0, summary=False)
    with (tmp_path / "out" / "studies.csv").open() as fh:
        (row,) = csv.DictReader(fh)
    assert row["status"] == "no_stack" and row["method"] == ""
    assert "its ultrasound is not analysed when the study has MR images" in row["message"]
