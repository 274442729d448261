"""Finding the studies of a cohort: names, grouping by StudyInstanceUID, fingerprints."""

from __future__ import annotations

import os
import re
import shutil

import pytest

from backmice.analysis import AnalysisOptions
from backmice.batch import discover, fingerprint
from backmice.batch.discover import study_folders
from backmice.errors import InputError
from tests.batch.conftest import EXPECTED, SAMPLES

SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def test_cohort_studies_are_named_safely_uniquely_and_stably(cohort):
    tasks = discover(cohort)
    names = [t.name for t in tasks]
    assert names == sorted(EXPECTED)
    assert all(SAFE.match(n) for n in names)
    assert [t.name for t in discover(cohort)] == names  # the same on every run


def test_a_folder_holding_two_studies_is_split_by_study_uid(cohort):
    multi = [t for t in discover(cohort) if t.rel == "multi"]
    assert len(multi) == 2
    assert len({t.study_uid for t in multi}) == 2 and all(t.study_uid for t in multi)
    # each is named after the sub-folder its files share
    assert {t.name.split("-")[0] for t in multi} == {"multi_dixon", "multi_us"}


def test_hostile_folder_names_stay_inside_the_output(tmp_path):
    for name in ("..", "-rf", "a\nb", "x y", "CON", "déjà"):
        if name == "..":
            continue  # cannot be a folder name; a name made of dots is handled by safe_name
        shutil.copytree(SAMPLES / "us", tmp_path / name)
    names = [t.name for t in discover(tmp_path)]
    assert len(names) == len(set(names)) == 5
    assert all(SAFE.match(n) and os.sep not in n and n not in (".", "..") for n in names)


def test_names_differing_only_in_case_are_made_unique(tmp_path):
    shutil.copytree(SAMPLES / "us", tmp_path / "Study")
    shutil.copytree(SAMPLES / "us", tmp_path / "study")
    names = [t.name for t in discover(tmp_path)]
    assert len({n.lower() for n in names}) == 2
    assert names == [t.name for t in discover(tmp_path)]


def test_root_without_sub_folders_is_one_study(tmp_path):
    shutil.copytree(SAMPLES / "us" / "01_us", tmp_path / "only")
    assert study_folders(tmp_path / "only") == [tmp_path / "only"]
    (task,) = discover(tmp_path / "only")
    assert task.name == "only" and task.rel == "."


def test_root_must_be_a_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        discover(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        discover(tmp_path / "file")


def test_fingerprint_follows_files_and_options(tmp_path):
    shutil.copytree(SAMPLES / "us", tmp_path / "s")
    (task,) = discover(tmp_path)
    fp = fingerprint(task, AnalysisOptions())
    assert fingerprint(discover(tmp_path)[0], AnalysisOptions()) == fp
    assert fingerprint(task, AnalysisOptions(threshold=0.6)) != fp
    some_file = next((tmp_path / "s").rglob("*.dcm"))
    st = some_file.stat()
    os.utime(some_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert fingerprint(discover(tmp_path)[0], AnalysisOptions()) != fp
    (tmp_path / "s" / "new.dcm").write_bytes(b"x")
    assert discover(tmp_path)[0].n_files == task.n_files + 1


def test_studies_mixed_in_one_folder_are_named_by_uid(tmp_path):
    for series in ("dixon", "us"):
        for f in (SAMPLES / series).rglob("*.dcm"):
            shutil.copy(f, tmp_path / f"{series}_{f.name}")
    (tmp_path / "mixed").mkdir()
    for f in tmp_path.glob("*.dcm"):
        f.rename(tmp_path / "mixed" / f.name)
    tasks = discover(tmp_path)
    assert len(tasks) == 2
    assert all(t.name.startswith("mixed-1.2.") and t.study_uid in t.name for t in tasks)
