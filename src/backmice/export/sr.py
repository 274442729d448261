"""Comprehensive 3D SR (TID 1500) of the nodules: :func:`build_sr` writes, :func:`read_sr` reads.

One measurement group (TID 1411, volumetric ROI) per nodule, referencing its
segment of the SEG, followed by a TID 1501 group ``nodule N axes`` holding the
long and short axes, each inferred from a SCOORD polyline (two points, in
pixels) on the source image of the slice they were measured on, so viewers
draw them as calipers. An ultrasound nodule is a planar ROI (TID 1410) on the
measured frame, referencing its segment's frame, with the area, and the long
and short axes inferred from SCOORD polylines (two points each, in pixels of
the stored frame) on the source image. The codes are listed in ``docs/export.md``: standard
SNOMED CT concepts where one means exactly the SPEC column (volume, long and
short axis, maximum diameter, finding site, laterality), and the private
coding scheme ``99BACKMICE`` for the rest (fascia distances, skin depth,
moment-ellipsoid axes, centroid, subtype, status, relation, red flags), whose
code meanings are the SPEC column and vocabulary names.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

import highdicom as hd
import pydicom
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from backmice import __version__
from backmice.errors import InputError
from backmice.export.anonymize import Pseudonymizer
from backmice.export.seg import anatomic_region, finding_type, person_name, tracking_uid
from backmice.export.source import Annotations, SourceSeries
from backmice.vocab import RedFlag, Relation, Side, Status, Subtype

__all__ = [
    "CRITERION_MEASUREMENTS",
    "CRITERION_NAMES",
    "MEASUREMENTS",
    "PRIVATE_SCHEME",
    "SRNodule",
    "build_sr",
    "finding_site",
    "read_sr",
]

log = logging.getLogger(__name__)

PRIVATE_SCHEME = "99BACKMICE"


def _private(value: str, meaning: str) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept(value=value, scheme_designator=PRIVATE_SCHEME, meaning=meaning)


def _std(code: Code | hd.sr.CodedConcept) -> hd.sr.CodedConcept:
    return hd.sr.CodedConcept.from_code(code)


MM = _std(codes.UCUM.Millimeter)
MM3 = _std(codes.UCUM.CubicMillimeter)
MM2 = _std(codes.UCUM.SquareMillimeter)
RATIO = _std(codes.UCUM.Ratio)
MAXIMUM = _std(codes.SCT.Maximum)

#: SPEC column, concept name, derivation (or None), UCUM unit.
MEASUREMENTS: tuple[
    tuple[str, hd.sr.CodedConcept, hd.sr.CodedConcept | None, hd.sr.CodedConcept], ...
] = (
    ("volume_mm3", _std(codes.SCT.Volume), None, MM3),
    ("max_diameter_mm", _std(codes.SCT.Diameter), MAXIMUM, MM),
    ("long_axis_mm", _std(codes.SCT.LongAxis), None, MM),
    ("short_axis_mm", _std(codes.SCT.ShortAxis), None, MM),
    ("axis_1_mm", _private("BM-AXIS-1", "Moment ellipsoid axis 1 (largest)"), None, MM),
    ("axis_2_mm", _private("BM-AXIS-2", "Moment ellipsoid axis 2"), None, MM),
    ("axis_3_mm", _private("BM-AXIS-3", "Moment ellipsoid axis 3 (smallest)"), None, MM),
    (
        "fascia_offset_mm",
        _private("BM-FASCIA-OFFSET", "Signed fascia distance of centroid"),
        None,
        MM,
    ),
    ("fascia_min_mm", _private("BM-FASCIA-MIN", "Smallest signed fascia distance"), None, MM),
    ("fascia_max_mm", _private("BM-FASCIA-MAX", "Largest signed fascia distance"), None, MM),
    ("skin_depth_mm", _private("BM-SKIN-DEPTH", "Distance from skin surface"), None, MM),
    ("midline_distance_mm", _private("BM-MIDLINE", "Distance to midsagittal plane"), None, MM),
    ("centroid_x_mm", _private("BM-CENTROID-X", "Centroid x (LPS)"), None, MM),
    ("centroid_y_mm", _private("BM-CENTROID-Y", "Centroid y (LPS)"), None, MM),
    ("centroid_z_mm", _private("BM-CENTROID-Z", "Centroid z (LPS)"), None, MM),
    ("fat_fraction", _private("BM-FAT-FRACTION", "Median Dixon fat fraction"), None, RATIO),
    ("fat_signal_ratio", _private("BM-FAT-SIGNAL", "Signal over subcutaneous fat"), None, RATIO),
)

#: Ultrasound only (an extra column of ``backmice.ultrasound.EXTRA_COLUMNS``).
AREA = ("area_mm2", _std(codes.SCT.Area), None, MM2)
#: LOINC 25061-3: the procedure of an ultrasound report.
US_PROCEDURE = hd.sr.CodedConcept(
    value="25061-3", scheme_designator="LN", meaning="US Unspecified body region"
)
#: The measurements drawn as SCOORD polylines on an ultrasound frame.
_AXES = {"long_axis_mm": "long_axis_ends_rc", "short_axis_mm": "short_axis_ends_rc"}

SUBTYPE_NAME = _private("BM-SUBTYPE", "subtype")
SUGGESTED_NAME = _private("BM-SUGGESTED", "suggested_subtype")
STATUS_NAME = _private("BM-STATUS", "status")
RELATION_NAME = _private("BM-RELATION", "relation")
RED_FLAG_NAME = _private("BM-RED-FLAG", "red_flags")

#: Short code values (SH: 16 characters) of every vocabulary value; meaning = the value.
_SUBTYPE_CODES = {
    Subtype.EPISACROILIAC_LIPOMA: "EPISACRO-LIPOMA",
    Subtype.LUMBAR_FASCIAL_FAT_HERNIATION: "LUMBAR-FFH",
    Subtype.LUMBOSACRAL_FAT_HERNIATION: "LUMBOSACRAL-FH",
    Subtype.NON_ENCAPSULATED_FAT_PROMINENCE: "NONENCAP-FAT",
    Subtype.ILIAC_CREST_PAIN_SYNDROME: "ILIAC-CREST-PAIN",
    Subtype.MULTIFIDUS_TRIANGLE_SYNDROME: "MULTIFIDUS-TRI",
    Subtype.SEBACEOUS_CYST: "SEBACEOUS-CYST",
    Subtype.SUBCUTANEOUS_ABSCESS: "SUBCUT-ABSCESS",
    Subtype.LIPOSARCOMA_SUSPECTED: "LIPOSARCOMA-SUSP",
    Subtype.ADIPOSIS_DOLOROSA: "ADIPOSIS-DOLOR",
    Subtype.FIBROUS_NODULE: "FIBROUS-NODULE",
    Subtype.OTHER: "OTHER",
    Subtype.NOT_A_LESION: "NOT-A-LESION",
}
_RED_FLAG_CODES = {
    RedFlag.SIZE_OVER_100MM: "SIZE-OVER-100MM",
    RedFlag.THICK_SEPTA: "THICK-SEPTA",
    RedFlag.NONFAT_COMPONENT: "NONFAT-COMPONENT",
    RedFlag.FAT_UNDER_75PCT: "FAT-UNDER-75PCT",
    RedFlag.DEEP_EXTENSION: "DEEP-EXTENSION",
    RedFlag.NOT_FAT: "NOT-FAT",
    RedFlag.SIZE_OVER_50MM: "SIZE-OVER-50MM",
}

#: Each red flag is a qualitative evaluation whose concept name is its criterion
#: (meaning: :attr:`RedFlag.criterion`) and whose value is the flag.
CRITERION_NAMES: dict[RedFlag, hd.sr.CodedConcept] = {
    flag: _private(code, flag.criterion)
    for flag, code in (
        (RedFlag.SIZE_OVER_100MM, "BM-RF-SIZE"),
        (RedFlag.THICK_SEPTA, "BM-RF-SEPTA"),
        (RedFlag.NONFAT_COMPONENT, "BM-RF-NODULAR"),
        (RedFlag.FAT_UNDER_75PCT, "BM-RF-FAT-SHARE"),
        (RedFlag.DEEP_EXTENSION, "BM-RF-DEEP"),
        (RedFlag.NOT_FAT, "BM-RF-NOT-FAT"),
        (RedFlag.SIZE_OVER_50MM, "BM-RF-SIZE-50MM"),
    )
}

#: The measured value of the criteria that no SPEC column holds (from the row's
#: ``red_flag_criteria``): flag, concept name, UCUM unit.
CRITERION_MEASUREMENTS: tuple[tuple[RedFlag, hd.sr.CodedConcept, hd.sr.CodedConcept], ...] = (
    (RedFlag.THICK_SEPTA, _private("BM-SEPTUM-WIDTH", "Width of the septa"), MM),
    (
        RedFlag.NONFAT_COMPONENT,
        _private("BM-NONFAT-AREA", "Thickness of the largest non-fat area"),
        MM,
    ),
    (RedFlag.FAT_UNDER_75PCT, _private("BM-FAT-SHARE", "Share of the lesion that is fat"), RATIO),
)


def _value_code(value: str) -> hd.sr.CodedConcept:
    if value in _SUBTYPE_CODES:
        return _private(_SUBTYPE_CODES[Subtype(value)], value)
    if value in _RED_FLAG_CODES:
        return _private(_RED_FLAG_CODES[RedFlag(value)], value)
    return _private(value.upper().replace("_", "-")[:16], value)


#: A measurement group of the report: a nodule (volumetric on MRI, planar on
#: ultrasound) or an ultrasound nodule's axes as drawn (TID 1501).
_Group = (
    hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
    | hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations
    | hd.sr.MeasurementsAndQualitativeEvaluations
)

_VOCAB: dict[str, set[str]] = {
    "subtype": set(Subtype),
    "suggested_subtype": set(Subtype),
    "status": set(Status),
    "relation": set(Relation),
    "red_flags": set(RedFlag),
}

_LATERALITY = {
    Side.LEFT: codes.SCT.Left,
    Side.RIGHT: codes.SCT.Right,
    Side.MIDLINE: codes.SCT.Median,
}


def finding_site(row: dict) -> hd.sr.FindingSite:
    """Where the nodule is: the region from its (tagged or suggested) subtype, side as laterality.

    The region is the SEG segment's anatomic region
    (:func:`backmice.export.seg.anatomic_region`).
    """
    side = row.get("side")
    laterality = _LATERALITY.get(Side(side)) if side in set(Side) else None
    return hd.sr.FindingSite(
        anatomic_location=anatomic_region(row),
        laterality=None if laterality is None else _std(laterality),
    )


def _number(value: float | str | None) -> float | None:
    if value is None or value == "":
        return None
    number = float(value)
    return None if number != number else number  # NaN


def _observer(reader: str | None) -> hd.sr.ObservationContext:
    if reader:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=person_name(reader),  # the login name is the reader exactly
                login_name=reader,
            ),
        )
        return hd.sr.ObservationContext(observer_person_context=person)
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=_device_uid(), name="backmice", model_name=f"backmice {__version__}"
        ),
    )
    return hd.sr.ObservationContext(observer_device_context=device)


def _device_uid() -> str:
    """A fixed UID for backmice as an observing device."""
    return pydicom.uid.generate_uid(entropy_srcs=["backmice device"])


def build_sr(
    annotations: Annotations,
    seg: pydicom.Dataset,
    *,
    reader: str | None = None,
    pseudonymizer: Pseudonymizer | None = None,
    series_number: int = 902,
) -> hd.sr.Comprehensive3DSR:
    """A Comprehensive 3D SR with one TID 1500 measurement group per nodule.

    Parameters
    ----------
    annotations : Annotations
    seg : pydicom Dataset
        The SEG of the same annotations (:func:`~backmice.export.seg.build_seg`);
        segment ``i`` is the ``i``-th nodule in ``nodule_id`` order.
    reader : str, optional
        The observer (a person); None: backmice as a device observer. Default
        the annotations' reader.
    pseudonymizer : Pseudonymizer, optional
        Pseudonymise the patient module (``--anonymize``).
    series_number : int

    Returns
    -------
    highdicom.sr.Comprehensive3DSR
    """
    reader = reader if reader is not None else annotations.reader
    rows = sorted(annotations.rows, key=lambda r: int(r["nodule_id"]))
    by_tracking = {str(s.TrackingUID): int(s.SegmentNumber) for s in seg.SegmentSequence}
    ultrasound = annotations.ultrasound
    if ultrasound and any(r.get("units") == "px" for r in rows):
        raise InputError(
            "the ultrasound image is not calibrated (measurements in pixels): no SR, whose "
            "measurements are in mm (its SEG can be written)",
            path=annotations.origin,
        )
    source = annotations.source()
    groups: list[_Group] = []
    for row in rows:
        nid = int(row["nodule_id"])
        uid = tracking_uid(annotations.series_uid, nid)
        if uid not in by_tracking:
            raise InputError(f"nodule {nid} is not a segment of the SEG", path=annotations.origin)
        measurements = []
        for column, name, derivation, unit in (*MEASUREMENTS, AREA) if ultrasound else MEASUREMENTS:
            value = _number(row.get(column))
            if value is not None:
                measurements.append(
                    hd.sr.Measurement(name=name, value=value, unit=unit, derivation=derivation)
                )
        evaluations = []
        for column, name in (
            ("subtype", SUBTYPE_NAME),
            ("suggested_subtype", SUGGESTED_NAME),
            ("status", STATUS_NAME),
            ("relation", RELATION_NAME),
        ):
            if row.get(column):
                evaluations.append(
                    hd.sr.QualitativeEvaluation(name=name, value=_value_code(str(row[column])))
                )
        for flag in filter(None, str(row.get("red_flags") or "").split(";")):
            criterion = CRITERION_NAMES.get(RedFlag(flag)) if flag in _RED_FLAG_CODES else None
            evaluations.append(
                hd.sr.QualitativeEvaluation(
                    name=criterion or RED_FLAG_NAME, value=_value_code(flag)
                )
            )
        checks = {c.get("flag"): c for c in row.get("red_flag_criteria") or []}
        for flag, name, unit in CRITERION_MEASUREMENTS:
            value = _number((checks.get(str(flag)) or {}).get("value"))
            if value is not None:
                measurements.append(hd.sr.Measurement(name=name, value=value, unit=unit))
        tracking = hd.sr.TrackingIdentifier(uid=uid, identifier=f"nodule {nid}")
        common: dict[str, Any] = dict(  # what both kinds of group take
            tracking_identifier=tracking,
            finding_type=finding_type(row),
            finding_sites=[finding_site(row)],
            measurements=measurements,
            qualitative_evaluations=evaluations,
        )
        group: _Group
        if ultrasound:
            group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=_segment_frame(seg, by_tracking[uid], source),
                **common,
            )
            # TID 1410 allows no coordinates on its measurements: the axes as drawn
            # are a TID 1501 group of their own, as viewers write a caliper.
            axes = _axes_group(annotations, source, row, nid)
            if axes is not None:
                groups.append(group)
                group = axes
        else:
            group = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
                referenced_segment=hd.sr.ReferencedSegment.from_segmentation(seg, by_tracking[uid]),
                **common,
            )
            # The long and short axes as drawn on their slice (a caliper in viewers).
            axes = _axes_group(annotations, source, row, nid)
            if axes is not None:
                groups.append(group)
                group = axes
        groups.append(group)
    report = hd.sr.MeasurementReport(
        observation_context=_observer(reader),
        procedure_reported=US_PROCEDURE if ultrasound else _std(codes.LN.MRIUnspecifiedBodyRegion),
        imaging_measurements=groups,
    )
    sr = hd.sr.Comprehensive3DSR(
        evidence=[*source.datasets, seg],
        content=report,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="backmice",
        is_complete=True,
        series_description="backmice nodule measurements",
    )
    if pseudonymizer is not None:
        pseudonymizer.dataset(sr)
    return sr


def _segment_frame(
    seg: pydicom.Dataset, number: int, source: SourceSeries
) -> hd.sr.ReferencedSegmentationFrame:
    """The SEG frame of an ultrasound nodule's segment (one frame: the measured one).

    Made here rather than by highdicom's ``from_segmentation``, which looks for
    the segment in the per-frame groups only (a SEG of one segment has it in the
    shared groups).
    """
    shared = (
        seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    )
    frames = []
    for i, item in enumerate(seg.PerFrameFunctionalGroupsSequence, start=1):
        ident = item.get("SegmentIdentificationSequence") or (
            shared.get("SegmentIdentificationSequence") if shared is not None else None
        )
        if ident and int(ident[0].ReferencedSegmentNumber) == int(number):
            frames.append(i)
    if not frames:
        raise InputError(f"segment {number} has no frame in the SEG")
    ds = source.datasets[0]
    frame = source.frame_of_slice[0][1]
    multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
    return hd.sr.ReferencedSegmentationFrame(
        sop_class_uid=str(seg.SOPClassUID),
        sop_instance_uid=str(seg.SOPInstanceUID),
        frame_number=frames[0],
        segment_number=int(number),
        source_image=hd.sr.SourceImageForSegmentation(
            referenced_sop_class_uid=str(ds.SOPClassUID),
            referenced_sop_instance_uid=str(ds.SOPInstanceUID),
            referenced_frame_numbers=[frame + 1] if multi else None,
        ),
    )


def axes_tracking_uid(series_uid: str, nodule_id: int) -> str:
    """A UID for the axes group of an ultrasound nodule, the same in every export."""
    return pydicom.uid.generate_uid(
        entropy_srcs=["backmice nodule axes", series_uid, str(int(nodule_id))]
    )


def _axes_group(
    annotations: Annotations, source: SourceSeries, row: dict, nodule_id: int
) -> hd.sr.MeasurementsAndQualitativeEvaluations | None:
    """TID 1501: a nodule's long and short axes, each inferred from a SCOORD polyline.

    Tracking identifier ``nodule N axes``; None when the row has neither axis.
    """
    lines = _axis_lines(annotations, source, nodule_id)
    measurements = []
    for column, name, _, unit in MEASUREMENTS:
        value = _number(row.get(column))
        if column in lines and value is not None:
            measurements.append(
                hd.sr.Measurement(
                    name=name, value=value, unit=unit, referenced_coordinates=[lines[column]]
                )
            )
    if not measurements:
        return None
    return hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=axes_tracking_uid(annotations.series_uid, nodule_id),
            identifier=f"nodule {nodule_id} axes",
        ),
        finding_type=finding_type(row),
        finding_sites=[finding_site(row)],
        measurements=measurements,
    )


def _axis_lines(
    annotations: Annotations, source: SourceSeries, nodule_id: int
) -> dict[str, hd.sr.CoordinatesForMeasurement]:
    """SCOORD polylines (two points each) of a nodule's long and short axes on its source image."""
    if annotations.ultrasound:
        return _ultrasound_axis_lines(annotations, source, nodule_id)
    return _mr_axis_lines(annotations, source, nodule_id)


