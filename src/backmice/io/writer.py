"""Write synthetic DICOM that a scanner could have written.

Used by the tests, the benchmarks and the phantom generator. Three writers:

- :func:`write_series`: an MR (or CT, PET, ...) series, one file per slice with
  full geometry, or one Enhanced MR/CT multi-frame file (``enhanced=True``).
- :func:`write_ultrasound`: an ultrasound image or cine loop, calibrated only
  through SequenceOfUltrasoundRegions (see :func:`ultrasound_region`).
- :func:`make_affine` and :func:`rotation_matrix` build the geometry.

Geometry follows ``docs/SPEC.md`` and the loader: an array is indexed
``(slice, row, col)`` and a 4×4 affine maps the index ``(slice, row, col, 1)``
to DICOM patient coordinates (LPS, mm):

- column 2 = direction of increasing column index × column spacing
  (ImageOrientationPatient[0:3] × PixelSpacing[1]);
- column 1 = direction of increasing row index × row spacing
  (ImageOrientationPatient[3:6] × PixelSpacing[0]);
- column 0 = the step from one slice to the next (normally the slice normal
  ``IOP[0:3] × IOP[3:6]`` times the slice spacing);
- column 3 = ImagePositionPatient of slice 0.

Transfer syntaxes that can be written (:data:`WRITABLE_TRANSFER_SYNTAXES`):
Explicit and Implicit VR Little Endian, Explicit VR Big Endian (retired, but
still found), Deflated Explicit VR Little Endian, RLE Lossless, JPEG-LS
Lossless, JPEG-LS Near-Lossless (lossy, ``jls_error`` 2 by default), JPEG 2000
Lossless and JPEG 2000 (lossy, compression ratio 10 by default). The JPEG 2000
encoder (openjpeg) needs at least 32 rows and 32 columns. JPEG baseline and
JPEG Lossless (process 14) cannot be written: no encoder is available.

Everything is deterministic for a given ``seed``: UIDs come from
:func:`pydicom.uid.generate_uid` with fixed entropy sources, and shuffling uses
:func:`numpy.random.default_rng`.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.tag import Tag
from pydicom.uid import (
    JPEG2000,
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    CTImageStorage,
    DeflatedExplicitVRLittleEndian,
    EnhancedCTImageStorage,
    EnhancedMRImageStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    MRImageStorage,
    PositronEmissionTomographyImageStorage,
    RLELossless,
    SecondaryCaptureImageStorage,
    UltrasoundImageStorage,
    UltrasoundMultiFrameImageStorage,
    generate_uid,
)
from pydicom.valuerep import DSfloat

__all__ = [
    "COMPRESSED_TRANSFER_SYNTAXES",
    "LOSSY_TRANSFER_SYNTAXES",
    "WRITABLE_TRANSFER_SYNTAXES",
    "make_affine",
    "rotation_matrix",
    "ultrasound_region",
    "write_series",
    "write_ultrasound",
]

logger = logging.getLogger(__name__)

#: Transfer syntaxes written without compression.
NATIVE_TRANSFER_SYNTAXES: frozenset[UID] = frozenset(
    {
        ExplicitVRLittleEndian,
        ImplicitVRLittleEndian,
        ExplicitVRBigEndian,
        DeflatedExplicitVRLittleEndian,
    }
)
#: Compressed transfer syntaxes the installed encoders can write.
COMPRESSED_TRANSFER_SYNTAXES: frozenset[UID] = frozenset(
    {RLELossless, JPEGLSLossless, JPEGLSNearLossless, JPEG2000Lossless, JPEG2000}
)
#: The lossy ones among them (the writer sets LossyImageCompression ``01``).
LOSSY_TRANSFER_SYNTAXES: frozenset[UID] = frozenset({JPEGLSNearLossless, JPEG2000})
#: Every transfer syntax :func:`write_series` and :func:`write_ultrasound` accept.
WRITABLE_TRANSFER_SYNTAXES: frozenset[UID] = NATIVE_TRANSFER_SYNTAXES | COMPRESSED_TRANSFER_SYNTAXES

_LOSSY_METHOD = {JPEGLSNearLossless: "ISO_14495_1", JPEG2000: "ISO_15444_1"}
_DEFAULT_COMPRESSION_OPTIONS: dict[UID, dict[str, Any]] = {
    JPEGLSNearLossless: {"jls_error": 2},
    JPEG2000: {"j2k_cr": [10]},
}

_BASE_DIRECTIONS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    # orientation: (direction of increasing column index, of increasing row index)
    "axial": ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0)),
    "sagittal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0)),
    "coronal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0)),
}

_SOP_CLASS_BY_MODALITY = {
    "MR": MRImageStorage,
    "CT": CTImageStorage,
    "PT": PositronEmissionTomographyImageStorage,
}
_ENHANCED_SOP_CLASS = {"MR": EnhancedMRImageStorage, "CT": EnhancedCTImageStorage}

#: MR acquisition tags written by default (any of them can be replaced or
#: removed, with None, through ``extra_tags``).
MR_DEFAULTS: dict[str, Any] = {
    "ScanningSequence": "SE",
    "SequenceVariant": "NONE",
    "ScanOptions": "",
    "MRAcquisitionType": "2D",
    "RepetitionTime": 550.0,
    "EchoTime": 12.0,
    "EchoTrainLength": 3,
    "FlipAngle": 90.0,
    "MagneticFieldStrength": 1.5,
    "ImagingFrequency": 63.87,
    "ImagedNucleus": "1H",
    "NumberOfAverages": 1.0,
    "PercentSampling": 100.0,
    "PercentPhaseFieldOfView": 100.0,
}

_STUDY_DATE = "20240115"
_STUDY_TIME = "093000"
_FRAME_TIME_INCREMENT = 0x00181063  # FrameTime


# --------------------------------------------------------------------------- geometry


def rotation_matrix(axis: str | Sequence[float] | np.ndarray, degrees: float) -> np.ndarray:
    """Rotation about an axis through the origin (right-handed).

    Parameters
    ----------
    axis : {"x", "y", "z"} or array_like of shape (3,)
        The axis, in LPS (``x`` toward the patient's left, ``y`` posterior,
        ``z`` superior), or any non-zero vector.
    degrees : float
        Rotation angle, degrees; positive is counter-clockwise looking down
        the axis toward the origin.

    Returns
    -------
    ndarray of float64, shape (3, 3)
        The rotation matrix ``R``; rotate a column vector ``v`` as ``R @ v``.
    """
    if isinstance(axis, str):
        try:
            vec = np.eye(3)["xyz".index(axis.lower())]
        except ValueError:
            raise ValueError(f"axis must be 'x', 'y', 'z' or a 3-vector, not {axis!r}") from None
    else:
        vec = np.asarray(axis, dtype=np.float64).reshape(3)
    norm = np.linalg.norm(vec)
    if norm == 0:
        raise ValueError("rotation axis must not be the zero vector")
    u = vec / norm
    theta = np.deg2rad(degrees)
    k = np.array([[0.0, -u[2], u[1]], [u[2], 0.0, -u[0]], [-u[1], u[0], 0.0]])
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def make_affine(
    spacing_mm: Sequence[float],
    *,
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    rotation: np.ndarray | None = None,
    orientation: str = "axial",
) -> np.ndarray:
    """Affine from index ``(slice, row, col)`` to LPS mm for a standard or oblique series.

    Parameters
    ----------
    spacing_mm : sequence of 3 float
        ``(slice, row, col)`` spacing, mm: the distance between slice planes,
        PixelSpacing[0] (between rows) and PixelSpacing[1] (between columns).
    origin : sequence of 3 float, optional
        ImagePositionPatient of slice 0 (centre of its first pixel), LPS mm.
    rotation : ndarray of shape (3, 3), optional
        Rotation applied to the three directions of ``orientation`` (not to
        the origin) to make an oblique series; see :func:`rotation_matrix`.
    orientation : {"axial", "sagittal", "coronal"}
        Base directions. Axial: columns increase toward +x (left), rows toward
        +y (posterior), slices toward +z (IOP ``[1,0,0,0,1,0]``). Sagittal: IOP
        ``[0,1,0,0,0,-1]``, slices toward -x. Coronal: IOP ``[1,0,0,0,0,-1]``,
        slices toward +y. The slice step is always the normal
        ``IOP[0:3] × IOP[3:6]`` times the slice spacing.

    Returns
    -------
    ndarray of float64, shape (4, 4)
        Column 0: slice step (mm), column 1: row step, column 2: column step,
        column 3: origin; last row ``[0, 0, 0, 1]``.
    """
    spacing = np.asarray(spacing_mm, dtype=np.float64).reshape(3)
    if np.any(spacing <= 0) or not np.all(np.isfinite(spacing)):
        raise ValueError(f"spacing_mm must be three positive numbers, not {spacing_mm!r}")
    try:
        col_dir, row_dir = (np.array(v) for v in _BASE_DIRECTIONS[orientation])
    except KeyError:
        raise ValueError(
            f"orientation must be one of {sorted(_BASE_DIRECTIONS)}, not {orientation!r}"
        ) from None
    normal = np.cross(col_dir, row_dir)
    if rotation is not None:
        rot = np.asarray(rotation, dtype=np.float64)
        if rot.shape != (3, 3) or not np.allclose(rot @ rot.T, np.eye(3), atol=1e-9):
            raise ValueError("rotation must be a 3x3 orthonormal matrix")
        col_dir, row_dir, normal = rot @ col_dir, rot @ row_dir, rot @ normal
    affine = np.eye(4)
    affine[:3, 0] = normal * spacing[0]
    affine[:3, 1] = row_dir * spacing[1]
    affine[:3, 2] = col_dir * spacing[2]
    affine[:3, 3] = np.asarray(origin, dtype=np.float64).reshape(3)
    return affine


def _geometry(affine: np.ndarray) -> dict[str, Any]:
    """IOP, PixelSpacing, slice step and normal from an affine (see module docstring)."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise ValueError("affine must be a finite 4x4 array")
    col_vec, row_vec, slice_vec = a[:3, 2], a[:3, 1], a[:3, 0]
    col_sp, row_sp = float(np.linalg.norm(col_vec)), float(np.linalg.norm(row_vec))
    if col_sp == 0 or row_sp == 0:
        raise ValueError("affine columns 1 and 2 (row and column steps) must be non-zero")
    col_dir, row_dir = col_vec / col_sp, row_vec / row_sp
    if abs(float(col_dir @ row_dir)) > 1e-6:
        raise ValueError("affine row and column directions must be perpendicular")
    normal = np.cross(col_dir, row_dir)
    return {
        "iop": np.concatenate([col_dir, row_dir]),
        "pixel_spacing": (row_sp, col_sp),
        "slice_vec": slice_vec,
        "slice_spacing": abs(float(slice_vec @ normal)),
        "normal": normal,
        "origin": a[:3, 3],
    }


