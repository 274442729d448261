"""Export a result folder or project, and import SEG / SR files back: what the CLI runs.

Export layout (``OUT`` the folder given, ``NAME`` the study's
:func:`~backmice._names.safe_name`, or its pseudonym with ``anonymize``):

* ``csv``: ``OUT/nodules.csv``; ``json``: ``OUT/nodules.json`` (every study);
* ``nifti``: ``OUT/NAME/labels.nii.gz``;
* ``seg``: ``OUT/NAME/seg.dcm``;
* ``sr``: ``OUT/NAME/seg.dcm`` and ``OUT/NAME/sr.dcm`` (the SR references the
  SEG's segments, so the SEG is written with it). When the rows were last
  changed by several readers, one SR per reader: ``sr-READER.dcm``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pydicom

from backmice._atomic import atomic_path
from backmice._names import safe_name
from backmice.errors import InputError
from backmice.export.anonymize import Pseudonymizer
from backmice.export.seg import SEG_SOP_CLASSES, SegVolume, build_seg, read_seg
from backmice.export.source import (
    Annotations,
    from_project,
    from_result,
    is_project,
    is_result_folder,
    open_annotations,
    read_labels,
    read_result_json,
)
from backmice.export.sr import SRNodule, build_sr, read_sr
from backmice.export.tables import write_labels, write_table_csv, write_table_json
from backmice.ultrasound.frame import EXTRA_COLUMNS
from backmice.vocab import COLUMNS, Relation

__all__ = ["ExportFormat", "ImportResult", "export_annotations", "import_files", "save_dataset"]

log = logging.getLogger(__name__)

#: Comprehensive SR, Comprehensive 3D SR, Enhanced SR storage.
SR_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.88.33",
    "1.2.840.10008.5.1.4.1.1.88.34",
    "1.2.840.10008.5.1.4.1.1.88.22",
)


class ExportFormat(enum.StrEnum):
    """What ``backmice export --format`` writes."""

    CSV = "csv"
    JSON = "json"
    NIFTI = "nifti"
    SEG = "seg"
    SR = "sr"


def save_dataset(path: str | os.PathLike[str], ds: pydicom.Dataset) -> Path:
    """Write a DICOM dataset atomically (with its file meta, little endian explicit)."""
    with atomic_path(path) as tmp:
        ds.save_as(tmp, enforce_file_format=True)
    return Path(path)


def export_annotations(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    formats: Iterable[ExportFormat | str],
    reader: str | None = None,
    anonymize: bool = False,
    key: bytes | str | None = None,
    include_rejected: bool = False,
) -> list[Path]:
    """Export a result folder or project.

    Parameters
    ----------
    source : path-like
        A result folder (``backmice analyze --out``) or a project.
    out : path-like
        Output folder (created).
    formats : iterable of ExportFormat or str
        ``csv``, ``json``, ``nifti``, ``seg``, ``sr``.
    reader : str, optional
        Export this reader's view (a result folder: the rows this reader last changed).
    anonymize : bool
        Pseudonymise patients and study names (:mod:`backmice.export.anonymize`).
    key : bytes or str, optional
        Pseudonymisation key (default ``$BACKMICE_ANON_KEY``, else random).
    include_rejected : bool
        Also write candidates a reader rejected (status ``rejected``) as SEG
        segments and SR findings. By default they are left out: viewers (3D
        Slicer, OHIF) show every segment as a finding. The tables and NIfTI
        keep every row, with its status.

    Returns
    -------
    list of Path
        Every file written.

    Raises
    ------
    InputError
        Bad source, missing source DICOM files, or nothing to write a SEG of.
    """
    formats = [ExportFormat(f) for f in formats]
    annotations = open_annotations(source, reader=reader)
    pseudo = Pseudonymizer(key) if anonymize else None
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if ExportFormat.CSV in formats:
        written.append(write_table_csv(out, annotations, pseudonymizer=pseudo))
    if ExportFormat.JSON in formats:
        written.append(write_table_json(out, annotations, pseudonymizer=pseudo, reader=reader))
    # In a project of several studies, one study whose SEG or SR cannot be made (its
    # source is gone, an uncalibrated ultrasound's SR) is named and skipped: it must
    # not block the export of the others. A single study's problem is bad input.
    several = len(annotations) > 1
    skipped: list[InputError] = []
    for ann in annotations:
        name = safe_name(ann.study if pseudo is None else pseudo.study(ann.study))
        folder = out / name
        if ExportFormat.NIFTI in formats:
            written.append(write_labels(folder / "labels.nii.gz", ann))
        if ExportFormat.SEG in formats or ExportFormat.SR in formats:
            if not include_rejected:
                ann = ann.with_rows([r for r in ann.rows if r.get("status") != "rejected"])
            if not ann.rows:
                log.warning("%s: no nodules (or only rejected ones), no SEG/SR written", ann.study)
                continue
            try:
                seg = build_seg(ann)
            except InputError as exc:
                if not several:
                    raise
                skipped.append(exc)
                log.warning("study %s: no SEG or SR written: %s", ann.study, exc)
                continue
            reports = []
            if ExportFormat.SR in formats:
                try:
                    reports = _reports(ann, seg, reader)
                except InputError as exc:
                    if not several:
                        raise
                    skipped.append(exc)
                    log.warning("study %s: no SR written (its SEG is): %s", ann.study, exc)
            if pseudo is not None:
                pseudo.dataset(seg)
                for _, sr in reports:
                    pseudo.dataset(sr)
            written.append(save_dataset(folder / "seg.dcm", seg))
            for file, sr in reports:
                written.append(save_dataset(folder / file, sr))
    if (
        skipped
        and not any(p.name.endswith(".dcm") for p in written)
        and not ({ExportFormat.CSV, ExportFormat.JSON, ExportFormat.NIFTI} & set(formats))
    ):
        raise skipped[0]  # nothing at all could be written
    log.info("wrote %s", ", ".join(str(p) for p in written))
    return written


def _reports(
    ann: Annotations, seg: pydicom.Dataset, reader: str | None
) -> list[tuple[str, pydicom.Dataset]]:
    """The SRs of one study: one per reader who last changed its rows (file name, SR)."""
    by_reader: dict[str | None, list[dict]] = {}
    for row in ann.rows:
        by_reader.setdefault(row.get("reader") or reader, []).append(row)
    reports: list[tuple[str, pydicom.Dataset]] = []
    for who, rows in by_reader.items():
        file = "sr.dcm" if len(by_reader) == 1 else f"sr-{safe_name(who or 'backmice')}.dcm"
        reports.append((file, build_sr(ann.with_rows(rows), seg, reader=who)))
    return reports


# --------------------------------------------------------------------------- import


@dataclass(slots=True)
class ImportResult:
    """What :func:`import_files` did.

    Attributes
    ----------
    labels : ndarray of uint32, shape (slice, row, col)
        The imported labels (label = ``nodule_id``).
    rows : list of dict
        The imported SPEC rows.
    written : list of Path
        Files written into the result folder.
    warnings : list of str
    masks : dict of int to ndarray of bool, shape (slice, row, col)
        The whole mask of each nodule whose SEG segment overlaps another (the
        label map holds only one label a voxel); :meth:`mask` gives any nodule's.
    """

    labels: np.ndarray
    rows: list[dict]
    written: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    masks: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def mask(self, nodule_id: int) -> np.ndarray:
        """Nodule ``nodule_id``'s whole mask (bool), overlaps with other nodules included."""
        return _nodule_mask(self.labels, self.masks, nodule_id)


