"""Exported then imported annotations equal the originals: labels voxel for voxel, and rows."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from backmice.cli import main
from backmice.errors import InputError
from backmice.export import export_annotations, from_result, import_files
from backmice.report.write import write_json, write_nifti
from backmice.vocab import COLUMNS

from .conftest import make_result

#: Columns an SR does not carry: the study and series come from where it is imported.
NOT_IN_SR = {"updated"}


def _wipe(folder) -> None:
    """Forget the folder's nodules: no rows, empty labels (what import must rebuild)."""
    ann = from_result(folder)
    doc = json.loads((folder / "nodules.json").read_text())
    about = {k: v for k, v in doc.items() if k not in ("backmice_version", "nodules")}
    write_json(folder / "nodules.json", [], **about)
    write_nifti(folder / "labels.nii.gz", np.zeros_like(ann.labels, dtype=np.uint16), ann.affine)


def _assert_same(imported, original) -> None:
    assert np.array_equal(imported.labels, original.labels)
    assert [r["nodule_id"] for r in imported.rows] == [r["nodule_id"] for r in original.rows]
    for got, want in zip(imported.rows, original.rows, strict=True):
        for column in COLUMNS:
            if column in NOT_IN_SR:
                continue
            assert got[column] == want[column], (want["nodule_id"], column)


def test_seg_and_sr_round_trip_into_an_emptied_folder(result, tmp_path):
    original = from_result(result)
    export_annotations(result, tmp_path / "out", formats=["sr"], include_rejected=True)
    files = sorted((tmp_path / "out" / "case01").glob("*.dcm"))
    assert [f.name for f in files] == ["seg.dcm", "sr-anna.dcm", "sr-backmice.dcm"]
    _wipe(result)
    assert from_result(result).rows == []
    import_files(files, into=result)
    _assert_same(from_result(result), original)
    # The CSV agrees with the JSON.
    csv = (result / "nodules.csv").read_text().splitlines()
    assert len(csv) == 1 + len(original.rows)


def test_import_into_the_same_folder_changes_nothing(result, tmp_path):
    before = {p.name: p.read_bytes() for p in result.iterdir()}
    export_annotations(result, tmp_path / "out", formats=["sr"], include_rejected=True)
    import_files(sorted((tmp_path / "out" / "case01").glob("*.dcm")), into=result)
    after = from_result(result)
    original_rows = json.loads(before["nodules.json"])["nodules"]
    spec = [{c: r[c] for c in COLUMNS} for r in original_rows]
    assert [{c: r[c] for c in COLUMNS} for r in after.rows] == spec  # updated kept too
    # The red flags' criteria and values, which the SR does not carry back, are kept.
    assert [r.get("red_flag_criteria") for r in after.rows] == [
        r.get("red_flag_criteria") for r in original_rows
    ]


def test_reader_view_exports_only_that_readers_nodules(result, tmp_path):
    export_annotations(
        result, tmp_path / "out", formats=["sr", "json"], reader="anna", include_rejected=True
    )
    doc = json.loads((tmp_path / "out" / "nodules.json").read_text())
    assert [r["nodule_id"] for r in doc["nodules"]] == [1, 2]
    assert {r["reader"] for r in doc["nodules"]} == {"anna"}
    _wipe(result)
    imported = import_files(
        sorted((tmp_path / "out" / "case01").glob("*.dcm")), into=result, write=False
    )
    assert sorted(np.unique(imported.labels).tolist()) == [0, 1, 2]
    assert [r["reader"] for r in imported.rows] == ["anna", "anna"]


def test_enhanced_multiframe_source_round_trips(tmp_path):
    folder = make_result(tmp_path, enhanced=True)
    original = from_result(folder)
    assert len(original.source_paths) == 1
    export_annotations(folder, tmp_path / "out", formats=["sr"], include_rejected=True)
    _wipe(folder)
    import_files(sorted((tmp_path / "out" / "case01").glob("*.dcm")), into=folder)
    _assert_same(from_result(folder), original)