# --------------------------------------------------------------------------- helpers


def _ds(value: float) -> DSfloat:
    """A DS value of at most 16 characters (tiny rounding noise removed)."""
    v = float(np.round(float(value), 10)) + 0.0  # + 0.0 turns -0.0 into 0.0
    return DSfloat(v, auto_format=True)


def _ds_list(values: Sequence[float] | np.ndarray) -> list[DSfloat]:
    return [_ds(v) for v in np.asarray(values, dtype=np.float64).ravel()]


def _uid(*parts: object) -> UID:
    return generate_uid(entropy_srcs=["backmice.writer", *(str(p) for p in parts)])


def _is_monotone(order: np.ndarray) -> bool:
    d = np.diff(order)
    return bool(np.all(d > 0) or np.all(d < 0))


def _shuffled_permutation(rng: np.random.Generator, n: int) -> np.ndarray:
    """A permutation of ``range(n)`` that is neither increasing nor decreasing (n >= 3)."""
    perm = rng.permutation(n)
    while n >= 3 and _is_monotone(perm):
        perm = rng.permutation(n)
    return perm


def _random_names(rng: np.random.Generator, n: int) -> list[int]:
    """n distinct numbers whose sorted (string) order is neither slice order nor its reverse."""
    high = max(10_000, 10 * n)
    while True:
        nums = rng.choice(np.arange(1000, high), size=n, replace=False)
        order = np.argsort([str(v) for v in nums], kind="stable")
        if n < 3 or not _is_monotone(order):
            return [int(v) for v in nums]


