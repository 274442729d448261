"""A tiny cohort shared by the batch tests, and one reference batch run over it.

The cohort (about 3 s of analysis in all): two copies of the Dixon sample (one
in a folder whose name needs escaping), an ultrasound-only study (analysed as
ultrasound), a study whose pixel data cannot be decoded (error), a study holding
only a DICOM structured report (no usable stack), and one folder holding two
studies (Dixon and ultrasound) that is split by StudyInstanceUID.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import BasicTextSRStorage, ExplicitVRLittleEndian, JPEGBaseline8Bit, generate_uid

from backmice._names import safe_name
from backmice.cli import main
from tests.conftest import build_once

SAMPLES = Path(__file__).resolve().parents[2] / "sample_data"

#: Output names of the cohort's studies and their expected status.
EXPECTED = {
    "a": "ok",
    safe_name("b c"): "ok",  # escaped, with a hash of the original
    "broken": "error",
    safe_name("multi/dixon"): "ok",  # one folder, two StudyInstanceUIDs
    safe_name("multi/us"): "ok",  # ultrasound, no MR in its study: analysed as ultrasound
    "sr": "no_stack",  # a structured report and no image
    "us": "ok",
}


def undecodable_study(folder: Path) -> Path:
    """A one-slice T1 'study' whose JPEG pixel data is garbage (headers are fine)."""
    folder.mkdir(parents=True)
    src = sorted((SAMPLES / "t1_axial").glob("*/*.dcm"))[0]
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelData = encapsulate([b"\xff\xd8\xff\xe0 not a jpeg" + bytes(100)])
    ds["PixelData"].VR = "OB"
    ds.save_as(folder / "im.dcm", enforce_file_format=True)
    return folder


def sr_only_study(folder: Path) -> Path:
    """A study folder holding one DICOM Basic Text SR (a report, no image)."""
    folder.mkdir(parents=True)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = BasicTextSRStorage
    ds.SOPInstanceUID = generate_uid(entropy_srcs=["backmice batch test sr"])
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["backmice batch test sr study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["backmice batch test sr series"])
    ds.Modality = "SR"
    ds.PatientID = "sr"
    ds.SeriesDescription = "report"
    ds.ValueType = "CONTAINER"
    ds.ContinuityOfContent = "SEPARATE"
    ds.save_as(folder / "report.dcm", enforce_file_format=True)
    return folder


def uncalibrated_us_study(folder: Path) -> Path:
    """The ultrasound sample without its ultrasound regions: pixel size unknown."""
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(next((SAMPLES / "us").rglob("*.dcm")))
    del ds.SequenceOfUltrasoundRegions
    ds.save_as(folder / "us.dcm", enforce_file_format=True)
    return folder


def make_cohort(root: Path) -> Path:
    """Write the test cohort under ``root`` (see the module docstring)."""
    shutil.copytree(SAMPLES / "dixon", root / "a")
    shutil.copytree(SAMPLES / "dixon", root / "b c")
    shutil.copytree(SAMPLES / "us", root / "us")
    undecodable_study(root / "broken")
    shutil.copytree(SAMPLES / "dixon", root / "multi" / "dixon")
    shutil.copytree(SAMPLES / "us", root / "multi" / "us")
    sr_only_study(root / "sr")
    return root


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Path:
    """The cohort, written once per run (shared by the xdist workers: read it, do not change it)."""
    return build_once(tmp_path_factory, "batch-cohort", make_cohort)


def _reference_run(cohort: Path, out: Path):
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["batch", str(cohort), "--out", str(out), "--workers", "2", "--quiet"])
    return out, code, buffer.getvalue()


@pytest.fixture(scope="session")
def reference(cohort, tmp_path_factory):
    """``backmice batch --quiet`` over the cohort (process pool): (out, exit code, stdout).

    Run once per run and shared by the xdist workers: a test that resumes or
    changes it works on a copy of ``out``.
    """
    return build_once(tmp_path_factory, "batch-reference", lambda out: _reference_run(cohort, out))
