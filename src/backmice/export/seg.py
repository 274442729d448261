"""DICOM Segmentation (SEG) of the nodules: :func:`build_seg` writes, :func:`read_seg` reads.

One segment per nodule, BINARY, referencing the source instances of the
series. An ultrasound result's labels (one frame's tissue region) are placed
back in the stored frame they were cropped from, so the SEG is pixel-matched
to the source image (ultrasound files have no patient geometry). Every segment
has

* segmented property category SCT 49755003 "Morphologically abnormal
  structure" and type SCT 134328007 "Lipoma" when the nodule is (tagged or
  suggested) an episacroiliac lipoma, else SCT 27925004 "Nodule" (a fat
  herniation or fat prominence is a nodule, not a neoplasm);
* tracking ID ``nodule N`` (N the ``nodule_id``) and a tracking UID derived
  from the series and the nodule ID (the same in every export);
* the subtype in the segment label: ``nodule 3: episacroiliac_lipoma`` when a
  reader tagged it, ``nodule 3: suggested episacroiliac_lipoma`` otherwise.

:func:`read_seg` reads any valid binary, fractional or label-map SEG over the
same series: segments in any order and numbering, empty frames omitted, frames
in any order (each frame is placed by its ImagePositionPatient).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from backmice import __version__
from backmice.errors import InputError
from backmice.export.anonymize import Pseudonymizer
from backmice.export.source import POSITION_TOLERANCE_MM, Annotations
from backmice.vocab import Subtype

__all__ = [
    "SEG_SOP_CLASSES",
    "SegSegment",
    "SegVolume",
    "build_seg",
    "finding_type",
    "person_name",
    "read_seg",
    "segment_label",
    "tracking_uid",
]

log = logging.getLogger(__name__)

#: Segmentation Storage and Label Map Segmentation Storage.
SEG_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")

CATEGORY = codes.SCT.MorphologicallyAbnormalStructure
LIPOMA = codes.SCT.Lipoma
NODULE = codes.SCT.Nodule
_LABEL = re.compile(r"^nodule (\d+)(?::\s*(suggested )?([a-z_]+))?")
_TRACKING = re.compile(r"^nodule (\d+)$")
#: Ultrasound Image Storage (single frame).
US_IMAGE = "1.2.840.10008.5.1.4.1.1.6.1"


def _subtype_of(row: dict) -> tuple[str | None, bool]:
    """(subtype to show, whether it is only suggested)."""
    if row.get("subtype"):
        return str(row["subtype"]), False
    if row.get("suggested_subtype"):
        return str(row["suggested_subtype"]), True
    return None, False


def finding_type(row: dict) -> hd.sr.CodedConcept:
    """SCT "Lipoma" for an (episacroiliac) lipoma, tagged or suggested, else SCT "Nodule"."""
    subtype, _ = _subtype_of(row)
    code = LIPOMA if subtype == Subtype.EPISACROILIAC_LIPOMA else NODULE
    return hd.sr.CodedConcept.from_code(code)


def segment_label(row: dict) -> str:
    """``nodule N: subtype`` (or ``nodule N: suggested subtype``), at most 64 characters."""
    subtype, suggested = _subtype_of(row)
    label = f"nodule {int(row['nodule_id'])}"
    if subtype:
        label += f": {'suggested ' if suggested else ''}{subtype}"
    return label[:64]


def person_name(reader: str) -> str:
    """A reader's name as a DICOM PN: a single-component name ends with a caret."""
    return reader if "^" in reader else f"{reader}^"


def tracking_uid(series_uid: str, nodule_id: int) -> str:
    """A UID for a nodule, the same in every export of that series."""
    return generate_uid(entropy_srcs=["backmice nodule", series_uid, str(int(nodule_id))])


def _algorithm(rows: list[dict]) -> str:
    reviewed = any(r.get("reader") or r.get("status") not in (None, "candidate") for r in rows)
    return "SEMIAUTOMATIC" if reviewed else "AUTOMATIC"