def _nodule_mask(labels: np.ndarray, masks: dict[int, np.ndarray], nodule_id: int) -> np.ndarray:
    """A nodule's own mask if it has one (overlapping segments), else its label's voxels."""
    mask = masks.get(nodule_id)
    return labels == nodule_id if mask is None else mask


def _classify(paths: Sequence[Path]) -> tuple[list[Path], list[Path]]:
    segs, srs = [], []
    for p in paths:
        if not p.is_file():
            raise InputError("no such file", path=p)
        try:
            ds = pydicom.dcmread(p, stop_before_pixels=True, specific_tags=["SOPClassUID"])
        except Exception as exc:
            raise InputError(f"not a readable DICOM file ({exc})", path=p) from None
        sop = str(ds.get("SOPClassUID", ""))
        if sop in SEG_SOP_CLASSES:
            segs.append(p)
        elif sop in SR_SOP_CLASSES:
            srs.append(p)
        else:
            raise InputError(
                f"neither a DICOM Segmentation nor a Structured Report (SOP class {sop or '?'})",
                path=p,
            )
    if len(segs) > 1:
        raise InputError(f"{len(segs)} SEG files given; import one SEG at a time", path=segs[1])
    return segs, srs


def _empty_row(ann: Annotations, nodule_id: int) -> dict:
    row = dict.fromkeys(COLUMNS)
    row.update(study=ann.study, series_uid=ann.series_uid, nodule_id=nodule_id, units="mm")
    row.update(status="candidate", red_flags="")
    return row


