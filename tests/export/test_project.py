"""Export from and import into an annotation project (backmice.store)."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from backmice.cli import main
from backmice.errors import InputError
from backmice.export import export_annotations, from_project, import_files
from backmice.measure import measure_labels
from backmice.store import Action, Project
from backmice.vocab import COLUMNS

from .conftest import make_result
from .test_anonymize import _leaks


@pytest.fixture
def project(result, tmp_path):
    """A project with anna's review: accept + tag, reject, an edited, an added, a deleted nodule."""
    folder = tmp_path / "project"
    with Project.open(folder) as p:
        key = p.add_result_dir(result)
        labels, _ = p.labels(key)
        p.record(key, Action.ACCEPT, reader="anna", nodule_id=1)
        p.record(key, Action.SET_SUBTYPE, reader="anna", nodule_id=1, value="episacroiliac_lipoma")
        p.record(key, Action.REJECT, reader="anna", nodule_id=2)
        shrunk = labels == 2
        shrunk[int(np.nonzero(shrunk)[0].max())] = False
        p.record(key, Action.EDIT_MASK, reader="anna", nodule_id=2, mask=shrunk)
        added = np.zeros(labels.shape, dtype=bool)
        added[1:3, 5:9, 30:36] = True
        # As the plugin does: the new nodule comes with its measured SPEC row.
        (shape,) = measure_labels(added.view(np.uint8), p.study(key).affine, ids=[1])
        row = dict.fromkeys(COLUMNS)
        row.update(
            study=key,
            series_uid=p.study(key).series_uid,
            volume_mm3=round(shape.volume_mm3, 3),
            max_diameter_mm=round(shape.max_diameter_mm, 3),
            status="candidate",
            red_flags="",
            units="mm",
        )
        p.record(key, Action.ADD_NODULE, reader="anna", mask=added, row=row)
        p.record(key, Action.DELETE_NODULE, reader="anna", nodule_id=3)
        p.record(key, Action.ACCEPT, reader="ben", nodule_id=3)
    return folder, key


def _view(folder, key, reader):
    with Project.open(folder, create=False) as p:
        labels, _ = p.labels(key, reader=reader)
        rows = p.nodules(key, reader=reader)
    return labels, [{c: r[c] for c in COLUMNS if c != "updated"} for r in rows]


def test_project_export_reads_the_readers_view(project, tmp_path):
    folder, key = project
    (ann,) = from_project(folder, reader="anna")
    labels, _ = _view(folder, key, "anna")
    assert np.array_equal(ann.labels, labels)
    assert sorted(np.unique(labels).tolist()) == [0, 1, 2, 4]
    assert [r["nodule_id"] for r in ann.rows] == [1, 2, 4]
    written = export_annotations(
        folder, tmp_path / "out", formats=["csv", "sr"], reader="anna", include_rejected=True
    )
    assert {p.name for p in written} == {"nodules.csv", "seg.dcm", "sr.dcm"}
    assert set(_leaks(tmp_path / "out")) == {f"{key}/seg.dcm", f"{key}/sr.dcm"}


def test_project_round_trip(project, result, tmp_path):
    folder, key = project
    export_annotations(
        folder, tmp_path / "out", formats=["sr"], reader="anna", include_rejected=True
    )
    files = sorted((tmp_path / "out" / key).glob("*.dcm"))
    fresh = tmp_path / "fresh"
    with Project.open(fresh) as p:
        assert p.add_result_dir(result) == key
    import_files(files, into=fresh)
    want_labels, want_rows = _view(folder, key, "anna")
    got_labels, got_rows = _view(fresh, key, "anna")
    assert np.array_equal(got_labels, want_labels)
    for got, want in zip(got_rows, want_rows, strict=True):
        if want["nodule_id"] == 4:
            # Added with a partial row by hand; imported, the project measures its
            # mask itself (one owner of a row): the same numbers, and the rest.
            for c, v in want.items():
                if isinstance(v, float):
                    assert got[c] == pytest.approx(v, abs=1e-3), c
                elif v is not None:
                    assert got[c] == v, c
            assert got["axis_1_mm"] is not None and got["centroid_x_mm"] is not None
            continue
        assert {c: v for c, v in got.items() if v != want[c]} == {}, want["nodule_id"]
    with Project.open(fresh, create=False) as p:
        actions = sorted(str(e.action) for e in p.events(key, reader="anna"))
    assert actions == sorted(
        ["accept", "set_subtype", "reject", "edit_mask", "add_nodule", "delete_nodule"]
    )
    # Nobody else's view changed.
    assert _view(fresh, key, "ben")[0].max() == 3


def test_project_import_needs_a_reader_for_a_seg_alone(project, tmp_path, capsys):
    folder, key = project
    export_annotations(
        folder, tmp_path / "out", formats=["seg"], reader="anna", include_rejected=True
    )
    seg = tmp_path / "out" / key / "seg.dcm"
    with pytest.raises(InputError, match="--reader"):
        import_files([seg], into=folder)
    assert main(["import", str(seg), "--into", str(folder), "--reader", "carl"]) == 0
    labels, _ = _view(folder, key, "carl")
    assert np.array_equal(labels, _view(folder, key, "anna")[0])


def test_project_whose_source_folder_is_gone(tmp_path):
    result = make_result(tmp_path / "own")
    folder = tmp_path / "project"
    with Project.open(folder) as p:
        key = p.add_result_dir(result)
        source = p.study(key).source
    shutil.rmtree(source)
    # Tables need no source; a SEG does, and says which folder is missing.
    assert export_annotations(folder, tmp_path / "a", formats=["csv", "nifti"])
    with pytest.raises(InputError, match="source folder is missing") as err:
        export_annotations(folder, tmp_path / "b", formats=["seg"])
    assert source in str(err.value)