def _mr_axis_lines(
    annotations: Annotations, source: SourceSeries, nodule_id: int
) -> dict[str, hd.sr.CoordinatesForMeasurement]:
    """SCOORD polylines of an MR nodule's in-plane long and short axes on their slice.

    The axes are those the analysis measures (:func:`backmice.measure.measure_labels`:
    on the slice of largest cross-section), their LPS end points taken back to
    pixels of that slice's source image (DICOM image coordinates ``(column, row)``,
    the top-left pixel's corner at 0). Empty when the nodule has no voxels.
    """
    import numpy as np

    from backmice.measure import measure_labels

    labels = annotations.labels
    if not np.any(labels == nodule_id):
        return {}
    (shape,) = measure_labels(labels, annotations.affine, ids=[nodule_id])
    to_index = np.linalg.inv(np.asarray(annotations.affine, dtype=float))
    out = {}
    for column, ends_lps in (
        ("long_axis_mm", shape.long_axis_end_points_lps),
        ("short_axis_mm", shape.short_axis_end_points_lps),
    ):
        ends = np.asarray(ends_lps, dtype=float)
        if ends.shape != (2, 3) or not np.isfinite(ends).all():
            continue
        index = (to_index @ np.column_stack([ends, np.ones(2)]).T).T[:, :3]  # (slice, row, col)
        k = int(np.clip(round(float(index[:, 0].mean())), 0, labels.shape[0] - 1))
        i, frame = source.frame_of_slice[k]
        ds = source.datasets[i]
        multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
        image = hd.sr.SourceImageForRegion(
            referenced_sop_class_uid=str(ds.SOPClassUID),
            referenced_sop_instance_uid=str(ds.SOPInstanceUID),
            referenced_frame_numbers=[frame + 1] if multi else None,
        )
        points = np.column_stack([index[:, 2] + 0.5, index[:, 1] + 0.5])
        out[column] = hd.sr.CoordinatesForMeasurement(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=points.astype(np.float32),
            source_image=image,
        )
    return out


