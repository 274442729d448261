"""Nodules drawn into a study (``backmice.phantom.insert``): truth against pixels, untouched
pixels, geometry tags, and ``backmice sample insert`` with its errors.

The "real" study here is a phantom sample written by backmice's own writer; its
own lesions do not matter (the inserted truth lists only the drawn nodules).
"""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

from backmice.analysis import AnalysisOptions, analyze, choose
from backmice.cli import EXIT_BAD_INPUT, EXIT_OK, main
from backmice.io import load, open_study
from backmice.phantom.insert import CAPSULE_MM, SIZE_MM, anatomy_of, insert_nodules
from backmice.vocab import Relation

GEOMETRY_TAGS = (
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "PixelSpacing",
    "SliceThickness",
    "Rows",
    "Columns",
    "FrameOfReferenceUID",
    "RescaleSlope",
    "RescaleIntercept",
)


@pytest.fixture(scope="module")
def dixon(written):
    """The Dixon sample, its analysis, and 3 nodules drawn into it (seed 4)."""
    source = written("dixon")
    analysis = analyze(source.path)
    out = source.path.parent / "dixon_inserted"
    result = insert_nodules(source.path, out, seed=4, count=3, analysis=analysis)
    return source, analysis, result


def _arrays(path):
    choice = choose(open_study(path))
    return [load(s).array for s in choice.stacks], choice


def test_truth_lists_the_drawn_nodules(dixon):
    _, _, result = dixon
    truth = json.loads(result.truth_path.read_text())
    assert truth == result.truth
    assert truth["generator"] == "backmice.phantom.insert" and truth["seed"] == 4
    assert [les["id"] for les in truth["lesions"]] == ["N1", "N2", "N3"]
    uids = {s["series_uid"] for s in truth["series"]}
    assert len(truth["series"]) == 2 and {s["role"] for s in truth["series"]} == {
        "dixon_fat",
        "dixon_water",
    }
    for les in truth["lesions"]:
        assert les["kind"] == "encapsulated_fat_nodule"
        assert SIZE_MM[0] - 1e-6 <= les["max_diameter_mm"] <= SIZE_MM[1] + 1e-6
        assert CAPSULE_MM[0] <= les["wall_mm"] <= CAPSULE_MM[1]
        assert les["intended_relation"] in {str(r) for r in Relation}
        assert set(les["sections"]) == uids  # per-series sections, as the phantom's
        assert les["skin_depth_mm"] >= 3.0 - 0.2  # below the dermis
        if les["intended_relation"] == "subcutaneous":
            assert les["relation"] == "subcutaneous"


def test_truth_geometry_matches_the_painted_voxels(dixon):
    """Centroid and volume of the core shares painted equal the truth's."""
    _, analysis, result = dixon
    share = result.painted.core_share
    affine = np.asarray(analysis.volume.affine)
    voxel = abs(np.linalg.det(affine[:3, :3]))
    index = np.argwhere(share > 0)
    points = index @ affine[:3, :3].T + affine[:3, 3]
    centres = np.array([les["centroid_lps_mm"] for les in result.truth["lesions"]])
    nearest = np.argmin(np.linalg.norm(points[:, None] - centres[None], axis=2), axis=1)
    w = share[tuple(index.T)]
    for j, les in enumerate(result.truth["lesions"]):
        mine = nearest == j
        volume = w[mine].sum() * voxel
        centroid = (points[mine] * w[mine, None]).sum(axis=0) / w[mine].sum()
        assert volume == pytest.approx(les["core_volume_mm3"], rel=0.03)
        assert np.linalg.norm(centroid - les["centroid_lps_mm"]) < 0.3
        extent = np.ptp(points[mine & (w > 0.999)], axis=0).max()
        assert extent <= les["max_diameter_mm"] + 1e-6


def test_only_the_nodules_change_and_the_core_is_the_subjects_fat(dixon):
    source, analysis, result = dixon
    before, _ = _arrays(source.path)
    after, choice = _arrays(result.path)
    assert [s.role for s in choice.stacks] == ["dixon_fat", "dixon_water"]
    touched = (result.painted.core_share > 0) | (result.painted.capsule_share > 0)
    for b, a in zip(before, after, strict=True):
        assert np.array_equal(a[~touched], b[~touched])  # exactly, as stored
        assert not np.array_equal(a[touched], b[touched])
    fat_b, water_b = before
    fat_a, water_a = after
    core = result.painted.core_share > 0.999
    sat = analysis.subcutaneous & analysis.fat.mask
    fraction = fat_a / np.maximum(fat_a + water_a, 1e-6)
    assert np.median(fraction[core]) == pytest.approx(
        np.median((fat_b / np.maximum(fat_b + water_b, 1e-6))[sat]), abs=0.05
    )
    # The capsule is dark on the fat image where it is most of a voxel.
    capsule = result.painted.capsule_share > 0.6
    if capsule.any():
        assert np.median(fat_a[capsule]) < 0.7 * np.median(fat_b[sat])


def test_geometry_tags_kept_and_uids_new(dixon):
    source, _, result = dixon
    by_name = {p.name: p for p in source.path.rglob("*.dcm")}
    study_uids = set()
    for path in result.files:
        new = pydicom.dcmread(path)
        old = pydicom.dcmread(by_name[path.name])
        for tag in GEOMETRY_TAGS:
            assert new.get(tag) == old.get(tag), (path.name, tag)
        for tag in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID"):
            assert new.get(tag) != old.get(tag)
        assert new.file_meta.MediaStorageSOPInstanceUID == new.SOPInstanceUID
        assert new.SeriesDescription == old.SeriesDescription
        study_uids.add(new.StudyInstanceUID)
    assert len(study_uids) == 1 and study_uids == {result.truth["study_uid"]}


