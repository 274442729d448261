"""What a study holds: :class:`Study`, :class:`Stack`, :class:`Volume` and :class:`Role`.

A :class:`Study` is what :func:`backmice.open_study` finds in a folder, file or
DICOMDIR, from headers alone. Each :class:`Stack` is one image volume that can be
loaded (one series, or the part of a series with one orientation, geometry and
image type). :func:`backmice.load` turns a stack into a :class:`Volume`.

Coordinates follow ``docs/SPEC.md``: arrays are indexed ``(slice, row, col)``,
``spacing_mm`` is ``(slice, row, col)`` in millimetres, and ``affine`` maps the
index ``(slice, row, col, 1)`` to DICOM patient coordinates (LPS, mm).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "FrameRef",
    "NiftiSource",
    "RegionOverlay",
    "Role",
    "SkippedFile",
    "Stack",
    "Study",
    "UltrasoundRegion",
    "Volume",
]


class Role(enum.StrEnum):
    """What a stack is for. The rules that assign it are in ``docs/roles.md``."""

    T1 = "t1"
    T2 = "t2"
    FATSAT = "fatsat"
    DIXON_FAT = "dixon_fat"
    DIXON_WATER = "dixon_water"
    DIXON_IN = "dixon_in"
    DIXON_OUT = "dixon_out"
    LOCALIZER = "localizer"
    US = "us"
    SEG = "seg"
    SR = "sr"
    OTHER = "other"

    @property
    def is_image(self) -> bool:
        """True for roles that :func:`backmice.load` turns into a volume."""
        return self not in (Role.SEG, Role.SR)


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file :func:`backmice.open_study` did not use, and why."""

    path: Path
    reason: str


@dataclass(frozen=True, slots=True)
class FrameRef:
    """One 2D image of a stack: a file, or one frame of a multi-frame file.

    Attributes
    ----------
    path : Path
        The file.
    frame : int or None
        0-based frame index in a multi-frame file, None for a single-frame file.
    sop_instance_uid : str
        SOPInstanceUID of the file.
    position : tuple of 3 float or None
        ImagePositionPatient (LPS, mm) of the first transmitted pixel.
    slope, intercept : float
        Rescale applied to the stored values.
    instance_number : int or None
        InstanceNumber, kept for messages only: never used for ordering.
    transfer_syntax : str
        TransferSyntaxUID of the file.
    pixel_offset : int or None
        Byte offset of the PixelData element's value in the file, when it is
        stored uncompressed with a defined length (the fast read path).
    lossy : bool
        LossyImageCompression is ``01`` or the transfer syntax is lossy.
    """

    path: Path
    frame: int | None
    sop_instance_uid: str
    position: tuple[float, float, float] | None
    slope: float = 1.0
    intercept: float = 0.0
    instance_number: int | None = None
    transfer_syntax: str = ""
    pixel_offset: int | None = None
    lossy: bool = False