def _ultrasound_axis_lines(
    annotations: Annotations, source: SourceSeries, nodule_id: int
) -> dict[str, hd.sr.CoordinatesForMeasurement]:
    """SCOORD polylines of an ultrasound nodule's long and short axes on its source frame.

    The axes are those of the nodule's mask (:func:`backmice.ultrasound.mask_axes`,
    the one owner of how they are measured), in pixels of the stored frame
    (DICOM image coordinates: ``(column, row)``, the top-left pixel's corner at 0).
    """
    import numpy as np

    from backmice.ultrasound import mask_axes

    affine = annotations.affine
    spacing = (float(np.linalg.norm(affine[:3, 1])), float(np.linalg.norm(affine[:3, 2])))
    mask = annotations.labels[0] == nodule_id
    axes = mask_axes(mask, spacing_mm=spacing)
    ds = source.datasets[0]
    frame = source.frame_of_slice[0][1]
    multi = int(ds.get("NumberOfFrames", 1) or 1) > 1
    image = hd.sr.SourceImageForRegion(
        referenced_sop_class_uid=str(ds.SOPClassUID),
        referenced_sop_instance_uid=str(ds.SOPInstanceUID),
        referenced_frame_numbers=[frame + 1] if multi else None,
    )
    r0, c0 = annotations.region.origin_px
    out = {}
    for column, key in _AXES.items():
        ends = np.asarray(axes[key], dtype=float)  # (row, col) pixel centres of the region
        points = np.column_stack([ends[:, 1] + c0 + 0.5, ends[:, 0] + r0 + 0.5])
        out[column] = hd.sr.CoordinatesForMeasurement(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=points.astype(np.float32),
            source_image=image,
        )
    return out


