"""docs/robustness.md states what the robustness tests do: keep the two in step."""

from __future__ import annotations

import re
from pathlib import Path

from backmice.io import header
from tests.robustness import test_folders
from tests.robustness.fuzzing import CLASSES, SUITE_EXAMPLES

DOC = Path(__file__).resolve().parents[2] / "docs" / "robustness.md"


def _rows(text: str) -> dict[str, list[str]]:
    """Table rows whose first cell is a code name: name -> the other cells."""
    rows = {}
    for line in text.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in match.group(2).split("|")]
    return rows


def test_the_table_lists_every_class_with_the_cases_the_suite_runs():
    rows = _rows(DOC.read_text())
    assert set(CLASSES) <= set(rows)
    for cls in CLASSES:
        what, cases = rows[cls][0], rows[cls][1]
        assert int(cases) == SUITE_EXAMPLES[cls], cls
        assert what, cls
    total = re.search(r"\|\s*\*\*all\*\*\s*\|[^|]*\|\s*\*\*(\d+)\*\*", DOC.read_text())
    assert total and int(total.group(1)) == sum(SUITE_EXAMPLES.values())


def test_the_numbers_quoted_are_the_code_s():
    text = DOC.read_text()
    assert f"{test_folders.MANY_FILES:,} files" in text
    assert "2**31" in text and f"{header.BYTES_PER_PIXEL} bytes" in text  # MAX_PIXELS' sizing
    assert f"2**{header.MAX_INFLATED_BYTES.bit_length() - 1}" in text