def _measured_row(
    ann: Annotations, labels: np.ndarray, nodule_id: int, fascia: np.ndarray | None
) -> dict:
    """A row measured from the mask alone (a SEG without SR, from another tool).

    A result folder keeps no maps but the fascia: the shape
    (:meth:`backmice.measure.NoduleShape.as_row`) and the fascia columns
    (:func:`backmice.measure.nodules.fascia_columns`, read as the analysis reads
    them) are measured; a project measures every column itself.
    """
    from backmice.measure import measure_labels
    from backmice.measure.nodules import fascia_columns

    shape = measure_labels(labels, ann.affine, ids=[nodule_id])[0]
    row = _empty_row(ann, nodule_id)
    row.update(shape.as_row())
    if fascia is not None and fascia.shape == labels.shape:
        row.update(fascia_columns(labels == nodule_id, fascia, ann.affine, row=row))
    return row


def _measured_ultrasound_row(
    ann: Annotations, labels: np.ndarray, nodule_id: int, fascia: np.ndarray | None
) -> dict:
    """An ultrasound row measured from the mask alone (a SEG from another tool).

    The axes and area of the frame's mask (:func:`backmice.ultrasound.mask_axes`),
    and the fascia distances from the study's signed fascia map.
    """
    from backmice.ultrasound import mask_axes

    mask = labels[0] == nodule_id
    dy, dx = (float(np.linalg.norm(ann.affine[:3, k])) for k in (1, 2))
    axes = mask_axes(mask, spacing_mm=(dy, dx))
    rr, cc = np.nonzero(mask)
    row = _empty_row(ann, nodule_id)
    row.update(
        long_axis_mm=round(axes["long_axis_mm"], 3),
        short_axis_mm=round(axes["short_axis_mm"], 3),
        max_diameter_mm=round(axes["long_axis_mm"], 3),
        area_mm2=round(float(mask.sum()) * dy * dx, 3),
        x_mm=round(float(cc.mean()) * dx, 3),
        depth_mm=round(float(rr.mean()) * dy, 3),
        frame=ann.region.frame,
        found_by="import",
    )
    if fascia is not None and fascia.shape == labels.shape:
        values = fascia[0][mask]
        lo, hi = float(values.min()), float(values.max())
        row.update(
            fascia_offset_mm=round(float(fascia[0][round(rr.mean()), round(cc.mean())]), 3),
            fascia_min_mm=round(lo, 3),
            fascia_max_mm=round(hi, 3),
            relation=str(Relation.from_extent(lo, hi)),
        )
    return row


def _read_ultrasound_seg(ann: Annotations, path: Path) -> SegVolume:
    """A SEG over an ultrasound image (pixel-matched, stored frames) cut to the region's labels."""
    source = ann.source()
    ds = source.datasets[0]
    frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    uid = str(ds.SOPInstanceUID)
    # No patient geometry: each SEG frame is placed by the source frame it derives from.
    segvol = read_seg(
        path,
        shape=(frames, int(ds.Rows), int(ds.Columns)),
        affine=np.eye(4),
        series_uid=ann.series_uid or None,
        positions_mm=np.column_stack([np.zeros((frames, 2)), np.arange(frames, dtype=float)]),
        source_instances=[(uid, f + 1) for f in range(frames)],
    )
    return segvol.map(lambda labels: ann.region.from_frame(labels, ann.labels.shape))


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).replace(microsecond=0).isoformat()


