"""--anonymize, and no patient name, ID or birth date in tables in any mode."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from backmice.export import Pseudonymizer, export_annotations

from .conftest import BIRTH_DATE, PATIENT_ID, PATIENT_NAME, SECRETS, make_result

ALL = ["csv", "json", "nifti", "sr"]


def _leaks(out: Path) -> dict[str, list[str]]:
    """Each output file (and path) that holds one of the patient's identifiers, and which."""
    found = {}
    for path in out.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        name = str(path.relative_to(out))
        hits = [s for s in SECRETS if s.encode() in data or s in name]
        if hits:
            found[name] = hits
    return found


@pytest.fixture(scope="module")
def named_after_patient(tmp_path_factory) -> Path:
    """A result whose study folder is named after the patient (as PACS exports often are)."""
    return make_result(tmp_path_factory.mktemp("named"), study="Doe^Jane")


def test_without_anonymize_only_dicom_carries_the_patient(result, tmp_path):
    export_annotations(result, tmp_path, formats=ALL)
    leaks = _leaks(tmp_path)
    # SEG and SR legitimately carry the patient module; tables and NIfTI never do.
    assert set(leaks) == {"case01/seg.dcm", "case01/sr-anna.dcm", "case01/sr-backmice.dcm"}
    seg = pydicom.dcmread(tmp_path / "case01" / "seg.dcm")
    assert (str(seg.PatientName), seg.PatientID, seg.PatientBirthDate) == (
        PATIENT_NAME,
        PATIENT_ID,
        BIRTH_DATE,
    )


def test_anonymize_leaves_no_identifier_anywhere(named_after_patient, tmp_path):
    written = export_annotations(named_after_patient, tmp_path, formats=ALL, anonymize=True)
    assert len(written) == 6
    assert _leaks(tmp_path) == {}
    folders = {p.parent.name for p in written if p.parent != tmp_path}
    assert len(folders) == 1 and folders.pop().startswith("study-")


def test_pseudonym_is_consistent_within_an_export_and_with_a_key(result, tmp_path):
    export_annotations(result, tmp_path / "a", formats=["sr"], anonymize=True, key="k1")
    files = sorted((tmp_path / "a").rglob("*.dcm"))
    assert len(files) == 3
    docs = [pydicom.dcmread(f) for f in files]
    pseudonyms = {(str(d.PatientName), d.PatientID) for d in docs}
    assert len(pseudonyms) == 1
    name, pid = pseudonyms.pop()
    assert name == pid == Pseudonymizer("k1").patient(PATIENT_ID, PATIENT_NAME)
    assert name.startswith("ANON-")
    for d in docs:
        assert d.PatientBirthDate == ""
        assert d.PatientIdentityRemoved == "YES"
        assert "PatientBirthTime" not in d
    # The SR still references the SEG and its source by UID.
    assert docs[0].StudyInstanceUID == docs[1].StudyInstanceUID
    # Another export with the same key: the same pseudonym; another key: another.
    export_annotations(result, tmp_path / "b", formats=["seg"], anonymize=True, key="k1")
    export_annotations(result, tmp_path / "c", formats=["seg"], anonymize=True, key="k2")
    b, c = (pydicom.dcmread(next((tmp_path / x).rglob("seg.dcm"))) for x in "bc")
    assert b.PatientID == pid and c.PatientID != pid


def test_the_key_can_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("BACKMICE_ANON_KEY", "site-secret")
    assert Pseudonymizer().patient("1", "A^B") == Pseudonymizer("site-secret").patient("1", "A^B")
    monkeypatch.delenv("BACKMICE_ANON_KEY")
    assert Pseudonymizer().patient("1", "A^B") != Pseudonymizer().patient("1", "A^B")
    p = Pseudonymizer("k")
    assert p.patient("1", "A^B") != p.patient("2", "A^B")
