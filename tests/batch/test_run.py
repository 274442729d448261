"""``backmice batch`` and :func:`backmice.batch.run` over the tiny cohort."""

from __future__ import annotations

import csv
import json
import shutil

import pandas as pd

from backmice._names import safe_name
from backmice.batch import STUDY_COLUMNS, run
from backmice.batch.tables import nodule_dtypes
from backmice.batch.worker import RECORD_FILE
from backmice.ultrasound import EXTRA_COLUMNS
from backmice.vocab import COLUMNS
from tests.batch.conftest import EXPECTED

#: The cohort's ultrasound-only studies (analysed as ultrasound).
ULTRASOUND_STUDIES = {"us", safe_name("multi/us")}


def _studies(out) -> list[dict]:
    with (out / "studies.csv").open() as fh:
        return list(csv.DictReader(fh))


def test_failed_studies_give_exit_3_and_every_other_result(reference):
    out, code, _ = reference
    assert code == 3  # error and no_stack both count as failed (docs/batch.md)
    rows = _studies(out)
    assert [r["study"] for r in rows] == sorted(EXPECTED)
    assert {r["study"]: r["status"] for r in rows} == EXPECTED
    for name, status in EXPECTED.items():
        folder = out / "studies" / name
        record = json.loads((folder / RECORD_FILE).read_text())
        assert record["status"] == status
        if status == "ok":
            for f in ("nodules.csv", "nodules.json", "labels.nii.gz", "fascia.nii.gz", "qc.png"):
                assert (folder / f).stat().st_size > 0
        else:  # a failure leaves only its record
            assert sorted(p.name for p in folder.iterdir()) == [RECORD_FILE]


def test_studies_csv_says_what_was_used_and_why_not(reference):
    out, _, _ = reference
    with (out / "studies.csv").open() as fh:
        assert tuple(next(csv.reader(fh))) == STUDY_COLUMNS
    rows = {r["study"]: r for r in _studies(out)}
    a = rows["a"]
    assert a["method"] == "dixon" and a["series_description"] == "T1 DIXON AX F;T1 DIXON AX W"
    assert len(a["series_uid"].split(";")) == 2 and int(a["n_nodules"]) >= 3
    assert float(a["seconds"]) > 0
    assert rows["broken"]["message"].startswith("broken/im.dcm: cannot decode the pixel data")
    assert rows["broken"]["method"] == "t1"
    assert rows["sr"]["message"].startswith("sr: no T1 stack and no Dixon")
    assert "found sr (SR, 'report'" in rows["sr"]["message"] and rows["sr"]["method"] == ""
    assert {n: r["units"] for n, r in rows.items()} == {
        n: ("mm" if s == "ok" else "") for n, s in EXPECTED.items()
    }
    # an ultrasound-only study is analysed as ultrasound, as `backmice analyze` does
    for name in ("us", safe_name("multi/us")):
        us = rows[name]
        assert us["method"] == "ultrasound" and us["series_description"] == "US BACK TRANS"
        assert len(us["series_uid"].split(";")) == 1 and us["series_uid"].startswith("1.2.")
        assert int(us["n_nodules"]) == 1
        assert "found automatically (status candidate)" in us["message"]
    multi = [r for r in rows.values() if r["folder"] == "multi"]
    assert len(multi) == 2 and all(r["study_uid"] for r in multi)


def test_nodule_tables_have_every_spec_column_study_first_in_name_order(reference):
    out, _, _ = reference
    with (out / "nodules.csv").open() as fh:
        rows = list(csv.DictReader(fh))
        assert tuple(rows[0].keys()) == COLUMNS and COLUMNS[0] == "study"
    ok = {n for n, s in EXPECTED.items() if s == "ok"}
    assert {r["study"] for r in rows} == ok
    order = [(r["study"], int(r["nodule_id"])) for r in rows]
    assert order == sorted(order)
    # each study's rows are exactly its own nodules.csv (an ultrasound study's cut to the
    # SPEC columns: its own has EXTRA_COLUMNS after them), renamed to the batch name
    for name in ok:
        with (out / "studies" / name / "nodules.csv").open() as fh:
            own = list(csv.DictReader(fh))
        if name in ULTRASOUND_STUDIES:
            assert tuple(own[0])[len(COLUMNS) :] == EXTRA_COLUMNS
            own = [{c: r[c] for c in COLUMNS} for r in own]
        assert own == [r for r in rows if r["study"] == name]
    # the three copies of one Dixon study measure the same, the two ultrasound copies too
    for copies in (ok - ULTRASOUND_STUDIES, ULTRASOUND_STUDIES):
        per_study = {n: [r["max_diameter_mm"] for r in rows if r["study"] == n] for n in copies}
        assert len({tuple(v) for v in per_study.values()}) == 1
    frame = pd.read_parquet(out / "nodules.parquet")
    assert tuple(frame.columns) == COLUMNS and len(frame) == len(rows)
    for column, dtype in nodule_dtypes().items():  # fixed, whatever the cells hold
        if dtype == "str":
            assert pd.api.types.is_string_dtype(frame[column]), column
        else:
            assert frame[column].dtype == dtype, column
    assert list(frame["study"]) == [r["study"] for r in rows]
    assert (frame["subtype"] == "").all()
    mri = frame[~frame["study"].isin(ULTRASOUND_STUDIES)]
    us = frame[frame["study"].isin(ULTRASOUND_STUDIES)]
    assert len(mri) and len(us) == 2
    assert (mri["fat_fraction"] > 0.5).all() and (mri["volume_mm3"] > 0).all()
    # ultrasound is 2D: no volume, no 3D centroid, no fat fraction (NaN), lengths in mm
    for column in ("volume_mm3", "centroid_x_mm", "axis_3_mm", "fat_fraction"):
        assert us[column].isna().all(), column
    assert (us["long_axis_mm"] > 10).all() and (us["units"] == "mm").all()
    assert (us["relation"] == "subcutaneous").all() and (us["status"] == "candidate").all()
    assert (out / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".nodules*"))


