"""NIfTI input: a ``.nii`` / ``.nii.gz`` file (dcm2niix, BIDS) as a :class:`Stack` of a study.

:func:`backmice.open_study` hands every NIfTI file it finds to :func:`nifti_stacks`,
which reads the header only and makes the same :class:`~backmice.io.model.Stack`
a DICOM series makes; :func:`backmice.load` reads the pixels through
:func:`load_nifti`. The rest of backmice sees no difference, except that a
NIfTI stack's ``series_uid`` is its file's name (its path below the study
folder) and it has no DICOM instances (so no SEG or SR can reference it).

Geometry
    SimpleITK reads the file and turns NIfTI's RAS into DICOM's LPS (x and y
    negated), using the sform or qform as ITK does. The array is then laid out
    like the DICOM series it came from (:func:`stack_layout`): the thickest
    axis (of an anisotropic volume) is the slice axis, the in-plane axis that
    runs most along x (then y) is the column, rows and columns point to the
    patient's left, posterior or feet, and slices go along ``row × col`` as
    :func:`backmice.load` orders DICOM slices. Only transposes and flips are
    used: the voxels are not resampled.

Roles
    From the dcm2niix JSON sidecar beside the file (``x.nii.gz`` → ``x.json``:
    ImageType, EchoTime, SeriesDescription, ProtocolName, ...), with the DICOM
    rules of :mod:`backmice.io.roles`; when the sidecar is missing or tells
    nothing, from the file name with the same rules (``T1w``, ``fat``,
    ``water``, ``inphase``, ``outphase``, ``opp``, ... case-insensitive).
    Echoes of one series (dcm2niix's ``_e1`` / ``_e2`` files, or a 4D file
    whose sidecar lists one EchoTime per volume) are told in-phase or
    opposed-phase by :func:`~backmice.io.roles.echo_roles`. A file given alone
    whose role cannot be told is taken as the fat-bright (T1) image, with a
    warning.
"""

from __future__ import annotations

import gzip
import json
import logging
import math
import os
import re
import zlib
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from backmice.errors import InputError
from backmice.io.geometry import orientation_label
from backmice.io.header import Header, MRInfo
from backmice.io.model import FrameRef, NiftiSource, Role, SkippedFile, Stack, Volume
from backmice.io.roles import assign_role, echo_roles, is_post_contrast
from backmice.vocab import Modality

__all__ = [
    "NIFTI_SUFFIXES",
    "is_nifti",
    "itk_affine",
    "join_dicom_study",
    "load_nifti",
    "nifti_series",
    "nifti_stacks",
    "sidecar_path",
    "stack_layout",
]

log = logging.getLogger(__name__)

#: File name endings read as NIfTI (case-insensitive).
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: An axis counts as the slice axis when its spacing is this many times the next
#: largest one (an anisotropic volume's slices are its thickest axis).
SLICE_AXIS_RATIO = 1.1
#: The NIfTI files an analysis writes beside its nodules.json (backmice.report.write_analysis):
#: a result folder inside a study folder is not read as images of the study.
RESULT_FILES = frozenset({"labels.nii.gz", "fascia.nii.gz"})
#: Bytes read at a time when checking that a compressed file is whole.
_CHUNK = 1 << 22


