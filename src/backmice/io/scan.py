"""Find the stacks of a study from DICOM headers: :func:`open_study`.

A folder is scanned recursively (symbolic links to folders are not followed, so
link loops cannot trap the scan), a single file is read alone, and a DICOMDIR
is followed to the files it lists. Pixel data is never read here. Files are
grouped by SeriesInstanceUID, and a series is split into stacks wherever
orientation, image size, pixel spacing, image type (Dixon components, 3-plane
localizers), echo, temporal position or enhanced StackID differ.
"""

from __future__ import annotations

import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.filereader import _read_file_meta_info, read_preamble

from backmice.errors import GeometryError, InputError
from backmice.io.geometry import orientation_label, plane_affine, stack_geometry
from backmice.io.header import FrameHeader, Header, _one_line, open_dicom, read_header
from backmice.io.model import FrameRef, Role, SkippedFile, Stack, Study
from backmice.io.nifti import is_nifti, join_dicom_study, nifti_stacks, sidecar_path
from backmice.io.roles import assign_role, echo_roles, is_post_contrast
from backmice.io.ultrasound import select_tissue_region
from backmice.vocab import Modality

__all__ = ["iter_files", "open_study"]

log = logging.getLogger(__name__)

#: Cosine above which two image orientations count as the same (about 0.8 degrees).
_SAME_ORIENTATION = 0.9999
_ROLE_ORDER = {role: i for i, role in enumerate(Role)}

ProgressCallback = Callable[[int, int], None]