def import_files(
    files: Sequence[str | os.PathLike[str]],
    *,
    into: str | os.PathLike[str],
    reader: str | None = None,
    write: bool = True,
) -> ImportResult:
    """Import a SEG and/or SRs into a result folder or a project.

    Parameters
    ----------
    files : sequence of path-like
        At most one DICOM SEG over the series (any valid binary, fractional or
        label-map SEG), and any number of TID 1500 SRs.
    into : path-like
        A result folder (writes ``labels.nii.gz``, ``nodules.csv`` and
        ``nodules.json``) or a project (records the reader's actions: added,
        edited and deleted nodules, status and subtype).
    reader : str, optional
        Project only: who the imported annotations are from, when the SR does
        not say (a SEG alone, or an SR observed by a device).
    write : bool
        Write the result (False: only compute it).

    Returns
    -------
    ImportResult

    Notes
    -----
    Segment to nodule: the SR's referenced segment and tracking identifier
    ``nodule N``; without an SR, a segment's tracking ID ``nodule N``; else the
    segments in number order become nodules 1, 2, .... Rows: from the SR
    (measurements, subtype, suggested subtype, status, relation, red flags, side,
    reader) over the existing row of the same nodule; without an SR, the
    existing row where the mask is unchanged, else measured from the mask (shape,
    and the fascia distances), with the subtype of the segment label. Into a
    project, a new or changed mask is measured by the project itself, as its
    analysis measured (every column); the files give the review (status, subtype).
    """
    into = Path(into)
    paths = [Path(f) for f in files]
    if not paths:
        raise InputError("no files to import")
    project = is_project(into)
    if not project and not is_result_folder(into):
        raise InputError(
            "neither a backmice result folder (nodules.json) nor a project (backmice.db)",
            path=into,
        )
    segs, srs = _classify(paths)
    sr_nodules: list[SRNodule] = []
    for p in srs:
        sr_nodules.extend(read_sr(p)[0])
    project_reader: str | None = None  # whose rows these are, in a project
    if project:
        readers = {r for n in sr_nodules if (r := n.get("reader")) is not None}
        if len(readers) > 1:
            raise InputError(
                f"SRs of several readers ({', '.join(sorted(readers))}): import one at a time",
                path=srs[0],
            )
        reader = reader or (readers.pop() if readers else None)
        if not reader:
            raise InputError("say whose annotations these are: --reader NAME", path=paths[0])
        project_reader = reader
        ann, fascia = _project_study(into, paths, reader)
    else:
        ann = from_result(into)
        fascia = None
        if (into / "fascia.nii.gz").is_file():
            fascia = read_labels(into / "fascia.nii.gz")[0]
    result = _merge(ann, segs, srs, sr_nodules, fascia)
    if project_reader is not None:
        for row in result.rows:
            row["reader"] = project_reader
    if write:
        if project_reader is not None:
            result.written = [
                _record_into_project(into, ann, result, project_reader, replace=bool(segs))
            ]
        else:
            result.written = _write_result(into, ann, result.labels, result.rows)
    return result


