"""Where annotations come from: one small interface over result folders and projects.

:class:`Annotations` is everything an exporter needs about one study's nodules
as one reader (or the analysis) left them: the SPEC rows, the label volume on
the series grid and its affine, and the source DICOM files of the series in the
labels' slice order (:class:`SourceSeries`, checked against the labels' grid).

Two sources make them:

* an analysis result folder (what ``backmice analyze PATH --out DIR`` writes):
  :func:`from_result`;
* an annotation project (``backmice.store``): :func:`from_project`.

:func:`open_annotations` picks the right one for a path.

Ultrasound annotations (:attr:`Annotations.placement` set) hold the labels of
one frame's tissue region; :class:`RegionPlacement` says where that region and
frame lie in the stored image, so a SEG or SR can place them back in the full
frame (:meth:`RegionPlacement.to_frame`, :meth:`RegionPlacement.from_frame`).
Their source is matched frame by frame, not by patient geometry (ultrasound
files carry none).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk
from pydicom.dataset import Dataset

from backmice.errors import InputError
from backmice.io.nifti import is_nifti, itk_affine

__all__ = [
    "Annotations",
    "RegionPlacement",
    "SourceSeries",
    "find_series_files",
    "find_ultrasound_files",
    "from_project",
    "from_result",
    "is_project",
    "is_result_folder",
    "open_annotations",
    "read_labels",
    "read_source",
    "read_ultrasound_source",
]

log = logging.getLogger(__name__)

#: Largest difference between a source frame's position and the labels' grid, mm.
POSITION_TOLERANCE_MM = 0.01
#: Largest difference between direction cosines of the source and the labels' grid.
DIRECTION_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class SourceSeries:
    """The source DICOM series of a label volume, matched slice for slice.

    Attributes
    ----------
    datasets : tuple of pydicom Dataset
        The source files as read (with pixel data), in file order for a
        multi-frame file, in slice order for single-frame files.
    paths : tuple of Path
        The file of each dataset.
    frame_of_slice : tuple of (int, int)
        For each slice ``k`` of the labels: ``(dataset index, 0-based frame
        index)``; the frame index is 0 for single-frame files.
    positions_mm : ndarray of float64, shape (slice, 3)
        ImagePositionPatient of each slice's source frame, LPS mm.
    series_uid, study_uid, frame_of_reference_uid : str
        The series' UIDs.
    """

    datasets: tuple[Dataset, ...]
    paths: tuple[Path, ...]
    frame_of_slice: tuple[tuple[int, int], ...]
    positions_mm: np.ndarray
    series_uid: str
    study_uid: str
    frame_of_reference_uid: str

    @property
    def multiframe(self) -> bool:
        """True when the series is one multi-frame file."""
        return len(self.datasets) == 1 and len(self.frame_of_slice) > 1


@dataclass(frozen=True, slots=True)
class RegionPlacement:
    """Where an ultrasound result's labels lie in the stored image.

    Attributes
    ----------
    origin_px : (int, int)
        ``(row, col)`` of the tissue region's first pixel in the stored frame
        (``region_origin_px`` of ``nodules.json``).
    frame : int
        The measured frame, 0-based.
    """

    origin_px: tuple[int, int]
    frame: int = 0

    @classmethod
    def from_doc(cls, doc: dict) -> RegionPlacement | None:
        """From ``nodules.json`` (or a project's study parameters): None unless ultrasound."""
        if str(doc.get("modality") or "").upper() != "US":
            return None
        origin = doc.get("region_origin_px") or (0, 0)
        return cls((int(origin[0]), int(origin[1])), int(doc.get("frame") or 0))

    def to_frame(self, labels: np.ndarray, *, frames: int, rows: int, cols: int) -> np.ndarray:
        """The region's labels ``(1, row, col)`` placed in the stored ``(frames, rows, cols)``.

        Raises
        ------
        InputError
            The region or frame does not fit the stored image.
        """
        _, h, w = labels.shape
        r0, c0 = self.origin_px
        if r0 < 0 or c0 < 0 or r0 + h > rows or c0 + w > cols or not 0 <= self.frame < frames:
            raise InputError(
                f"the ultrasound region ({h}x{w} at row {r0}, column {c0}, frame {self.frame}) "
                f"does not fit the stored image ({frames} frame(s) of {rows}x{cols})"
            )
        out = np.zeros((frames, rows, cols), dtype=labels.dtype)
        out[self.frame, r0 : r0 + h, c0 : c0 + w] = labels[0]
        return out

    def from_frame(self, full: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
        """The region ``(1, row, col)`` of the measured frame of stored-frame labels.

        Labels outside the region (or on other frames) are dropped, with a warning.
        """
        _, h, w = shape
        r0, c0 = self.origin_px
        region = full[self.frame, r0 : r0 + h, c0 : c0 + w]
        dropped = int(np.count_nonzero(full)) - int(np.count_nonzero(region))
        if dropped:
            log.warning(
                "%d labelled pixel(s) outside the tissue region or the measured frame dropped",
                dropped,
            )
        return np.ascontiguousarray(region)[np.newaxis]


@dataclass(slots=True)
class Annotations:
    """One study's nodules as one reader (or the analysis) left them.

    Attributes
    ----------
    study : str
        The study key (folder name or project study key), as in the ``study`` column.
    series_uid : str
        SeriesInstanceUID the nodules were measured on.
    rows : list of dict
        One row of SPEC columns per nodule (``backmice.vocab.COLUMNS``).
    labels : ndarray of uint32, shape (slice, row, col)
        The nodule masks; the label value is the row's ``nodule_id``.
    affine : ndarray of float64, shape (4, 4)
        Index ``(slice, row, col, 1)`` to LPS mm.
    source_paths : tuple of Path
        The source DICOM files of the series (read lazily by :meth:`source`).
    locate_source : callable, optional
        Finds ``source_paths`` when they are needed and not known (a project
        records the study's folder, not its files).
    reader : str or None
        The reader whose view this is (None: every row as stored).
    origin : Path or None
        The result folder or project it came from.
    placement : RegionPlacement or None
        Ultrasound: where the labels (one frame's tissue region) lie in the
        stored image; None for MRI.
    """

    study: str
    series_uid: str
    rows: list[dict]
    labels: np.ndarray
    affine: np.ndarray
    source_paths: tuple[Path, ...] = ()
    reader: str | None = None
    origin: Path | None = None
    locate_source: Callable[[], tuple[Path, ...]] | None = field(default=None, repr=False)
    placement: RegionPlacement | None = None
    _source: SourceSeries | None = field(default=None, repr=False)

    @property
    def region(self) -> RegionPlacement:
        """The ultrasound region's placement (ultrasound annotations only).

        Raises
        ------
        TypeError
            These are MRI annotations (a bug in the caller).
        """
        if self.placement is None:
            raise TypeError(f"study {self.study}: MRI annotations have no ultrasound region")
        return self.placement

    @property
    def ultrasound(self) -> bool:
        """True for an ultrasound result (labels on one frame's tissue region)."""
        return self.placement is not None

    def source(self) -> SourceSeries:
        """The source series, read once and checked against the labels' grid.

        Raises
        ------
        InputError
            A source file is missing or unreadable, belongs to another series,
            or does not lie on the labels' grid.
        """
        if self._source is None:
            _refuse_nifti(self.series_uid, self.source_paths, self.origin)
            if not self.source_paths and self.locate_source is not None:
                self.source_paths = self.locate_source()
            if self.placement is not None:
                self._source = read_ultrasound_source(
                    self.source_paths,
                    placement=self.placement,
                    shape=self.labels.shape,
                    series_uid=self.series_uid,
                    where=self.origin,
                )
                return self._source
            self._source = read_source(
                self.source_paths,
                shape=self.labels.shape,
                affine=self.affine,
                series_uid=self.series_uid,
                where=self.origin,
            )
        return self._source

    def with_rows(self, rows: list[dict], labels: np.ndarray | None = None) -> Annotations:
        """A copy with other rows (and labels)."""
        return replace(self, rows=rows, labels=self.labels if labels is None else labels)


# --------------------------------------------------------------------------- labels


def read_labels(path: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """Read a label (or any) NIfTI written by backmice into ``(slice, row, col)`` and its affine.

    Parameters
    ----------
    path : path-like
        A ``.nii.gz`` written by :func:`backmice.report.write_nifti`.

    Returns
    -------
    array : ndarray, shape (slice, row, col)
    affine : ndarray of float64, shape (4, 4)
        Index to LPS mm (SimpleITK reads NIfTI into LPS, like DICOM).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("missing label file", path=path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as exc:
        raise InputError(
            f"not a readable NIfTI image ({exc.__class__.__name__})", path=path
        ) from None
    if image.GetDimension() != 3:
        raise InputError(f"a {image.GetDimension()}D image, expected 3D labels", path=path)
    return sitk.GetArrayFromImage(image), itk_affine(image)  # (slice, row, col)


# --------------------------------------------------------------------------- source series


def _frame_geometry(ds: Dataset, path: Path) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame: (position, IOP (6,), pixel spacing (2,)) of a single- or multi-frame file."""
    try:
        if "PerFrameFunctionalGroupsSequence" in ds:
            shared = ds.get("SharedFunctionalGroupsSequence", [Dataset()])[0]
            out = []
            for item in ds.PerFrameFunctionalGroupsSequence:

                def get(seq: str, attr: str, item: Dataset = item) -> object:
                    for src in (item, shared):
                        if seq in src and attr in src[seq][0]:
                            return src[seq][0][attr].value
                    raise KeyError(f"{seq}/{attr}")

                out.append(
                    (
                        np.array(get("PlanePositionSequence", "ImagePositionPatient"), float),
                        np.array(get("PlaneOrientationSequence", "ImageOrientationPatient"), float),
                        np.array(get("PixelMeasuresSequence", "PixelSpacing"), float),
                    )
                )
            return out
        return [
            (
                np.array(ds.ImagePositionPatient, float),
                np.array(ds.ImageOrientationPatient, float),
                np.array(ds.PixelSpacing, float),
            )
        ]
    except (AttributeError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputError(f"no usable image geometry ({exc})", path=path) from None


#: Type 2 attributes of the Patient and General Study modules that a SEG or SR
#: copies from its source (highdicom reads them as attributes). Anonymisers empty
#: or remove them; a missing one is added empty, as DICOM allows.
SOURCE_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def _type2_present(ds: Dataset) -> None:
    """Add the :data:`SOURCE_TYPE2` attributes a source lacks, empty (in memory only)."""
    for name in SOURCE_TYPE2:
        if name not in ds:
            setattr(ds, name, "")


def _refuse_nifti(
    series_uid: str | None,
    paths: Sequence[str | os.PathLike[str]],
    where: str | os.PathLike[str] | None,
) -> None:
    """Refuse a series measured on a NIfTI file: a SEG or SR references DICOM instances.

    Raises
    ------
    InputError
        Naming the NIfTI file (or the result when only its name is known).
    """
    nifti = [Path(p) for p in paths if is_nifti(p)]
    if not nifti and not (series_uid and is_nifti(series_uid)):
        return
    name = nifti[0] if nifti else series_uid
    raise InputError(
        f"the nodules were measured on the NIfTI file {Path(str(name)).name}: a DICOM SEG or SR "
        "must reference the DICOM images it was measured on, and a NIfTI file has none. Analyse "
        "the DICOM series (the folder dcm2niix read) to export SEG or SR; the tables and "
        "labels.nii.gz of this result export as they are (--format csv, json or nifti)",
        path=nifti[0] if nifti else where,
    )


def _read_sources(
    paths: Sequence[str | os.PathLike[str]],
    series_uid: str | None,
    where: str | os.PathLike[str] | None,
) -> tuple[list[Dataset], list[Path]]:
    """Read a series' recorded source files, each checked to exist, parse and belong to it.

    Raises
    ------
    InputError
        No file recorded, or one missing, unreadable or of another series.
    """
    if not paths:
        raise InputError("no source DICOM files recorded for the series", path=where)
    _refuse_nifti(series_uid, paths, where)
    datasets: list[Dataset] = []
    kept: list[Path] = []
    for p in map(Path, paths):
        if not p.is_file():
            raise InputError("source DICOM file is missing", path=p)
        try:
            ds = pydicom.dcmread(p)
        except Exception as exc:  # pydicom raises many types on damaged files
            raise InputError(f"source file is not readable DICOM ({exc})", path=p) from None
        if series_uid and str(ds.get("SeriesInstanceUID", "")) != series_uid:
            raise InputError(
                f"source file belongs to series {ds.get('SeriesInstanceUID', '?')}, "
                f"not {series_uid}",
                path=p,
            )
        _type2_present(ds)
        datasets.append(ds)
        kept.append(p)
    return datasets, kept


def read_source(
    paths: Sequence[str | os.PathLike[str]],
    *,
    shape: tuple[int, ...],
    affine: np.ndarray,
    series_uid: str | None = None,
    where: str | os.PathLike[str] | None = None,
) -> SourceSeries:
    """Read a series' source files and match each slice of a label grid to a frame.

    Parameters
    ----------
    paths : sequence of path-like
        The series' DICOM files (any order; single-frame files or one multi-frame file).
    shape : tuple of 3 int
        ``(slice, row, col)`` of the labels.
    affine : ndarray of shape (4, 4)
        Index to LPS mm of the labels.
    series_uid : str, optional
        The SeriesInstanceUID every file must carry.
    where : path-like, optional
        Named in the error when no source files are listed.

    Returns
    -------
    SourceSeries

    Raises
    ------
    InputError
        A file is missing, unreadable, of another series, or a slice of the grid
        has no source frame at its position (another geometry).
    """
    datasets, kept = _read_sources(paths, series_uid, where)
    n, rows, cols = (int(v) for v in shape)
    normal = affine[:3, 0] / np.linalg.norm(affine[:3, 0])
    row_dir = affine[:3, 2] / np.linalg.norm(affine[:3, 2])  # along a row: columns increase
    col_dir = affine[:3, 1] / np.linalg.norm(affine[:3, 1])
    spacing = (np.linalg.norm(affine[:3, 1]), np.linalg.norm(affine[:3, 2]))
    found: list[tuple[float, np.ndarray, int, int, Path]] = []  # (along normal, pos, i, f, path)
    for i, (ds, p) in enumerate(zip(datasets, kept, strict=True)):
        if (int(ds.get("Rows", 0)), int(ds.get("Columns", 0))) != (rows, cols):
            raise InputError(
                f"source image is {ds.get('Rows')}x{ds.get('Columns')}, labels are {rows}x{cols}",
                path=p,
            )
        for f, (pos, iop, ps) in enumerate(_frame_geometry(ds, p)):
            if (
                np.abs(iop[:3] - row_dir).max() > DIRECTION_TOLERANCE
                or np.abs(iop[3:] - col_dir).max() > DIRECTION_TOLERANCE
                or np.abs(ps - spacing).max() > POSITION_TOLERANCE_MM
            ):
                raise InputError(
                    "source orientation or pixel spacing differs from the labels' grid", path=p
                )
            found.append((float(np.dot(pos - affine[:3, 3], normal)), pos, i, f, p))
    # The labels' slices are the source's positions in order along the normal
    # (as backmice.load stacks them); copies at one position count once.
    found.sort(key=lambda t: t[0])
    slices: list[tuple[float, np.ndarray, int, int, Path]] = []
    for item in found:
        if not slices or item[0] - slices[-1][0] > POSITION_TOLERANCE_MM:
            slices.append(item)
    if len(slices) != n:
        raise InputError(
            f"the source has {len(slices)} slice position(s), the labels {n} "
            "(source files missing, or another series)",
            path=where or kept[0].parent,
        )
    step = float(np.linalg.norm(affine[:3, 0]))
    for k, (_, pos, _, f, p) in enumerate(slices):
        # In plane every slice must lie on the grid; along the normal within half
        # a slice (non-uniform spacing is stacked in order, like backmice.load).
        offset = pos - affine[:3, 3] - k * affine[:3, 0]
        along = abs(float(np.dot(offset, normal)))
        in_plane = float(np.abs(offset - np.dot(offset, normal) * normal).max())
        if in_plane > POSITION_TOLERANCE_MM or along > 0.5 * step:
            raise InputError(
                f"source frame {f + 1} at {np.round(pos, 3).tolist()} is not on the labels' "
                "grid (another geometry)",
                path=p,
            )
        if along > POSITION_TOLERANCE_MM:
            log.info("slice %d is %.3f mm off the regular grid (non-uniform spacing)", k, along)
    first = datasets[0]
    return SourceSeries(
        datasets=tuple(datasets),
        paths=tuple(kept),
        frame_of_slice=tuple((i, f) for _, _, i, f, _ in slices),
        positions_mm=np.array([pos for _, pos, *_ in slices]),
        series_uid=str(first.get("SeriesInstanceUID", "")),
        study_uid=str(first.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(first.get("FrameOfReferenceUID", "")),
    )


def read_ultrasound_source(
    paths: Sequence[str | os.PathLike[str]],
    *,
    placement: RegionPlacement,
    shape: tuple[int, ...],
    series_uid: str | None = None,
    where: str | os.PathLike[str] | None = None,
) -> SourceSeries:
    """Read an ultrasound series' source file(s) and find the measured frame.

    Ultrasound files carry no patient geometry: the labels (one frame's tissue
    region) are matched by frame number, and the region must fit the stored
    image. One multi-frame file: the frame is its frame; several single-frame
    files: the frame is the file in the given order (as ``backmice.load``
    stacks them).

    Returns
    -------
    SourceSeries
        One slice: the measured frame; ``positions_mm`` zeros (no geometry).

    Raises
    ------
    InputError
        A file is missing, unreadable, of another series, or the region or the
        frame does not fit it.
    """
    datasets, kept = _read_sources(paths, series_uid, where)
    frames = [max(int(ds.get("NumberOfFrames", 1) or 1), 1) for ds in datasets]
    if len(datasets) == 1:
        index, frame = 0, placement.frame
    else:
        index, frame = placement.frame, 0
    if not 0 <= index < len(datasets) or not 0 <= frame < frames[index]:
        raise InputError(
            f"the measured frame {placement.frame} is not in the source ({sum(frames)} frame(s))",
            path=where or kept[0],
        )
    ds = datasets[index]
    try:
        placement.to_frame(
            np.zeros((1, *shape[1:]), np.uint8),
            frames=frames[index],
            rows=int(ds.Rows),
            cols=int(ds.Columns),
        )
    except InputError as exc:
        raise InputError(exc.problem, path=kept[index]) from None
    return SourceSeries(
        datasets=(ds,),
        paths=(kept[index],),
        frame_of_slice=((0, frame),),
        positions_mm=np.zeros((1, 3)),
        series_uid=str(ds.get("SeriesInstanceUID", "")),
        study_uid=str(ds.get("StudyInstanceUID", "")),
        frame_of_reference_uid=str(ds.get("FrameOfReferenceUID", "")),
    )


# --------------------------------------------------------------------------- result folders


def is_result_folder(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a folder holding an analysis result (``nodules.json``)."""
    return (Path(path) / "nodules.json").is_file()


def read_result_json(folder: str | os.PathLike[str]) -> dict:
    """The ``nodules.json`` of a result folder, checked for the keys exporting needs."""
    path = Path(folder) / "nodules.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("not a backmice result folder (no nodules.json)", path=folder) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"unreadable nodules.json ({exc})", path=path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("nodules"), list):
        raise InputError("nodules.json has no 'nodules' list", path=path)
    return doc


def from_result(folder: str | os.PathLike[str], *, reader: str | None = None) -> Annotations:
    """Annotations of an analysis result folder.

    Parameters
    ----------
    folder : path-like
        Holds ``nodules.json`` and ``labels.nii.gz``.
    reader : str, optional
        Keep only the rows this reader last changed (and their masks).

    Returns
    -------
    Annotations
    """
    folder = Path(folder)
    doc = read_result_json(folder)
    rows = [dict(r) for r in doc["nodules"]]
    labels, affine = read_labels(folder / "labels.nii.gz")
    labels = labels.astype(np.uint32, copy=False)
    series = doc.get("series") or []
    series_uid = str(series[0]["series_uid"]) if series else str(doc.get("series_uid") or "")
    if rows and rows[0].get("series_uid"):
        series_uid = str(rows[0]["series_uid"])
    if reader is not None:
        rows = [r for r in rows if r.get("reader") == reader]
        keep = np.zeros(int(labels.max(initial=0)) + 1, dtype=bool)
        keep[[int(r["nodule_id"]) for r in rows if int(r["nodule_id"]) < keep.size]] = True
        labels = np.where(keep[labels], labels, 0).astype(np.uint32)
    study = str(doc.get("study") or (rows[0]["study"] if rows else folder.name))
    paths = _series_files(tuple(Path(p) for p in doc.get("source_files") or ()), series_uid)
    role = str(series[0].get("role") or "") if series else None
    locate = None
    placement = RegionPlacement.from_doc(doc)
    if placement is None and len(paths) > labels.shape[0] and all(p.is_file() for p in paths):
        # Several images per position: Dixon components stored in one series.
        # Take the analysed stack's files (by role), found from headers.
        def locate(paths=paths, labels=labels, affine=affine) -> tuple[Path, ...]:
            return find_series_files(
                os.path.commonpath([str(p.parent) for p in paths]),
                series_uid=series_uid,
                shape=labels.shape,
                affine=affine,
                role=role,
                within=paths,
            )

        paths = ()
    return Annotations(
        study=study,
        series_uid=series_uid,
        rows=rows,
        labels=labels,
        affine=affine,
        source_paths=paths,
        reader=reader,
        origin=folder,
        locate_source=locate,
        placement=placement,
    )


def _series_files(paths: tuple[Path, ...], series_uid: str) -> tuple[Path, ...]:
    """The files of one series among ``paths`` (headers only; missing files kept for the error)."""
    if not series_uid or len(paths) < 2:
        return paths
    out = []
    for p in paths:
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SeriesInstanceUID"])
        except Exception:
            out.append(p)
            continue
        if str(ds.get("SeriesInstanceUID", "")) == series_uid:
            out.append(p)
    # None of them: keep them all, so that reading says which series they are.
    return tuple(out) or paths


# --------------------------------------------------------------------------- projects


def find_series_files(
    folder: str | os.PathLike[str],
    *,
    series_uid: str,
    shape: tuple[int, int, int],
    affine: np.ndarray,
    role: str | None = None,
    within: Sequence[Path] | None = None,
) -> tuple[Path, ...]:
    """The files of the stack of ``series_uid`` on a grid, found under ``folder`` (headers only).

    Among the stacks of that series with that shape and geometry (Dixon
    components may share one series), the one of ``role`` is taken, else a
    non-water one: the fat image is the one analysed.

    Parameters
    ----------
    folder : path-like
    series_uid : str
    shape : tuple of 3 int
    affine : ndarray of shape (4, 4)
    role : str, optional
        The role of the analysed stack (``t1``, ``dixon_fat``...).
    within : sequence of Path, optional
        Only stacks made of these files.

    Raises
    ------
    InputError
        The folder is gone or holds no such stack.
    """
    from backmice.io import Role, open_study

    if not Path(folder).exists():
        raise InputError("the study's source folder is missing", path=folder)
    study = open_study(folder)
    allowed = None if within is None else {Path(p).resolve() for p in within}
    stacks = [
        s
        for s in study.stacks
        if s.series_uid == series_uid
        and tuple(s.shape) == tuple(shape)
        and np.allclose(s.affine, affine, atol=1e-2)
        and (allowed is None or all(p.resolve() in allowed for p in s.paths))
    ]
    if not stacks:
        raise InputError(f"no stack of series {series_uid} on the labels' grid", path=folder)
    stacks.sort(key=lambda s: (str(s.role) != role, s.role is Role.DIXON_WATER))
    return tuple(stacks[0].paths)


def find_ultrasound_files(folder: str | os.PathLike[str], *, series_uid: str) -> tuple[Path, ...]:
    """The files of the ultrasound series ``series_uid`` under ``folder`` (or that file).

    Raises
    ------
    InputError
        The folder is gone or holds no such ultrasound series.
    """
    from backmice.io import Role, open_study

    if not Path(folder).exists():
        raise InputError("the study's source folder is missing", path=folder)
    stacks = [
        s
        for s in open_study(folder).stacks
        if s.role is Role.US and (not series_uid or s.series_uid == series_uid)
    ]
    if not stacks:
        raise InputError(f"no ultrasound series {series_uid}", path=folder)
    return tuple(stacks[0].paths)


def from_project(
    path: str | os.PathLike[str],
    *,
    reader: str | None = None,
    studies: Sequence[str] | None = None,
) -> list[Annotations]:
    """Annotations of every study of an annotation project (``backmice.store``).

    Parameters
    ----------
    path : path-like
        The project folder or its ``backmice.db``.
    reader : str, optional
        That reader's view (their review and mask edits); None: the latest by anyone.
    studies : sequence of str, optional
        Only these study keys (default every study).

    Returns
    -------
    list of Annotations
        One per study, in key order. The source files are looked up in the
        study's source folder when a SEG or SR needs them.
    """
    from backmice.store import Project

    out = []
    with Project.open(path, create=False) as project:
        for rec in project.studies():
            if studies is not None and rec.key not in studies:
                continue
            rows = [
                {k: v for k, v in r.items() if k not in ("note", "notes")}
                for r in project.nodules(rec.key, reader=reader)
            ]
            labels, affine = project.labels(rec.key, reader=reader)
            series_uid = str(rec.series_uid or (rows[0]["series_uid"] if rows else ""))

            placement = RegionPlacement.from_doc(rec.params or {})

            def locate(rec=rec, series_uid=series_uid, labels=labels, affine=affine, us=placement):
                if not rec.source:
                    raise InputError(f"study {rec.key!r} has no source folder", path=path)
                if us is not None:
                    return find_ultrasound_files(rec.source, series_uid=series_uid)
                return find_series_files(
                    rec.source, series_uid=series_uid, shape=labels.shape, affine=affine
                )

            out.append(
                Annotations(
                    study=str(rec.key),
                    series_uid=series_uid,
                    rows=rows,
                    labels=np.asarray(labels, dtype=np.uint32),
                    affine=np.asarray(affine, dtype=float),
                    reader=reader,
                    origin=Path(path),
                    locate_source=locate,
                    placement=placement,
                )
            )
    return out


def is_project(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is a project folder (``backmice.db`` in it) or the database."""
    path = Path(path)
    return (path / "backmice.db").is_file() or (path.is_file() and path.name == "backmice.db")


def open_annotations(
    path: str | os.PathLike[str], *, reader: str | None = None
) -> list[Annotations]:
    """The annotations under ``path``: a result folder (one study) or a project (every study).

    Raises
    ------
    InputError
        ``path`` is neither.
    """
    path = Path(path)
    if is_result_folder(path):
        return [from_result(path, reader=reader)]
    if is_project(path):
        return from_project(path, reader=reader)
    if not path.exists():
        raise InputError("no such file or folder", path=path)
    raise InputError(
        "neither a backmice result folder (nodules.json) nor a project (backmice.db)", path=path
    )