def build_seg(
    annotations: Annotations,
    *,
    pseudonymizer: Pseudonymizer | None = None,
    series_number: int = 901,
) -> hd.seg.Segmentation:
    """A BINARY DICOM Segmentation with one segment per nodule.

    Parameters
    ----------
    annotations : Annotations
        Rows, labels ``(slice, row, col)`` and the source series (read and
        checked against the labels' grid: the SEG's plane positions are the
        source's).
    pseudonymizer : Pseudonymizer, optional
        Pseudonymise the patient module (``--anonymize``).
    series_number : int
        SeriesNumber of the SEG.

    Returns
    -------
    highdicom.seg.Segmentation
        Segment ``i`` (1-based, in ``nodule_id`` order) is nodule ``rows[i]``.

    Raises
    ------
    InputError
        No nodules, uncalibrated measurements, or the source does not match.
    """
    rows = sorted(annotations.rows, key=lambda r: int(r["nodule_id"]))
    where = annotations.origin
    if not rows:
        raise InputError("no nodules to export as a DICOM SEG", path=where)
    if not annotations.ultrasound and any(r.get("units") == "px" for r in rows):
        raise InputError("measurements are in pixels (no calibration): no DICOM SEG", path=where)
    source = annotations.source()
    labels = annotations.labels
    lut = np.zeros(
        int(max(labels.max(initial=0), max(int(r["nodule_id"]) for r in rows))) + 1, dtype=np.uint16
    )
    descriptions = []
    algorithm = _algorithm(rows)
    family = codes.DCM.ImageProcessing
    for number, row in enumerate(rows, start=1):
        nid = int(row["nodule_id"])
        if not np.any(labels == nid):
            raise InputError(f"nodule {nid} has no voxels in the labels", path=where)
        lut[nid] = number
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=segment_label(row),
                segmented_property_category=CATEGORY,
                segmented_property_type=finding_type(row),
                algorithm_type=algorithm,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name="backmice", family=family, version=__version__
                ),
                tracking_id=f"nodule {nid}",
                tracking_uid=tracking_uid(annotations.series_uid, nid),
            )
        )
    seg_labels = lut[labels]
    cine_frame = None
    if annotations.ultrasound:
        # The labels are one frame's tissue region: back into the stored frame,
        # pixel for pixel (ultrasound has no patient geometry to place them by).
        ds = source.datasets[0]
        frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
        pixels = annotations.region.to_frame(
            seg_labels, frames=frames, rows=int(ds.Rows), cols=int(ds.Columns)
        )
        images = [ds]
        if frames > 1:
            # highdicom segments only single-frame images without a frame of
            # reference: it is given the cine's header as a single-frame image, and
            # the SEG's references then name the cine and the frame it was drawn on
            # (_refer_to_cine_frame).
            cine_frame = annotations.region.frame
            pixels = pixels[cine_frame : cine_frame + 1]
            header = Dataset()
            header.update(
                {e.tag: e for e in ds if e.keyword not in ("PixelData", "NumberOfFrames")}
            )
            header.file_meta = ds.file_meta
            header.SOPClassUID = US_IMAGE
            images = [header]
    elif source.multiframe:
        # Frames of the SEG follow the source file's frame order.
        frame_order = np.empty(len(source.frame_of_slice), dtype=np.intp)
        for k, (_, f) in enumerate(source.frame_of_slice):
            frame_order[f] = k
        images = [source.datasets[0]]
        pixels = seg_labels[frame_order]
    else:
        images = [source.datasets[i] for i, _ in source.frame_of_slice]
        pixels = seg_labels
    seg = hd.seg.Segmentation(
        source_images=images,
        pixel_array=pixels,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="backmice",
        manufacturer_model_name="backmice",
        software_versions=__version__,
        device_serial_number="0",
        content_label="NODULES",
        content_description="back mice (lower-back fat nodules)"[:64],
        content_creator_name=person_name(annotations.reader) if annotations.reader else None,
        series_description="backmice nodules",
    )
    if cine_frame is not None:
        _refer_to_cine_frame(seg, source.datasets[0], cine_frame)
    if pseudonymizer is not None:
        pseudonymizer.dataset(seg)
    return seg


