"""Red flags: each published criterion measured on a nodule, with its value.

The four MRI features that favour a well-differentiated liposarcoma (atypical
lipomatous tumour) over a lipoma (Kransdorf MJ, Bancroft LW, Peterson JJ et al.,
"Imaging of fatty tumors: distinction of lipoma and well-differentiated
liposarcoma", Radiology 2002;224:99-104): a lesion larger than 10 cm, thick
septa, globular or nodular non-fat areas, and a lesion less than 75 % fat.
Thick septa are those over 2 mm (Knebel C, Neumann J, Schwaiger BJ et al.,
"Differentiating atypical lipomatous tumors from lipomas with magnetic
resonance imaging: a comparison with MDM2 gene amplification status", BMC
Cancer 2019;19:309). Two more flags point to other differentials: a nodule
reaching deep under the fascia (``deep_extension``), and one whose interior is
not fat (``not_fat``).

:func:`evaluate` measures every criterion on one nodule and returns a
:class:`Check` per criterion (met or not, with the measured value);
:func:`size_check` and :func:`deep_check` are the two that need only a
nodule's row, for callers that re-measure a redrawn mask or a corrected fascia.
The vocabulary (names, criteria, sources) is :class:`backmice.vocab.RedFlag`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from backmice.vocab import RedFlag

__all__ = [
    "Check",
    "RedFlagRules",
    "apply_checks",
    "deep_check",
    "evaluate",
    "flags_of",
    "flags_with_values",
    "interior_voxels",
    "merge_checks",
    "size_check",
]

_CROSS = ndimage.generate_binary_structure(2, 1)
_SQUARE = np.ones((3, 3), dtype=bool)


@dataclass(frozen=True, slots=True)
class RedFlagRules:
    """When a red flag is raised (mm, fractions). The defaults are the published ones.

    Attributes
    ----------
    max_diameter_mm : float
        ``size>100mm`` when the largest diameter (3D Feret) is over this
        (Kransdorf 2002: larger than 10 cm).
    septum_mm : float
        ``thick_septa`` when a septum inside the nodule is thicker than this
        (Knebel 2019: thick septa > 2 mm) ...
    septum_max_mm : float
        ... and no thicker than this (a thicker non-fat area is a nodule, not a
        septum) ...
    septa_min_length_mm : float
        ... and the thick parts run for at least this length (summed over the
        slices): a septum is a line, not a dot.
    nodular_elongation : float
        A non-fat area enclosed by the nodule's fat and thicker than
        ``septum_mm`` is ``nonfat_component`` (nodular or globular) when its
        extent is at most this many times its thickness, or when it is thicker
        than ``septum_max_mm``; a longer, thinner one is a septum.
    fat_share : float
        ``fat<75%`` when fat fills less than this share of the lesion (its fat
        core, the non-fat areas it encloses and its septa) (Kransdorf 2002).
    deep_mm : float
        ``deep_extension`` when the nodule reaches deeper than this below the fascia.
    fat_ratio : float
        ``not_fat`` when the median signal of the nodule's interior (its voxels
        more than a voxel inside its edge) is below this share of the
        subcutaneous fat's ...
    fat_fraction : float
        ... or the interior's median Dixon fat fraction is below this. A nodule
        with no interior (a partial-volume sliver) is not judged.
    """

    max_diameter_mm: float = 100.0
    septum_mm: float = 2.0
    septum_max_mm: float = 6.0
    septa_min_length_mm: float = 10.0
    nodular_elongation: float = 3.0
    fat_share: float = 0.75
    deep_mm: float = 15.0
    fat_ratio: float = 0.75
    fat_fraction: float = 0.5


@dataclass(frozen=True, slots=True)
class Check:
    """One red-flag criterion evaluated on one nodule.

    Attributes
    ----------
    flag : RedFlag
    met : bool
        True: the flag is raised.
    value : float or None
        The measured value (None: could not be measured; the reason is in ``note``).
    threshold : float
        The value the criterion compares with.
    unit : str
        ``mm``, ``px`` or ``ratio``.
    note : str or None
        Why no value, or how it was measured when that matters.
    extra : dict
        Further measured values (e.g. ``length_mm`` of the thick septa).
    """

    flag: RedFlag
    met: bool
    value: float | None
    threshold: float
    unit: str
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The check as written to ``nodules.json`` (``red_flag_criteria``)."""

        def num(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(float(v), 3)

        out: dict[str, Any] = {
            "flag": str(self.flag),
            "criterion": self.flag.criterion,
            "met": bool(self.met),
            "value": num(self.value),
            "threshold": num(self.threshold),
            "unit": self.unit,
            "liposarcoma_criterion": self.flag.liposarcoma,
            "source": self.flag.source,
        }
        if self.note:
            out["note"] = self.note
        out.update({k: num(v) if isinstance(v, float) else v for k, v in self.extra.items()})
        return out


def size_check(
    max_diameter_mm: float, *, rules: RedFlagRules | None = None, calibrated: bool = True
) -> Check:
    """``size>100mm``: the largest diameter over ``rules.max_diameter_mm``.

    Parameters
    ----------
    max_diameter_mm : float
        The nodule's largest diameter (mm; pixels when not ``calibrated``).
    rules : RedFlagRules, optional
    calibrated : bool
        False: the size is in pixels, and no size flag is raised.
    """
    rules = rules or RedFlagRules()
    if not calibrated:
        return Check(
            RedFlag.SIZE_OVER_100MM,
            False,
            float(max_diameter_mm),
            rules.max_diameter_mm,
            "px",
            note="uncalibrated: the size in mm is unknown",
        )
    return Check(
        RedFlag.SIZE_OVER_100MM,
        bool(max_diameter_mm > rules.max_diameter_mm),
        float(max_diameter_mm),
        rules.max_diameter_mm,
        "mm",
    )


def deep_check(fascia_min_mm: float | None, *, rules: RedFlagRules | None = None) -> Check:
    """``deep_extension``: the nodule reaches more than ``rules.deep_mm`` under the fascia."""
    rules = rules or RedFlagRules()
    if fascia_min_mm is None or not math.isfinite(fascia_min_mm):
        return Check(
            RedFlag.DEEP_EXTENSION, False, None, -rules.deep_mm, "mm", note="no fascia distance"
        )
    return Check(
        RedFlag.DEEP_EXTENSION,
        bool(fascia_min_mm < -rules.deep_mm),
        float(fascia_min_mm),
        -rules.deep_mm,
        "mm",
        note="fascia_min_mm: signed distance of the deepest point (- deep)",
    )


def flags_of(checks: Sequence[Check]) -> list[RedFlag]:
    """The raised flags, in the vocabulary's order."""
    order = list(RedFlag)
    return sorted({c.flag for c in checks if c.met}, key=order.index)


def flags_with_values(row: dict) -> str:
    """A row's raised flags with their measured values, for people: ``thick_septa 3.1 mm; ...``.

    Flags without a stored criterion (older results) are listed by name.
    """
    by_flag = {c.get("flag"): c for c in row.get("red_flag_criteria") or []}
    out = []
    for flag in filter(None, str(row.get("red_flags") or "").split(";")):
        c = by_flag.get(flag) or {}
        value, unit = c.get("value"), c.get("unit")
        if value is None:
            out.append(flag)
        elif unit == "ratio":
            out.append(f"{flag} {value:.2f}")
        else:
            out.append(f"{flag} {value:.1f} {unit}")
    return "; ".join(out)


def merge_checks(stored: Sequence[dict] | None, checks: Sequence[Check]) -> list[dict]:
    """Stored ``red_flag_criteria`` with some criteria measured again (``checks`` win)."""
    again = {str(c.flag): c.as_json() for c in checks}
    out = [again.pop(d["flag"]) if d.get("flag") in again else d for d in stored or []]
    return out + list(again.values())


def apply_checks(row: dict, checks: Sequence[Check]) -> dict[str, Any]:
    """A row's ``red_flags`` and ``red_flag_criteria`` with some criteria measured again.

    The flags of the criteria in ``checks`` follow them; the others are kept
    (they need the image, which a redrawn mask or a corrected fascia does not
    change). A new size check also drops the old ``size>50mm``.

    Parameters
    ----------
    row : dict
        A nodule row (``red_flags``; ``red_flag_criteria`` if it has them).
    checks : sequence of Check

    Returns
    -------
    dict
        ``red_flags`` (``;``-separated, in the vocabulary's order) and
        ``red_flag_criteria``.
    """
    again = {c.flag for c in checks}
    if RedFlag.SIZE_OVER_100MM in again:
        again.add(RedFlag.SIZE_OVER_50MM)
    kept = {RedFlag(f) for f in str(row.get("red_flags") or "").split(";") if f} - again
    order = list(RedFlag)
    flags = sorted(kept | {c.flag for c in checks if c.met}, key=order.index)
    return {
        "red_flags": ";".join(str(f) for f in flags),
        "red_flag_criteria": merge_checks(row.get("red_flag_criteria"), checks),
    }


def _medial_widths(
    inner: np.ndarray, hull: np.ndarray, sampling: tuple[float, float], reach_mm: float
) -> tuple[np.ndarray, np.ndarray]:
    """Septum width across each medial pixel of the non-fat area ``inner`` of one slice.

    From each medial pixel, the nearest pixel that is not ``inner`` gives the
    line's normal; walking the other way along it finds the far side. The width
    is the distance between the two sides' pixel edges. A medial pixel counts
    only when both sides are inside the nodule's hull (fat of the nodule on
    both sides: a septum, not the concave edge of a sliver or the muscle under
    it) and the far side is within ``reach_mm``.

    Returns
    -------
    medial : ndarray of bool, shape of ``inner``
        The medial pixels (skeleton of ``inner``).
    width : ndarray of float, shape of ``inner``
        Width (mm) at the medial pixels bounded on both sides; NaN elsewhere.
    """
    from skimage.morphology import skeletonize

    medial = skeletonize(inner)
    width = np.full(inner.shape, np.nan)
    if not medial.any():
        return medial, width
    sp = np.asarray(sampling, dtype=float)
    _, idx = ndimage.distance_transform_edt(inner, sampling=sampling, return_indices=True)
    p = np.argwhere(medial).astype(float)
    near = idx[:, medial].T.astype(float)
    ok = hull[near[:, 0].astype(int), near[:, 1].astype(int)]
    d_mm = (p - near) * sp
    e = np.linalg.norm(d_mm, axis=1)
    ok &= e > 0
    d_mm = d_mm / np.where(e > 0, e, 1.0)[:, None]
    step = float(sp.min()) / 8.0
    far = np.full(len(p), np.nan)
    shape = np.array(inner.shape)
    for s in np.arange(step, reach_mm + step, step):
        open_ = np.isnan(far) & ok
        if not open_.any():
            break
        q = np.floor(p[open_] + s * d_mm[open_] / sp + 0.5).astype(int)
        inside = np.all((q >= 0) & (q < shape), axis=1)
        qc = np.clip(q, 0, shape - 1)
        left = ~inner[qc[:, 0], qc[:, 1]] | ~inside
        rows = np.flatnonzero(open_)[left]
        far[rows] = s
        bounded = inside[left] & hull[qc[left, 0], qc[left, 1]]
        ok[rows[~bounded]] = False
    ok &= np.isfinite(far)
    # Near side: the nearest outside pixel's centre is e away, its edge half a pixel less.
    half = 0.5 * float(np.mean(sp))
    w = (e - half) + far
    width[tuple(p[ok].astype(int).T)] = w[ok]
    return medial, width


def _interior_checks(
    region: np.ndarray,
    fat: np.ndarray,
    *,
    sampling: tuple[float, float],
    rules: RedFlagRules,
) -> list[Check]:
    """``thick_septa``, ``nonfat_component`` and ``fat<75%`` from a nodule's insides.

    Slice by slice (in the acquisition plane, where the pixels are finest),
    leaving out the two end sections (at the poles the capsule is cut
    obliquely and reads as non-fat inside the nodule; a nodule in fewer than
    three slices is not judged):
    a septum is a non-fat line inside the nodule's convex hull with the
    nodule's fat on both sides (:func:`_medial_widths`); a nodular or globular
    area is non-fat enclosed by the nodule (a hole in its fat core) that is
    thicker than a thin septum and not a line; the lesion is the fat core with
    the non-fat it encloses and its septa.

    Parameters
    ----------
    region : ndarray of bool, shape (slice, row, col)
        The nodule (its bounding box).
    fat : ndarray of bool, same shape
        The fat mask.
    sampling : (float, float)
        Pixel size (row, col), mm.
    """
    from skimage.morphology import convex_hull_image

    pixel_mm = float(np.mean(sampling))
    pixel_area = float(sampling[0] * sampling[1])
    septa_len, septa_area, septa_widths, all_widths = 0.0, 0.0, [], []
    nodular_mm, hole_mm, filled_px, fat_px = 0.0, None, 0, 0
    present = np.flatnonzero(region.any(axis=(1, 2)))
    # The end sections cut the capsule obliquely at the poles: their "non-fat"
    # is partial volume, so only the slices between them are read.
    inner_slices = present[1:-1]
    for k in inner_slices:
        core = region[k] & fat[k] if (region[k] & fat[k]).any() else region[k]
        if not region[k].any():
            continue
        filled = ndimage.binary_fill_holes(region[k])
        filled_px += int(filled.sum())
        fat_px += int((filled & fat[k] | core).sum())
        # Nodular or globular: non-fat enclosed by the nodule, thick and not a line.
        holes = filled & ~fat[k] & ~core
        if holes.any():
            lab, _ = ndimage.label(holes, structure=_SQUARE)
            thick = 2.0 * ndimage.distance_transform_edt(holes, sampling=sampling) - pixel_mm
            for j, box in enumerate(ndimage.find_objects(lab), start=1):
                part = lab[box] == j
                t = float(thick[box][part].max())
                hole_mm = t if hole_mm is None else max(hole_mm, t)
                extent = math.hypot(
                    (box[0].stop - box[0].start) * sampling[0],
                    (box[1].stop - box[1].start) * sampling[1],
                )
                if t > rules.septum_max_mm or (
                    t > rules.septum_mm and extent <= rules.nodular_elongation * t
                ):
                    nodular_mm = max(nodular_mm, t)
        # Septa: non-fat lines inside the hull, nodule fat on both sides.
        if region[k].sum() < 9:
            continue
        hull = convex_hull_image(region[k])
        inner = hull & ~fat[k] & ~core
        if not inner.any():
            continue
        depth = ndimage.distance_transform_edt(hull, sampling=sampling)
        _, width = _medial_widths(inner, hull, sampling, rules.septum_max_mm + pixel_mm)
        line = np.isfinite(width) & (width <= rules.septum_max_mm) & (depth >= rules.septum_mm)
        all_widths.extend(width[line].tolist())
        thick_line = line & (width > rules.septum_mm)
        septa_widths.extend(width[thick_line].tolist())
        septa_len += float(thick_line.sum()) * pixel_mm
        # The septa crossing the nodule are part of the lesion (holes already are).
        septa_area += float(width[line & ~filled].sum()) * pixel_mm / pixel_area
    if not inner_slices.size:
        note = "in fewer than 3 slices: its sections are partial volume, not judged"
        return [
            Check(RedFlag.THICK_SEPTA, False, None, rules.septum_mm, "mm", note=note),
            Check(RedFlag.NONFAT_COMPONENT, False, None, rules.septum_mm, "mm", note=note),
            Check(RedFlag.FAT_UNDER_75PCT, False, None, rules.fat_share, "ratio", note=note),
        ]
    checks = []
    if septa_widths:
        value, note = float(np.median(septa_widths)), "median width of the septa over 2 mm"
    elif all_widths:
        value, note = float(np.max(all_widths)), "width of the thickest septum"
    else:
        value, note = None, "no septa"
    checks.append(
        Check(
            RedFlag.THICK_SEPTA,
            bool(septa_len >= rules.septa_min_length_mm),
            value,
            rules.septum_mm,
            "mm",
            note=note,
            extra={"length_mm": septa_len, "min_length_mm": rules.septa_min_length_mm},
        )
    )
    if nodular_mm > 0.0:
        value, note = nodular_mm, "thickness of the largest nodular non-fat area"
    elif hole_mm is not None:
        value, note = hole_mm, "thickness of the largest enclosed non-fat area (not nodular)"
    else:
        value, note = None, "no non-fat area enclosed by the nodule"
    checks.append(
        Check(RedFlag.NONFAT_COMPONENT, nodular_mm > 0.0, value, rules.septum_mm, "mm", note=note)
    )
    lesion = filled_px + septa_area
    share = fat_px / lesion if lesion > 0 else float("nan")
    checks.append(
        Check(
            RedFlag.FAT_UNDER_75PCT,
            bool(share < rules.fat_share),
            share,
            rules.fat_share,
            "ratio",
            note="fat core over the lesion (core, enclosed non-fat and septa)",
        )
    )
    return checks


def interior_voxels(region: np.ndarray, *, in_plane: bool = False) -> np.ndarray:
    """The voxels of a nodule that are not partial volume with what surrounds it.

    The nodule eroded by one voxel in 3D (3 × 3 × 3); for a nodule too thin for
    that (in one or two slices), the pixels of its largest section more than a
    pixel inside its edge (3 × 3). Empty for a sliver made only of edge voxels:
    such an object holds no tissue that can be judged, and is no nodule.

    Parameters
    ----------
    region : ndarray of bool, shape (slice, row, col)
    in_plane : bool
        Judge the partial volume in the slice plane only: each section eroded by
        one pixel (4-connected). In slices several times thicker than the
        pixels (5–9 mm against 1.5–2 mm), a nodule of 10–20 mm spans two or
        three slices, and the 3D erosion leaves none of it; the pixels one in
        from each section's edge are the ones its border does not share.

    Returns
    -------
    ndarray of bool, same shape
    """
    region = np.asarray(region, dtype=bool)
    if in_plane:
        cross = ndimage.generate_binary_structure(2, 1)
        out = np.zeros_like(region)
        for k in np.flatnonzero(region.any(axis=(1, 2))):
            out[k] = ndimage.binary_erosion(region[k], structure=cross)
        return out
    interior = ndimage.binary_erosion(region, structure=np.ones((3, 3, 3), dtype=bool))
    if not interior.any() and region.any():
        largest = int(np.argmax(region.sum(axis=(1, 2))))
        interior = np.zeros_like(region)
        interior[largest] = ndimage.binary_erosion(region[largest], structure=_SQUARE)
    return interior


def _not_fat_check(
    region: np.ndarray,
    image: np.ndarray,
    sat_signal: float,
    fat_fraction: np.ndarray | None,
    rules: RedFlagRules,
) -> Check:
    """``not_fat`` on the nodule's interior: no voxel within a voxel of its edge is judged.

    A voxel at the edge shares its volume with the capsule or the tissue
    around (in thick slices, the whole end slices do). The interior is the
    nodule eroded by one voxel in 3D; a nodule too thin for one (in one or two
    slices) is judged on the inner pixels of its largest section; a sliver of
    edge voxels only (partial volume along a fat/muscle boundary) has neither
    and is not judged.
    """
    interior = interior_voxels(region)
    if not interior.any():
        return Check(
            RedFlag.NOT_FAT,
            False,
            None,
            rules.fat_ratio,
            "ratio",
            note="no voxel more than a voxel inside the edge (partial volume): not judged",
        )
    ratio = float(np.median(image[interior])) / sat_signal if sat_signal > 0 else float("nan")
    extra: dict[str, Any] = {}
    met = bool(ratio < rules.fat_ratio)
    if fat_fraction is not None:
        ff = float(np.median(fat_fraction[interior]))
        extra = {"fat_fraction": ff, "fat_fraction_threshold": rules.fat_fraction}
        met = met or bool(ff < rules.fat_fraction)
    return Check(
        RedFlag.NOT_FAT,
        met,
        ratio,
        rules.fat_ratio,
        "ratio",
        note="median interior signal over the subcutaneous fat's",
        extra=extra,
    )


def evaluate(
    region: np.ndarray,
    *,
    fat: np.ndarray,
    image: np.ndarray,
    sat_signal: float,
    pixel_mm: tuple[float, float],
    max_diameter_mm: float,
    fascia_min_mm: float | None,
    fat_fraction: np.ndarray | None = None,
    calibrated: bool = True,
    rules: RedFlagRules | None = None,
) -> list[Check]:
    """Every red-flag criterion measured on one nodule.

    Parameters
    ----------
    region : ndarray of bool, shape (slice, row, col)
        The nodule's mask (on its bounding box, or any crop holding it whole).
    fat : ndarray of bool, same shape
        The fat mask.
    image : ndarray of float, same shape
        The image the nodule was found in.
    sat_signal : float
        Median ``image`` of the subcutaneous fat.
    pixel_mm : (float, float)
        In-plane pixel size (row, col), mm.
    max_diameter_mm : float
        The nodule's largest diameter (``max_diameter_mm`` column).
    fascia_min_mm : float or None
        The ``fascia_min_mm`` column.
    fat_fraction : ndarray of float, same shape, optional
        Dixon fat fraction.
    calibrated : bool
        False: lengths are pixels; the size flag is not raised.
    rules : RedFlagRules, optional

    Returns
    -------
    list of Check
        In the order of :class:`backmice.vocab.RedFlag` (without the old ``size>50mm``).
    """
    rules = rules or RedFlagRules()
    region = np.asarray(region, dtype=bool)
    checks = [size_check(max_diameter_mm, rules=rules, calibrated=calibrated)]
    checks += _interior_checks(region, np.asarray(fat, dtype=bool), sampling=pixel_mm, rules=rules)
    checks.append(deep_check(fascia_min_mm, rules=rules))
    checks.append(_not_fat_check(region, image, sat_signal, fat_fraction, rules))
    return checks
