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
* anatomic region SCT sacroiliac joint, lumbosacral region or lumbar region
  (:func:`anatomic_region`), and a display colour (RecommendedDisplayCIELabValue);
* tracking ID ``nodule N`` (N the ``nodule_id``) and a tracking UID derived
  from the series and the nodule ID (the same in every export);
* the subtype in the segment label: ``nodule 3: episacroiliac_lipoma`` when a
  reader tagged it, ``nodule 3: suggested episacroiliac_lipoma`` otherwise.

:func:`read_seg` reads any valid binary, fractional or label-map SEG over the
same series through highdicom: segments in any order and numbering, empty
frames omitted, frames in any order (each frame is placed by its
ImagePositionPatient, or by its source image), overlapping segments kept
whole.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    "SEGMENT_COLOURS",
    "SEG_SOP_CLASSES",
    "SegSegment",
    "SegVolume",
    "anatomic_region",
    "build_seg",
    "finding_type",
    "person_name",
    "read_seg",
    "segment_colour",
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


def anatomic_region(row: dict) -> hd.sr.CodedConcept:
    """Where the nodule is, from its (tagged or suggested) subtype (SNOMED CT).

    Episacroiliac lipoma: SCT 39723000 sacroiliac joint structure; lumbosacral fat
    herniation: SCT 297173004 lumbosacral region; anything else: SCT 52612000
    lumbar region (back structure). The SEG's anatomic region and the SR's
    finding site (:func:`backmice.export.sr.finding_site`) are both this code.
    """
    subtype, _ = _subtype_of(row)
    if subtype == Subtype.EPISACROILIAC_LIPOMA:
        site = codes.SCT.SacroiliacJointStructure
    elif subtype == Subtype.LUMBOSACRAL_FAT_HERNIATION:
        site = codes.SCT.LumbosacralRegionOfSpineStructure
    else:
        site = codes.SCT.LumbarRegionBackStructure
    return hd.sr.CodedConcept.from_code(site)


#: Segment colours (sRGB, matplotlib's "tab10"), by nodule ID; stored as
#: RecommendedDisplayCIELabValue so every viewer shows a nodule in one colour.
SEGMENT_COLOURS: tuple[tuple[int, int, int], ...] = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
)


