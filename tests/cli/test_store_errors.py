"""A project that cannot be read is bad input (exit 2, one line), for every command."""

from __future__ import annotations

import pytest

from backmice.cli import main


@pytest.fixture
def corrupt(tmp_path):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "backmice.db").write_bytes(b"not a database, just bytes " * 8)
    return folder


@pytest.mark.parametrize(
    "argv",
    [
        ["export", "{p}", "--format", "csv", "--out", "{o}"],
        ["status", "{p}"],
        ["agreement", "{p}", "--out", "{o}"],
    ],
    ids=["export", "status", "agreement"],
)
def test_corrupt_project_is_exit_2_with_one_line(corrupt, tmp_path, capsys, argv):
    argv = [a.format(p=corrupt, o=tmp_path / "out") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "backmice.db" in err and "internal error" not in err
    assert len(err.splitlines()) == 1
