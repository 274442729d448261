"""No patient name, ID or birth date in what `backmice analyze` writes (issue 9)."""

from __future__ import annotations

import pytest

from tests.conftest import PATIENT

NAME, PATIENT_ID, BIRTH = PATIENT


@pytest.fixture
def written(t1_cli_result):
    """The T1 sample with a distinctive patient, analysed by the command line.

    The run is shared with the command line's tests (``tests/conftest.py``).
    """
    return t1_cli_result


def test_every_output_file_is_free_of_patient_identifiers(written):
    files = sorted(p for p in written.rglob("*") if p.is_file())
    assert {p.name for p in files} >= {
        "nodules.csv",
        "nodules.json",
        "labels.nii.gz",
        "fascia.nii.gz",
        "qc.png",
    }
    needles = [s.encode() for s in (NAME, *NAME.split("^"), PATIENT_ID, BIRTH)]
    for path in files:
        data = path.read_bytes()
        if path.suffix == ".gz":
            import gzip

            data = gzip.decompress(data)
        for needle in needles:
            assert needle not in data, f"{needle!r} in {path.name}"
