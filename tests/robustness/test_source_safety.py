"""Nothing reads untrusted pickles or evaluates input; SQL is parameterised (issue 9).

A scan of the library and plugin sources, so a change that breaks the rule fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = sorted([*ROOT.joinpath("src").rglob("*.py"), *ROOT.joinpath("plugins").rglob("*.py")])

FORBIDDEN = {
    "pickle": re.compile(r"\bpickle\.loads?\(|\bdill\.|\bjoblib\.load\("),
    "numpy pickles": re.compile(r"allow_pickle\s*=\s*True"),
    "eval/exec": re.compile(r"(?<![\w.])(eval|exec)\("),
    "unsafe yaml": re.compile(r"yaml\.(load|unsafe_load)\((?![^)]*SafeLoader)"),
    "shell": re.compile(r"shell\s*=\s*True|os\.system\("),
}
#: SQL built by formatting: only PRAGMAs (which take no parameters) with int values.
SQL_FORMATTED = re.compile(r"\.execute(many|script)?\(\s*(f[\"']|[\"'][^\"']*[\"']\s*(%|\.format))")


def test_sources_were_found():
    assert len(SOURCES) > 50


@pytest.mark.parametrize("kind", sorted(FORBIDDEN))
def test_no_forbidden_calls(kind):
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN[kind].search(line) and not line.lstrip().startswith("#")
    ]
    assert not hits, "\n".join(hits)


def test_sql_is_parameterised():
    hits = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()}"
        for path in SOURCES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if SQL_FORMATTED.search(line) and "PRAGMA" not in line
    ]
    assert not hits, "\n".join(hits)
