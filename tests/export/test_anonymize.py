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


def test_basic_profile_replaces_uids_dates_and_names_consistently(result, tmp_path):
    """PS3.15 Basic Profile: no source UID, date, institution or description is left."""
    from backmice.export import from_result

    export_annotations(
        result, tmp_path, formats=["seg", "sr"], anonymize=True, key="k", include_rejected=True
    )
    source = pydicom.dcmread(from_result(result).source_paths[0], stop_before_pixels=True)
    originals = {
        str(source.StudyInstanceUID),
        str(source.SeriesInstanceUID),
        str(source.SOPInstanceUID),
        str(source.FrameOfReferenceUID),
    }
    seg = pydicom.dcmread(next(tmp_path.rglob("seg.dcm")))
    srs = [pydicom.dcmread(p) for p in sorted(tmp_path.rglob("sr*.dcm"))]
    for ds in (seg, *srs):
        data = ds.to_json()  # every element, sequences included
        assert not any(uid in data for uid in originals), ds.SOPClassUID
        assert ds.StudyDate == "" and ds.StudyTime == "" and ds.StudyID == ""
        assert ds.ContentDate == "19000101"
        for name in ("InstitutionName", "StudyDescription", "SeriesDate", "PatientAge"):
            assert name not in ds
        [code] = ds.DeidentificationMethodCodeSequence
        assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    # One map for all: the SEG, its SRs and their references agree.
    assert {ds.StudyInstanceUID for ds in (seg, *srs)} == {seg.StudyInstanceUID}
    assert len({ds.FrameOfReferenceUID for ds in (seg,)}) == 1
    for sr in srs:
        refs = [
            str(item.ReferencedSOPInstanceUID)
            for study in sr.CurrentRequestedProcedureEvidenceSequence
            for series in study.ReferencedSeriesSequence
            for item in series.ReferencedSOPSequence
        ]
        assert seg.SOPInstanceUID in refs
        assert (
            seg.StudyInstanceUID == sr.CurrentRequestedProcedureEvidenceSequence[0].StudyInstanceUID
        )
    seg_tracking = {str(s.TrackingUID) for s in seg.SegmentSequence}
    sr_tracking = {uid for sr in srs for uid in _values(sr, "UID")}
    assert seg_tracking <= sr_tracking  # the SRs name the same (replaced) tracking UIDs


def _values(ds, keyword: str) -> list[str]:
    """Every value of ``keyword`` in ``ds`` and its sequences."""
    out = []
    for elem in ds:
        if elem.VR == "SQ":
            for item in elem.value:
                out.extend(_values(item, keyword))
        elif elem.keyword == keyword:
            out.append(str(elem.value))
    return out
