"""The notebook API: backmice.analyze, to_dataframe, qc_figure and the HTML display."""

from __future__ import annotations

import copy
import io
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

import backmice
from backmice.batch.tables import nodule_dtypes
from backmice.errors import InputError
from backmice.notebook import open_batch
from backmice.report import write_csv
from backmice.report.qc import direction_letter
from backmice.ultrasound import EXTRA_COLUMNS
from backmice.vocab import COLUMNS

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"


def test_to_dataframe_is_what_nodules_csv_holds(dixon_analysis, tmp_path):
    frame = dixon_analysis.to_dataframe()
    assert tuple(frame.columns) == COLUMNS
    assert len(frame) == len(dixon_analysis.nodules) > 0
    for column, dtype in nodule_dtypes().items():
        assert str(frame[column].dtype) == dtype or dtype == "str", column
    written = pd.read_csv(write_csv(tmp_path / "nodules.csv", dixon_analysis.nodules))
    for column in ("nodule_id", "volume_mm3", "centroid_x_mm", "fascia_offset_mm"):
        assert np.allclose(frame[column].to_numpy(float), written[column].to_numpy(float))
    for row, ref in zip(frame.itertuples(), dixon_analysis.nodules, strict=True):
        assert row.volume_mm3 == pytest.approx(ref["volume_mm3"], abs=1e-3)
        assert row.relation == ref["relation"]


def test_qc_figure_is_a_figure_with_the_patient_directions(dixon_analysis):
    fig = dixon_analysis.qc_figure()
    assert isinstance(fig, Figure)
    overview = fig.axes[0]
    letters = {t.get_text() for t in overview.texts}
    # An axial stack: columns toward the patient's left, rows toward posterior.
    assert {"R", "L", "A", "P"} <= letters
    right = next(t for t in overview.texts if t.get_text() in "RL" and t.get_position()[0] > 0.9)
    assert right.get_text() == "L"


@pytest.mark.parametrize(
    ("vector", "letter"),
    [
        ((1, 0, 0), "L"),
        ((-1, 0, 0), "R"),
        ((0, 2, 0), "P"),
        ((0, -1, 0.1), "A"),
        ((0, 0, 1), "S"),
        ((0, 0.2, -1), "I"),
        ((1, 0.8, 0), "LP"),
    ],
)
def test_direction_letter(vector, letter):
    assert direction_letter(np.array(vector, float)) == letter


def test_html_holds_the_table_and_the_picture_and_escapes_text(dixon_analysis):
    analysis = copy.copy(dixon_analysis)
    analysis.warnings = ["<script>alert(1)</script> a warning"]
    text = analysis._repr_html_()
    assert "<table" in text and "data:image/png;base64," in text
    assert dixon_analysis.nodules[0]["relation"] in text
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_top_level_analyze_passes_the_options_on(monkeypatch):
    import backmice.run

    seen = {}

    def fake_plan(study, *, method, series_uid, echo, ultrasound):
        seen.update(planned=str(method), series=series_uid, echo=echo, ultrasound=ultrasound)
        return SimpleNamespace(ultrasound=ultrasound)

    def fake_run(planned, *, options, progress):
        seen.update(method=options.method, threshold=options.threshold)
        return "analysis"

    monkeypatch.setattr(backmice.run, "plan", fake_plan)
    monkeypatch.setattr(backmice.run, "run_mri", fake_run)
    assert "analyze" in backmice.__all__
    result = backmice.analyze(SAMPLES / "dixon", method="t1", threshold=0.4, series="x", echo=2)
    assert result == "analysis"
    assert seen == {
        "planned": "t1",
        "series": "x",
        "echo": 2,
        "ultrasound": False,
        "method": "t1",
        "threshold": 0.4,
    }


def test_top_level_analyze_of_ultrasound_gives_a_result_that_shows_itself():
    result = backmice.analyze(SAMPLES / "us")
    assert type(result).__name__ == "UltrasoundResult"
    frame = result.to_dataframe()
    assert tuple(frame.columns) == (*COLUMNS, *EXTRA_COLUMNS)
    assert str(frame["frame"].dtype) == "int64" and str(frame["area_mm2"].dtype) == "float64"
    assert isinstance(result.qc_figure(), Figure)
    text = result._repr_html_()
    assert "<table" in text and "data:image/png;base64," in text


def test_import_backmice_stays_light():
    # The analysis (scikit-image, matplotlib), the ultrasound analysis and the store
    # load on first use of their names (backmice.analyze, backmice.Project, ...).
    heavy = ("backmice.analysis", "backmice.ultrasound", "backmice.store", "skimage", "matplotlib")
    code = f"import sys, backmice; print([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_batch_folder_opens_for_a_notebook(dixon_analysis, tmp_path):
    write_csv(tmp_path / "nodules.csv", dixon_analysis.nodules)
    (tmp_path / "studies.csv").write_text("study,status,message\ndixon,ok,\nbad,error,<b>boom\n")
    png = io.BytesIO()
    fig = Figure(figsize=(2, 1))
    fig.add_subplot().plot([0, 1])
    fig.savefig(png, format="png")
    (tmp_path / "summary.png").write_bytes(png.getvalue())
    batch = open_batch(tmp_path)
    assert len(batch.to_dataframe()) == len(dixon_analysis.nodules)
    assert list(batch.studies()["status"]) == ["ok", "error"]
    assert isinstance(batch.qc_figure(), Figure)
    text = batch._repr_html_()
    assert "<table" in text and "data:image/png;base64," in text
    assert "bad: error: &lt;b&gt;boom" in text
    with pytest.raises(InputError, match=r"studies\.csv"):
        open_batch(tmp_path / "nowhere")