def segment_colour(nodule_id: int) -> hd.color.CIELabColor:
    """The display colour of nodule ``nodule_id`` (:data:`SEGMENT_COLOURS`, cycled)."""
    r, g, b = SEGMENT_COLOURS[(int(nodule_id) - 1) % len(SEGMENT_COLOURS)]
    return hd.color.CIELabColor.from_rgb(r, g, b)


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
                anatomic_regions=[anatomic_region(row)],
                display_color=segment_colour(nid),
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
        Segment number of each voxel (0 outside every segment); where segments
        overlap, the lowest number.
    segments : tuple of SegSegment
        The segments, by segment number.
    sop_instance_uid, series_uid : str
        Of the SEG.
    path : Path
    masks : dict of int to (tuple of slice, ndarray of bool)
        Where segments overlap, each segment's own mask, as its bounding box and
        the mask inside it (:meth:`mask` gives the whole mask); empty when no
        segments overlap (the label map then holds every mask).
    overlap_voxels : int
        Voxels in more than one segment.
    """

    labels: np.ndarray
    segments: tuple[SegSegment, ...]
    sop_instance_uid: str
    series_uid: str
    path: Path
    masks: dict[int, tuple[tuple[slice, ...], np.ndarray]] = field(default_factory=dict, repr=False)
    overlap_voxels: int = 0

    def mask(self, number: int) -> np.ndarray:
        """Segment ``number``'s whole mask (bool, the grid's shape), overlaps included."""
        if number not in self.masks:
            return self.labels == number
        box, inside = self.masks[number]
        out = np.zeros(self.labels.shape, dtype=bool)
        out[box] = inside
        return out

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> SegVolume:
        """The same SEG with ``fn`` applied to the labels and every mask (a re-placement)."""
        return dataclasses.replace(
            self,
            labels=fn(self.labels),
            masks={n: _crop(fn(self.mask(n).astype(np.uint8)).astype(bool)) for n in self.masks},
        )


def _crop(mask: np.ndarray) -> tuple[tuple[slice, ...], np.ndarray]:
    """A mask as its bounding box (:func:`scipy.ndimage.find_objects`) and the mask inside it."""
    from scipy import ndimage

    found = ndimage.find_objects(mask.astype(np.uint8))
    box = found[0] if found else tuple(slice(0, 0) for _ in mask.shape)
    return box, mask[box].copy()


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


def _derived_source(item: Dataset) -> tuple[str, int] | None:
    """The (SOPInstanceUID, 1-based frame) a SEG frame says it is derived from."""
    for derivation in item.get("DerivationImageSequence", []):
        for src in derivation.get("SourceImageSequence", []):
            frames = src.get("ReferencedFrameNumber", 1)
            frame = int(frames[0]) if isinstance(frames, MultiValue | list) else int(frames)
            return str(src.get("ReferencedSOPInstanceUID", "")), frame
    return None


def _frame_slices(
    ds: Dataset,
    path: Path,
    grid: np.ndarray,
    row_dir: np.ndarray,
    col_dir: np.ndarray,
    source_instances: Sequence[tuple[str, int]] | None,
) -> list[int]:
    """The grid slice of each SEG frame: by its position, else by its source image.

    Checks each frame's orientation and position against the grid (the geometry of
    *our* series, which highdicom does not know). A frame placed by its source
    image is given that image's position in ``ds``.
    """
    per_frame = list(ds.PerFrameFunctionalGroupsSequence)
    shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
    where = {src: k for k, src in enumerate(source_instances or ())}
    slices = []
    for i, item in enumerate(per_frame):
        pos = _frame_attr(item, shared, "PlanePositionSequence", "ImagePositionPatient")
        iop = _frame_attr(item, shared, "PlaneOrientationSequence", "ImageOrientationPatient")
        if iop is not None:
            iop = np.asarray(iop, dtype=float)
            if np.abs(iop[:3] - row_dir).max() > 1e-4 or np.abs(iop[3:] - col_dir).max() > 1e-4:
                raise InputError("SEG orientation differs from the series'", path=path)
        if pos is None:
            src = _derived_source(item)
            if src is None or src not in where:
                raise InputError(
                    f"SEG frame {i + 1} has no ImagePositionPatient and no known source image",
                    path=path,
                )
            k = where[src]
            # highdicom needs every frame's position (the standard requires it with
            # a frame of reference): the frame takes its source image's.
            if "FrameOfReferenceUID" in ds:
                plane = Dataset()
                plane.ImagePositionPatient = [float(v) for v in grid[k]]
                item.PlanePositionSequence = [plane]
            slices.append(k)
            continue
        distance = np.abs(grid - np.asarray(pos, dtype=float)).max(axis=1)
        k = int(np.argmin(distance))
        if distance[k] > POSITION_TOLERANCE_MM:
            raise InputError(
                f"SEG frame {i + 1} at {np.round(np.asarray(pos, float), 3).tolist()} "
                "is not on the series' grid",
                path=path,
            )
        slices.append(k)
    return slices


def _place_volume(
    seg: hd.seg.Segmentation,
    numbers: Sequence[int],
    grid: np.ndarray,
    shape: tuple,
    path: Path,
    dtype: type,
) -> np.ndarray:
    """Segment masks from :meth:`highdicom.seg.Segmentation.get_volume`, placed on the grid.

    Returns
    -------
    ndarray of ``dtype``, shape (slice, row, col, segments)
        The grid's slices; slices the SEG does not cover are 0.
    """
    volume = seg.get_volume(combine_segments=False, segment_numbers=list(numbers), dtype=dtype)
    array = np.asarray(volume.array)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    out = np.zeros((*shape, len(numbers)), dtype=dtype)
    for j in range(array.shape[0]):
        if not array[j].any():
            continue
        pos = volume.affine[:3, 0] * j + volume.affine[:3, 3]
        distance = np.abs(grid - pos).max(axis=1)
        k = int(np.argmin(distance))
        if distance[k] > POSITION_TOLERANCE_MM:
            raise InputError(
                f"SEG plane at {np.round(pos, 3).tolist()} is not on the series' grid", path=path
            )
        out[k] = np.maximum(out[k], array[j])
    return out


def _by_source(
    seg: hd.seg.Segmentation,
    numbers: Sequence[int],
    sources: Sequence[tuple[str, int]],
    dtype: type,
) -> np.ndarray:
    """Segment masks from highdicom, indexed by the source image each slice comes from.

    Returns
    -------
    ndarray of ``dtype``, shape (slice, row, col, segments)
    """
    segments = list(numbers)
    uids = [uid for uid, _ in sources]
    if len(set(uids)) == len(uids):
        return seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids,
            segment_numbers=segments,
            combine_segments=False,
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
            dtype=dtype,
        )
    if len(set(uids)) == 1:  # one multi-frame source: its frames
        return seg.get_pixels_by_source_frame(
            source_sop_instance_uid=uids[0],
            source_frame_numbers=[frame for _, frame in sources],
            segment_numbers=segments,
            combine_segments=False,
            ignore_spatial_locations=True,
            assert_missing_frames_are_empty=True,
            dtype=dtype,
        )
    raise ValueError("slices from several multi-frame images")


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
    """Read a DICOM SEG onto a series' grid, through highdicom.

    The file is read by :func:`highdicom.seg.segread` semantics
    (:meth:`highdicom.seg.Segmentation.from_dataset`) and its segments decoded
    by highdicom: as a volume (:meth:`~highdicom.seg.Segmentation.get_volume`)
    whose planes are placed on the grid by position, or, where the frames do
    not form a regular volume (non-uniform spacing, frames without a position,
    ultrasound without patient geometry), by the source image each frame is
    derived from (:meth:`~highdicom.seg.Segmentation.get_pixels_by_source_instance`
    or ``get_pixels_by_source_frame``). Every frame's position and orientation
    is checked against the grid.

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
        Each slice's source SOPInstanceUID and 1-based frame number: places
        frames by the source image they are derived from where they do not form
        a volume.

    Returns
    -------
    SegVolume
        Fractional segments are thresholded at half their maximum value. Every
        segment's own mask is kept (:meth:`SegVolume.mask`); in the label map a
        voxel in several segments takes the lowest segment number (with a
        warning).

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
    n, rows, cols = shape
    if (int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) != (rows, cols):
        raise InputError(
            f"SEG frames are {ds.get('Rows')}x{ds.get('Columns')}, the series {rows}x{cols}",
            path=path,
        )
    grid = (
        affine[:3, 3] + np.arange(n)[:, np.newaxis] * affine[:3, 0]
        if positions_mm is None
        else np.asarray(positions_mm, dtype=float).reshape(n, 3)
    )
    row_dir = affine[:3, 2] / np.linalg.norm(affine[:3, 2])
    col_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    # Header only: every frame on the grid, in the series' orientation.
    try:
        _frame_slices(ds, path, grid, row_dir, col_dir, source_instances)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"unreadable SEG frame descriptions ({exc})", path=path) from None
    try:
        seg = hd.seg.Segmentation.from_dataset(ds, copy=False)
        # Segment 0 of a label-map SEG is the background, not a nodule.
        segments = tuple(
            sorted(
                (
                    _segment(seg.get_segment_description(number))
                    for number in seg.segment_numbers
                    if number > 0
                ),
                key=lambda s: s.number,
            )
        )
    except Exception as exc:
        raise InputError(f"unreadable SEG ({exc})", path=path) from None
    numbers = [s.number for s in segments]
    if not numbers:
        raise InputError("the SEG describes no segment", path=path)
    seg_type = str(ds.get("SegmentationType", "BINARY")).upper()
    # One byte a voxel and segment, except fractional values (rescaled to 0-1).
    dtype = np.float32 if seg_type == "FRACTIONAL" else np.uint8
    try:
        try:
            values = _place_volume(seg, numbers, grid, shape, path, dtype)
        except InputError:
            raise
        except Exception as exc:
            if not source_instances:
                raise InputError(
                    f"SEG frames do not form a volume on the series' grid ({exc})", path=path
                ) from None
            log.debug("%s: not a volume (%s); placed by source images", path, exc)
            values = _by_source(seg, numbers, source_instances, dtype)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"unreadable SEG pixels ({exc})", path=path) from None
    if values.shape[:3] != tuple(shape):
        raise InputError(f"SEG pixels of shape {values.shape[:3]}, not {shape}", path=path)
    # highdicom rescales fractional values to 0-1: threshold at half the maximum.
    planes = values >= 0.5 if seg_type == "FRACTIONAL" else values > 0
    del values
    out = np.zeros(shape, dtype=np.uint32)
    for i in reversed(range(len(numbers))):  # the lowest number is written last
        out[planes[..., i]] = numbers[i]
    overlap = int(np.count_nonzero(planes.sum(axis=-1, dtype=np.uint16) > 1))
    masks = {number: _crop(planes[..., i]) for i, number in enumerate(numbers)} if overlap else {}
    if overlap:
        log.warning(
            "%s: %d voxel(s) in more than one segment; each segment's mask keeps them, "
            "the label map shows the lowest",
            path,
            overlap,
        )
    return SegVolume(
        labels=out,
        segments=segments,
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        path=path,
        masks=masks,
        overlap_voxels=overlap,
    )