def is_nifti(path: str | os.PathLike[str]) -> bool:
    """True for a ``.nii`` or ``.nii.gz`` file name (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _stem(path: Path) -> str:
    name = path.name
    return name[: -len(".nii.gz")] if name.lower().endswith(".nii.gz") else name[: -len(".nii")]


def sidecar_path(path: str | Path) -> Path:
    """The JSON sidecar dcm2niix writes beside a NIfTI file (``x.nii.gz`` → ``x.json``)."""
    path = Path(path)
    return path.with_name(_stem(path) + ".json")


def itk_affine(image: sitk.Image | sitk.ImageFileReader) -> np.ndarray:
    """Index ``(k, j, i)`` of SimpleITK's array to LPS mm (a 3D image, or a 4D one's first 3 axes).

    Parameters
    ----------
    image : SimpleITK Image, or an ImageFileReader after ``ReadImageInformation``

    Returns
    -------
    ndarray of float64, shape (4, 4)
        Columns: the ``k`` (slice), ``j`` (row) and ``i`` (column) steps in
        mm, then the position of voxel ``(0, 0, 0)``.
    """
    n = image.GetDimension()
    direction = np.array(image.GetDirection(), dtype=np.float64).reshape(n, n)[:3, :3]
    spacing = np.array(image.GetSpacing(), dtype=np.float64)[:3]
    affine = np.eye(4)
    for column, axis in enumerate((2, 1, 0)):
        affine[:3, column] = direction[:, axis] * spacing[axis]
    affine[:3, 3] = np.array(image.GetOrigin(), dtype=np.float64)[:3]
    return affine


def stack_layout(
    affine: np.ndarray, shape: tuple[int, int, int]
) -> tuple[tuple[int, int, int], tuple[bool, bool, bool], np.ndarray]:
    """How to lay out a NIfTI array like the DICOM series it came from.

    Parameters
    ----------
    affine : ndarray, shape (4, 4)
        Index of the file's array ``(k, j, i)`` to LPS mm (:func:`itk_affine`).
    shape : tuple of 3 int
        The file array's shape ``(k, j, i)``.

    Returns
    -------
    axes : tuple of 3 int
        The file axes taken as ``(slice, row, col)``.
    flips : tuple of 3 bool
        Which of ``(slice, row, col)`` are reversed after the transpose.
    affine : ndarray, shape (4, 4)
        Index ``(slice, row, col)`` of the laid-out array to LPS mm (the same
        voxels in the same places).
    """
    steps = np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(steps, axis=0)
    unit = steps / spacing
    by_size = np.argsort(-spacing, kind="stable")
    slice_axis = 0
    if spacing[by_size[0]] > SLICE_AXIS_RATIO * spacing[by_size[1]]:
        slice_axis = int(by_size[0])
    in_plane = [a for a in range(3) if a != slice_axis]
    main = [int(np.argmax(np.abs(unit[:, a]))) for a in in_plane]
    # The column runs most along x (then y), as DICOM writes axial, coronal and sagittal.
    col, row = (in_plane[0], in_plane[1]) if main[0] < main[1] else (in_plane[1], in_plane[0])

    def wrong_way(axis: int) -> bool:
        k = int(np.argmax(np.abs(unit[:, axis])))
        wanted = -1.0 if k == 2 else 1.0  # toward the left, posterior, or the feet
        return bool(np.sign(unit[k, axis]) != wanted)

    flip_row, flip_col = wrong_way(row), wrong_way(col)
    d_row = -unit[:, row] if flip_row else unit[:, row]
    d_col = -unit[:, col] if flip_col else unit[:, col]
    normal = np.cross(d_col, d_row)  # DICOM's row cosine × column cosine
    flip_slice = bool(unit[:, slice_axis] @ normal < 0)
    axes = (slice_axis, row, col)
    flips = (flip_slice, flip_row, flip_col)
    out = np.eye(4)
    out[:3, 3] = affine[:3, 3]
    for new, (axis, flip) in enumerate(zip(axes, flips, strict=True)):
        step = steps[:, axis]
        if flip:
            out[:3, 3] += (shape[axis] - 1) * step
            step = -step
        out[:3, new] = step
    return axes, flips, out


def _arrange(array: np.ndarray, source: NiftiSource) -> np.ndarray:
    """A file array ``(k, j, i)`` laid out as ``(slice, row, col)``."""
    out = array.transpose(source.axes)
    for axis, flip in enumerate(source.flips):
        if flip:
            out = np.flip(out, axis=axis)
    return np.ascontiguousarray(out)


def _one_line(exc: BaseException) -> str:
    """SimpleITK's message without its source-file location lines."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith(("Exception thrown", "/"))] or lines
    text = lines[-1] if lines else exc.__class__.__name__
    return re.sub(r"^sitk::ERROR:\s*", "", text)[:200]


