"""Pseudonyms for ``--anonymize``: a keyed hash of the patient, the same within an export.

The pseudonym of a patient is ``HMAC-SHA256(key, PatientID + "^" + PatientName)``
cut to 12 hex digits (``ANON-3F2A...``). Within one export the key is fixed, so
the same patient always gets the same pseudonym and two patients (almost
surely) different ones. The key is random for each export unless
``BACKMICE_ANON_KEY`` is set: then exports made with the same key can be
linked, and nobody without the key can go back from a pseudonym to a patient.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets

from pydicom.dataset import Dataset

__all__ = ["ENV_KEY", "PATIENT_ATTRIBUTES_CLEARED", "Pseudonymizer"]

#: Environment variable holding a fixed pseudonymisation key (any text).
ENV_KEY = "BACKMICE_ANON_KEY"

#: Identifying attributes emptied or removed from SEG and SR files.
PATIENT_ATTRIBUTES_CLEARED = (
    "PatientBirthDate",
    "PatientBirthTime",
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientMotherBirthName",
    "IssuerOfPatientID",
    "AccessionNumber",
    "ReferringPhysicianName",
    "InstitutionName",
    "InstitutionAddress",
)

#: Type 2 attributes (present, may be empty) among those cleared.
_TYPE2 = {"PatientBirthDate", "AccessionNumber", "ReferringPhysicianName"}


class Pseudonymizer:
    """Consistent pseudonyms for patients and study names within one export.

    Parameters
    ----------
    key : bytes or str, optional
        Secret key of the hash; default ``$BACKMICE_ANON_KEY``, else random.
    """

    def __init__(self, key: bytes | str | None = None) -> None:
        if key is None:
            key = os.environ.get(ENV_KEY) or secrets.token_bytes(32)
        self._key = key.encode("utf-8") if isinstance(key, str) else bytes(key)

    def _digest(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest().upper()

    def patient(self, patient_id: object, patient_name: object) -> str:
        """Pseudonym of a patient (``ANON-`` and 12 hex digits)."""
        return "ANON-" + self._digest(f"{patient_id or ''}^{patient_name or ''}")[:12]

    def study(self, study: str) -> str:
        """Pseudonym of a study name (its folder name may hold the patient's name)."""
        return "study-" + self._digest("study:" + study)[:12].lower()

    def dataset(self, ds: Dataset) -> Dataset:
        """Pseudonymise a SEG/SR dataset's patient module in place (and return it).

        PatientName and PatientID become the patient's pseudonym, PatientBirthDate
        is emptied, the attributes of :data:`PATIENT_ATTRIBUTES_CLEARED` are
        emptied or removed, and PatientIdentityRemoved / DeidentificationMethod
        say so. UIDs are kept: a SEG must reference its source instances.
        """
        pseudonym = self.patient(ds.get("PatientID", ""), ds.get("PatientName", ""))
        # Elements are replaced, never changed in place: highdicom shares element
        # objects between a SEG/SR and its source datasets.
        for name in (*PATIENT_ATTRIBUTES_CLEARED, "PatientName", "PatientID"):
            if name in ds:
                delattr(ds, name)
        ds.PatientName = pseudonym
        ds.PatientID = pseudonym
        for name in _TYPE2:
            setattr(ds, name, "")
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = "backmice --anonymize: keyed-hash patient pseudonym"
        return ds