def _refer_to_cine_frame(seg: Dataset, cine: Dataset, frame: int) -> None:
    """Point a SEG made over one frame of a cine back at the cine and that frame (0-based).

    Every reference to the cine's instance gets its real SOP class; the SEG frames'
    source images get ReferencedFrameNumber.
    """
    uid, sop_class = str(cine.SOPInstanceUID), str(cine.SOPClassUID)

    def fix(ds: Dataset) -> None:
        for element in ds:
            if element.VR == "SQ":
                for item in element.value:
                    fix(item)
        if str(ds.get("ReferencedSOPInstanceUID", "")) == uid:
            ds.ReferencedSOPClassUID = sop_class

    fix(seg)
    for item in seg.PerFrameFunctionalGroupsSequence:
        for derivation in item.DerivationImageSequence:
            for src in derivation.SourceImageSequence:
                src.ReferencedFrameNumber = frame + 1


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True, slots=True)
class SegSegment:
    """One segment of a SEG as read.

    Attributes
    ----------
    number : int
        SegmentNumber in the file.
    label : str
        SegmentLabel.
    tracking_id, tracking_uid : str or None
        TrackingID / TrackingUID when present.
    nodule_id : int or None
        ``N`` from a tracking ID ``nodule N`` (backmice's own SEGs).
    subtype : str or None
        Subtype from a label ``nodule N: subtype`` (None when only suggested).
    """

    number: int
    label: str
    tracking_id: str | None
    tracking_uid: str | None
    nodule_id: int | None
    subtype: str | None


@dataclass(frozen=True, slots=True)
class SegVolume:
    """A SEG placed on a series' grid.

    Attributes
    ----------
    labels : ndarray of uint32, shape (slice, row, col)
        Segment number of each voxel (0 outside every segment).
    segments : tuple of SegSegment
        The segments, by segment number.
    sop_instance_uid, series_uid : str
        Of the SEG.
    path : Path
    """

    labels: np.ndarray
    segments: tuple[SegSegment, ...]
    sop_instance_uid: str
    series_uid: str
    path: Path


def _segment(item: Dataset) -> SegSegment:
    label = str(item.get("SegmentLabel", ""))
    tid = str(item.TrackingID) if "TrackingID" in item else None
    m = _TRACKING.match(tid or "") or _LABEL.match(label)
    lm = _LABEL.match(label)
    subtype = lm.group(3) if lm and not lm.group(2) and lm.group(3) in set(Subtype) else None
    return SegSegment(
        number=int(item.SegmentNumber),
        label=label,
        tracking_id=tid,
        tracking_uid=str(item.TrackingUID) if "TrackingUID" in item else None,
        nodule_id=int(m.group(1)) if m else None,
        subtype=subtype,
    )


def _frame_attr(item: Dataset, shared: Dataset, seq: str, attr: str) -> Any:
    for src in (item, shared):
        if seq in src and len(src[seq].value) and attr in src[seq][0]:
            return src[seq][0][attr].value
    return None


def _derived_position(
    item: Dataset, grid: np.ndarray, source_instances: Sequence[tuple[str, int]] | None
) -> np.ndarray | None:
    """The position of the source slice a SEG frame says it is derived from."""
    if not source_instances:
        return None
    where = {(uid, frame): k for k, (uid, frame) in enumerate(source_instances)}
    for derivation in item.get("DerivationImageSequence", []):
        for src in derivation.get("SourceImageSequence", []):
            frames = src.get("ReferencedFrameNumber", 1)
            frame = int(frames[0]) if isinstance(frames, MultiValue | list) else int(frames)
            k = where.get((str(src.get("ReferencedSOPInstanceUID", "")), frame))
            if k is not None:
                return grid[k]
    return None


