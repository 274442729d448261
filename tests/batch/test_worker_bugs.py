"""A bug while a study is being set up fails that study only (exit 3), never the batch."""

from __future__ import annotations

import shutil

import pandas as pd

import backmice.batch.worker as worker
from backmice.batch import run
from tests.batch.conftest import SAMPLES


def test_a_bug_while_choosing_the_stack_fails_only_that_study(tmp_path, monkeypatch):
    root = tmp_path / "cohort"
    shutil.copytree(SAMPLES / "us", root / "us")
    shutil.copytree(SAMPLES / "us", root / "boom")
    real = worker.plan

    def buggy(study, **kwargs):
        if "boom" in str(study.path):
            raise RuntimeError("boom")
        return real(study, **kwargs)

    monkeypatch.setattr(worker, "plan", buggy)
    out = tmp_path / "out"
    run(root, out, workers=0, qc=False, summary=False)
    studies = pd.read_csv(out / "studies.csv").set_index("study")
    assert studies.loc["us", "status"] == "ok"
    assert studies.loc["boom", "status"] == "error"
    assert (
        "internal error" in studies.loc["boom", "message"]
        and "boom" in studies.loc["boom", "message"]
    )
