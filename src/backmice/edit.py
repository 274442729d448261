"""Editing an analysis by hand: paint, erase, split, merge, grow, correct the fascia.

An :class:`Editor` owns a copy of an analysis' nodule labels, the maps it was
measured with (:class:`~backmice.measure.nodules.SiteMaps`) and one row of SPEC
columns per nodule. Every edit changes the labels (or the fascia) and
re-measures only the nodules it touched, each on its own bounding box plus a
margin, with the :func:`~backmice.measure.nodules.measure_nodule` the
analysis uses, so an edited nodule is measured exactly as a found one would be
(a few tens of milliseconds per nodule, whatever the size of the study).

Arrays are indexed ``(slice, row, col)``; every length is in mm and every
position in LPS mm through the volume's affine. Nothing here imports napari or
Qt: the plugin's Edit widget and the review :class:`~backmice.review.Session`
drive it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from backmice.analysis import site_maps
from backmice.errors import InputError
from backmice.measure.nodules import RedFlagRules, SiteMaps, measure_nodule, sat_signal_of
from backmice.segment.fascia import signed_distance

if TYPE_CHECKING:
    from backmice.analysis import Analysis

__all__ = [
    "Change",
    "Editor",
    "fascia_signed_mm",
    "site_maps",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Change:
    """What one edit did to the nodules.

    Attributes
    ----------
    measured : tuple of int
        Nodules (ids) re-measured: their rows are new.
    removed : tuple of int
        Nodules that no longer have any voxel (their rows were dropped).
    added : tuple of int
        Nodules that did not exist before the edit (a subset of ``measured``).
    """

    measured: tuple[int, ...] = ()
    removed: tuple[int, ...] = ()
    added: tuple[int, ...] = ()

    @property
    def empty(self) -> bool:
        """True when the edit changed no nodule."""
        return not (self.measured or self.removed)


#: The signed distance to the fascia's deep side, as the analysis computes it
#: (one owner: :func:`backmice.segment.fascia.signed_distance`).
fascia_signed_mm = signed_distance


def _union(a: tuple[slice, ...] | None, b: tuple[slice, ...] | None) -> tuple[slice, ...] | None:
    if a is None:
        return b
    if b is None:
        return a
    return tuple(
        slice(min(x.start, y.start), max(x.stop, y.stop)) for x, y in zip(a, b, strict=True)
    )


def _grow_box(box: tuple[slice, ...], margin: int, shape: Sequence[int]) -> tuple[slice, ...]:
    box = tuple(box) + (slice(None),) * (len(shape) - len(box))
    bounds = [s.indices(n)[:2] for s, n in zip(box, shape, strict=True)]
    return tuple(
        slice(max(a - margin, 0), min(b + margin, n))
        for (a, b), n in zip(bounds, shape, strict=True)
    )


def _mask_box(mask: np.ndarray) -> tuple[slice, ...] | None:
    """Bounding box of the True voxels (None if none)."""
    box = ndimage.find_objects(mask.astype(np.uint8, copy=False))
    return box[0] if box and box[0] is not None else None


@dataclass(slots=True)
class Editor:
    """Hand edits of one analysis' nodules and fascia, re-measured as they happen.

    Build one with :meth:`from_analysis` (or directly, for a synthetic case).

    Attributes
    ----------
    labels : ndarray of uint32, shape (slice, row, col)
        The nodule labels (the label is the ``nodule_id``); the editor's own
        copy, changed only through its methods.
    affine : ndarray of float64, shape (4, 4)
        Index to LPS mm (the identity when the volume is not calibrated).
    spacing_mm : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    site : SiteMaps
        The maps nodules are measured with; ``site.signed_fascia_mm`` follows
        fascia edits.
    deep : ndarray of bool
        The deep side of the fascia (what a fascia edit paints).
    body : ndarray of bool or None
        The body mask; an edited deep side is kept inside it.
    score : ndarray of float32 or None
        The fat score (T1) or fraction (Dixon) a seed grows in.
    threshold : float
        Fat is ``score >= threshold``.
    study, series_uid : str
        Written into every row.
    calibrated : bool
        False: lengths are in pixels.
    rules : RedFlagRules
    rows : dict of int to dict
        The current SPEC row of every nodule, by ``nodule_id``.
    fascia_mm, depth_mm : ndarray of float32 or None
        The analysis' fascia depth below the skin and each voxel's (mm): the
        signed distance is exact to a fraction of a pixel where the deep side
        still follows that fascia (:func:`fascia_signed_mm`).
    """

    labels: np.ndarray
    affine: np.ndarray
    spacing_mm: tuple[float, float, float]
    site: SiteMaps
    deep: np.ndarray
    body: np.ndarray | None = None
    score: np.ndarray | None = None
    threshold: float = 0.5
    study: str = ""
    series_uid: str = ""
    calibrated: bool = True
    rules: RedFlagRules = field(default_factory=RedFlagRules)
    rows: dict[int, dict] = field(default_factory=dict)
    fascia_mm: np.ndarray | None = None
    depth_mm: np.ndarray | None = None
    _boxes: dict[int, tuple[slice, slice, slice]] = field(default_factory=dict, repr=False)
    _next_id: int = 1

    def __post_init__(self) -> None:
        self.labels = np.ascontiguousarray(self.labels, dtype=np.uint32)
        self.affine = np.asarray(self.affine, dtype=np.float64)
        ds, dr, dc = (float(s) for s in self.spacing_mm)
        self.spacing_mm = (ds, dr, dc)
        self.deep = np.asarray(self.deep, dtype=bool)
        if self.deep.shape != self.labels.shape:
            raise InputError(f"fascia {self.deep.shape} and labels {self.labels.shape} differ")
        # The reference level of fat_signal_ratio is the whole study's, once.
        self.site = replace(self.site, sat_signal=sat_signal_of(self.site))
        self._boxes = {
            i + 1: (box[0], box[1], box[2])
            for i, box in enumerate(ndimage.find_objects(self.labels))
            if box is not None
        }
        self._next_id = max(self._boxes, default=0) + 1
        if not self.rows:
            self.rows = {}
            self._remeasure(self._boxes)

    # ------------------------------------------------------------------ building

    @classmethod
    def from_analysis(cls, analysis: Analysis, *, rows: Iterable[dict] | None = None) -> Editor:
        """An editor on a copy of an analysis' labels and fascia.

        Parameters
        ----------
        analysis : backmice.analysis.Analysis
        rows : iterable of dict, optional
            The rows to start from (default: the analysis' own, which measured
            these labels); pass None to keep the analysis' rows.

        Returns
        -------
        Editor
        """
        from backmice.analysis import _grid

        affine, spacing, calibrated = _grid(analysis.volume)
        source = analysis.nodules if rows is None else list(rows)
        return cls(
            labels=analysis.labels.copy(),
            affine=affine,
            spacing_mm=spacing,
            site=replace(site_maps(analysis), signed_fascia_mm=analysis.fascia.signed_mm.copy()),
            deep=analysis.fascia.deep.copy(),
            body=analysis.body.mask,
            score=analysis.fat.score,
            threshold=float(analysis.fat.threshold),
            study=analysis.study,
            series_uid=analysis.volume.series_uid,
            calibrated=calibrated,
            rows={int(r["nodule_id"]): dict(r) for r in source},
            rules=getattr(analysis, "red_flag_rules", RedFlagRules()),
            fascia_mm=analysis.fascia.depth_mm,
            depth_mm=analysis.body.depth_mm,
        )

    # ------------------------------------------------------------------ reading

    @property
    def ids(self) -> list[int]:
        """The nodule ids present, ascending."""
        return sorted(self._boxes)

    def bbox(self, nodule_id: int) -> tuple[slice, slice, slice]:
        """The nodule's bounding box in the array.

        Raises
        ------
        KeyError
            No such nodule.
        """
        return self._boxes[int(nodule_id)]

    def mask(self, nodule_id: int) -> np.ndarray:
        """The nodule's voxels, shape of the labels (bool)."""
        out = np.zeros(self.labels.shape, dtype=bool)
        box = self.bbox(nodule_id)
        out[box] = self.labels[box] == nodule_id
        return out

    def table(self) -> list[dict]:
        """The current rows, by ``nodule_id``."""
        return [self.rows[i] for i in sorted(self.rows)]

    def new_id(self) -> int:
        """An id never used in this editor (ids are not reused after a removal)."""
        return self._next_id

    # ------------------------------------------------------------------ measuring

    def _remeasure(self, boxes: Mapping[int, tuple[slice, ...]]) -> None:
        """Re-measure the given nodules on their boxes (:func:`measure_nodule`)."""
        for nodule_id, box in boxes.items():
            row = measure_nodule(
                self.labels,
                self.affine,
                self.site,
                nodule_id=nodule_id,
                box=box,
                study=self.study,
                series_uid=self.series_uid,
                calibrated=self.calibrated,
                rules=self.rules,
            )
            if row is None:
                continue
            old = self.rows.get(nodule_id)
            if old is not None:  # review columns are not measurements: keep them
                for key in ("subtype", "status", "reader", "updated"):
                    row[key] = old.get(key, row[key])
            self.rows[nodule_id] = row

    def remeasure(self, ids: Iterable[int] | None = None) -> Change:
        """Re-measure nodules (default all) from the current labels and maps.

        Parameters
        ----------
        ids : iterable of int, optional

        Returns
        -------
        Change
        """
        wanted = self.ids if ids is None else [int(i) for i in ids]
        boxes = {i: self._boxes[i] for i in wanted if i in self._boxes}
        self._remeasure(boxes)
        return Change(measured=tuple(sorted(boxes)))

    # ------------------------------------------------------------------ label edits

    def set_labels(self, labels: np.ndarray, *, region: tuple[slice, ...] | None = None) -> Change:
        """Take new labels (a paint or erase stroke), re-measure what changed.

        Parameters
        ----------
        labels : ndarray of int, shape (slice, row, col), or the shape of ``region``
            The edited labels (e.g. the napari layer's data after a stroke), or
            only their crop to ``region``.
        region : tuple of 3 slice, optional
            Where the edit happened (voxels outside it are not compared; the
            whole array when None).

        Returns
        -------
        Change
        """
        labels = np.asarray(labels)
        full = self.labels.shape
        if region is None:
            region = tuple(slice(0, n) for n in full)
        region = _grow_box(region, 0, full)
        box_shape = tuple(s.stop - s.start for s in region)
        if labels.shape == full:
            new = labels[region]
        elif labels.shape == box_shape:
            new = labels
        else:
            raise InputError(f"labels of shape {labels.shape}, expected {full} or {box_shape}")
        if np.any(new < 0):
            raise InputError("labels must not be negative")
        old = self.labels[region]
        diff = old != new
        box = _mask_box(diff)
        if box is None:
            return Change()
        # Work on the box of what changed only (a whole-array comparison finds it).
        old, new, diff = old[box], new[box], diff[box]
        region = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        return self._apply(region, np.where(diff, new, old).astype(np.uint32), diff)

    def paint(self, where: np.ndarray, nodule_id: int) -> Change:
        """Set voxels to a nodule (``nodule_id`` 0 erases).

        Parameters
        ----------
        where : ndarray of bool, shape (slice, row, col)
            The voxels painted.
        nodule_id : int
            The label painted; 0 erases.

        Returns
        -------
        Change
        """
        where = np.asarray(where, dtype=bool)
        if where.shape != self.labels.shape:
            raise InputError(f"paint mask of shape {where.shape}, expected {self.labels.shape}")
        if nodule_id < 0:
            raise InputError(f"nodule id {nodule_id} is negative")
        box = _mask_box(where)
        if box is None:
            return Change()
        new = self.labels[box].copy()
        new[where[box]] = nodule_id
        return self.set_labels(self._full(new, box), region=box)

    def _full(self, crop: np.ndarray, box: tuple[slice, ...]) -> np.ndarray:
        """A full-size view whose ``box`` holds ``crop`` (others untouched: a copy of labels)."""
        out = self.labels.copy()
        out[box] = crop
        return out

    def _apply(self, region: tuple[slice, ...], new: np.ndarray, diff: np.ndarray) -> Change:
        """Write ``new`` into ``region`` and re-measure the ids it touched."""
        old = self.labels[region]
        touched = set(np.unique(old[diff]).tolist()) | set(np.unique(new[diff]).tolist())
        touched.discard(0)
        changed_box = _mask_box(diff)
        assert changed_box is not None
        changed_box = tuple(
            slice(r.start + c.start, r.start + c.stop)
            for r, c in zip(region, changed_box, strict=True)
        )
        self.labels[region] = new
        added, removed, boxes = [], [], {}
        for i in sorted(touched):
            search = _union(self._boxes.get(i), changed_box)
            assert search is not None
            box = _mask_box(self.labels[search] == i)
            if box is None:
                removed.append(i)
                self._boxes.pop(i, None)
                self.rows.pop(i, None)
                continue
            z, y, x = (
                slice(s.start + b.start, s.start + b.stop) for s, b in zip(search, box, strict=True)
            )
            if i not in self._boxes:
                added.append(i)
            self._boxes[i] = boxes[i] = (z, y, x)
            self._next_id = max(self._next_id, i + 1)
        self._remeasure(boxes)
        log.info("edit: re-measured %s, removed %s", sorted(boxes), removed)
        return Change(measured=tuple(sorted(boxes)), removed=tuple(removed), added=tuple(added))

    def merge(self, keep: int, other: int) -> Change:
        """Merge nodule ``other`` into ``keep`` (``other`` disappears).

        Raises
        ------
        InputError
            Either nodule does not exist, or they are the same.
        """
        keep, other = int(keep), int(other)
        for i in (keep, other):
            if i not in self._boxes:
                raise InputError(f"no nodule {i} to merge")
        if keep == other:
            raise InputError(f"cannot merge nodule {keep} with itself")
        box = self._boxes[other]
        crop = self.labels[box]
        diff = crop == other
        return self._apply(box, np.where(diff, np.uint32(keep), crop), diff)

    def split(
        self,
        nodule_id: int,
        *,
        line: tuple[Sequence[float], Sequence[float]] | None = None,
    ) -> Change:
        """Split a nodule in two; the part away from its first voxel gets a new id.

        Without ``line`` the nodule is cut where it narrows: a watershed of the
        distance to its surface (mm) from its two deepest points. A nodule with
        a single deepest point (an ellipsoid) is cut in half by the plane
        through its centroid across its longest axis.

        Parameters
        ----------
        nodule_id : int
        line : pair of (row, col), optional
            Two in-plane points (array index, fractional allowed) of a cut drawn
            on a slice; the cut is the plane through that line along the slice
            axis, through every slice.

        Returns
        -------
        Change
            ``added`` holds the new id.

        Raises
        ------
        InputError
            No such nodule, or the cut leaves one side empty.
        """
        nodule_id = int(nodule_id)
        if nodule_id not in self._boxes:
            raise InputError(f"no nodule {nodule_id} to split")
        box = self._boxes[nodule_id]
        crop = self.labels[box]
        inside = crop == nodule_id
        lo = np.array([s.start for s in box], dtype=np.float64)
        part = self._side_of_line(inside, lo, line) if line is not None else self._watershed(inside)
        part &= inside
        if not part.any() or part.sum() == inside.sum():
            raise InputError(f"the cut leaves one part of nodule {nodule_id} empty")
        first = tuple(np.argwhere(inside)[0])
        if part[first]:  # the new id goes to the part without the first voxel
            part = inside & ~part
        new_id = self._next_id
        return self._apply(box, np.where(part, np.uint32(new_id), crop), part)

    def _side_of_line(
        self, inside: np.ndarray, lo: np.ndarray, line: tuple[Sequence[float], Sequence[float]]
    ) -> np.ndarray:
        (r0, c0), (r1, c1) = (tuple(float(v) for v in p) for p in line)
        if (r0, c0) == (r1, c1):
            raise InputError("the cut line has no length")
        _, rr, cc = np.indices(inside.shape, dtype=np.float64)
        rr += lo[1]
        cc += lo[2]
        # Sign of the cross product in mm (the row/col steps may differ).
        dy, dx = self.spacing_mm[1], self.spacing_mm[2]
        side = ((r1 - r0) * dy) * ((cc - c0) * dx) - ((c1 - c0) * dx) * ((rr - r0) * dy)
        return side > 0

    def _watershed(self, inside: np.ndarray) -> np.ndarray:
        from skimage.feature import peak_local_max
        from skimage.segmentation import watershed

        padded = np.pad(inside, 1)
        dist = ndimage.distance_transform_edt(padded, sampling=self.spacing_mm)[1:-1, 1:-1, 1:-1]
        peaks = peak_local_max(
            dist, labels=inside.astype(np.int32), num_peaks=2, exclude_border=False, min_distance=2
        )
        if len(peaks) >= 2:
            markers = np.zeros(inside.shape, dtype=np.int32)
            markers[tuple(peaks[0])] = 1
            markers[tuple(peaks[1])] = 2
            ws = watershed(-dist, markers, mask=inside)
            part = ws == 2
            if part.any() and (ws == 1).any():
                return part
        # One deepest point: halve across the longest axis of the ellipsoid.
        pts = np.argwhere(inside).astype(np.float64)
        mm = pts @ self.affine[:3, :3].T
        centred = mm - mm.mean(axis=0)
        _, vecs = np.linalg.eigh(np.cov(centred.T) if len(pts) > 1 else np.eye(3))
        along = centred @ vecs[:, -1]
        part = np.zeros(inside.shape, dtype=bool)
        part[tuple(pts[along > 0].astype(np.intp).T)] = True
        return part

    def grow(
        self,
        seed: Sequence[int],
        *,
        tolerance: float | None = None,
        max_diameter_mm: float = 60.0,
        per_slice: bool = False,
    ) -> Change:
        """Add a missed nodule: the fat connected to a seed voxel.

        The region is the seed's connected component (6-connected in 3D, or
        4-connected in each slice from the seed's position in the slices on
        either side when ``per_slice``) of voxels whose fat score is at least
        the fat threshold (or within ``tolerance`` of the seed's score), that
        belong to no other nodule, within a ball of diameter
        ``max_diameter_mm`` around the seed. A capsule stops it; where there is
        none, the ball does (and a warning is logged).

        Parameters
        ----------
        seed : (int, int, int)
            ``(slice, row, col)`` index clicked.
        tolerance : float, optional
            Grow within ``score[seed] ± tolerance`` instead of above the threshold.
        max_diameter_mm : float
            Size cap, mm.
        per_slice : bool
            Grow slice by slice (for thick slices where 3D connectivity leaks).

        Returns
        -------
        Change
            ``added`` holds the new id.

        Raises
        ------
        InputError
            The seed is outside the image, on another nodule, or not fat.
        """
        if self.score is None:
            raise InputError("this editor has no fat score to grow in")
        seed_t = tuple(round(float(s)) for s in seed)
        if len(seed_t) != 3 or any(
            not 0 <= s < n for s, n in zip(seed_t, self.labels.shape, strict=True)
        ):
            raise InputError(f"seed {tuple(seed)} is outside the image {self.labels.shape}")
        if self.labels[seed_t]:
            raise InputError(f"seed {seed_t} is already in nodule {int(self.labels[seed_t])}")
        radius = max_diameter_mm / 2
        half = [math.ceil(radius / s) for s in self.spacing_mm]
        box = tuple(
            slice(max(s - h, 0), min(s + h + 1, n))
            for s, h, n in zip(seed_t, half, self.labels.shape, strict=True)
        )
        local = tuple(s - b.start for s, b in zip(seed_t, box, strict=True))
        score = self.score[box]
        value = float(score[local])
        if tolerance is None:
            allowed = score >= self.threshold
        else:
            allowed = np.abs(score - value) <= tolerance
        if not allowed[local]:
            raise InputError(
                f"seed {seed_t} is not fat (score {value:.2f}, threshold {self.threshold:.2f})"
            )
        grid = np.indices(allowed.shape, dtype=np.float64)
        d2 = sum(((g - c) * s) ** 2 for g, c, s in zip(grid, local, self.spacing_mm, strict=True))
        ball = d2 <= radius**2
        allowed &= ball & (self.labels[box] == 0)
        if per_slice:
            region = np.zeros_like(allowed)
            cross = ndimage.generate_binary_structure(2, 1)
            k0 = local[0]
            seed_2d = np.zeros(allowed.shape[1:], dtype=bool)
            seed_2d[local[1:]] = True
            for ks in (range(k0, allowed.shape[0]), range(k0 - 1, -1, -1)):
                prev = seed_2d
                for k in ks:
                    comp, _ = ndimage.label(allowed[k], structure=cross)
                    ids = np.unique(comp[prev & (comp > 0)])
                    if not ids.size:
                        break
                    region[k] = np.isin(comp, ids)
                    prev = region[k]
        else:
            comp, _ = ndimage.label(allowed)
            region = comp == comp[local]
        surface = ball & ~ndimage.binary_erosion(ball)
        if (region & surface).any():
            log.warning(
                "grown region from %s reached the %.0f mm size cap", seed_t, max_diameter_mm
            )
        new_id = self._next_id
        crop = self.labels[box]
        return self._apply(box, np.where(region, np.uint32(new_id), crop), region)

    # ------------------------------------------------------------------ fascia

    def signed_fascia(self) -> np.ndarray:
        """The signed distance (mm) to the current deep side, computed over the whole volume.

        Returns
        -------
        ndarray of float32, shape (slice, row, col)
        """
        return fascia_signed_mm(
            self.deep, self.spacing_mm, fascia_mm=self.fascia_mm, depth_mm=self.depth_mm
        )

    def set_fascia(
        self,
        deep: np.ndarray,
        *,
        region: tuple[slice, ...] | None = None,
        exact_mm: float = 30.0,
    ) -> Change:
        """Take an edited deep side of the fascia; new signed distances, every nodule re-measured.

        The signed distance is recomputed around the edit only: on the edit's
        bounding box plus ``2 * exact_mm``, where :func:`fascia_signed_mm` of
        the crop is kept wherever it cannot have missed a surface outside the
        crop. The result equals a recomputation of the whole map at every voxel
        within ``exact_mm`` of the fascia both before and after the edit (which
        is where nodules are measured); farther voxels keep their sign and may
        keep their old distance.

        Parameters
        ----------
        deep : ndarray of bool (or labels, non-zero = deep), shape (slice, row, col)
            The deep side (label 1 of the plugin's fascia layer).
        region : tuple of 3 slice, optional
            Where it was edited (default: anywhere); voxels outside are not compared.
        exact_mm : float
            See above; ``inf`` recomputes the whole map.

        Returns
        -------
        Change
            Every nodule is re-measured (``fascia_offset_mm``, ``fascia_min_mm``,
            ``fascia_max_mm``, ``relation`` and the suggestion follow).
        """
        deep = np.asarray(deep) != 0
        shape = self.labels.shape
        if deep.shape != shape:
            raise InputError(f"fascia of shape {deep.shape}, expected {shape}")
        if self.body is not None:
            deep &= self.body
        region = _grow_box(region or tuple(slice(0, n) for n in shape), 0, shape)
        changed = deep[region] != self.deep[region]
        box = _mask_box(changed)
        if box is None:
            return Change()
        box = tuple(
            slice(r.start + b.start, r.start + b.stop) for r, b in zip(region, box, strict=True)
        )
        margin = [
            (n if not math.isfinite(exact_mm) else math.ceil(2 * exact_mm / sp) + 1)
            for sp, n in zip(self.spacing_mm, shape, strict=True)
        ]
        crop = tuple(
            slice(max(b.start - m, 0), min(b.stop + m, n))
            for b, m, n in zip(box, margin, shape, strict=True)
        )
        self.deep = deep
        if all(c.start == 0 and c.stop == n for c, n in zip(crop, shape, strict=True)):
            self.site.signed_fascia_mm = self.signed_fascia()
        else:
            sub = fascia_signed_mm(
                deep[crop],
                self.spacing_mm,
                fascia_mm=None if self.fascia_mm is None else self.fascia_mm[crop],
                depth_mm=None if self.depth_mm is None else self.depth_mm[crop],
            )
            # Distance (mm) to the crop's faces inside the array: a crop value no
            # larger than it cannot have missed a surface beyond the crop.
            # The voxels on those faces are not trusted either: the sub-voxel
            # distance takes the fascia's gradient from both neighbours.
            face = np.full(sub.shape, np.inf, dtype=np.float32)
            for axis, (c, n, sp) in enumerate(zip(crop, shape, self.spacing_mm, strict=True)):
                idx = np.arange(c.stop - c.start, dtype=np.float32)
                d = np.full(idx.shape, np.inf, dtype=np.float32)
                if c.start > 0:
                    d = np.minimum(d, np.where(idx == 0, 0.0, (idx + 1) * sp))
                if c.stop < n:
                    last = c.stop - c.start - 1
                    d = np.minimum(d, np.where(idx == last, 0.0, (c.stop - c.start - idx) * sp))
                view: list[slice | None] = [None, None, None]
                view[axis] = slice(None)
                face = np.minimum(face, d[tuple(view)])
            current = self.site.signed_fascia_mm[crop]
            trusted = np.abs(sub) < face
            self.site.signed_fascia_mm[crop] = np.where(trusted, sub, current)
        return self.remeasure()