def _reader(path: Path) -> sitk.ImageFileReader:
    """A reader that has read the file's header (InputError when it cannot)."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        why = _one_line(exc)
        if "Unable to determine ImageIO" in why:
            why = "no valid NIfTI header: the file is truncated, damaged or of another format"
        raise InputError(f"not a readable NIfTI file ({why})", path=path) from None
    return reader


def _meta(reader: sitk.ImageFileReader, key: str) -> str:
    return reader.GetMetaData(key) if reader.HasMetaDataKey(key) else ""


def _data_bytes(reader: sitk.ImageFileReader) -> tuple[int, int]:
    """``(vox_offset, bytes of image data)`` from the header."""
    try:
        ndim = int(float(_meta(reader, "dim[0]")))
        dims = [int(float(_meta(reader, f"dim[{i}]"))) for i in range(1, ndim + 1)]
        bitpix = int(float(_meta(reader, "bitpix")))
        offset = int(float(_meta(reader, "vox_offset") or 352))
    except ValueError:
        size = reader.GetSize()
        return 0, int(np.prod(size)) * reader.GetNumberOfComponents()
    return offset, int(np.prod(dims)) * bitpix // 8


def _check_whole(path: Path, reader: sitk.ImageFileReader) -> None:
    """Refuse a file shorter than its header says: ITK reads a truncated file without a word.

    Raises
    ------
    InputError
        The file is truncated, or its compressed stream is damaged.
    """
    offset, nbytes = _data_bytes(reader)
    needed = offset + nbytes
    if not path.name.lower().endswith(".gz"):
        size = path.stat().st_size
        if size < needed:
            raise InputError(
                f"truncated NIfTI file: {size} bytes, its header needs {needed}", path=path
            )
        return
    total = 0
    try:
        with gzip.open(path, "rb") as fp:
            while chunk := fp.read(_CHUNK):
                total += len(chunk)
                if total >= needed:
                    return
    except (EOFError, OSError, zlib.error) as exc:
        raise InputError(f"truncated or damaged compressed NIfTI file ({exc})", path=path) from None
    raise InputError(
        f"truncated NIfTI file: {total} bytes of image, its header needs {needed}", path=path
    )


def _read_sidecar(path: Path) -> tuple[dict, str | None]:
    """The JSON sidecar's content (empty without one), and a warning when it is unreadable."""
    side = sidecar_path(path)
    if not side.is_file():
        return {}, None
    try:
        doc = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return {}, f"its sidecar {side.name} is not readable JSON ({exc}): role from the file name"
    if not isinstance(doc, dict):
        return {}, f"its sidecar {side.name} is not a JSON object: role from the file name"
    return doc, None


def _num(value: object, scale: float = 1.0) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value) * scale
    return value if math.isfinite(value) else None


def _strs(value: object) -> tuple[str, ...]:
    """A sidecar value as DICOM's multi-valued strings (dcm2niix joins them with ``_``)."""
    if isinstance(value, list):
        return tuple(str(v).strip().upper() for v in value)
    if isinstance(value, str) and value:
        return tuple(v.strip().upper() for v in re.split(r"[\\_]", value) if v.strip())
    return ()


def _name_text(path: Path) -> str:
    """A file name as text the role rules read: ``sub-01_T1w`` → ``sub-01 T1w``."""
    return re.sub(r"[_.]+", " ", _stem(path)).strip()


#: BIDS subject and session entities: files of one subject (and session) are one study.
_BIDS_STUDY = re.compile(r"(?:^|_)(sub-[A-Za-z0-9]+)(?:_(ses-[A-Za-z0-9]+))?")


def _study_uid(path: Path, sidecar: dict) -> str:
    uid = sidecar.get("StudyInstanceUID")
    if isinstance(uid, str) and uid:
        return uid
    match = _BIDS_STUDY.search(path.name)
    return "_".join(g for g in match.groups() if g) if match else ""


def _header(path: Path, sidecar: dict, *, rows: int, cols: int, n: int) -> Header:
    """A :class:`Header` with what the sidecar says (seconds turned into ms), for the role rules."""
    image_type = _strs(sidecar.get("ImageType"))
    series_number = sidecar.get("SeriesNumber")
    echo_number = sidecar.get("EchoNumber")
    mr: MRInfo = {
        "scanning_sequence": _strs(sidecar.get("ScanningSequence")),
        "sequence_variant": _strs(sidecar.get("SequenceVariant")),
        "scan_options": _strs(sidecar.get("ScanOptions")),
        "sequence_name": str(sidecar.get("SequenceName") or sidecar.get("PulseSequenceName") or ""),
        "protocol_name": str(sidecar.get("ProtocolName") or ""),
        "tr": _num(sidecar.get("RepetitionTime"), 1000.0),
        "te": _num(sidecar.get("EchoTime"), 1000.0),
        "ti": _num(sidecar.get("InversionTime"), 1000.0),
        "echo_number": echo_number if isinstance(echo_number, int) else None,
        "fat_suppression": "",
        "field_strength": _num(sidecar.get("MagneticFieldStrength")),
        "flip_angle": _num(sidecar.get("FlipAngle")),
        "contrast_agent": str(sidecar.get("ContrastBolusAgent") or "").strip(),
        "temporal_positions": None,
    }
    return Header(
        path=path,
        sop_class_uid="",
        sop_instance_uid="",
        modality=str(sidecar.get("Modality") or "MR").upper(),
        study_uid=_study_uid(path, sidecar),
        series_uid="",
        frame_of_reference_uid=str(sidecar.get("FrameOfReferenceUID") or ""),
        series_number=series_number if isinstance(series_number, int) else None,
        instance_number=None,
        description=str(sidecar.get("SeriesDescription") or ""),
        image_type=image_type,
        rows=rows,
        cols=cols,
        n_frames=n,
        samples_per_pixel=1,
        photometric="MONOCHROME2",
        bits_allocated=32,
        bits_stored=32,
        pixel_representation=1,
        transfer_syntax="",
        lossy=False,
        has_pixels=True,
        pixel_offset=None,
        pixel_length=None,
        enhanced=False,
        mr=mr,
    )


