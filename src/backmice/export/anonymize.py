"""``--anonymize``: DICOM PS3.15 Basic Application Level Confidentiality Profile for SEG and SR.

The pseudonym of a patient is ``HMAC-SHA256(key, PatientID + "^" + PatientName)``
cut to 12 hex digits (``ANON-3F2A...``). Within one export the key is fixed, so
the same patient always gets the same pseudonym and two patients (almost
surely) different ones. The key is random for each export unless
``BACKMICE_ANON_KEY`` is set: then exports made with the same key can be
linked, and nobody without the key can go back from a pseudonym to a patient.

:meth:`Pseudonymizer.dataset` applies the Basic Profile's actions (PS3.15 Table
E.1-1) to every attribute a backmice SEG or SR holds: identifying text removed
(X) or emptied (Z), dates and times emptied, removed or set to a dummy where the
IOD requires a value (D), person names replaced by keyed pseudonyms, private
attributes removed, and every instance UID (study, series, SOP instance, frame
of reference, referenced instances, tracking UIDs) replaced (U) through one map,
so a SEG, its SR and their references to the source images stay consistent with
each other (and across exports made with the same key). The result records
PatientIdentityRemoved, DeidentificationMethod and
DeidentificationMethodCodeSequence (DCM 113100, Basic Application
Confidentiality Profile). The source images are not changed: to show an
anonymised SEG over its images, de-identify them with the same UID map.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import os
import secrets

from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

__all__ = [
    "DUMMY",
    "ENV_KEY",
    "PATIENT_ATTRIBUTES_CLEARED",
    "REMOVED",
    "UID_KEPT",
    "Pseudonymizer",
]

#: Environment variable holding a fixed pseudonymisation key (any text).
ENV_KEY = "BACKMICE_ANON_KEY"

#: Basic Profile action X (remove) for attributes a SEG or SR may carry over from
#: its source or from highdicom: identifying text, dates of other events, names.
REMOVED = (
    "PatientBirthTime",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "EthnicGroup",
    "Occupation",
    "AdditionalPatientHistory",
    "PatientComments",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "MedicalRecordLocator",
    "IssuerOfPatientID",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "StudyDescription",
    "PhysiciansOfRecord",
    "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy",
    "OperatorsName",
    "RequestingPhysician",
    "ReasonForStudy",
    "AdmittingDiagnosesDescription",
    "RequestAttributesSequence",
    "ReferencedPatientSequence",
    "ImageComments",
    "ProtocolName",
    "PerformedProcedureStepDescription",
    "PerformedProcedureStepID",
    "RequestedProcedureDescription",
    "TimezoneOffsetFromUTC",
)
#: Identifying attributes emptied or removed from SEG and SR files (kept for the API).
PATIENT_ATTRIBUTES_CLEARED = REMOVED
#: Type 2 attributes (present, may be empty): action Z.
_EMPTIED = (
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)
#: Dummy values (action D) for dates and times a SEG or SR must have (type 1).
DUMMY = {"DA": "19000101", "TM": "000000", "DT": "19000101000000"}
#: Type 1 dates and times at the top level of a SEG or SR (ContentDate, ContentTime).
_TYPE1_DATES = {"ContentDate", "ContentTime"}
#: UIDs never replaced: what they name is a kind of thing, not a patient's instance.
UID_KEPT = {
    "SOPClassUID",
    "ReferencedSOPClassUID",
    "MediaStorageSOPClassUID",
    "TransferSyntaxUID",
    "ImplementationClassUID",
    "CodingSchemeUID",
    "ContextUID",
    "MappingResourceUID",
    "ReferencedSOPClassUIDInFile",
    "ReferencedTransferSyntaxUIDInFile",
    "SOPClassesInStudy",
    "PrivateInformationCreatorUID",
}
#: Root of registered DICOM UIDs (classes, syntaxes, coding schemes): never replaced.
_DICOM_ROOT = "1.2.840.10008."

#: The Basic Profile in DeidentificationMethodCodeSequence (PS3.16 CID 7050).
BASIC_PROFILE = ("113100", "DCM", "Basic Application Confidentiality Profile")


class Pseudonymizer:
    """Consistent pseudonyms for patients, study names, people and UIDs within one export.

    Parameters
    ----------
    key : bytes or str, optional
        Secret key of the hash; default ``$BACKMICE_ANON_KEY``, else random.
    """

    def __init__(self, key: bytes | str | None = None) -> None:
        if key is None:
            key = os.environ.get(ENV_KEY) or secrets.token_bytes(32)
        self._key = key.encode("utf-8") if isinstance(key, str) else bytes(key)
        self._uids: dict[str, str] = {}

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest().upper()

    def patient(self, patient_id: object, patient_name: object) -> str:
        """Pseudonym of a patient (``ANON-`` and 12 hex digits)."""
        return "ANON-" + self._digest(f"{patient_id or ''}^{patient_name or ''}")[:12]

    def study(self, study: str) -> str:
        """Pseudonym of a study name (its folder name may hold the patient's name)."""
        return "study-" + self._digest("study:" + study)[:12].lower()

    def person(self, name: object) -> str:
        """Pseudonym of a person other than the patient (a reader, an operator)."""
        return "" if not str(name or "") else "PERSON-" + self._digest(f"person:{name}")[:8]

    def uid(self, uid: str) -> str:
        """The replacement of an instance UID: ``2.25.<integer>`` from the keyed hash.

        The same UID always maps to the same replacement under one key (so a SEG,
        its SR and their source references agree); a replacement is never
        replaced again.
        """
        uid = str(uid).strip()
        if not uid or uid.startswith(_DICOM_ROOT) or uid in self._uids.values():
            return uid
        if uid not in self._uids:
            self._uids[uid] = "2.25." + str(int(self._digest("uid:" + uid)[:30], 16))
        return self._uids[uid]

    @property
    def uid_map(self) -> dict[str, str]:
        """Every UID replaced so far: original -> replacement (to de-identify the sources)."""
        return dict(self._uids)

    def dataset(self, ds: Dataset) -> Dataset:
        """Apply the Basic Profile to a SEG/SR dataset in place (and return it).

        PatientName and PatientID become the patient's pseudonym; the attributes
        of :data:`REMOVED` and private attributes are removed; type 2 patient and
        study attributes are emptied; ContentDate/Time get dummy values, other
        dates and times are removed at the top level and set to dummies inside
        sequences; other person names become keyed pseudonyms; instance UIDs are
        replaced through :meth:`uid` everywhere (file meta and sequences too).
        Top-level elements are replaced by changed copies, never changed in place:
        highdicom shares element objects between a SEG/SR and its sources.
        """
        pseudonym = self.patient(ds.get("PatientID", ""), ds.get("PatientName", ""))
        work = Dataset()
        for elem in ds:
            work.add(copy.deepcopy(elem))
        work.remove_private_tags()
        for name in REMOVED:
            if name in work:
                del work[name]
        self._walk(work, top=True)
        for tag in list(ds.keys()):
            if tag not in work:
                del ds[tag]
        for elem in work:
            ds[elem.tag] = elem
        ds.PatientName = pseudonym
        ds.PatientID = pseudonym
        for name in _EMPTIED:
            setattr(ds, name, "")
        for name in _TYPE1_DATES:
            if name in ds:
                setattr(ds, name, DUMMY[ds[name].VR])
        meta = getattr(ds, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.uid(meta.MediaStorageSOPInstanceUID)
        ds.PatientIdentityRemoved = "YES"
        ds.LongitudinalTemporalInformationModified = "REMOVED"
        ds.DeidentificationMethod = (
            "backmice --anonymize: DICOM PS3.15 Basic Application Level Confidentiality "
            "Profile, keyed-hash patient pseudonym and UIDs"
        )[:64]
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = BASIC_PROFILE
        ds.DeidentificationMethodCodeSequence = [code]
        return ds

    def _walk(self, ds: Dataset, *, top: bool) -> None:
        """Replace UIDs, person names and dates in ``ds`` and its sequences (in place)."""
        for elem in list(ds):
            keyword = elem.keyword
            if elem.VR == "SQ":  # a deep copy already (dataset): changed in place
                for item in elem.value:
                    self._walk(item, top=False)
            elif elem.VR == "UI" and keyword not in UID_KEPT and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                new = [self.uid(v) for v in values]
                ds[elem.tag] = DataElement(elem.tag, "UI", new if elem.VM > 1 else new[0])
            elif elem.VR == "PN" and keyword not in ("PatientName",) and elem.value:
                values = elem.value if elem.VM > 1 else [elem.value]
                new = [self.person(v) for v in values]
                ds[elem.tag] = DataElement(elem.tag, "PN", new if elem.VM > 1 else new[0])
            elif elem.VR in DUMMY and keyword not in _EMPTIED and keyword not in _TYPE1_DATES:
                if top:
                    del ds[elem.tag]
                elif elem.value:
                    ds[elem.tag] = DataElement(elem.tag, elem.VR, DUMMY[elem.VR])