def _merge(
    ann: Annotations,
    segs: Sequence[Path],
    srs: Sequence[Path],
    sr_nodules: list[SRNodule],
    fascia: np.ndarray | None,
) -> ImportResult:
    """The labels and rows the files give, over the existing annotations ``ann``."""
    base = {int(r["nodule_id"]): r for r in ann.rows}
    warnings: list[str] = []
    labels = ann.labels
    segvol: SegVolume | None = None
    mapping: dict[int, int] = {}
    if segs and ann.ultrasound:
        segvol = _read_ultrasound_seg(ann, segs[0])
        mapping = _number_to_id(segvol, sr_nodules)
        labels = _relabel(segvol, mapping)
    elif segs:
        for_uid, positions, instances = "", None, None
        try:
            source = ann.source()
            for_uid, positions = source.frame_of_reference_uid, source.positions_mm
            instances = [
                (str(source.datasets[i].SOPInstanceUID), f + 1) for i, f in source.frame_of_slice
            ]
        except InputError as exc:
            log.info("source series not readable (%s): SEG placed on the regular grid", exc)
        segvol = read_seg(
            segs[0],
            shape=ann.labels.shape,
            affine=ann.affine,
            series_uid=ann.series_uid or None,
            frame_of_reference_uid=for_uid or None,
            positions_mm=positions,
            source_instances=instances,
        )
        mapping = _number_to_id(segvol, sr_nodules)
        labels = _relabel(segvol, mapping)
    # Each nodule's own mask: where the SEG's segments overlap, the label map shows
    # only one of them, and the segment's mask keeps the rest.
    masks: dict[int, np.ndarray] = {}
    if segvol is not None and segvol.masks:
        masks = {mapping[n]: segvol.mask(n) for n in segvol.masks if n in mapping}
        warnings.append(
            f"{segvol.overlap_voxels} voxel(s) lie in more than one segment: each nodule "
            "keeps its whole mask; the label map shows the lowest-numbered"
        )

    present = set(np.unique(labels).tolist()) - {0}
    present |= {nid for nid, m in masks.items() if m.any()}
    rows: list[dict] = []
    if sr_nodules:
        for nod in sr_nodules:
            nid = _sr_nodule_id(nod, segvol, mapping)
            if nid not in present:
                raise InputError(
                    f"the SR's nodule {nid} has no mask (import its SEG with it)", path=srs[0]
                )
            row = dict(base.get(nid) or _empty_row(ann, nid))
            kept = (*COLUMNS, *EXTRA_COLUMNS) if ann.ultrasound else COLUMNS
            row.update({k: v for k, v in nod.items() if k in kept})
            row.update(nodule_id=nid, study=ann.study, series_uid=ann.series_uid)
            for column in COLUMNS:
                row.setdefault(column, None)
            if nid in base and _same(row, base[nid]):
                row["updated"] = base[nid].get("updated")
            else:
                row["updated"] = _now()
            rows.append(row)
        missing = present - {int(r["nodule_id"]) for r in rows}
        if missing:
            warnings.append(f"segments without SR measurements: nodules {sorted(missing)}")
    else:
        subtypes = {}
        if segvol is not None:
            subtypes = {mapping[s.number]: s.subtype for s in segvol.segments}
        for nid in sorted(present):
            if nid in base and np.array_equal(_nodule_mask(labels, masks, nid), ann.labels == nid):
                rows.append(dict(base[nid]))
                continue
            nodule = labels if nid not in masks else np.where(masks[nid], nid, 0).astype(np.uint32)
            if ann.ultrasound:
                row = _measured_ultrasound_row(ann, nodule, nid, fascia)
            else:
                row = _measured_row(ann, nodule, nid, fascia)
            row["subtype"] = subtypes.get(nid)
            row["updated"] = _now()
            rows.append(row)
    for w in warnings:
        log.warning("%s", w)
    rows.sort(key=lambda r: int(r["nodule_id"]))
    return ImportResult(labels=labels, rows=rows, warnings=warnings, masks=masks)


def _referenced_series(path: Path) -> set[str]:
    """Series a SEG is over, or an SR's evidence is from."""
    ds = pydicom.dcmread(path, stop_before_pixels=True)
    out = {str(s.SeriesInstanceUID) for s in ds.get("ReferencedSeriesSequence", [])}
    for study in ds.get("CurrentRequestedProcedureEvidenceSequence", []):
        out |= {str(s.SeriesInstanceUID) for s in study.get("ReferencedSeriesSequence", [])}
    return out


def _project_study(
    folder: Path, paths: Sequence[Path], reader: str
) -> tuple[Annotations, np.ndarray]:
    """The project study whose series the files are about, as ``reader`` sees it, and its fascia."""
    from backmice.store import Project

    series: set[str] = set()
    for p in paths:
        series |= _referenced_series(p)
    with Project.open(folder, create=False) as project:
        matches = [r for r in project.studies() if r.series_uid in series]
        if not matches:
            raise InputError(
                "the project has no study of the series the files reference", path=paths[0]
            )
        key = matches[0].key
        fascia = project.fascia(key, reader=reader)
    (ann,) = from_project(folder, reader=reader, studies=[key])
    return ann, fascia