def iter_files(folder: Path, skipped: list[SkippedFile]) -> Iterator[Path]:
    """Every file below ``folder``, sorted, not following links to folders.

    Hidden files and folders (names starting with ``.``) are passed over; folders
    that cannot be listed are added to ``skipped``.
    """

    def onerror(exc: OSError) -> None:
        skipped.append(
            SkippedFile(Path(exc.filename or folder), f"cannot list folder: {exc.strerror}")
        )

    for root, dirs, files in os.walk(folder, onerror=onerror, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(root, name)


def _dicomdir_files(path: Path, skipped: list[SkippedFile]) -> list[Path]:
    """The files a DICOMDIR lists (missing, unreadable or outside ones go to ``skipped``)."""
    try:
        with open_dicom(path) as fp:
            ds = pydicom.dcmread(fp)
            truncated = fp.past_end
        if "DirectoryRecordSequence" not in ds:
            raise InputError("unreadable DICOMDIR (it has no directory records)", path=path)
        records = list(ds.DirectoryRecordSequence)
    except (InputError, MemoryError):
        raise
    except Exception as exc:  # pydicom raises many kinds on a corrupt file
        raise InputError(f"unreadable DICOMDIR ({_one_line(exc)})", path=path) from None
    if truncated:
        skipped.append(
            SkippedFile(
                path,
                f"the DICOMDIR is truncated: only its first {len(records)} records could be "
                "read, files listed after them are not included",
            )
        )
    base = path.parent
    files: list[Path] = []
    for i, record in enumerate(records, 1):
        try:
            file_id = record.get("ReferencedFileID")
            parts = [str(file_id)] if isinstance(file_id, str) else [str(p) for p in file_id or []]
        except Exception as exc:  # a corrupt record: the others still count
            skipped.append(SkippedFile(path, f"DICOMDIR record {i} unreadable ({_one_line(exc)})"))
            continue
        # Components are separated by backslashes (split by pydicom); some writers use "/".
        parts = [c.strip(" \x00") for p in parts for c in re.split(r"[\\/]", p)]
        parts = [c for c in parts if c]
        if not parts:
            continue
        # A file ID is relative to the DICOMDIR's folder: never follow one out of it.
        if any(c in ("..", ".") or "\x00" in c for c in parts):
            skipped.append(
                SkippedFile(
                    base.joinpath(*(c.replace("\x00", "?") for c in parts)),
                    "listed in the DICOMDIR with a file ID that is not a plain name below "
                    "the DICOMDIR's folder",
                )
            )
            continue
        candidate = base.joinpath(*parts)
        if not _is_file(candidate):
            candidate = _case_insensitive(base, parts) or candidate
        if _is_file(candidate):
            files.append(candidate)
        else:
            skipped.append(SkippedFile(candidate, "listed in the DICOMDIR but missing"))
    return files


def _is_file(path: Path) -> bool:
    """``path.is_file()``, False for names the system refuses (too long, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _case_insensitive(base: Path, parts: list[str]) -> Path | None:
    """Resolve a DICOMDIR file ID whose case differs from the files on disk."""
    current = base
    for part in parts:
        try:
            names = {p.name.lower(): p for p in current.iterdir()}
        except OSError:
            return None
        found = names.get(part.lower())
        if found is None:
            return None
        current = found
    return current


def _is_dicomdir(path: Path) -> bool:
    if path.name.upper() == "DICOMDIR":
        return True
    try:
        # The file meta, and nothing after it: reading the dataset (even for one tag)
        # walked a 2 GB tail of zeros element by element.
        with open_dicom(path) as fp:
            read_preamble(fp, False)  # raises without DICM: no file meta, no DICOMDIR
            meta = _read_file_meta_info(fp)
        return str(meta.get("MediaStorageSOPClassUID", "")) == "1.2.840.10008.1.3.10"
    except MemoryError:
        raise
    except Exception:  # not DICOM, or unreadable: read_header says which
        return False


def open_study(
    path: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None = None,
) -> Study:
    """Find what a study holds, from headers alone.

    Parameters
    ----------
    path : path-like
        A folder (scanned recursively), a single DICOM or NIfTI file, or a
        DICOMDIR. NIfTI files (``.nii``, ``.nii.gz``, with their dcm2niix JSON
        sidecars) become stacks like DICOM series (:mod:`backmice.io.nifti`).
    progress : callable, optional
        Called as ``progress(done, total)`` while headers are read.

    Returns
    -------
    Study
        Its ``stacks`` can be passed to :func:`backmice.load`; files that are not
        DICOM or cannot be read are in ``skipped`` with the reason.

    Raises
    ------
    InputError
        The path does not exist, or a DICOMDIR given directly is unreadable.
    """
    path = Path(path)
    skipped: list[SkippedFile] = []
    if path.is_dir():
        files = list(iter_files(path, skipped))
    elif path.is_file():
        files = _dicomdir_files(path, skipped) if _is_dicomdir(path) else [path]
    elif path.exists():
        raise InputError("neither a file nor a folder", path=path)
    else:
        raise InputError("no such file or folder", path=path)

    # NIfTI files (and their JSON sidecars) are read by backmice.io.nifti.
    niftis = [f for f in files if is_nifti(f)]
    sidecars = {sidecar_path(f) for f in niftis}
    files = [f for f in files if not is_nifti(f) and f not in sidecars]
    headers: list[Header] = []
    total = len(files)
    for i, file in enumerate(files):
        try:
            header = read_header(file)
        except InputError as exc:
            skipped.append(SkippedFile(file, exc.problem))
        else:
            if header.is_sr or header.is_seg or header.has_pixels:
                headers.append(header)
            else:
                name = _sop_name(header.sop_class_uid)
                skipped.append(SkippedFile(file, f"not an image ({name})"))
        if progress is not None:
            progress(i + 1, total)
    stacks = _build_stacks(headers)
    if niftis:
        root = path if path.is_dir() else path.parent
        found = nifti_stacks(niftis, root, skipped, alone=path.is_file())
        join_dicom_study(found, stacks)
        stacks += found
    for s in skipped:
        log.debug("skipped %s: %s", s.path, s.reason)
    return Study(path=path, stacks=stacks, skipped=skipped)


def _sop_name(uid: str) -> str:
    if not uid:
        return "no SOPClassUID"
    if len(uid) > 64 or not re.fullmatch(r"[0-9.]+", uid):
        return "an unreadable SOPClassUID"
    return pydicom.uid.UID(uid).name or uid


def _preference(header: Header) -> float:
    """Lower is better, among copies of one image: lossless first, uncompressed next."""
    return 2.0 * header.lossy + (header.pixel_offset is None)


def _dedupe_instances(headers: list[Header]) -> tuple[list[Header], dict[str, list[str]]]:
    """Keep one file per SOPInstanceUID; warnings per series for the others."""
    by_uid: dict[str, list[Header]] = defaultdict(list)
    unique: list[Header] = []
    for h in headers:
        if h.sop_instance_uid:
            by_uid[h.sop_instance_uid].append(h)
        else:
            unique.append(h)
    warnings: dict[str, list[str]] = defaultdict(list)
    for uid, group in by_uid.items():
        best = min(group, key=lambda h: (_preference(h), str(h.path)))
        unique.append(best)
        for other in group:
            if other is not best:
                warnings[best.series_uid].append(
                    f"the same instance (SOPInstanceUID {uid}) is stored twice: {best.path.name} "
                    f"and {other.path}; kept {best.path.name} once"
                )
    unique.sort(key=lambda h: str(h.path))
    return unique, warnings


@dataclass(slots=True)
class _Group:
    """Frames that belong in one stack."""

    key: tuple
    orientation: tuple[float, ...] | None
    items: list[tuple[Header, FrameHeader]]


def _frame_key(h: Header, f: FrameHeader) -> tuple:
    image_type = f.frame_type or h.image_type
    spacing = None if f.pixel_spacing is None else tuple(round(v, 4) for v in f.pixel_spacing)
    echo = (h.mr.get("echo_number"), None if f.echo_time is None else round(f.echo_time, 1))
    per_file = (
        h.modality == Modality.US or (h.n_frames > 1 and not h.enhanced) or h.is_seg or h.is_sr
    )
    return (
        h.series_uid,
        h.sop_instance_uid if per_file else "",
        h.modality,
        tuple(image_type[2:]),
        h.rows,
        h.cols,
        h.samples_per_pixel,
        # Files of one stack are decoded alike: a series that mixes pixel formats splits.
        (h.bits_allocated, h.bits_stored, h.pixel_representation, h.photometric),
        spacing,
        f.stack_id,
        f.temporal_index,
        echo,
    )


def _same_orientation(a: tuple[float, ...] | None, b: tuple[float, ...] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    # Directions, whatever their length (some writers' vectors are not unit vectors).
    row = va[:3] @ vb[:3] / (np.linalg.norm(va[:3]) * np.linalg.norm(vb[:3]))
    col = va[3:] @ vb[3:] / (np.linalg.norm(va[3:]) * np.linalg.norm(vb[3:]))
    return bool(row > _SAME_ORIENTATION and col > _SAME_ORIENTATION)


def _group_frames(headers: list[Header]) -> list[_Group]:
    groups: dict[tuple, list[_Group]] = defaultdict(list)
    ordered: list[_Group] = []
    for h in headers:
        frames = h.frames or [FrameHeader(None, None, None, None, 1.0, 0.0)]
        whole_file = h.is_seg or h.is_sr  # listed, not loaded: one stack per file
        for f in frames:
            key = ("file", str(h.path)) if whole_file else _frame_key(h, f)
            orientation = None if whole_file else f.orientation
            for g in groups[key]:
                if _same_orientation(g.orientation, orientation):
                    g.items.append((h, f))
                    break
            else:
                g = _Group(key, orientation, [(h, f)])
                groups[key].append(g)
                ordered.append(g)
    return ordered


def _frame_ref(h: Header, f: FrameHeader) -> FrameRef:
    return FrameRef(
        path=h.path,
        frame=f.frame,
        sop_instance_uid=h.sop_instance_uid,
        position=f.position,
        slope=f.slope,
        intercept=f.intercept,
        instance_number=h.instance_number,
        transfer_syntax=h.transfer_syntax,
        pixel_offset=h.pixel_offset,
        lossy=h.lossy,
    )


def _build_stacks(headers: list[Header]) -> list[Stack]:
    headers, dup_warnings = _dedupe_instances(headers)
    stacks: list[Stack] = []
    firsts: dict[int, Header] = {}
    for group in _group_frames(headers):
        h0 = group.items[0][0]
        stack = _make_stack(group)
        stack.warnings[:0] = dup_warnings.get(h0.series_uid, [])
        stacks.append(stack)
        firsts[id(stack)] = h0
    _tell_echoes_apart(stacks, firsts)
    stacks.sort(
        key=lambda s: (
            s.frames[0].path.as_posix() if s.frames and not s.series_uid else "",
            s.series_number if s.series_number is not None else 1 << 31,
            s.series_uid,
            _ROLE_ORDER[s.role],
            s.orientation or "",
        )
    )
    return stacks


def _tell_echoes_apart(stacks: list[Stack], firsts: dict[int, Header]) -> None:
    """Roles and names of the echoes of a series that holds several (in place).

    Each echo is a stack of its own (``_frame_key`` splits by EchoNumbers and
    EchoTime); :func:`~backmice.io.roles.echo_roles` tells in-phase from
    opposed-phase by the echo times, and each description gets ``echo N, TE x
    ms`` so that ``backmice info`` tells them apart.
    """
    by_series: dict[str, list[Stack]] = defaultdict(list)
    for stack in stacks:
        if stack.series_uid and stack.modality == Modality.MR and stack.role.is_image:
            by_series[stack.series_uid].append(stack)
    for series in by_series.values():
        echoes = {(s.echo_number, s.echo_time_ms) for s in series}
        if len(echoes) < 2:
            continue
        # Echoes of one acquisition: the stacks that differ from each other only by echo.
        for group in _same_acquisition(series):
            if len({(s.echo_number, s.echo_time_ms) for s in group}) < 2:
                continue
            roles = echo_roles(
                [s.role for s in group], [s.echo_time_ms for s in group], firsts[id(group[0])]
            )
            for stack, role in zip(group, roles, strict=True):
                if role is not stack.role:
                    log.debug("%s: %s -> %s by echo time", stack.description, stack.role, role)
                    stack.role = role
        for stack in series:
            if stack.echo_time_ms is not None:
                echo = "" if stack.echo_number is None else f"echo {stack.echo_number}, "
                stack.description += f" ({echo}TE {stack.echo_time_ms:g} ms)"


def _same_acquisition(series: list[Stack]) -> list[list[Stack]]:
    """Stacks of a series grouped by geometry and image type (echoes share both)."""
    groups: list[list[Stack]] = []
    for stack in series:
        for group in groups:
            first = group[0]
            if (
                first.shape == stack.shape
                and first.image_type[2:] == stack.image_type[2:]
                and np.allclose(first.affine, stack.affine, atol=1e-3)
            ):
                group.append(stack)
                break
        else:
            groups.append([stack])
    return groups


def _make_stack(group: _Group) -> Stack:
    items = group.items
    h0, f0 = items[0]
    image_type = f0.frame_type or h0.image_type
    echo_time = f0.echo_time if f0.echo_time is not None else h0.mr.get("te")
    echo_time = float(echo_time) if isinstance(echo_time, float) and echo_time > 0 else None
    role = assign_role(h0, image_type=image_type, echo_time_ms=echo_time)
    common: dict[str, Any] = {  # the Stack fields every kind of stack gets
        "series_uid": h0.series_uid,
        "study_uid": h0.study_uid,
        "frame_of_reference_uid": h0.frame_of_reference_uid,
        "modality": h0.modality,
        "role": role,
        "rows": h0.rows,
        "cols": h0.cols,
        "photometric": h0.photometric,
        "image_type": tuple(image_type),
        "bits_allocated": h0.bits_allocated,
        "bits_stored": h0.bits_stored,
        "pixel_representation": h0.pixel_representation,
        "samples_per_pixel": h0.samples_per_pixel,
        "series_number": h0.series_number,
    }
    if h0.modality == Modality.MR:
        echo_number = h0.mr.get("echo_number")
        common["echo_time_ms"] = echo_time
        common["echo_number"] = echo_number if isinstance(echo_number, int) else None
        common["post_contrast"] = is_post_contrast(h0)
    # Philips leaves SeriesDescription empty on some series: its ProtocolName names it.
    description = (
        h0.description
        or str(h0.mr.get("protocol_name") or "").strip()
        or f"{h0.modality or 'DICOM'} series {h0.series_number or ''}".strip()
    )
    if not role.is_image:
        n = h0.n_frames if h0.has_pixels else 0
        return Stack(
            description=description,
            frames=tuple(_frame_ref(h, f) for h, f in items if h.has_pixels),
            shape=(n, h0.rows, h0.cols),
            spacing_mm=(None, None, None),
            affine=plane_affine(),
            calibrated=False,
            orientation=None,
            n_files=len({h.path for h, _ in items}),
            **common,
        )
    if role is Role.US:
        return _ultrasound_stack(items, description, common)

    warnings: list[str] = []
    geometric = all(
        f.position is not None and f.orientation is not None and f.pixel_spacing is not None
        for _, f in items
    )
    unusable = ""
    if geometric and f0.orientation is not None and f0.pixel_spacing is not None:
        positions = np.array([f.position for _, f in items])
        preference = np.array([_preference(h) for h, _ in items])
        try:
            geo = stack_geometry(positions, f0.orientation, f0.pixel_spacing, preference=preference)
        except GeometryError as exc:
            geometric, unusable = False, str(exc)
    if geometric:
        frames = tuple(_frame_ref(*items[i]) for i in geo.order)
        slice_index = {int(i): k for k, i in enumerate(geo.order)}
        duplicates = tuple((slice_index[a], _frame_ref(*items[b])) for a, b in geo.duplicates)
        if duplicates:
            warnings.append(
                f"{len(duplicates)} image(s) share a position with another image of the series "
                "(e.g. one image in two transfer syntaxes): one per position is used, and "
                "loading checks whether they are copies"
            )
        warnings.extend(geo.warnings)
        affine, spacing = geo.affine, geo.spacing_mm
        positions_mm = tuple(float(v) for v in geo.positions_mm)
        orientation = orientation_label(f0.orientation)
        calibrated = True
    else:
        missing = [
            name
            for name, ok in (
                ("ImagePositionPatient", all(f.position is not None for _, f in items)),
                ("ImageOrientationPatient", all(f.orientation is not None for _, f in items)),
                ("PixelSpacing", all(f.pixel_spacing is not None for _, f in items)),
            )
            if not ok
        ]
        ordered = sorted(
            items, key=lambda it: (it[0].instance_number or 0, it[1].frame or 0, str(it[0].path))
        )
        frames = tuple(_frame_ref(h, f) for h, f in ordered)
        duplicates = ()
        why = unusable or f"{', '.join(missing)} missing or unusable"
        warnings.append(
            f"no geometry ({why}): spacing unknown, measurements are in px"
            + ("; images ordered by InstanceNumber and frame" if len(frames) > 1 else "")
        )
        affine, spacing, positions_mm = plane_affine(), (None, None, None), ()
        orientation, calibrated = None, False
    return Stack(
        description=description,
        frames=frames,
        shape=(len(frames), h0.rows, h0.cols),
        spacing_mm=spacing,
        affine=affine,
        calibrated=calibrated,
        orientation=orientation,
        slice_positions_mm=positions_mm,
        n_files=len({f.path for f in frames}),
        duplicates=duplicates,
        warnings=warnings,
        **common,
    )


def _ultrasound_stack(
    items: list[tuple[Header, FrameHeader]], description: str, common: dict
) -> Stack:
    h0 = items[0][0]
    region, warnings = select_tissue_region(h0.us_regions, rows=h0.rows, cols=h0.cols)
    frames = tuple(_frame_ref(h, f) for h, f in sorted(items, key=lambda it: it[1].frame or 0))
    n = len(frames)
    if region is None:
        shape = (n, h0.rows, h0.cols)
        spacing: tuple[float | None, float | None, float | None] = (None, None, None)
        affine = plane_affine()
    else:
        shape = (n, region.y1 - region.y0 + 1, region.x1 - region.x0 + 1)
        spacing = (None, region.delta_y_mm, region.delta_x_mm)
        affine = plane_affine(region.delta_y_mm, region.delta_x_mm)
    return Stack(
        description=description,
        frames=frames,
        shape=shape,
        spacing_mm=spacing,
        affine=affine,
        calibrated=region is not None,
        orientation=None,
        region=region,
        n_files=len({f.path for f in frames}),
        warnings=warnings,
        **common,
    )
