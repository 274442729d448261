"""What the command line prints is text, not rich markup; running out of memory is exit 2."""

from __future__ import annotations

import sys

from backmice.cli import main


def test_the_napari_hint_keeps_its_brackets(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "napari", None)  # import napari raises ImportError
    assert main(["view", str(tmp_path)]) == 2
    assert "pip install 'backmice[napari]' pyqt5" in capsys.readouterr().err


def test_a_path_with_brackets_is_printed_whole(capsys, tmp_path):
    missing = tmp_path / "study [bold]one[/bold] [red]"
    assert main(["info", str(missing)]) == 2
    assert str(missing) in capsys.readouterr().err


def test_a_warning_with_brackets_is_printed_whole(capsys, tmp_path):
    from backmice.cli import make_console, print_labelled

    print_labelled(make_console(stderr=True), "warning:", "series '[b]T1[/b]' has [red] in it")
    assert "warning: series '[b]T1[/b]' has [red] in it" in capsys.readouterr().err


def test_running_out_of_memory_is_a_clear_exit_2(monkeypatch, capsys, tmp_path):
    import backmice.cli.info as info

    def huge(path):
        raise MemoryError("Unable to allocate 7.88 GiB")

    monkeypatch.setattr(info, "_open_with_progress", huge)
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not enough memory for this input (Unable to allocate 7.88 GiB)" in err
    assert "internal error" not in err
