"""``backmice sample``: list, write, and bad input (exit code 2)."""

from __future__ import annotations

import json

from backmice.cli import EXIT_BAD_INPUT, EXIT_OK, main


def test_list(capsys):
    assert main(["sample", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    names = ("t1_axial", "t1_oblique_iso", "dixon", "t2_fatsat", "us", "us_cine")
    for name in (*names, "t1_wide", "dixon_wide"):
        assert name in out


def test_write_a_sample(tmp_path, capsys):
    out = tmp_path / "us"
    out.mkdir()
    (out / "old.txt").write_text("x")  # a used folder: needs --force
    assert main(["sample", "us", "--out", str(out), "--seed", "2", "--force"]) == EXIT_OK
    truth = json.loads((out / "truth.json").read_text())
    assert truth["seed"] == 2 and truth["sample"] == "us"
    assert len(list(out.rglob("*.dcm"))) == 1
    assert "truth.json" in capsys.readouterr().out


def test_bad_input_exits_2(tmp_path, capsys):
    assert main(["sample", "t3_axial", "--out", str(tmp_path / "x")]) == EXIT_BAD_INPUT
    assert "no sample called 't3_axial'" in capsys.readouterr().err
    assert main(["sample", "us"]) == EXIT_BAD_INPUT  # no --out
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "something").write_text("x")
    assert main(["sample", "us", "--out", str(busy)]) == EXIT_BAD_INPUT
    assert "not empty" in capsys.readouterr().err
    afile = tmp_path / "file"
    afile.write_text("x")
    assert main(["sample", "us", "--out", str(afile)]) == EXIT_BAD_INPUT
    assert main(["sample", "us", "--out", str(tmp_path / "neg"), "--seed", "-1"]) == EXIT_BAD_INPUT
    assert not (tmp_path / "x").exists()