def read_seg(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    positions_mm: np.ndarray | None = None,
    source_instances: Sequence[tuple[str, int]] | None = None,
) -> SegVolume:
    """Read a DICOM SEG onto a series' grid.

    Parameters
    ----------
    path : path-like
        A binary, fractional or label-map DICOM Segmentation.
    shape : tuple of 3 int
        ``(slice, row, col)`` of the series grid.
    affine : ndarray of shape (4, 4)
        Index to LPS mm of the grid.
    series_uid : str, optional
        The series the SEG must be over (its ReferencedSeriesSequence).
    frame_of_reference_uid : str, optional
        Checked when the SEG carries one.
    positions_mm : ndarray of shape (slice, 3), optional
        The source's position of each slice (LPS mm; see
        :attr:`~backmice.export.source.SourceSeries.positions_mm`): frames are
        matched to them, which also places a series of non-uniform spacing.
        Default: the positions of the affine's regular grid.
    source_instances : sequence of (str, int), optional
        Each slice's source SOPInstanceUID and 1-based frame number: places a
        frame without ImagePositionPatient by the source image it is derived from.

    Returns
    -------
    SegVolume
        Fractional segments are thresholded at half their maximum value; a voxel
        in several segments takes the lowest segment number (with a warning).

    Raises
    ------
    InputError
        Not a SEG, a SEG over another series or geometry, or unreadable pixels.
    """
    path = Path(path)
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:
        raise InputError(f"not a readable DICOM file ({exc})", path=path) from None
    sop_class = str(ds.get("SOPClassUID", ""))
    if sop_class not in SEG_SOP_CLASSES:
        raise InputError(
            f"not a DICOM Segmentation (SOP class {sop_class or 'missing'})", path=path
        )
    refs = [str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", [])]
    if series_uid and refs and series_uid not in refs:
        raise InputError(f"a SEG over series {refs[0]}, not {series_uid}", path=path)
    for_uid = str(ds.get("FrameOfReferenceUID", ""))
    if frame_of_reference_uid and for_uid and for_uid != frame_of_reference_uid:
        raise InputError(
            f"a SEG in frame of reference {for_uid}, not {frame_of_reference_uid}", path=path
        )
    seg_type = str(ds.get("SegmentationType", "BINARY")).upper()
    try:
        # Segment 0 of a label-map SEG is the background, not a nodule.
        segments = tuple(
            sorted(
                (seg for seg in map(_segment, ds.SegmentSequence) if seg.number > 0),
                key=lambda seg: seg.number,
            )
        )
        pixels = ds.pixel_array
        per_frame = list(ds.PerFrameFunctionalGroupsSequence)
        shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    except Exception as exc:
        raise InputError(f"unreadable SEG ({exc})", path=path) from None
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if pixels.shape[0] != len(per_frame):
        raise InputError(
            f"{pixels.shape[0]} frames of pixels but {len(per_frame)} frame descriptions",
            path=path,
        )
    n, rows, cols = shape
    if pixels.shape[1:] != (rows, cols):
        raise InputError(
            f"SEG frames are {pixels.shape[1]}x{pixels.shape[2]}, the series {rows}x{cols}",
            path=path,
        )
    grid = (
        affine[:3, 3] + np.arange(n)[:, np.newaxis] * affine[:3, 0]
        if positions_mm is None
        else np.asarray(positions_mm, dtype=float).reshape(n, 3)
    )
    row_dir = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    col_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    max_value = float(ds.get("MaximumFractionalValue", 1) or 1)
    known = {s.number for s in segments}
    out = np.zeros(shape, dtype=np.uint32)
    overlap = 0
    for i, item in enumerate(per_frame):
        pos = _frame_attr(item, shared, "PlanePositionSequence", "ImagePositionPatient")
        iop = _frame_attr(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        if pos is None:
            pos = _derived_position(item, grid, source_instances)
        if pos is None:
            raise InputError(
                f"SEG frame {i + 1} has no ImagePositionPatient and no known source image",
                path=path,
            )
        pos = np.asarray(pos, dtype=float)
        if iop is not None:
            iop = np.asarray(iop, dtype=float)
            if np.abs(iop[:3] - row_dir).max() > 1e-4 or np.abs(iop[3:] - col_dir).max() > 1e-4:
                raise InputError("SEG orientation differs from the series'", path=path)
        distance = np.abs(grid - pos).max(axis=1)
        k = int(np.argmin(distance))
        if distance[k] > POSITION_TOLERANCE_MM:
            raise InputError(
                f"SEG frame {i + 1} at {np.round(pos, 3).tolist()} is not on the series' grid",
                path=path,
            )
        frame = pixels[i]
        if seg_type == "LABELMAP":
            values = frame.astype(np.uint32)
            unknown = set(np.unique(values).tolist()) - known - {0}
            if unknown:
                raise InputError(
                    f"SEG frame {i + 1} holds undescribed segment(s) {sorted(unknown)[:5]}",
                    path=path,
                )
            fresh = (out[k] == 0) & (values > 0)
            overlap += int(np.count_nonzero((out[k] > 0) & (values > 0)))
            out[k][fresh] = values[fresh]
            continue
        number = _frame_attr(
            item, shared, "SegmentIdentificationSequence", "ReferencedSegmentNumber"
        )
        if number is None or int(number) not in known:
            raise InputError(f"SEG frame {i + 1} names no described segment", path=path)
        mask = frame >= max_value / 2 if seg_type == "FRACTIONAL" else frame > 0
        overlap += int(np.count_nonzero(mask & (out[k] > 0) & (out[k] < int(number))))
        # Lowest segment number wins where segments overlap.
        take = mask & ((out[k] == 0) | (out[k] > int(number)))
        out[k][take] = int(number)
    if overlap:
        log.warning("%s: %d voxel(s) in more than one segment; kept the lowest", path, overlap)
    return SegVolume(
        labels=out,
        segments=segments,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        path=path,
    )