@dataclass(frozen=True, slots=True)
class UltrasoundRegion:
    """The calibrated 2D tissue region of an ultrasound image.

    Attributes
    ----------
    x0, y0, x1, y1 : int
        Region bounds in pixels of the original image, inclusive
        (RegionLocationMinX0, MinY0, MaxX1, MaxY1).
    delta_x_mm, delta_y_mm : float
        Pixel size along columns and rows, mm (PhysicalDeltaX/Y × 10).
    overlays : tuple of RegionOverlay
        The file's other regions that lie on this one (a grey or colour bar, a
        colour-flow box), in pixels of this region.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    delta_x_mm: float
    delta_y_mm: float
    overlays: tuple[RegionOverlay, ...] = ()


@dataclass(frozen=True, slots=True)
class RegionOverlay:
    """Another region of SequenceOfUltrasoundRegions drawn on the tissue region.

    Attributes
    ----------
    x0, y0, x1, y1 : int
        Its bounds in pixels of the tissue region (inclusive; clipped to it).
    data_type : int
        Its RegionDataType (2 colour flow, 13 grey bar, 14 colour bar, ...).
    """

    x0: int
    y0: int
    x1: int
    y1: int
    data_type: int


@dataclass(frozen=True, slots=True)
class NiftiSource:
    """Where a stack's pixels are in a NIfTI file, and how they are laid out as a stack.

    A NIfTI file is read with SimpleITK (which turns NIfTI's RAS into LPS), its
    array indexed ``(k, j, i)`` as SimpleITK returns it; ``axes`` and ``flips``
    then lay it out like the DICOM series it came from (see
    :mod:`backmice.io.nifti`).

    Attributes
    ----------
    path : Path
        The ``.nii`` or ``.nii.gz`` file.
    volume : int or None
        0-based volume of a 4D file (one echo), None for a 3D file.
    axes : tuple of 3 int
        The file array's axes taken as ``(slice, row, col)`` (a transpose).
    flips : tuple of 3 bool
        Which of ``(slice, row, col)`` are then reversed.
    sidecar : Path or None
        The dcm2niix / BIDS JSON sidecar the role was read from, if any.
    """

    path: Path
    volume: int | None = None
    axes: tuple[int, int, int] = (0, 1, 2)
    flips: tuple[bool, bool, bool] = (False, False, False)
    sidecar: Path | None = None


@dataclass(slots=True)
class Stack:
    """One loadable image volume of a study, described from headers only.

    Attributes
    ----------
    series_uid, study_uid, frame_of_reference_uid : str
        The UIDs (empty string where the files have none).
    modality : str
        DICOM Modality (``MR``, ``US``, ...).
    role : Role
        What the stack is (``t1``, ``dixon_fat``, ``us``, ...).
    description : str
        SeriesDescription, or a description built from the image type.
    frames : tuple of FrameRef
        The 2D images in slice order (sorted along the slice normal), one per
        position; duplicates are already removed and listed in ``warnings``.
    rows, cols : int
        Size of each stored frame, pixels.
    shape : tuple of 3 int
        Shape of the array :func:`backmice.load` returns, ``(slice, row, col)``
        (for ultrasound, after cropping to the tissue region).
    spacing_mm : tuple of 3 (float or None)
        ``(slice, row, col)`` spacing in mm; None where unknown (no geometry, a
        single slice, ultrasound frames in time).
    affine : ndarray of shape (4, 4)
        Index ``(slice, row, col)`` to LPS mm. For ultrasound, to the image plane
        in mm with the origin at the top-left of the tissue region (x along
        columns, y down into the body). Without calibration it maps to pixels.
    calibrated : bool
        True when the in-plane spacing is known in mm.
    orientation : str or None
        ``axial``, ``sagittal``, ``coronal``, ``oblique``, or None (no geometry).
    photometric : str
        PhotometricInterpretation of the files.
    image_type : tuple of str
        ImageType (or FrameType for enhanced multi-frame) of the stack.
    region : UltrasoundRegion or None
        The tissue region ultrasound is calibrated from and cropped to.
    slice_positions_mm : tuple of float
        Position of each frame along the slice normal, mm (empty without geometry).
    n_files : int
        Number of distinct files the stack reads.
    bits_allocated, bits_stored, pixel_representation, samples_per_pixel : int
        Pixel format of the files.
    duplicates : tuple of (int, FrameRef)
        Other images found at the position of slice ``i`` (same place, different
        SOPInstanceUID); :func:`backmice.load` compares their content and says
        whether they were copies.
    warnings : list of str
        What the user should know (non-uniform spacing, duplicates, ...).
    echo_time_ms : float or None
        EchoTime of the stack's images, ms (MR; a series holding several echoes
        is split into one stack per echo).
    echo_number : int or None
        EchoNumbers of the stack's images.
    post_contrast : bool
        A dynamic or post-contrast series (:func:`backmice.io.roles.is_post_contrast`):
        the analysis prefers a pre-contrast stack of the same role.
    nifti : NiftiSource or None
        Set for a stack read from a NIfTI file (:mod:`backmice.io.nifti`): its
        ``series_uid`` is then the file's name (its path below the study
        folder), as the results report it, and it has no DICOM instances.
    """

    series_uid: str
    study_uid: str
    frame_of_reference_uid: str
    modality: str
    role: Role
    description: str
    frames: tuple[FrameRef, ...]
    rows: int
    cols: int
    shape: tuple[int, int, int]
    spacing_mm: tuple[float | None, float | None, float | None]
    affine: np.ndarray
    calibrated: bool
    orientation: str | None
    photometric: str = "MONOCHROME2"
    image_type: tuple[str, ...] = ()
    region: UltrasoundRegion | None = None
    slice_positions_mm: tuple[float, ...] = ()
    n_files: int = 0
    bits_allocated: int = 16
    pixel_representation: int = 0
    samples_per_pixel: int = 1
    bits_stored: int = 16
    series_number: int | None = None
    duplicates: tuple[tuple[int, FrameRef], ...] = ()
    warnings: list[str] = field(default_factory=list)
    echo_time_ms: float | None = None
    echo_number: int | None = None
    post_contrast: bool = False
    nifti: NiftiSource | None = None

    @property
    def units(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return "mm" if self.calibrated else "px"

    @property
    def paths(self) -> tuple[Path, ...]:
        """The distinct files of the stack, in slice order."""
        return tuple(dict.fromkeys(f.path for f in self.frames))

    def summary(self) -> dict:
        """The stack as ``backmice info --json`` reports it (JSON-ready)."""
        return {
            "series_uid": self.series_uid,
            "modality": self.modality,
            "role": str(self.role),
            "description": self.description,
            "n_files": self.n_files,
            "shape": list(self.shape),
            "spacing_mm": [None if s is None else round(float(s), 6) for s in self.spacing_mm],
            "calibrated": self.calibrated,
            "orientation": self.orientation,
            "echo_time_ms": None if self.echo_time_ms is None else round(self.echo_time_ms, 4),
        }


@dataclass(slots=True)
class Study:
    """What :func:`backmice.open_study` found under a path.

    Attributes
    ----------
    path : Path
        The folder, file or DICOMDIR given.
    stacks : list of Stack
        The loadable stacks, ordered by series then role.
    skipped : list of SkippedFile
        Files that are not DICOM or could not be read, with the reason.
    """

    path: Path
    stacks: list[Stack]
    skipped: list[SkippedFile] = field(default_factory=list)

    def by_role(self, role: Role | str) -> list[Stack]:
        """The stacks with the given role."""
        role = Role(role)
        return [s for s in self.stacks if s.role is role]

    def summary(self) -> dict:
        """The study as ``backmice info --json`` reports it (JSON-ready)."""
        return {
            "series": [s.summary() for s in self.stacks],
            "skipped": [{"path": str(s.path), "reason": s.reason} for s in self.skipped],
        }


@dataclass(slots=True)
class Volume:
    """A loaded image volume.

    Attributes
    ----------
    array : ndarray of float32, shape (slice, row, col)
        Rescaled pixel values (RescaleSlope/Intercept applied per slice); for
        colour ultrasound, the luminance.
    spacing_mm : tuple of 3 (float or None)
        ``(slice, row, col)`` spacing, mm; None where unknown.
    affine : ndarray of float64, shape (4, 4)
        Index ``(slice, row, col, 1)`` to LPS mm (see :class:`Stack`).
    modality, role, description
        As in :class:`Stack`.
    study_uid, series_uid, frame_of_reference_uid : str
        The UIDs.
    sop_instance_uids : tuple of str
        SOPInstanceUID of each slice, in array order (for a multi-frame file the
        same UID repeats; see ``frame_numbers``).
    frame_numbers : tuple of int or None
        1-based frame number of each slice in its file (None for single-frame files).
    calibrated : bool
        True when spacing is known in mm.
    color : ndarray of uint8, shape (slice, row, col, 3), or None
        The RGB image for display (colour ultrasound only).
    origin_px : tuple of 2 int
        ``(row, col)`` of the array's first pixel in the stored image (non-zero
        when ultrasound is cropped to its tissue region).
    overlays : tuple of RegionOverlay
        Ultrasound only: the file's other regions drawn on the tissue region
        (grey and colour bars, colour-flow boxes), in pixels of the array.
    warnings : list of str
        What the user should know about this volume.
    """

    array: np.ndarray
    spacing_mm: tuple[float | None, float | None, float | None]
    affine: np.ndarray
    modality: str
    role: Role
    description: str
    study_uid: str
    series_uid: str
    frame_of_reference_uid: str
    sop_instance_uids: tuple[str, ...]
    frame_numbers: tuple[int | None, ...]
    calibrated: bool
    orientation: str | None = None
    color: np.ndarray | None = None
    origin_px: tuple[int, int] = (0, 0)
    overlays: tuple[RegionOverlay, ...] = ()
    slice_positions_mm: tuple[float, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def of_stack(
        cls,
        stack: Stack,
        array: np.ndarray,
        *,
        sop_instance_uids: tuple[str, ...],
        frame_numbers: tuple[int | None, ...],
        warnings: list[str],
        color: np.ndarray | None = None,
        origin_px: tuple[int, int] = (0, 0),
        overlays: tuple[RegionOverlay, ...] = (),
    ) -> Volume:
        """The volume of ``stack``'s pixels ``array``: what a volume takes from its stack.

        Parameters
        ----------
        stack : Stack
            Its geometry (spacing, affine, orientation, slice positions), names
            and role.
        array : ndarray of float32, shape (slice, row, col)
        sop_instance_uids, frame_numbers : tuple
            Per slice (empty strings and None for a file that has none).
        warnings : list of str
        color, origin_px, overlays
            An ultrasound region's colour pixels, crop origin and overlays.
        """
        return cls(
            array=array,
            spacing_mm=stack.spacing_mm,
            affine=stack.affine.copy(),
            modality=stack.modality,
            role=stack.role,
            description=stack.description,
            study_uid=stack.study_uid,
            series_uid=stack.series_uid,
            frame_of_reference_uid=stack.frame_of_reference_uid,
            sop_instance_uids=sop_instance_uids,
            frame_numbers=frame_numbers,
            calibrated=stack.calibrated,
            orientation=stack.orientation,
            color=color,
            origin_px=origin_px,
            overlays=overlays,
            slice_positions_mm=stack.slice_positions_mm,
            warnings=warnings,
        )

    @property
    def units(self) -> str:
        """``mm`` when calibrated, else ``px``."""
        return "mm" if self.calibrated else "px"

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(slice, row, col)``."""
        n_slices, rows, cols = self.array.shape[:3]
        return (n_slices, rows, cols)