def _role(header: Header, path: Path, echo_time_ms: float | None) -> tuple[Role, str]:
    """The role from the sidecar's names and image type, else from the file name; and from which."""
    if header.description or header.mr.get("protocol_name") or header.mr.get("sequence_name"):
        role = assign_role(header, echo_time_ms=echo_time_ms)
        if role is not Role.OTHER:
            return role, "sidecar"
    by_name = replace(
        header,
        description=_name_text(path),
        mr={**header.mr, "protocol_name": "", "sequence_name": ""},
    )
    return assign_role(by_name, echo_time_ms=echo_time_ms), "file name"


def _echo_times(sidecar: dict, volumes: int) -> list[float | None] | None:
    """One EchoTime (ms) per volume of a 4D file, when the sidecar lists them."""
    for key in ("EchoTime", "EchoTimes"):
        value = sidecar.get(key)
        if isinstance(value, list) and len(value) == volumes:
            return [_num(v, 1000.0) for v in value]
    return None


def _stacks_of_file(path: Path, root: Path, *, alone: bool) -> list[Stack]:
    """The stack(s) of one NIfTI file (InputError when it cannot be one)."""
    reader = _reader(path)
    ndim = reader.GetDimension()
    size = reader.GetSize()
    if reader.GetNumberOfComponents() != 1:
        raise InputError(
            f"a NIfTI image of {reader.GetNumberOfComponents()} components per voxel "
            "(colour or vector): backmice reads greyscale images",
            path=path,
        )
    if ndim < 3:
        raise InputError(
            f"a {ndim}D NIfTI image ({' x '.join(map(str, size))}): backmice analyses 3D "
            "volumes (one slice is a 3D file with a third dimension of 1)",
            path=path,
        )
    if ndim > 4 or (ndim == 4 and any(s != 1 for s in size[4:])):
        raise InputError(f"a {ndim}D NIfTI image: backmice reads 3D volumes", path=path)
    sidecar, sidecar_warning = _read_sidecar(path)
    volumes = int(size[3]) if ndim == 4 else 1
    times: list[float | None] | None = None
    if volumes > 1:
        times = _echo_times(sidecar, volumes)
        if times is None:
            raise InputError(
                f"a 4D NIfTI image of {volumes} volumes whose sidecar does not give one EchoTime "
                "per volume, so no volume has a role: split it into one file per volume "
                "(e.g. fslsplit) and name or describe each (T1w, fat, water, inphase, outphase)",
                path=path,
            )
    _check_whole(path, reader)
    file_shape = (int(size[2]), int(size[1]), int(size[0]))  # (k, j, i)
    file_affine = itk_affine(reader)
    axes, flips, affine = stack_layout(file_affine, file_shape)
    shape = (file_shape[axes[0]], file_shape[axes[1]], file_shape[axes[2]])
    header = _header(path, sidecar, rows=shape[1], cols=shape[2], n=shape[0])
    try:
        series = path.relative_to(root).as_posix() if path != root else path.name
    except ValueError:
        series = path.name
    if series == ".":
        series = path.name
    steps = np.linalg.norm(affine[:3, :3], axis=0)
    # As for DICOM: no slice spacing for a single slice.
    spacing = (float(steps[0]) if shape[0] > 1 else None, float(steps[1]), float(steps[2]))
    row_dir = affine[:3, 2] / steps[2]  # DICOM's row cosine: along a row
    col_dir = affine[:3, 1] / steps[1]
    normal = np.cross(row_dir, col_dir)
    positions = [affine[:3, 3] + k * affine[:3, 0] for k in range(shape[0])]
    base_warnings = [sidecar_warning] if sidecar_warning else []
    description = str(
        sidecar.get("SeriesDescription") or sidecar.get("ProtocolName") or ""
    ) or _stem(path)
    stacks = []
    te_single = header.mr.get("te") if isinstance(header.mr.get("te"), float) else None
    for v in range(volumes):
        te = times[v] if times is not None else te_single
        role, told_by = _role(header, path, te)
        warnings = list(base_warnings)
        if role is Role.OTHER and alone and volumes == 1 and header.modality == Modality.MR:
            role = Role.T1
            warnings.append(
                "neither its sidecar nor its name says what it is (T1w, fat, water, inphase, "
                "outphase): analysed as the fat-bright T1 image because it was given alone"
            )
        else:
            log.debug("%s: role %s from the %s", path, role, told_by)
        frames = tuple(
            FrameRef(
                path=path,
                frame=k,
                sop_instance_uid="",
                position=(float(p[0]), float(p[1]), float(p[2])),
            )
            for k, p in enumerate(positions)
        )
        echo_number = header.mr.get("echo_number")
        stacks.append(
            Stack(
                series_uid=series,
                study_uid=header.study_uid,
                frame_of_reference_uid=header.frame_of_reference_uid,
                modality=header.modality,
                role=role,
                description=description
                + (f" (echo {v + 1}, TE {te:g} ms)" if times is not None and te else ""),
                frames=frames,
                rows=shape[1],
                cols=shape[2],
                shape=shape,
                spacing_mm=spacing,
                affine=affine,
                calibrated=True,
                orientation=orientation_label((*row_dir, *col_dir)),
                image_type=header.image_type,
                slice_positions_mm=tuple(float((p - positions[0]) @ normal) for p in positions),
                n_files=1,
                series_number=header.series_number,
                warnings=warnings,
                echo_time_ms=te,
                echo_number=(v + 1)
                if times is not None
                else (echo_number if isinstance(echo_number, int) else None),
                post_contrast=is_post_contrast(header),
                nifti=NiftiSource(
                    path=path,
                    volume=v if ndim == 4 else None,
                    axes=axes,
                    flips=flips,
                    sidecar=sidecar_path(path) if sidecar else None,
                ),
            )
        )
    if times is not None:
        _tell_echoes_apart(stacks, header)
    return stacks