def _per_slice(value: float | Sequence[float] | None, n: int, name: str) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim == 0:
        return np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValueError(f"{name} must be a number or one number per slice ({n}), not {arr.shape}")
    return arr


def _to_stored(
    array: np.ndarray,
    slopes: np.ndarray | None,
    intercepts: np.ndarray | None,
    bits_stored: int,
) -> np.ndarray:
    """Real-world values ``(slice, row, col)`` to stored uint16 or int16 values."""
    if slopes is None and intercepts is None:
        if array.dtype.kind in "ui":
            stored = array.astype(np.int64)
        else:
            stored = np.rint(array.astype(np.float64))
    else:
        n = array.shape[0]
        s = np.ones(n) if slopes is None else slopes
        b = np.zeros(n) if intercepts is None else intercepts
        if np.any(s == 0):
            raise ValueError("rescale_slope must not be 0")
        stored = np.rint((array.astype(np.float64) - b[:, None, None]) / s[:, None, None])
    if not np.all(np.isfinite(stored)):
        raise ValueError("array contains NaN or infinite values")
    lo, hi = float(stored.min()), float(stored.max())
    if lo >= 0 and hi <= 2**bits_stored - 1:
        return stored.astype(np.uint16)
    if lo >= -(2 ** (bits_stored - 1)) and hi <= 2 ** (bits_stored - 1) - 1:
        return stored.astype(np.int16)
    raise ValueError(
        f"stored values span [{lo:g}, {hi:g}], which does not fit {bits_stored} bits; "
        "pass rescale_slope/rescale_intercept or scale the array"
    )


def _apply_extra_tags(ds: Dataset, extra_tags: Mapping[Any, Any] | None) -> None:
    """Set (or, with value None, delete) elements by keyword, tag or DataElement."""
    for key, value in (extra_tags or {}).items():
        if isinstance(value, DataElement):
            ds.add(value)
            continue
        if isinstance(key, str):
            if value is None:
                if key in ds:
                    del ds[key]
            else:
                setattr(ds, key, value)
            continue
        tag = Tag(key)
        if value is None:
            if tag in ds:
                del ds[tag]
        elif isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
            ds.add_new(tag, value[0], value[1])
        else:
            raise ValueError(f"extra_tags[{key!r}]: give a (VR, value) pair for a numeric tag")


def _patient_study_series(
    *,
    modality: str,
    patient_name: str,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    series_number: int,
    series_description: str,
) -> Dataset:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _STUDY_DATE
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _STUDY_TIME
    ds.AccessionNumber = ""
    ds.Modality = modality
    ds.Manufacturer = "backmice"
    ds.InstitutionName = "backmice phantom"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "backmice synthetic study"
    ds.SeriesDescription = series_description
    ds.ManufacturerModelName = "backmice.io.writer"
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = ""
    ds.PatientSex = "O"
    ds.BodyPartExamined = "LSPINE"
    ds.SoftwareVersions = pydicom.__version__
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = "1"
    ds.SeriesNumber = series_number
    ds.AcquisitionNumber = 1
    return ds