def test_cli_export_then_import(result, tmp_path, capsys):
    original = from_result(result)
    out = tmp_path / "cli"
    assert (
        main(
            [
                "export",
                str(result),
                "--format",
                "sr",
                "--format",
                "csv",
                "--out",
                str(out),
                "--include-rejected",
            ]
        )
        == 0
    )
    assert "seg.dcm" in capsys.readouterr().out
    _wipe(result)
    files = [str(p) for p in sorted((out / "case01").glob("*.dcm"))]
    assert main(["import", *files, "--into", str(result)]) == 0
    _assert_same(from_result(result), original)


@pytest.mark.parametrize("fmt", ["csv", "json", "nifti"])
def test_tables_and_labels_match_the_source(result, tmp_path, fmt):
    original = from_result(result)
    written = export_annotations(result, tmp_path, formats=[fmt])
    assert len(written) == 1
    if fmt == "json":
        rows = json.loads(written[0].read_text())["nodules"]
        assert [{c: r[c] for c in COLUMNS} for r in rows] == [
            {c: r[c] for c in COLUMNS} for r in original.rows
        ]
        # and the red flags' criteria with their measured values (nodule 2 has two)
        assert [len(r.get("red_flag_criteria") or []) for r in rows] == [0, 2, 0]
    elif fmt == "csv":
        header = written[0].read_text().splitlines()[0]
        assert header == ",".join(COLUMNS)
    else:
        from backmice.export.source import read_labels

        labels, affine = read_labels(written[0])
        assert np.array_equal(labels, original.labels)
        np.testing.assert_allclose(affine, original.affine, atol=1e-4)


def test_nonuniform_slice_spacing_round_trips(tmp_path):
    folder = make_result(tmp_path, nonuniform=True)
    original = from_result(folder)
    source = original.source()
    gaps = np.linalg.norm(np.diff(source.positions_mm, axis=0), axis=1)
    assert gaps.max() - gaps.min() > 1.0  # really non-uniform
    export_annotations(folder, tmp_path / "out", formats=["sr"], include_rejected=True)
    seg = pydicom.dcmread(tmp_path / "out" / "case01" / "seg.dcm")
    by_uid = {ds.SOPInstanceUID: ds for ds in source.datasets}
    for frame in seg.PerFrameFunctionalGroupsSequence:
        ref = frame.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID
        np.testing.assert_allclose(
            frame.PlanePositionSequence[0].ImagePositionPatient,
            by_uid[ref].ImagePositionPatient,
            atol=1e-6,
        )
    _wipe(folder)
    import_files(sorted((tmp_path / "out" / "case01").glob("*.dcm")), into=folder)
    _assert_same(from_result(folder), original)


def test_an_sr_alone_restores_the_review(result, tmp_path):
    original = from_result(result)
    export_annotations(result, tmp_path / "out", formats=["sr"], include_rejected=True)
    doc = json.loads((result / "nodules.json").read_text())
    doc["nodules"][0].update(subtype=None, status="candidate", volume_mm3=1.0)
    (result / "nodules.json").write_text(json.dumps(doc))
    reports = sorted((tmp_path / "out" / "case01").glob("sr*.dcm"))
    imported = import_files(reports, into=result)
    assert not imported.warnings
    _assert_same(from_result(result), original)


def test_an_sr_about_a_nodule_without_mask_is_bad_input(result, tmp_path):
    export_annotations(result, tmp_path / "out", formats=["sr"], include_rejected=True)
    ann = from_result(result)
    write_nifti(result / "labels.nii.gz", np.where(ann.labels == 1, 0, ann.labels), ann.affine)
    with pytest.raises(InputError, match="nodule 1 has no mask"):
        import_files([tmp_path / "out" / "case01" / "sr-anna.dcm"], into=result)
