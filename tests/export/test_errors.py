"""Bad input: one InputError naming the file and the problem; exit code 2 on the command line."""

from __future__ import annotations

import json
import shutil

import pytest

from backmice.cli import main
from backmice.errors import InputError
from backmice.export import export_annotations, import_files


def test_missing_source_file_is_named(result, tmp_path):
    doc = json.loads((result / "nodules.json").read_text())
    copies = tmp_path / "copies"
    copies.mkdir()
    files = []
    for p in doc["source_files"]:
        files.append(str(shutil.copy(p, copies)))
    (copies / files[2].rsplit("/", 1)[1]).unlink()
    doc["source_files"] = files
    (result / "nodules.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="source DICOM file is missing") as err:
        export_annotations(result, tmp_path / "out", formats=["seg"])
    assert files[2] in str(err.value)
    # Tables do not need the source.
    assert export_annotations(result, tmp_path / "out", formats=["csv"])


def test_source_of_another_series_is_bad_input(result, tmp_path):
    doc = json.loads((result / "nodules.json").read_text())
    doc["nodules"][0]["series_uid"] = "1.2.3"
    (result / "nodules.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="belongs to series"):
        export_annotations(result, tmp_path / "out", formats=["seg"])


def test_not_a_result_folder(tmp_path):
    with pytest.raises(InputError, match="neither a backmice result folder"):
        export_annotations(tmp_path, tmp_path / "out", formats=["csv"])
    with pytest.raises(InputError, match="no such file"):
        export_annotations(tmp_path / "nope", tmp_path / "out", formats=["csv"])
    with pytest.raises(InputError, match="neither a backmice result folder"):
        import_files([tmp_path / "x.dcm"], into=tmp_path)


def test_cli_bad_input_is_exit_2_with_one_line(result, tmp_path, capsys):
    mr = json.loads((result / "nodules.json").read_text())["source_files"][0]
    assert main(["import", mr, "--into", str(result)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and mr in err[0] and "neither a DICOM Segmentation" in err[0]
    assert main(["export", str(tmp_path), "--format", "seg", "--out", str(tmp_path / "o")]) == 2
    with pytest.raises(SystemExit) as usage:  # argparse: a usage error is bad input too
        main(["export", str(result), "--format", "pdf", "--out", str(tmp_path / "o")])
    assert usage.value.code == 2
