"""npe2 writers: a labels layer → NIfTI in its patient geometry, or the nodules → DICOM SEG.

The layer's index-to-LPS affine is taken from ``metadata["backmice_affine"]``
(every layer the plugin makes carries it); for a labels layer made elsewhere it
is rebuilt from the layer's scale, translate, rotate and shear in the plugin's
world (:mod:`napari_backmice._layers`). The file is written atomically by
:func:`backmice.report.write.write_nifti`, so it opens in the right place in
3D Slicer, ITK-SNAP or nibabel.

The DICOM SEG writer (:func:`write_seg`) needs what the Analyze widget puts in
the nodules layer's metadata: the SPEC rows (``nodules``), the study name and
the source files of the series, so the SEG references the source instances
(:func:`backmice.export.build_seg`). A label painted without a row gets an
unmeasured ``candidate`` row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from backmice.report.write import write_nifti

from ._layers import _REVERSE, view_affine

__all__ = ["lps_affine_of", "write_labels", "write_seg"]

log = logging.getLogger(__name__)


def lps_affine_of(attributes: dict[str, Any]) -> np.ndarray:
    """Index ``(slice, row, col)`` → LPS mm of a layer, from its attributes.

    Parameters
    ----------
    attributes : dict
        A layer's ``_get_state()`` / the writer's ``meta`` (``metadata``,
        ``scale``, ``translate``, ``rotate``, ``shear``, ``affine``).

    Returns
    -------
    ndarray of shape (4, 4)
    """
    meta = attributes.get("metadata") or {}
    if meta.get("backmice_affine") is not None:
        return np.asarray(meta["backmice_affine"], dtype=float)
    from napari.utils.transforms import Affine

    ndim = len(attributes.get("scale", (1.0, 1.0, 1.0)))
    if ndim != 3:
        raise ValueError(f"a labels layer of {ndim} dimensions; NIfTI export needs 3")
    inner = Affine(
        scale=attributes.get("scale"),
        translate=attributes.get("translate"),
        rotate=attributes.get("rotate"),
        shear=attributes.get("shear"),
        ndim=3,
    ).affine_matrix
    outer = attributes.get("affine")
    outer = np.eye(4) if outer is None else np.asarray(getattr(outer, "affine_matrix", outer))
    return _REVERSE @ (outer @ inner)


def write_labels(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: save a labels layer as ``.nii`` or ``.nii.gz``.

    Parameters
    ----------
    path : str
        Target file; ``.nii.gz`` is added when it has no NIfTI extension.
    data : array-like of int, shape (slice, row, col)
        The labels (label value = ``nodule_id`` for the nodules layer).
    attributes : dict
        The layer's attributes (see :func:`lps_affine_of`).

    Returns
    -------
    list of str
        The path written.
    """
    if not (path.endswith(".nii") or path.endswith(".nii.gz")):
        path = f"{path}.nii.gz"
    array = np.asarray(data)
    if array.ndim != 3:
        raise ValueError(f"{path}: a labels layer of {array.ndim} dimensions; NIfTI needs 3")
    dtype = np.uint16 if array.max(initial=0) < 2**16 else np.uint32
    write_nifti(path, array.astype(dtype), lps_affine_of(attributes))
    log.info("wrote %s", path)
    return [path]


def write_seg(path: str, data: Any, attributes: dict[str, Any]) -> list[str]:
    """npe2 single-layer writer: save the nodules labels layer as a DICOM SEG.

    Parameters
    ----------
    path : str
        Target file; ``.dcm`` is added when missing.
    data : array-like of int, shape (slice, row, col)
        Nodule labels (label value = ``nodule_id``).
    attributes : dict
        The layer's attributes; ``metadata`` must hold ``series_uid``,
        ``source_paths`` and ``nodules`` (the Analyze widget's nodules layer does).

    Returns
    -------
    list of str

    Raises
    ------
    InputError
        The layer does not come from a backmice analysis, holds no nodule, or
        the source files no longer match it.
    """
    from backmice.errors import InputError
    from backmice.export import Annotations, build_seg
    from backmice.export.pipeline import save_dataset
    from backmice.vocab import COLUMNS

    if not path.lower().endswith(".dcm"):
        path = f"{path}.dcm"
    meta = attributes.get("metadata") or {}
    if not meta.get("source_paths") or not meta.get("series_uid"):
        raise InputError(
            "DICOM SEG needs the nodules layer of a backmice analysis (its source series)",
            path=path,
        )
    labels = np.asarray(data).astype(np.uint32)
    affine = lps_affine_of(attributes)
    axes = tuple(meta.get("axes") or (0, 1, 2))
    if axes != (0, 1, 2):  # a transposed view (sagittal, coronal): back to the series' order
        back = tuple(int(i) for i in np.argsort(axes))
        labels = np.ascontiguousarray(np.transpose(labels, back))
        affine = view_affine(affine, back)
    present = [int(v) for v in np.unique(labels) if v != 0]
    measured = {int(r["nodule_id"]): r for r in meta.get("nodules") or []}
    rows = []
    for nid in present:
        row = measured.get(nid)
        if row is None:
            row = dict.fromkeys(COLUMNS)
            row.update(
                series_uid=meta["series_uid"],
                nodule_id=nid,
                status="candidate",
                red_flags="",
                units=meta.get("units", "mm"),
            )
        rows.append(row)
    annotations = Annotations(
        study=str(meta.get("study", "")),
        series_uid=str(meta["series_uid"]),
        rows=rows,
        labels=labels,
        affine=affine,
        source_paths=tuple(Path(p) for p in meta["source_paths"]),
    )
    save_dataset(path, build_seg(annotations))
    log.info("wrote %s (%d segments)", path, len(rows))
    return [path]