def test_quiet_prints_one_line_per_study(reference):
    _, _, stdout = reference
    lines = [line for line in stdout.splitlines() if line.startswith("[")]
    assert len(lines) == len(EXPECTED)
    assert any("broken: error" in line for line in lines)
    assert any("us: ok 1 nodule(s)" in line for line in lines)
    assert "3 failed" not in stdout and "5 ok, 2 failed" in stdout


def test_resume_reuses_unchanged_results_and_reruns_failures(reference, cohort, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(reference[0], out)  # the reference is shared: resume a copy
    seen = []
    frame = run(
        cohort,
        out,
        workers=0,  # in this process: only the failed studies run again
        resume=True,
        progress=lambda record, done, total: seen.append((record, done, total)),
    )
    n_ok = sum(s == "ok" for s in EXPECTED.values())
    assert seen[0] == (None, n_ok, len(EXPECTED))
    assert sorted(r.study for r, _, _ in seen[1:]) == sorted(
        n for n, s in EXPECTED.items() if s != "ok"
    )
    again = pd.read_parquet(out / "nodules.parquet")
    pd.testing.assert_frame_equal(frame, again)
    assert tuple(frame.columns) == COLUMNS and len(frame) > 0


def test_results_load_into_an_annotation_project(reference, tmp_path):
    from backmice.batch import to_project
    from backmice.store import Project

    out, _, _ = reference
    ok = sorted(n for n, s in EXPECTED.items() if s == "ok")
    assert to_project(out, tmp_path / "project") == ok
    with Project.open(tmp_path / "project", create=False) as project:
        assert [s.key for s in project.studies()] == ok
        with (out / "nodules.csv").open() as fh:
            rows = list(csv.DictReader(fh))
        for name in ok:
            stored = project.nodules(name)
            mine = [r for r in rows if r["study"] == name]
            assert [n["nodule_id"] for n in stored] == [int(r["nodule_id"]) for r in mine]
            assert [round(n["max_diameter_mm"], 3) for n in stored] == [
                float(r["max_diameter_mm"]) for r in mine
            ]
    # adding again (a re-run) keeps one entry per study
    assert to_project(out, tmp_path / "project") == ok
    with Project.open(tmp_path / "project", create=False) as project:
        assert len(project.studies()) == len(ok)


def test_progress_bar_counts_studies_and_failures():
    import io

    from rich.console import Console

    from backmice.batch import StudyRecord, StudyStatus
    from backmice.cli.batch import _Bar

    buffer = io.StringIO()
    bar = _Bar(Console(file=buffer, force_terminal=True, width=120))
    with bar.bar:
        bar(None, 0, 2)
        bar(StudyRecord("a", StudyStatus.OK, n_nodules=2), 1, 2)
        bar(StudyRecord("us", StudyStatus.NO_STACK, message="us: no T1 stack"), 2, 2)
    text = buffer.getvalue()
    assert "2/2" in text and "1 failed" in text and "us: no_stack: us: no T1 stack" in text
    assert "ETA" in text


def test_bad_root_and_workers_are_bad_input(tmp_path, capsys):
    from backmice.cli import main

    assert main(["batch", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert "no such folder" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "--out", str(tmp_path / "o"), "--workers", "-1"]) == 2


def test_to_project_needs_a_batch_output(tmp_path):
    import pytest

    from backmice.batch import to_project
    from backmice.errors import InputError

    with pytest.raises(InputError, match=r"no studies\.csv"):
        to_project(tmp_path, tmp_path / "project")
