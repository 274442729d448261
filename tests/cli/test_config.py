"""Analysis presets in TOML: ``--config FILE`` and ``backmice config show``."""

from __future__ import annotations

import tomllib

import pytest

from backmice.analysis import AnalysisOptions
from backmice.cli import build_parser, main
from backmice.cli._options import options_from_args
from backmice.config import load_config, option_list, options_from_mapping, options_toml
from backmice.errors import InputError
from backmice.segment import Method

PRESET = """
[analysis]
method = "dixon"
threshold = 0.45
find_sacrum = false

[analysis.candidates]
min_size_mm = 8
posterior_only = false

[analysis.red_flags]
deep_mm = 10.0
"""


def test_config_show_prints_every_option_with_its_default_and_unit(capsys):
    assert main(["config", "show"]) == 0
    text = capsys.readouterr().out
    assert options_from_mapping(tomllib.loads(text)) == AnalysisOptions()
    options = option_list()
    assert {o.table for o in options} == {"analysis", "analysis.candidates", "analysis.red_flags"}
    blocks = text.split("\n")
    for o in options:
        line = next(
            i for i, b in enumerate(blocks) if b.startswith((f"{o.name} =", f"# {o.name} ="))
        )
        comment = " ".join(b for b in blocks[:line][-6:] if b.startswith("#"))
        assert "default: " in comment, o.name
        if o.name.endswith("_mm"):
            assert "unit: mm" in comment, o.name
    assert "unit: fraction" in text and "unit: 0-1" in text


def test_a_preset_sets_the_options_and_shows_back(tmp_path, capsys):
    path = tmp_path / "protocol.toml"
    path.write_text(PRESET)
    options = load_config(path)
    assert options.method is Method.DIXON and options.threshold == 0.45
    assert options.find_sacrum is False and options.n4 is True
    assert options.candidates.min_size_mm == 8.0 and not options.candidates.posterior_only
    assert options.candidates.max_size_mm == AnalysisOptions().candidates.max_size_mm
    assert options.red_flags.deep_mm == 10.0
    assert main(["config", "show", "--config", str(path)]) == 0
    assert options_from_mapping(tomllib.loads(capsys.readouterr().out)) == options
    assert tomllib.loads(options_toml(options))["analysis"]["method"] == "dixon"


def test_flags_win_over_the_file(tmp_path):
    path = tmp_path / "protocol.toml"
    path.write_text(PRESET)
    argv = ["analyze", "study", "--out", "o", "--config", str(path)]
    options = options_from_args(build_parser().parse_args([*argv, "--threshold", "0.3"]))
    assert options.threshold == 0.3 and options.method is Method.DIXON
    assert options.candidates.min_size_mm == 8.0 and options.find_sacrum is False
    options = options_from_args(build_parser().parse_args([*argv, "--find-sacrum", "--no-n4"]))
    assert options.find_sacrum is True and options.n4 is False
    # Without --config: the defaults, as before.
    plain = options_from_args(build_parser().parse_args(["batch", "root", "--out", "o"]))
    assert plain == AnalysisOptions()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[analysis.candidates]\nmin_sise_mm = 3\n", "did you mean min_size_mm"),
        ("[analysis]\nthreshold = 1.5\n", "between 0 and 1"),
        ("[analysis]\nmethod = 'fat'\n", "expected one of"),
        ("[analysis]\nn4 = 1\n", "true or false"),
        ("[analysis.red_flags]\ndeep_mm = -2\n", "at least 0"),
        ("[analysis.candidates]\nmin_size_mm = 50\nmax_size_mm = 20\n", "above max_size_mm"),
        ("[analyse]\nthreshold = 0.4\n", "unknown table"),
        ("[analysis]\nthreshold = \n", "not valid TOML"),
    ],
)
def test_a_bad_preset_is_an_input_error_naming_the_file(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InputError, match=message) as err:
        load_config(path)
    assert err.value.path == str(path)
    assert main(["config", "show", "--config", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_a_missing_preset_is_named(tmp_path, capsys):
    missing = tmp_path / "nowhere.toml"
    assert (
        main(["analyze", str(tmp_path), "--out", str(tmp_path / "o"), "--config", str(missing)])
        == 2
    )
    assert "nowhere.toml" in capsys.readouterr().err