# --------------------------------------------------------------------------- reading


class SRNodule(dict):
    """One nodule read from an SR: SPEC columns plus ``tracking_uid`` and the referenced segment.

    Keys besides SPEC columns: ``tracking_uid`` (str), ``segment`` (``(SEG
    SOPInstanceUID, segment number)`` or None).
    """


_NODULE = re.compile(r"^nodule (\d+)$")


def _code_key(concept: Code | hd.sr.CodedConcept) -> tuple[str, str]:
    return (str(concept.value), str(concept.scheme_designator))


def _reader_of(content: hd.sr.MeasurementReport) -> str | None:
    """The person observer: login name (DCM 128774), else name (DCM 121008); None for a device."""
    names: dict[str, str] = {}
    for ctx in content.get_observer_contexts():
        for item in ctx:
            code = str(item.name.value) if hasattr(item, "name") else ""
            if code in ("128774", "121008") and hasattr(item, "value"):
                names.setdefault(code, str(item.value).rstrip("^"))
    return names.get("128774") or names.get("121008") or None


def read_sr(path: str | os.PathLike[str]) -> tuple[list[SRNodule], str | None]:
    """Read the nodules of a TID 1500 SR (backmice's own, or any with volumetric groups).

    Parameters
    ----------
    path : path-like

    Returns
    -------
    nodules : list of SRNodule
        SPEC columns found (measurements, subtype, suggested subtype, status,
        relation, red flags, side), ``nodule_id`` from the tracking identifier
        ``nodule N`` (None otherwise), ``reader`` from the person observer.
    reader : str or None
        The person observer (None when a device observed).

    Raises
    ------
    InputError
        Not a TID 1500 structured report.
    """
    path = Path(path)
    try:
        sr = hd.sr.srread(path)
    except Exception as exc:
        raise InputError(f"not a readable DICOM Structured Report ({exc})", path=path) from None
    content = sr.content  # typed as a ContentSequence; a TID 1500 report is a MeasurementReport
    if not isinstance(content, hd.sr.MeasurementReport):
        raise InputError("not a TID 1500 measurement report", path=path)
    try:
        groups = [
            *content.get_volumetric_roi_measurement_groups(),
            *content.get_planar_roi_measurement_groups(),
        ]
        reader = _reader_of(content)
    except Exception as exc:
        raise InputError(f"not a TID 1500 measurement report ({exc})", path=path) from None
    by_code = {_code_key(name): (col, deriv) for col, name, deriv, _ in (*MEASUREMENTS, AREA)}
    sides = {_code_key(_std(v)): str(k) for k, v in _LATERALITY.items()}
    names = {
        _code_key(SUBTYPE_NAME): "subtype",
        _code_key(SUGGESTED_NAME): "suggested_subtype",
        _code_key(STATUS_NAME): "status",
        _code_key(RELATION_NAME): "relation",
        _code_key(RED_FLAG_NAME): "red_flags",  # before each flag named its criterion
        **{_code_key(name): "red_flags" for name in CRITERION_NAMES.values()},
    }
    out = []
    for group in groups:
        row = SRNodule()
        m = _NODULE.match(str(group.tracking_identifier or ""))
        row["nodule_id"] = int(m.group(1)) if m else None
        row["tracking_uid"] = str(group.tracking_uid) if group.tracking_uid else None
        ref: hd.sr.ReferencedSegmentationFrame | hd.sr.ReferencedSegment | None = None
        if isinstance(group, hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations):
            ref = group.referenced_segmentation_frame
        elif isinstance(group, hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations):
            ref = group.referenced_segment
        row["segment"] = None
        if ref is not None:
            try:
                numbers = ref.referenced_segment_numbers or []
                row["segment"] = (str(ref.referenced_sop_instance_uid), int(numbers[0]))
            except (AttributeError, IndexError, TypeError, ValueError):
                log.warning("%s: a measurement group's segment reference is unreadable", path)
        for meas in group.get_measurements():
            key = _code_key(meas.name)
            if key not in by_code:
                continue
            column, deriv = by_code[key]
            has_max = meas.derivation is not None and _code_key(meas.derivation) == _code_key(
                MAXIMUM
            )
            if (deriv is not None) != has_max:
                continue
            row[column] = float(meas.value)
        flags = []
        for ev in group.get_qualitative_evaluations():
            named = names.get(_code_key(ev.name))
            if named is None:
                continue
            code = ev.value  # a coded value (typed too widely by highdicom)
            value = str(code.meaning) if isinstance(code, hd.sr.CodedConcept) else str(code)
            if value not in _VOCAB[named]:
                log.warning("%s: unknown %s %r ignored", path, named, value)
                continue
            if named == "red_flags":
                flags.append(value)
            else:
                row[named] = value
        row["red_flags"] = ";".join(flags)
        for site in group.finding_sites:
            lat = site.laterality
            if lat is not None and _code_key(lat) in sides:
                row["side"] = sides[_code_key(lat)]
        row["reader"] = reader
        out.append(row)
    return out, reader
