"""docs/store.md's example runs as written, and the actions it lists are the code's."""

from __future__ import annotations

import re
from pathlib import Path

import backmice.analysis
from backmice.store import Action

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "store.md"


def test_the_example_runs(tmp_path, monkeypatch, t1_analysis):
    code = re.search(r"```python\n(.*?)```", DOC.read_text(), re.S).group(1)
    # The example analyses the T1 sample with default options: hand it the
    # session's analysis of that sample (tests/conftest.py) instead of a rerun.
    asked = []

    def analyze(path, **kwargs):
        asked.append((Path(path).resolve(), kwargs))
        return t1_analysis

    monkeypatch.setattr(backmice.analysis, "analyze", analyze)
    (tmp_path / "sample_data").symlink_to(ROOT / "sample_data")
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    assert scope["key"] == "t1_axial"
    assert scope["rows"][0]["status"] == "accepted"
    assert scope["labels"].shape == (16, 192, 288)
    assert (tmp_path / "my_project" / "backmice.db").is_file()
    assert asked == [((ROOT / "sample_data" / "t1_axial").resolve(), {})]


def test_every_action_is_documented():
    rows = re.findall(r"^\| `([a-z_]+)`(?:, `([a-z_]+)`)? \|", DOC.read_text(), re.M)
    documented = {name for row in rows for name in row if name}
    assert documented == {a.value for a in Action}