def _record_into_project(
    folder: Path,
    ann: Annotations,
    result: ImportResult,
    reader: str,
    *,
    replace: bool,
) -> Path:
    """Record the imported annotations as ``reader``'s actions (one transaction each).

    A new or changed mask is measured by the project, with the maps its analysis
    measured with (:func:`backmice.measure.nodules.measure_nodule`), so a mask
    put back as it was gets the analysis' row back, every column; an unchanged
    mask keeps its row. What the files add is the review: status and subtype.
    """
    from backmice.store import Action, Project

    key = ann.study
    current = {int(r["nodule_id"]): r for r in ann.rows}
    with Project.open(folder, create=False) as project:
        for row in result.rows:
            nid = int(row["nodule_id"])
            mask = result.mask(nid)
            if nid not in current:
                project.record(key, Action.ADD_NODULE, reader=reader, nodule_id=nid, mask=mask)
            elif not np.array_equal(mask, ann.labels == nid):
                project.record(key, Action.EDIT_MASK, reader=reader, nodule_id=nid, mask=mask)
            was = current.get(nid, {})
            status = row.get("status") or "candidate"
            if status != (was.get("status") or "candidate"):
                action = {"accepted": Action.ACCEPT, "rejected": Action.REJECT}.get(
                    status, Action.RESET
                )
                project.record(key, action, reader=reader, nodule_id=nid)
            if row.get("subtype") != was.get("subtype"):
                project.record(
                    key, Action.SET_SUBTYPE, reader=reader, nodule_id=nid, value=row.get("subtype")
                )
        if replace:
            for nid in sorted(set(current) - {int(r["nodule_id"]) for r in result.rows}):
                project.record(key, Action.DELETE_NODULE, reader=reader, nodule_id=nid)
    return folder


def _same(a: dict, b: dict) -> bool:
    return all(a.get(c) == b.get(c) for c in COLUMNS if c != "updated")


def _sr_nodule_id(nod: SRNodule, segvol: SegVolume | None, mapping: dict[int, int]) -> int:
    """The nodule an SR measurement group is about: its ``nodule N``, else its segment's."""
    if nod.get("nodule_id") is not None:
        return int(nod["nodule_id"])
    ref = nod.get("segment")
    if segvol is not None and ref and ref[0] == segvol.sop_instance_uid and ref[1] in mapping:
        return mapping[ref[1]]
    raise InputError("an SR measurement group names neither a nodule nor a segment of the SEG")


def _number_to_id(segvol: SegVolume, sr_nodules: Sequence[SRNodule]) -> dict[int, int]:
    """Segment number to nodule ID (SR reference, else tracking ID, else order)."""
    mapping: dict[int, int] = {}
    for nod in sr_nodules:
        ref = nod.get("segment")
        if ref and ref[0] == segvol.sop_instance_uid and nod.get("nodule_id") is not None:
            mapping[int(ref[1])] = int(nod["nodule_id"])
    for s in segvol.segments:
        if s.number not in mapping and s.nodule_id is not None:
            mapping[s.number] = s.nodule_id
    ids = list(mapping.values())
    if len(mapping) != len(segvol.segments) or len(set(ids)) != len(ids):
        # Another tool's SEG: nodules numbered by segment number.
        return {s.number: i for i, s in enumerate(segvol.segments, start=1)}
    return mapping


def _relabel(segvol: SegVolume, mapping: dict[int, int]) -> np.ndarray:
    lut = np.zeros(max(max(mapping, default=0), int(segvol.labels.max(initial=0))) + 1, np.uint32)
    for number, nid in mapping.items():
        lut[number] = nid
    return lut[segvol.labels]


def _write_result(
    folder: Path, ann: Annotations, labels: np.ndarray, rows: list[dict]
) -> list[Path]:
    from backmice._atomic import write_text
    from backmice.report.write import nodules_csv, write_json

    doc = read_result_json(folder)
    about = {k: v for k, v in doc.items() if k not in ("backmice_version", "nodules")}
    # As backmice analyze writes the result: an ultrasound one has the extra columns too.
    columns = (*COLUMNS, *EXTRA_COLUMNS) if ann.ultrasound else COLUMNS
    return [
        write_labels(folder / "labels.nii.gz", ann.with_rows(rows, labels)),
        write_text(folder / "nodules.csv", nodules_csv(rows, columns=columns)),
        write_json(folder / "nodules.json", rows, columns=columns, **about),
    ]