def _tell_echoes_apart(stacks: list[Stack], header: Header) -> None:
    """In-phase and opposed-phase among the echoes of one series (in place; roles.echo_roles)."""
    roles = echo_roles([s.role for s in stacks], [s.echo_time_ms for s in stacks], header)
    for stack, role in zip(stacks, roles, strict=True):
        stack.role = role


def _echo_files(stacks: list[Stack], headers: dict[int, Header]) -> None:
    """Echoes written as separate files (dcm2niix ``_e1``, ``_e2``): one series, several TEs."""
    groups: dict[tuple, list[Stack]] = defaultdict(list)
    for s in stacks:
        h = headers[id(s)]
        if s.nifti is None or s.nifti.volume is not None or s.echo_time_ms is None:
            continue
        if h.series_number is None or not h.description:
            continue
        key = (s.nifti.path.parent, h.series_number, h.description, s.shape)
        groups[key].append(s)
    for group in groups.values():
        if len({s.echo_time_ms for s in group}) > 1:
            # (no echo time last: a mixed group would not sort otherwise)
            group.sort(key=lambda s: (s.echo_time_ms is None, s.echo_time_ms or 0.0))
            _tell_echoes_apart(group, headers[id(group[0])])


def nifti_stacks(
    files: list[Path], root: Path, skipped: list[SkippedFile], *, alone: bool = False
) -> list[Stack]:
    """The stacks of NIfTI files; a file that cannot be one goes to ``skipped`` with the reason.

    Parameters
    ----------
    files : list of Path
        ``.nii`` / ``.nii.gz`` files.
    root : Path
        The study folder: a stack's ``series_uid`` is its file's path below it.
    skipped : list of SkippedFile
        Appended to for every file that is not usable (not NIfTI, truncated,
        2D, 4D without an echo time per volume, colour).
    alone : bool
        The file was given by itself (not found in a folder): when its role
        cannot be told it is taken as the fat-bright T1 image, with a warning.

    Returns
    -------
    list of Stack
        Sorted by file name.
    """
    stacks: list[Stack] = []
    headers: dict[int, Header] = {}
    for path in sorted(files):
        if path.name in RESULT_FILES and (path.parent / "nodules.json").is_file():
            skipped.append(
                SkippedFile(path, "an analysis result (beside nodules.json), not an input")
            )
            continue
        try:
            found = _stacks_of_file(path, root, alone=alone)
        except InputError as exc:
            skipped.append(SkippedFile(path, exc.problem))
            log.warning("%s", exc)
            continue
        except OSError as exc:
            skipped.append(SkippedFile(path, f"cannot read the file ({exc.strerror or exc})"))
            continue
        sidecar, _ = _read_sidecar(path)
        for s in found:
            headers[id(s)] = _header(path, sidecar, rows=s.rows, cols=s.cols, n=s.shape[0])
        stacks.extend(found)
    _echo_files(stacks, headers)
    for s in stacks:
        if s.echo_time_ms is not None and s.nifti is not None and s.nifti.volume is None:
            same = [t for t in stacks if t.description == s.description and t is not s]
            if same:
                s.description += f" (TE {s.echo_time_ms:g} ms)"
    return stacks