def test_same_seed_same_nodules(dixon, tmp_path):
    source, analysis, result = dixon
    again = insert_nodules(source.path, tmp_path / "again", seed=4, count=3, analysis=analysis)
    assert again.truth["lesions"] == result.truth["lesions"]
    other = insert_nodules(source.path, tmp_path / "other", seed=5, count=1, analysis=analysis)
    assert (
        other.truth["lesions"][0]["centroid_lps_mm"]
        != result.truth["lesions"][0]["centroid_lps_mm"]
    )


def test_kinds_are_placed_by_the_fascia(dixon):
    """Drawn only of one kind, each lands on its side of the analysis' fascia."""
    from backmice.phantom.insert import draw_nodules

    _, analysis, _ = dixon
    anat = anatomy_of(analysis)
    for kind in Relation:
        nodules = draw_nodules(anat, count=2, seed=11, kinds=(kind,))
        for n in nodules:
            samples = n.lesion.core.surface_points(2000)
            d = anat.sample(anat.fascia_mm, samples)
            assert Relation.from_extent(float(d.min()), float(d.max())) is kind


def test_t1_study(written, tmp_path):
    """A T1 study: one series written, pixels outside the nodules unchanged."""
    source = written("t1_axial")
    anatomy = analyze(source.path, options=AnalysisOptions(n4=False))  # anatomy enough
    result = insert_nodules(source.path, tmp_path / "t1", seed=2, count=2, analysis=anatomy)
    assert len(result.truth["series"]) == 1 and result.truth["series"][0]["role"] == "t1"
    (b,), _ = _arrays(source.path)
    (a,), _ = _arrays(result.path)
    touched = (result.painted.core_share > 0) | (result.painted.capsule_share > 0)
    assert np.array_equal(a[~touched], b[~touched])
    assert len(result.files) == len(list(source.path.rglob("*.dcm")))


def test_cli_insert(written, tmp_path, capsys):
    source = written("dixon")
    out = tmp_path / "cli"
    code = main(["sample", "insert", str(source.path), "--out", str(out), "--seed", "1"])
    assert code == EXIT_OK
    truth = json.loads((out / "truth.json").read_text())
    assert len(truth["lesions"]) == 3 and truth["seed"] == 1
    assert "3 nodules" in capsys.readouterr().out


def test_cli_insert_bad_input(written, tmp_path, capsys):
    source = written("dixon")

    def run(*args: str) -> str:
        assert main(["sample", "insert", *args]) == EXIT_BAD_INPUT
        return capsys.readouterr().err

    assert "no such file" in run(str(tmp_path / "missing"), "--out", str(tmp_path / "a"))
    assert "which real study" in run("--out", str(tmp_path / "a"))
    assert "say where" in run(str(source.path))
    assert "--count must be 1 or more" in run(
        str(source.path), "--out", str(tmp_path / "a"), "--count", "0"
    )
    assert "inside the study" in run(str(source.path), "--out", str(source.path / "x"))
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "f").write_text("x")
    assert "not empty" in run(str(source.path), "--out", str(busy))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not dicom")
    assert "no T1 stack" in run(str(empty), "--out", str(tmp_path / "b"))
    assert main(["sample", "dixon", str(source.path), "--out", str(tmp_path / "c")]) == 2
    assert "only 'backmice sample insert STUDY'" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


@pytest.mark.parametrize(
    ("enhanced", "syntax"),
    [
        (True, "1.2.840.10008.1.2.5"),
        (False, "1.2.840.10008.1.2.2"),
        (False, "1.2.840.10008.1.2.4.90"),
    ],
    ids=["enhanced-rle", "big-endian", "jpeg2000-lossless"],
)
def test_files_copied_with_new_pixels(tmp_path, enhanced, syntax):
    """Enhanced multi-frame, big-endian and compressed sources: the painted voxels are
    written (with the rescale undone), the others kept, uncompressed little endian out."""
    from backmice.io.writer import make_affine, write_series
    from backmice.phantom.insert import _write_files

    rng = np.random.default_rng(0)
    image = rng.integers(100, 900, size=(4, 40, 48)).astype(np.float32) * 0.5 - 10.0
    affine = make_affine((3.0, 0.8, 0.8), origin=(-20.0, 10.0, 5.0))
    write_series(
        image,
        tmp_path / "src",
        affine=affine,
        rescale_slope=0.5,
        rescale_intercept=-10.0,
        enhanced=enhanced,
        transfer_syntax=syntax,
    )
    (stack,) = open_study(tmp_path / "src").stacks
    before = load(stack).array
    assert np.array_equal(before, image)
    after = before.copy()
    after[1:3, 10:20, 12:30] = 123.5
    files, series_map, _, folders = _write_files(
        [stack], [after], [before], tmp_path / "out", seed=3, count=1, overwrite=False
    )
    (written,) = open_study(tmp_path / "out").stacks
    assert written.series_uid == series_map[stack.series_uid]
    assert np.array_equal(written.affine, stack.affine)
    assert np.array_equal(load(written).array, after)
    for path in files:
        ds = pydicom.dcmread(path)
        assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
        assert path.parent.name == folders[0]