def _file_meta(sop_class: str, sop_instance: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "BACKMICE_WRITER"
    return meta


def _check_transfer_syntax(transfer_syntax: str, rows: int, cols: int) -> UID:
    ts = UID(transfer_syntax)
    if ts not in WRITABLE_TRANSFER_SYNTAXES:
        raise ValueError(
            f"cannot write transfer syntax {ts} ({ts.name}); writable: "
            + ", ".join(sorted(u.name for u in WRITABLE_TRANSFER_SYNTAXES))
        )
    if ts in (JPEG2000, JPEG2000Lossless) and min(rows, cols) < 32:
        raise ValueError(f"JPEG 2000 needs at least 32 rows and columns, not {rows}x{cols}")
    return ts


def _set_pixels(
    ds: Dataset,
    stored: np.ndarray,
    transfer_syntax: UID,
    compression_options: Mapping[str, Any] | None,
) -> None:
    """Put ``stored`` into PixelData and encode it in ``transfer_syntax``."""
    data = np.ascontiguousarray(stored)
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PixelData = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
    ds["PixelData"].VR = "OB" if data.dtype.itemsize == 1 else "OW"
    if transfer_syntax in COMPRESSED_TRANSFER_SYNTAXES:
        options = dict(_DEFAULT_COMPRESSION_OPTIONS.get(transfer_syntax, {}))
        options.update(compression_options or {})
        ds.compress(transfer_syntax, **options)
        if transfer_syntax in LOSSY_TRANSFER_SYNTAXES:
            ds.LossyImageCompression = "01"
            ratio = data.nbytes / max(1, len(ds.PixelData))
            ds.LossyImageCompressionRatio = [_ds(round(ratio, 2))]
            ds.LossyImageCompressionMethod = [_LOSSY_METHOD[transfer_syntax]]
    elif transfer_syntax == ExplicitVRBigEndian:
        ds.file_meta.TransferSyntaxUID = transfer_syntax
        ds.PixelData = data.astype(data.dtype.newbyteorder(">")).tobytes()
    else:
        ds.file_meta.TransferSyntaxUID = transfer_syntax


def _save(ds: Dataset, path: Path, *, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True or write to another folder")
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.save_as(path, enforce_file_format=True)


# --------------------------------------------------------------------------- series


def write_series(
    array: np.ndarray,
    out_dir: str | Path,
    *,
    affine: np.ndarray,
    modality: str = "MR",
    series_description: str = "",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "M", "NONE"),
    positions: np.ndarray | Sequence[Sequence[float]] | None = None,
    slice_thickness: float | None = None,
    rescale_slope: float | Sequence[float] | None = None,
    rescale_intercept: float | Sequence[float] | None = None,
    bits_stored: int = 16,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    series_number: int = 1,
    patient_name: str = "PHANTOM^BACKMICE",
    patient_id: str = "PHANTOM",
    shuffle: bool = False,
    seed: int = 0,
    enhanced: bool = False,
    frame_types: Sequence[Sequence[str]] | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    compression_options: Mapping[str, Any] | None = None,
    extra_tags: Mapping[Any, Any] | None = None,
    filename_pattern: str | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write a volume as a DICOM series, one file per slice or one enhanced multi-frame file.

    Parameters
    ----------
    array : array_like, shape (slice, row, col) or (row, col)
        Real-world pixel values (what the loader should return). Stored values
        are ``round((array - rescale_intercept) / rescale_slope)`` when a rescale
        is given, else ``round(array)``; they are stored as uint16 when none is
        negative, else int16 (PixelRepresentation 0 or 1).
    out_dir : str or Path
        Folder to write into (created if missing).
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col, 1)`` to LPS mm (see :func:`make_affine`).
        Gives ImageOrientationPatient, PixelSpacing and, unless ``positions``
        is given, ImagePositionPatient ``affine[:3, 3] + k * affine[:3, 0]``.
    modality : str
        ``MR`` (MR Image Storage), ``CT``, ``PT``; anything else is written as
        Secondary Capture. MR gets the acquisition tags of :data:`MR_DEFAULTS`.
    series_description : str
        SeriesDescription.
    image_type : sequence of str
        ImageType (and, for ``enhanced``, the default FrameType).
    positions : array_like of shape (slice, 3), optional
        Explicit ImagePositionPatient per slice, LPS mm (non-uniform spacing,
        gaps, duplicates). SpacingBetweenSlices still comes from the affine.
    slice_thickness : float, optional
        SliceThickness, mm; default the slice spacing (the distance between
        planes, ``|affine[:3, 0] · normal|``). Set it to something else to prove
        a reader does not use it.
    rescale_slope, rescale_intercept : float or sequence of float, optional
        RescaleSlope/Intercept, one value or one per slice. Written only when
        given (for CT, slope 1 and intercept 0 are always written).
    bits_stored : int
        BitsStored (BitsAllocated is 16, HighBit ``bits_stored - 1``); the
        stored values must fit.
    study_uid, series_uid, frame_of_reference_uid : str, optional
        UIDs; by default derived deterministically from ``seed``,
        ``patient_id``, ``series_number``, ``series_description`` and
        ``modality`` (so several series written with one seed share a study
        and frame of reference, and differ in series UID). SOPInstanceUIDs
        come from the series UID, ``seed``, ``series_number``, ``image_type``
        and each slice's index and position, so calls that share a
        ``series_uid`` (Dixon components, a 3-plane localizer) write distinct
        instances as long as one of those differs.
    series_number : int
        SeriesNumber.
    patient_name, patient_id : str
        PatientName, PatientID.
    shuffle : bool
        Make file names random (``IM_48213``, no extension, like PACS exports),
        InstanceNumbers a permutation that is neither slice order nor its
        reverse, and write the files in random order. For ``enhanced``, the
        frames are stored in shuffled order instead.
    seed : int
        Seed of the UIDs and of the shuffling.
    enhanced : bool
        Write one Enhanced MR (or CT) Image Storage multi-frame file with
        shared and per-frame functional groups instead of one file per slice.
    frame_types : sequence of sequence of str, optional
        Enhanced only: FrameType of each frame (written in a per-frame
        MRImageFrameTypeSequence). Frames with equal FrameType form one stack
        (StackID 1, 2, ... in order of first appearance); the k-th frame of a
        stack is placed at ``affine[:3, 3] + k * affine[:3, 0]``. So a Dixon
        pair is ``np.concatenate([fat, water])`` with
        ``frame_types=[FAT_TYPE] * n + [WATER_TYPE] * n``.
    transfer_syntax : str
        One of :data:`WRITABLE_TRANSFER_SYNTAXES`.
    compression_options : mapping, optional
        Passed to :meth:`pydicom.dataset.Dataset.compress` (e.g.
        ``{"jls_error": 3}`` or ``{"j2k_cr": [20]}`` for the lossy syntaxes).
    extra_tags : mapping, optional
        Set on every file after everything else: keyword -> value (value None
        deletes the element, e.g. ``{"SliceLocation": None}``), numeric tag ->
        ``(VR, value)``, or any key -> :class:`~pydicom.dataelem.DataElement`.
        Examples: ``{"ScanOptions": "FS"}``, ``{"ImageType": [...]}``.
    filename_pattern : str, optional
        :meth:`str.format` pattern for file names with fields ``index``
        (0-based slice), ``instance`` (InstanceNumber), ``series``
        (series_number) and ``random`` (a random number). Default
        ``S{series:03d}_IM{instance:04d}.dcm``, or ``IM_{random}`` with
        ``shuffle``.
    overwrite : bool
        Replace existing files instead of raising :class:`FileExistsError`.

    Returns
    -------
    list of Path
        The files written, in slice order (one path for ``enhanced``).
    """
    data = np.asarray(array)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3 or min(data.shape) == 0:
        raise ValueError(f"array must have shape (slice, row, col), not {np.shape(array)}")
    if not 1 <= bits_stored <= 16:
        raise ValueError("bits_stored must be 1..16")
    n, rows, cols = data.shape
    ts = _check_transfer_syntax(transfer_syntax, rows, cols)
    geo = _geometry(affine)
    modality = modality.upper()
    out = Path(out_dir)

    slopes = _per_slice(rescale_slope, n, "rescale_slope")
    intercepts = _per_slice(rescale_intercept, n, "rescale_intercept")
    stored = _to_stored(data, slopes, intercepts, bits_stored)
    if modality == "CT" and slopes is None and intercepts is None:
        slopes, intercepts = np.ones(n), np.zeros(n)
    # (slopes, intercepts) per slice, or None when the files carry no rescale.
    rescale = (
        None
        if slopes is None and intercepts is None
        else (
            np.ones(n) if slopes is None else slopes,
            np.zeros(n) if intercepts is None else intercepts,
        )
    )

    frame_tuples = None if frame_types is None else [tuple(ft) for ft in frame_types]
    if frame_tuples is not None:
        if not enhanced:
            raise ValueError("frame_types needs enhanced=True (use image_type per series)")
        if len(frame_tuples) != n:
            raise ValueError(
                f"frame_types needs one entry per frame ({n}), not {len(frame_tuples)}"
            )
    stack_ids, in_stack = _stacks(frame_tuples, n)

    if positions is None:
        pos = geo["origin"][None, :] + in_stack[:, None] * geo["slice_vec"][None, :]
    else:
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (n, 3):
            raise ValueError(f"positions must have shape ({n}, 3), not {pos.shape}")

    study_uid = study_uid or _uid("study", patient_id, seed)
    frame_of_reference_uid = frame_of_reference_uid or _uid("for", patient_id, seed)
    series_uid = series_uid or _uid(
        "series", study_uid, series_number, series_description, modality, seed
    )
    rng = np.random.default_rng([seed, series_number])

    base = _patient_study_series(
        modality=modality,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=study_uid,
        series_uid=series_uid,
        series_number=series_number,
        series_description=series_description,
    )
    base.FrameOfReferenceUID = frame_of_reference_uid
    base.PositionReferenceIndicator = ""
    base.PatientPosition = "HFS"
    base.ImageType = list(image_type)
    base.SamplesPerPixel = 1
    base.PhotometricInterpretation = "MONOCHROME2"
    base.Rows, base.Columns = rows, cols
    base.BitsAllocated = 16
    base.BitsStored = bits_stored
    base.HighBit = bits_stored - 1
    base.PixelRepresentation = 1 if stored.dtype == np.int16 else 0
    base.BurnedInAnnotation = "NO"
    lo, hi = float(data.min()), float(data.max())
    base.WindowCenter = _ds((lo + hi) / 2)
    base.WindowWidth = _ds(max(hi - lo, 1.0))
    slice_thickness = geo["slice_spacing"] if slice_thickness is None else slice_thickness
    thickness_ds = _ds(slice_thickness)
    spacing_between = _ds(geo["slice_spacing"])
    pixel_spacing = _ds_list(geo["pixel_spacing"])
    iop = _ds_list(geo["iop"])

    if enhanced:
        return [
            _write_enhanced(
                base,
                stored,
                out,
                modality=modality,
                image_type=tuple(image_type),
                frame_types=frame_tuples,
                stack_ids=stack_ids,
                positions=pos,
                normal=geo["normal"],
                pixel_spacing=pixel_spacing,
                iop=iop,
                thickness=thickness_ds,
                spacing_between=spacing_between,
                slopes=None if rescale is None else rescale[0],
                intercepts=None if rescale is None else rescale[1],
                shuffle=shuffle,
                rng=rng,
                seed=seed,
                transfer_syntax=ts,
                compression_options=compression_options,
                extra_tags=extra_tags,
                filename_pattern=filename_pattern,
                overwrite=overwrite,
            )
        ]

    sop_class = _SOP_CLASS_BY_MODALITY.get(modality, SecondaryCaptureImageStorage)
    base.SOPClassUID = sop_class
    if modality == "MR":
        for key, value in MR_DEFAULTS.items():
            setattr(base, key, value)
    base.SliceThickness = thickness_ds
    if modality == "MR":
        base.SpacingBetweenSlices = spacing_between
    base.PixelSpacing = pixel_spacing
    base.ImageOrientationPatient = iop

    if shuffle:
        instance_numbers = _shuffled_permutation(rng, n) + 1
        randoms = _random_names(rng, n)
        write_order = rng.permutation(n)
    else:
        instance_numbers = np.arange(1, n + 1)
        randoms = [int(v) for v in rng.choice(np.arange(1000, max(10_000, 10 * n)), n, False)]
        write_order = np.arange(n)
    if filename_pattern is None:
        filename_pattern = "IM_{random}" if shuffle else "S{series:03d}_IM{instance:04d}.dcm"

    paths: list[Path | None] = [None] * n
    for k in write_order:
        ds = copy.deepcopy(base)
        ds.file_meta = _file_meta(sop_class, "")
        ds.SOPInstanceUID = _uid(
            "sop", series_uid, seed, series_number, tuple(image_type), k, pos[k].round(6).tolist()
        )
        ds.InstanceNumber = int(instance_numbers[k])
        ds.ImagePositionPatient = _ds_list(pos[k])
        ds.SliceLocation = _ds(float(pos[k] @ geo["normal"]))
        if rescale is not None:
            ds.RescaleIntercept = _ds(rescale[1][k])
            ds.RescaleSlope = _ds(rescale[0][k])
            ds.RescaleType = "HU" if modality == "CT" else "US"
        _apply_extra_tags(ds, extra_tags)
        _set_pixels(ds, stored[k], ts, compression_options)
        name = filename_pattern.format(
            index=k, instance=int(instance_numbers[k]), series=series_number, random=randoms[k]
        )
        path = out / name
        _save(ds, path, overwrite=overwrite)
        paths[k] = path
    logger.debug("wrote %d %s files (%s) to %s", n, modality, ts.name, out)
    return [p for p in paths if p is not None]


def _stacks(frame_types: Sequence[tuple[str, ...]] | None, n: int) -> tuple[np.ndarray, np.ndarray]:
    """StackID (1-based) and 0-based position within the stack of each frame."""
    if frame_types is None:
        return np.ones(n, dtype=int), np.arange(n)
    ids: dict[tuple[str, ...], int] = {}
    counts: dict[int, int] = {}
    stack_ids, in_stack = np.empty(n, dtype=int), np.empty(n, dtype=int)
    for k, ft in enumerate(frame_types):
        sid = ids.setdefault(ft, len(ids) + 1)
        stack_ids[k] = sid
        in_stack[k] = counts.get(sid, 0)
        counts[sid] = in_stack[k] + 1
    return stack_ids, in_stack


def _item(**elements: Any) -> Dataset:
    ds = Dataset()
    for key, value in elements.items():
        setattr(ds, key, value)
    return ds


def _write_enhanced(
    base: Dataset,
    stored: np.ndarray,
    out: Path,
    *,
    modality: str,
    image_type: tuple[str, ...],
    frame_types: list[tuple[str, ...]] | None,
    stack_ids: np.ndarray,
    positions: np.ndarray,
    normal: np.ndarray,
    pixel_spacing: list[DSfloat],
    iop: list[DSfloat],
    thickness: DSfloat,
    spacing_between: DSfloat,
    slopes: np.ndarray | None,
    intercepts: np.ndarray | None,
    shuffle: bool,
    rng: np.random.Generator,
    seed: int,
    transfer_syntax: UID,
    compression_options: Mapping[str, Any] | None,
    extra_tags: Mapping[Any, Any] | None,
    filename_pattern: str | None,
    overwrite: bool,
) -> Path:
    """One Enhanced MR/CT multi-frame file (see :func:`write_series`)."""
    if modality not in _ENHANCED_SOP_CLASS:
        raise ValueError(f"enhanced=True supports modality MR or CT, not {modality}")
    n = stored.shape[0]
    sop_class = _ENHANCED_SOP_CLASS[modality]
    frame_type_kw = "MRImageFrameTypeSequence" if modality == "MR" else "CTImageFrameTypeSequence"

    # InStackPositionNumber: 1-based rank along the normal within each stack.
    proj = positions @ normal
    in_stack_number = np.empty(n, dtype=int)
    for sid in np.unique(stack_ids):
        members = np.flatnonzero(stack_ids == sid)
        ranks = np.empty(len(members), dtype=int)
        ranks[np.argsort(proj[members], kind="stable")] = np.arange(1, len(members) + 1)
        in_stack_number[members] = ranks

    order = _shuffled_permutation(rng, n) if shuffle else np.arange(n)

    def frame_type_item(ft: Sequence[str]) -> Dataset:
        item = _item(FrameType=list(ft), PixelPresentation="MONOCHROME")
        item.VolumetricProperties = "VOLUME"
        item.VolumeBasedCalculationTechnique = "NONE"
        if modality == "MR":
            item.ComplexImageComponent = "MAGNITUDE"
            item.AcquisitionContrast = "UNKNOWN"
        return item

    def rescale_item(k: int) -> Dataset:
        assert slopes is not None and intercepts is not None
        return _item(
            RescaleIntercept=_ds(intercepts[k]),
            RescaleSlope=_ds(slopes[k]),
            RescaleType="HU" if modality == "CT" else "US",
        )

    per_slice_rescale = (
        slopes is not None
        and intercepts is not None
        and bool(np.ptp(slopes) > 0 or np.ptp(intercepts) > 0)
    )
    shared = Dataset()
    shared.PixelMeasuresSequence = DicomSequence(
        [
            _item(
                PixelSpacing=pixel_spacing,
                SliceThickness=thickness,
                SpacingBetweenSlices=spacing_between,
            )
        ]
    )
    shared.PlaneOrientationSequence = DicomSequence([_item(ImageOrientationPatient=iop)])
    if slopes is not None and not per_slice_rescale:
        shared.PixelValueTransformationSequence = DicomSequence([rescale_item(0)])
    if frame_types is None:
        setattr(shared, frame_type_kw, DicomSequence([frame_type_item(image_type)]))
    if modality == "MR":
        shared.MRTimingAndRelatedParametersSequence = DicomSequence(
            [
                _item(
                    RepetitionTime=MR_DEFAULTS["RepetitionTime"],
                    FlipAngle=MR_DEFAULTS["FlipAngle"],
                    EchoTrainLength=MR_DEFAULTS["EchoTrainLength"],
                )
            ]
        )
        shared.MREchoSequence = DicomSequence([_item(EffectiveEchoTime=MR_DEFAULTS["EchoTime"])])

    per_frame = []
    for k in order:
        item = Dataset()
        item.FrameContentSequence = DicomSequence(
            [
                _item(
                    FrameAcquisitionNumber=1,
                    StackID=str(int(stack_ids[k])),
                    InStackPositionNumber=int(in_stack_number[k]),
                    DimensionIndexValues=[int(stack_ids[k]), int(in_stack_number[k])],
                )
            ]
        )
        item.PlanePositionSequence = DicomSequence(
            [_item(ImagePositionPatient=_ds_list(positions[k]))]
        )
        if per_slice_rescale:
            item.PixelValueTransformationSequence = DicomSequence([rescale_item(int(k))])
        if frame_types is not None:
            setattr(item, frame_type_kw, DicomSequence([frame_type_item(frame_types[k])]))
        per_frame.append(item)

    series_uid = base.SeriesInstanceUID
    dim_uid = _uid("dimension", series_uid)
    ds = copy.deepcopy(base)
    ds.file_meta = _file_meta(sop_class, "")
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid(
        "sop-enhanced", series_uid, seed, base.SeriesNumber, image_type, frame_types, n
    )
    ds.InstanceNumber = 1
    ds.ContentQualification = "PRODUCT"
    ds.PixelPresentation = "MONOCHROME"
    ds.VolumetricProperties = "VOLUME"
    ds.VolumeBasedCalculationTechnique = "NONE"
    if modality == "MR":
        ds.ComplexImageComponent = "MAGNITUDE"
        ds.AcquisitionContrast = "UNKNOWN"
        ds.MRAcquisitionType = MR_DEFAULTS["MRAcquisitionType"]
        ds.MagneticFieldStrength = MR_DEFAULTS["MagneticFieldStrength"]
        ds.ImagingFrequency = MR_DEFAULTS["ImagingFrequency"]
        ds.ResonantNucleus = MR_DEFAULTS["ImagedNucleus"]
    ds.NumberOfFrames = n
    ds.DimensionOrganizationType = "3D"
    ds.DimensionOrganizationSequence = DicomSequence([_item(DimensionOrganizationUID=dim_uid)])
    ds.DimensionIndexSequence = DicomSequence(
        [
            _item(
                DimensionOrganizationUID=dim_uid,
                DimensionIndexPointer=Tag("StackID"),
                FunctionalGroupPointer=Tag("FrameContentSequence"),
                DimensionDescriptionLabel="Stack ID",
            ),
            _item(
                DimensionOrganizationUID=dim_uid,
                DimensionIndexPointer=Tag("InStackPositionNumber"),
                FunctionalGroupPointer=Tag("FrameContentSequence"),
                DimensionDescriptionLabel="In-Stack Position Number",
            ),
        ]
    )
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    for key in ("WindowCenter", "WindowWidth"):  # belong in FrameVOILUTSequence here
        del ds[key]
    _apply_extra_tags(ds, extra_tags)
    _set_pixels(ds, stored[order], transfer_syntax, compression_options)
    if filename_pattern is None:
        filename_pattern = "IM_{random}" if shuffle else "S{series:03d}_ENH.dcm"
    name = filename_pattern.format(
        index=0, instance=1, series=base.SeriesNumber, random=int(rng.integers(1000, 100_000))
    )
    path = out / name
    _save(ds, path, overwrite=overwrite)
    logger.debug("wrote enhanced %s file with %d frames to %s", modality, n, path)
    return path


# --------------------------------------------------------------------------- ultrasound


def ultrasound_region(
    bounds: Sequence[int],
    *,
    delta_mm: Sequence[float] | None = None,
    delta: Sequence[float] | None = None,
    units: Sequence[int] = (3, 3),
    spatial_format: int = 1,
    data_type: int = 1,
    reference_pixel: Sequence[int] | None = None,
    reference_value: Sequence[float] = (0.0, 0.0),
    flags: int = 0,
) -> Dataset:
    """One item of SequenceOfUltrasoundRegions.

    Parameters
    ----------
    bounds : sequence of 4 int
        ``(x0, y0, x1, y1)``: RegionLocationMinX0, MinY0, MaxX1, MaxY1, pixels
        of the stored image, inclusive (x along columns, y along rows).
    delta_mm : sequence of 2 float, optional
        Pixel size ``(dx, dy)`` in mm; written as PhysicalDeltaX/Y in cm
        (``delta_mm / 10``). Needs ``units == (3, 3)``.
    delta : sequence of 2 float, optional
        PhysicalDeltaX/Y as written, in the units of ``units`` (e.g. seconds
        per pixel and cm/s per pixel for a spectral strip). Give exactly one of
        ``delta_mm`` and ``delta``.
    units : sequence of 2 int
        PhysicalUnitsXDirection, PhysicalUnitsYDirection (3 cm, 4 seconds,
        7 cm/s, 0 none, ...).
    spatial_format : int
        RegionSpatialFormat (1 2D, 2 M-mode, 3 spectral, 4 waveform).
    data_type : int
        RegionDataType (1 tissue, 2 colour flow, 3 PW spectral Doppler, ...).
    reference_pixel : sequence of 2 int, optional
        ReferencePixelX0/Y0, relative to the region's top-left corner (as
        DICOM defines it); default the middle of the top edge,
        ``((x1 - x0) // 2, 0)``.
    reference_value : sequence of 2 float
        ReferencePixelPhysicalValueX/Y at the reference pixel.
    flags : int
        RegionFlags.

    Returns
    -------
    pydicom.dataset.Dataset
        The region item.
    """
    x0, y0, x1, y1 = (int(v) for v in bounds)
    if not (0 <= x0 <= x1 and 0 <= y0 <= y1):
        raise ValueError(f"region bounds must be 0 <= x0 <= x1 and 0 <= y0 <= y1, not {bounds}")
    if (delta_mm is None) == (delta is None):
        raise ValueError("give exactly one of delta_mm and delta")
    if delta_mm is not None:
        if tuple(units) != (3, 3):
            raise ValueError("delta_mm needs units (3, 3) (cm)")
        delta = [float(d) / 10.0 for d in delta_mm]
    assert delta is not None
    rx, ry = ((x1 - x0) // 2, 0) if reference_pixel is None else reference_pixel
    item = Dataset()
    item.RegionSpatialFormat = int(spatial_format)
    item.RegionDataType = int(data_type)
    item.RegionFlags = int(flags)
    item.RegionLocationMinX0 = x0
    item.RegionLocationMinY0 = y0
    item.RegionLocationMaxX1 = x1
    item.RegionLocationMaxY1 = y1
    item.ReferencePixelX0 = int(rx)
    item.ReferencePixelY0 = int(ry)
    item.PhysicalUnitsXDirection = int(units[0])
    item.PhysicalUnitsYDirection = int(units[1])
    item.ReferencePixelPhysicalValueX = float(reference_value[0])
    item.ReferencePixelPhysicalValueY = float(reference_value[1])
    item.PhysicalDeltaX = float(delta[0])
    item.PhysicalDeltaY = float(delta[1])
    return item


def write_ultrasound(
    image: np.ndarray,
    out_path: str | Path,
    *,
    region: Sequence[int] | None = None,
    delta_mm: Sequence[float] | None = None,
    reference_pixel: Sequence[int] | None = None,
    extra_regions: Sequence[Dataset | Mapping[str, Any]] = (),
    photometric: str = "MONOCHROME2",
    palette: np.ndarray | None = None,
    frame_time_ms: float | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_number: int = 1,
    series_description: str = "",
    patient_name: str = "PHANTOM^BACKMICE",
    patient_id: str = "PHANTOM",
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "ABDOMINAL", "0001"),
    transfer_syntax: str = ExplicitVRLittleEndian,
    compression_options: Mapping[str, Any] | None = None,
    extra_tags: Mapping[Any, Any] | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write an ultrasound image or cine loop, calibrated only by its regions.

    Parameters
    ----------
    image : array_like of uint8 (or uint16 for MONOCHROME2)
        Shape ``(rows, cols)`` or ``(frames, rows, cols)``; for ``RGB`` and
        ``YBR_FULL`` a trailing axis of 3 RGB samples is added. For
        ``YBR_FULL`` give RGB: the writer converts it. For ``PALETTE COLOR``
        give palette indices. One frame gives Ultrasound Image Storage, more
        give Ultrasound Multi-frame Image Storage.
    out_path : str or Path
        The file to write (parent folders are created).
    region : sequence of 4 int, optional
        ``(x0, y0, x1, y1)`` of the 2D tissue region, pixels, inclusive. None
        writes no SequenceOfUltrasoundRegions (an uncalibrated image) unless
        ``extra_regions`` are given.
    delta_mm : sequence of 2 float, optional
        Pixel size ``(dx, dy)`` in the tissue region, mm (written in cm, units
        code 3). Required with ``region``.
    reference_pixel : sequence of 2 int, optional
        ReferencePixelX0/Y0 of the tissue region, relative to its top-left
        corner (see :func:`ultrasound_region`).
    extra_regions : sequence of Dataset or mapping
        More region items after the tissue region: items from
        :func:`ultrasound_region`, or mappings of keyword -> value (e.g. a
        spectral strip, or a second 2D region that agrees or disagrees).
    photometric : {"MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR"}
        PhotometricInterpretation.
    palette : ndarray of uint8, shape (256, 3), optional
        RGB palette for ``PALETTE COLOR`` (default a grey ramp tinted orange);
        written as 16-bit lookup tables.
    frame_time_ms : float, optional
        FrameTime of a cine loop, ms (default 1000 / 30).
    study_uid, series_uid : str, optional
        UIDs, derived from ``seed`` by default.
    series_number, series_description, patient_name, patient_id
        As in :func:`write_series`.
    image_type : sequence of str
        ImageType (value 4 is the ultrasound mode bit map, ``0001`` = 2D).
    transfer_syntax : str
        One of :data:`WRITABLE_TRANSFER_SYNTAXES`.
    compression_options : mapping, optional
        Passed to :meth:`pydicom.dataset.Dataset.compress`.
    extra_tags : mapping, optional
        As in :func:`write_series` (e.g. ``{"PixelSpacing": [0.1, 0.1]}`` to
        add a misleading PixelSpacing).
    seed : int
        Seed of the UIDs.
    overwrite : bool
        Replace an existing file instead of raising :class:`FileExistsError`.

    Returns
    -------
    Path
        The file written.
    """
    photometric = photometric.upper()
    color = photometric in ("RGB", "YBR_FULL")
    if photometric not in ("MONOCHROME2", "RGB", "YBR_FULL", "PALETTE COLOR"):
        raise ValueError(
            f"photometric must be MONOCHROME2, RGB, YBR_FULL or PALETTE COLOR, not {photometric!r}"
        )
    data = np.asarray(image)
    plane_ndim = 3 if color else 2
    if data.ndim == plane_ndim:
        data = data[None]
    if data.ndim != plane_ndim + 1 or (color and data.shape[-1] != 3):
        raise ValueError(
            f"image for {photometric} must be (rows, cols{', 3' if color else ''}) "
            f"or (frames, rows, cols{', 3' if color else ''}), not {np.shape(image)}"
        )
    allowed = (np.uint8, np.uint16) if photometric == "MONOCHROME2" else (np.uint8,)
    if data.dtype not in allowed:
        raise ValueError(f"{photometric} ultrasound must be {allowed}, not {data.dtype}")
    n_frames, rows, cols = data.shape[:3]
    ts = _check_transfer_syntax(transfer_syntax, rows, cols)
    if region is not None and delta_mm is None:
        raise ValueError("region needs delta_mm (the pixel size in the region)")

    study_uid = study_uid or _uid("study", patient_id, seed)
    series_uid = series_uid or _uid(
        "series", study_uid, series_number, series_description, "US", seed
    )
    multi = n_frames > 1
    sop_class = UltrasoundMultiFrameImageStorage if multi else UltrasoundImageStorage

    ds = Dataset()
    ds.file_meta = _file_meta(sop_class, "")
    ds.update(
        _patient_study_series(
            modality="US",
            patient_name=patient_name,
            patient_id=patient_id,
            study_uid=study_uid,
            series_uid=series_uid,
            series_number=series_number,
            series_description=series_description,
        )
    )
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = _uid(
        "sop-us", series_uid, seed, series_number, Path(out_path).name, data.shape
    )
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "BACK"
    ds.ImageType = list(image_type)
    ds.LossyImageCompression = "00"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 3 if color else 1
    ds.PhotometricInterpretation = photometric
    if color:
        ds.PlanarConfiguration = 0
    bits = 8 * data.dtype.itemsize
    ds.BitsAllocated = ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 0
    if photometric == "PALETTE COLOR":
        _set_palette(ds, palette)
    if multi:
        ds.NumberOfFrames = n_frames
        ft = 1000.0 / 30.0 if frame_time_ms is None else float(frame_time_ms)
        ds.FrameTime = _ds(ft)
        ds.FrameIncrementPointer = Tag(_FRAME_TIME_INCREMENT)
        ds.CineRate = round(1000.0 / ft)
        ds.RecommendedDisplayFrameRate = round(1000.0 / ft)

    regions: list[Dataset] = []
    if region is not None:
        assert delta_mm is not None
        regions.append(
            ultrasound_region(region, delta_mm=delta_mm, reference_pixel=reference_pixel)
        )
    for extra in extra_regions:
        regions.append(extra if isinstance(extra, Dataset) else _item(**dict(extra)))
    if regions:
        ds.SequenceOfUltrasoundRegions = DicomSequence(regions)

    _apply_extra_tags(ds, extra_tags)
    pixels = data
    if photometric == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        pixels = convert_color_space(data, "RGB", "YBR_FULL")
    _set_pixels(ds, pixels if multi else pixels[0], ts, compression_options)
    path = Path(out_path)
    _save(ds, path, overwrite=overwrite)
    logger.debug(
        "wrote ultrasound %s (%d frame(s), %s) to %s", photometric, n_frames, ts.name, path
    )
    return path


def _set_palette(ds: Dataset, palette: np.ndarray | None) -> None:
    if palette is None:
        ramp = np.arange(256)
        palette = np.stack([ramp, (ramp * 0.75).astype(int), (ramp * 0.4).astype(int)], axis=1)
    pal = np.asarray(palette)
    if pal.shape != (256, 3):
        raise ValueError(f"palette must have shape (256, 3), not {pal.shape}")
    lut16 = pal.astype(np.uint16) * 257
    for i, colour in enumerate(("Red", "Green", "Blue")):
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
        setattr(ds, f"{colour}PaletteColorLookupTableData", lut16[:, i].astype("<u2").tobytes())