def join_dicom_study(nifti: list[Stack], dicom: list[Stack]) -> None:
    """NIfTI stacks with no study of their own join the one DICOM study of the folder (in place).

    dcm2niix output kept beside (or below) the DICOM it came from has no
    StudyInstanceUID in its sidecars; without this, the folder would read as two
    studies. Stacks that name their study (a sidecar's StudyInstanceUID, BIDS
    ``sub-`` / ``ses-``) keep it, and nothing changes when the DICOM holds
    several studies.
    """
    studies = {s.study_uid for s in dicom if s.study_uid}
    if len(studies) != 1:
        return
    (uid,) = studies
    for s in nifti:
        if not s.study_uid:
            s.study_uid = uid


def nifti_series(stacks: list[Stack], series: str) -> str:
    """The ``series_uid`` of the NIfTI stack a user names by its file, else ``series`` unchanged.

    Parameters
    ----------
    stacks : list of Stack
        A study's stacks.
    series : str
        What the user gave to ``--series``: a SeriesInstanceUID, or a NIfTI
        file as a path (absolute or from the working folder), its path below
        the study folder, or its name.

    Returns
    -------
    str
    """
    files = [s for s in stacks if s.nifti is not None]
    if not files or not is_nifti(series) or any(s.series_uid == series for s in files):
        return series
    given = Path(series)
    try:
        resolved = given.resolve() if given.exists() else None
    except OSError:
        resolved = None
    paths = [(s.series_uid, s.nifti.path) for s in files if s.nifti is not None]
    for uid, file in paths:
        if resolved is not None and file.resolve() == resolved:
            return uid
    named = {uid for uid, file in paths if file.name == given.name}
    return named.pop() if len(named) == 1 else series


def load_nifti(stack: Stack) -> Volume:
    """Read the pixels of a NIfTI stack (:func:`backmice.load` calls it).

    Parameters
    ----------
    stack : Stack
        A stack with ``nifti`` set.

    Returns
    -------
    Volume
        ``array`` float32 ``(slice, row, col)``, laid out as ``stack.affine``
        says (NIfTI's scl_slope / scl_inter applied by SimpleITK).

    Raises
    ------
    InputError
        The file is missing, truncated or cannot be decoded; the message names it.
    """
    source = stack.nifti
    if source is None:
        raise ValueError("not a NIfTI stack")
    path = source.path
    if not path.is_file():
        raise InputError("the NIfTI file is missing", path=path)
    reader = _reader(path)
    _check_whole(path, reader)
    try:
        image = reader.Execute()
    except RuntimeError as exc:
        raise InputError(f"cannot read the NIfTI image ({_one_line(exc)})", path=path) from None
    array = sitk.GetArrayViewFromImage(image)
    if source.volume is not None:
        array = array[source.volume]
    elif array.ndim == 4:  # a 4D file of one volume
        array = array[0]
    array = _arrange(np.asarray(array, dtype=np.float32), source)
    if array.shape != tuple(stack.shape):
        raise InputError(
            f"the NIfTI image is {array.shape}, its header said {tuple(stack.shape)} "
            "(the file changed since it was opened?)",
            path=path,
        )
    warnings = list(stack.warnings)
    for w in warnings:
        log.info("%s: %s", stack.description, w)
    return Volume.of_stack(
        stack,
        array,
        sop_instance_uids=tuple("" for _ in range(array.shape[0])),
        frame_numbers=tuple(None for _ in range(array.shape[0])),
        warnings=warnings,
    )
