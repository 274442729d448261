"""Every sample is written, and the loader reads it back with the geometry it was written with."""

from __future__ import annotations

import filecmp

import numpy as np
import pydicom
import pytest

import backmice
from backmice import Role
from backmice.errors import InputError
from backmice.phantom import SAMPLES, get_sample, read_truth, write_sample

_ROLE = {
    "t1": Role.T1,
    "t2_fatsat": Role.FATSAT,
    "dixon_fat": Role.DIXON_FAT,
    "dixon_water": Role.DIXON_WATER,
    "dixon_in": Role.DIXON_IN,
    "dixon_out": Role.DIXON_OUT,
}


#: Samples whose rendering takes seconds: in the full run only (``-m "not slow"`` skips them).
LARGE = {"t1_redflag", "mr_full", "t1_oblique_iso", "t1_wide", "dixon_wide", "us_cine"}


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in LARGE else n for n in SAMPLES]
)
def test_loader_reads_every_sample_with_its_geometry(written, name):
    study = written(name)
    truth = read_truth(study.path)
    assert truth == study.truth
    assert truth["sample"] == name and truth["seed"] == 0
    opened = backmice.open_study(study.path)
    assert [s.path.name for s in opened.skipped] == ["truth.json"]
    by_uid = {s.series_uid: s for s in opened.stacks}
    assert len(by_uid) == len(truth["series"])
    for entry in truth["series"]:
        stack = by_uid[entry["series_uid"]]
        vol = backmice.load(stack)
        if entry["modality"] == "US":
            assert stack.role is Role.US
            assert vol.shape[0] == entry["frames"]
            continue
        assert stack.role is _ROLE[entry["contrast"]]
        assert list(vol.shape) == entry["shape"]
        assert vol.spacing_mm == pytest.approx(tuple(entry["spacing_mm"]), abs=1e-4)
        np.testing.assert_allclose(vol.affine, entry["affine"], atol=1e-4)
        assert vol.array.min() >= -0.5 and 300 < vol.array.max() < 1400
        # Every lesion of the field of view has its largest section on a slice of this series.
        for lesion in truth["lesions"]:
            sec = lesion["sections"].get(entry["series_uid"])
            if sec is not None:
                assert 0 <= sec["slice_index"] < entry["shape"][0]


@pytest.mark.slow  # renders t1_oblique_iso, one of the LARGE samples
def test_the_oblique_sample_is_oblique_and_rescaled(written):
    study = written("t1_oblique_iso")
    (stack,) = backmice.open_study(study.path).stacks
    assert stack.orientation == "oblique"
    ds = pydicom.dcmread(stack.paths[0])
    assert float(ds.RescaleSlope) == pytest.approx(0.35)
    assert float(ds.RescaleIntercept) == pytest.approx(-50.0)
    sections = [les["sections"] for les in study.truth["lesions"]]
    assert all(len(s) == 1 for s in sections)  # every lesion lies in the oblique volume


def test_shuffled_sample_loads_identically(written):
    plain, shuffled = written("t1_axial"), written("t1_axial", shuffle=True)
    names = sorted(p.name for p in shuffled.files)
    assert all(n.startswith("IM_") for n in names)
    a = backmice.load(backmice.open_study(plain.path).stacks[0])
    b = backmice.load(backmice.open_study(shuffled.path).stacks[0])
    np.testing.assert_array_equal(a.array, b.array)
    np.testing.assert_allclose(a.affine, b.affine)
    numbers = [
        int(pydicom.dcmread(p, stop_before_pixels=True).InstanceNumber) for p in shuffled.files
    ]
    assert numbers != sorted(numbers) and numbers != sorted(numbers, reverse=True)


@pytest.mark.slow  # renders mr_full, one of the LARGE samples
def test_one_study_shares_uids_and_frame_of_reference(written):
    study = written("mr_full")
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in study.files]
    assert len({h.StudyInstanceUID for h in headers}) == 1
    assert len({h.SeriesInstanceUID for h in headers}) == 7
    assert {h.FrameOfReferenceUID for h in headers if h.Modality == "MR"} == {
        study.truth["frame_of_reference_uid"]
    }
    assert len({h.SOPInstanceUID for h in headers}) == len(headers)


def test_samples_are_deterministic(written, tmp_path):
    first = written("dixon")
    again = write_sample("dixon", tmp_path / "again", seed=0)
    for a, b in zip(first.files, again.files, strict=True):
        assert a.relative_to(first.path) == b.relative_to(again.path)
        assert filecmp.cmp(a, b, shallow=False)
    assert first.truth == again.truth


def test_unknown_sample_is_bad_input():
    with pytest.raises(InputError, match="no sample called"):
        get_sample("t3_axial")
