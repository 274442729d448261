"""Options out of range are usage errors; --debug and -v work after the subcommand too."""

from __future__ import annotations

import pytest

from backmice.cli import build_parser, main


@pytest.mark.parametrize(
    "extra",
    [
        ["--threshold", "1.5"],
        ["--threshold", "0"],
        ["--threshold", "nan"],
        ["--min-size", "-1"],
        ["--max-size", "0"],
        ["--roi-depth", "inf"],
    ],
)
def test_out_of_range_analysis_options_are_exit_2(extra, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["analyze", str(tmp_path), "--out", str(tmp_path / "o"), *extra])
    assert exc.value.code == 2
    assert extra[0] in capsys.readouterr().err


def test_min_size_above_max_size_is_exit_2(tmp_path, capsys):
    argv = ["analyze", str(tmp_path), "--out", str(tmp_path / "o")]
    assert main([*argv, "--min-size", "30", "--max-size", "10"]) == 2
    assert "--min-size 30 is above --max-size 10" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "debug", "verbose"),
    [
        (["info", "x", "--debug"], True, 0),
        (["--debug", "info", "x"], True, 0),
        (["info", "x", "-v"], False, 1),
        (["-v", "info", "x"], False, 1),
        (["info", "x"], False, 0),
    ],
)
def test_debug_and_verbose_anywhere(argv, debug, verbose):
    args = build_parser().parse_args(argv)
    assert args.debug is debug and args.verbose == verbose


def test_debug_after_the_subcommand_shows_the_traceback(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_ultrasound_frames_are_numbered_as_frame_takes_them(tmp_path, capsys):
    from pathlib import Path

    us = Path(__file__).resolve().parents[2] / "sample_data" / "us"
    assert main(["analyze", str(us), "--out", str(tmp_path), "--no-qc", "--frame", "0"]) == 0
    assert "frame 0 of 0-0 (0-based, as --frame)" in capsys.readouterr().out
