"""Accuracy of the MRI analysis against the phantom's truth, on fresh seeds.

For each sample (geometry) and seed, the phantom study is written with
:func:`backmice.phantom.write_sample`, analysed with
:func:`backmice.analysis.analyze`, and every analysis row is matched to the
truth lesion whose centroid is nearest, provided it lies within that lesion's
largest semi-axis (one row per lesion; further rows matched to the same lesion
are *splits* and count as false candidates). Rows matched to no lesion are false
candidates; the tissue under each (from the phantom model, at the row's voxels)
says what it is.

The contract checked (the issue's, on phantoms the analysis was not tuned on):

- every nodule (``encapsulated_fat_nodule``, ``liposarcoma_like``) of 10 mm or
  more is found; the ``fat_prominence`` is counted apart and never fails;
- at most 2 false candidates per study; the cyst, bone marrow and visceral fat
  are never reported;
- for each nodule found: centroid within 3 mm; volume within 20 % (slices
  thicker than 1.5× the pixel) or 10 % (isotropic); long axis within
  max(2 mm, 10 %) of the truth section of the series analysed;
  ``fascia_offset_mm`` within 2 mm; ``relation`` right.

Short axis, max diameter, fascia min/max, skin depth, side and the suggested
subtype are reported too, without a threshold.

A seed for which the phantom cannot place every lesion is reported and skipped.

Usage::

    python bench/accuracy.py [--seeds 100 101 102] \
        [--samples t1_axial t1_oblique_iso dixon] [--out DIR] [--json FILE]

The wide family (``--samples t1_wide dixon_wide``, ``docs/phantom.md``) is the
one to draw fresh seeds from for honest accuracy; the three default
geometries stay as regression. For the wide family each lesion's truth also
carries where it was placed (``truth["wide"]``, in the JSON).

Without ``--out`` the studies are written to a temporary folder and removed;
with it they are kept (``DIR/<sample>_<seed>/``) and reused when their
``truth.json`` is there. Exit code 0 when every geometry passes, 3 otherwise.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backmice.analysis import Analysis, analyze
from backmice.errors import InputError
from backmice.phantom import PlacementError, Tissue, get_sample, sample_scene, write_sample
from backmice.phantom.scene import Scene

__all__ = [
    "DEFAULT_SAMPLES",
    "NODULE_KINDS",
    "FalseCandidate",
    "LesionResult",
    "StudyResult",
    "Thresholds",
    "evaluate",
    "format_study",
    "format_summary",
    "generate",
    "main",
    "match_rows",
    "run_study",
    "summarise",
]

#: The geometries of the issue's contract.
DEFAULT_SAMPLES = ("t1_axial", "t1_oblique_iso", "dixon")
#: Lesion kinds that are nodules the analysis must find.
NODULE_KINDS = frozenset({"encapsulated_fat_nodule", "liposarcoma_like"})
#: Lesion kinds counted apart (found or not, never a failure).
APART_KINDS = frozenset({"fat_prominence"})
#: Lesion kinds that must never be reported.
NEVER_KINDS = frozenset({"cyst"})
#: Tissues a reported nodule must never be (by the majority of its voxels).
NEVER_TISSUES = frozenset({Tissue.MARROW, Tissue.VISCERAL_FAT, Tissue.CYST, Tissue.CYST_WALL})


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The contract's limits.

    Attributes
    ----------
    min_size_mm : float
        Nodules with a truth ``max_diameter_mm`` at least this must be found.
    max_false : int
        False candidates allowed per study.
    centroid_mm : float
        Largest centroid distance, mm.
    volume_thick_pct, volume_iso_pct : float
        Largest volume error, %, for thick slices and for isotropic voxels.
    long_axis_mm, long_axis_frac : float
        The long axis is within ``max(long_axis_mm, long_axis_frac * truth)``.
    fascia_offset_mm : float
        Largest ``fascia_offset_mm`` error, mm.
    anisotropy : float
        Slices thicker than this multiple of the pixel count as thick.
    """

    min_size_mm: float = 10.0
    max_false: int = 2
    centroid_mm: float = 3.0
    volume_thick_pct: float = 20.0
    volume_iso_pct: float = 10.0
    long_axis_mm: float = 2.0
    long_axis_frac: float = 0.10
    fascia_offset_mm: float = 2.0
    anisotropy: float = 1.5

    def volume_pct(self, spacing_mm: tuple[float, float, float]) -> float:
        """The volume tolerance (%) for a series of this ``(slice, row, col)`` spacing."""
        thick = spacing_mm[0] > self.anisotropy * min(spacing_mm[1:])
        return self.volume_thick_pct if thick else self.volume_iso_pct

    def long_axis(self, truth_mm: float) -> float:
        """The long-axis tolerance (mm) for a truth long axis."""
        return max(self.long_axis_mm, self.long_axis_frac * truth_mm)


@dataclass(slots=True)
class LesionResult:
    """One truth lesion and the analysis row matched to it.

    Attributes
    ----------
    id, kind : str
        From the truth.
    size_mm : float
        Truth ``max_diameter_mm``.
    required : bool
        A nodule the contract requires to be found (kind and size).
    found : bool
    nodule_id : int or None
        The matched row's ``nodule_id``.
    errors : dict
        Measured minus truth: ``centroid_mm`` (distance), ``volume_pct``,
        ``long_axis_mm``, ``short_axis_mm``, ``max_diameter_mm``,
        ``fascia_offset_mm``, ``fascia_min_mm``, ``fascia_max_mm``,
        ``skin_depth_mm``.
    truth, measured : dict
        The compared values (including ``side``, ``relation``, ``subtype``).
    failures : list of str
        Thresholds this lesion breaks (required nodules only).
    """

    id: str
    kind: str
    size_mm: float
    required: bool
    found: bool = False
    nodule_id: int | None = None
    errors: dict[str, float] = field(default_factory=dict)
    truth: dict[str, Any] = field(default_factory=dict)
    measured: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


@dataclass(slots=True)
class FalseCandidate:
    """A reported row that matches no lesion (or a second row on one lesion).

    Attributes
    ----------
    nodule_id : int
    centroid_lps_mm : list of float
    max_diameter_mm, volume_mm3 : float
    relation : str
    tissue : str
        Majority phantom tissue under the row's voxels (``?`` when not known).
    tissue_share : float
        Share of the voxels in that tissue.
    split_of : str or None
        The lesion it would match, when another row matched it first.
    """

    nodule_id: int
    centroid_lps_mm: list[float]
    max_diameter_mm: float
    volume_mm3: float
    relation: str
    tissue: str = "?"
    tissue_share: float = float("nan")
    split_of: str | None = None


@dataclass(slots=True)
class StudyResult:
    """The accuracy of one analysed study.

    Attributes
    ----------
    sample : str
    seed : int
    series_uid : str
        The series analysed.
    spacing_mm : tuple of float
        Its ``(slice, row, col)`` spacing.
    lesions : list of LesionResult
    false : list of FalseCandidate
    forbidden : list of str
        What was reported that never may be (``C1``, ``marrow``, ...).
    failures : list of str
        Every broken threshold, one line each.
    seconds : float
        Wall time of :func:`analyze`.
    timings : dict
        Its stages.
    """

    sample: str
    seed: int
    series_uid: str
    spacing_mm: tuple[float, float, float]
    lesions: list[LesionResult]
    false: list[FalseCandidate]
    forbidden: list[str]
    failures: list[str]
    seconds: float = float("nan")
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """No threshold broken."""
        return not self.failures


# ------------------------------------------------------------------------- studies


def generate(sample: str, seed: int, out_dir: str | Path) -> Path:
    """Write ``sample`` with ``seed`` into ``out_dir/<sample>_<seed>`` unless already there.

    Parameters
    ----------
    sample : str
        A sample name (``backmice sample list``).
    seed : int
    out_dir : str or Path
        Parent folder.

    Returns
    -------
    Path
        The study folder.
    """
    study = Path(out_dir) / f"{sample}_{seed}"
    truth = study / "truth.json"
    if truth.is_file():
        doc = json.loads(truth.read_text(encoding="utf-8"))
        if doc.get("sample") == sample and doc.get("seed") == seed:
            return study
    write_sample(sample, study, seed=seed, overwrite=True)
    return study


def _centroid(row: dict) -> np.ndarray:
    return np.array([row["centroid_x_mm"], row["centroid_y_mm"], row["centroid_z_mm"]])


def match_rows(rows: list[dict], lesions: list[dict]) -> tuple[dict[str, int], dict[int, str]]:
    """Match analysis rows to truth lesions by nearest centroid.

    A row is a candidate for the lesion whose truth centroid is nearest to its
    centroid, if that distance is at most the lesion's largest semi-axis. Each
    lesion keeps its nearest candidate; the other candidates are splits.

    Parameters
    ----------
    rows : list of dict
        Analysis rows (SPEC columns).
    lesions : list of dict
        Truth lesions (``truth.json``).

    Returns
    -------
    matched : dict of str to int
        Lesion id to the index of its row.
    splits : dict of int to str
        Index of a row that lies on an already matched lesion, to that lesion's id.
    """
    if not rows or not lesions:
        return {}, {}
    centres = np.array([les["centroid_lps_mm"] for les in lesions], dtype=np.float64)
    reach = np.array([max(les["semi_axes_mm"]) for les in lesions], dtype=np.float64)
    best: dict[str, tuple[float, int]] = {}
    near: dict[int, str] = {}
    for i, row in enumerate(rows):
        d = np.linalg.norm(centres - _centroid(row), axis=1)
        j = int(np.argmin(d))
        if d[j] > reach[j]:
            continue
        near[i] = lesions[j]["id"]
        if lesions[j]["id"] not in best or d[j] < best[lesions[j]["id"]][0]:
            best[lesions[j]["id"]] = (float(d[j]), i)
    matched = {lid: i for lid, (_, i) in best.items()}
    taken = set(matched.values())
    splits = {i: lid for i, lid in near.items() if i not in taken}
    return matched, splits


def _tissue_under(analysis: Analysis, nodule_id: int, scene: Scene) -> tuple[str, float]:
    """Majority phantom tissue (name, share) at the voxel centres of one nodule."""
    index = np.argwhere(analysis.labels == nodule_id)
    if index.size == 0:
        return "?", float("nan")
    affine = np.asarray(analysis.volume.affine, dtype=np.float64)
    points = index @ affine[:3, :3].T + affine[:3, 3]
    labels = scene.classify(points).labels
    counts = Counter(int(v) for v in labels)
    value, n = counts.most_common(1)[0]
    return Tissue(value).name.lower(), n / len(labels)


def _fmt_spacing(series: dict) -> tuple[float, float, float]:
    return tuple(float(v) for v in series["spacing_mm"])  # type: ignore[return-value]


def evaluate(
    analysis: Analysis,
    truth: dict,
    *,
    scene: Scene | None = None,
    thresholds: Thresholds | None = None,
) -> StudyResult:
    """Compare an analysis with the phantom's truth.

    Parameters
    ----------
    analysis : Analysis
        What :func:`backmice.analysis.analyze` returned for the study.
    truth : dict
        The study's ``truth.json``.
    scene : Scene, optional
        The phantom scene (:func:`backmice.phantom.sample_scene`), to name the
        tissue under false candidates; without it the tissue is ``?`` and only
        the truth lesions (the cyst) are checked among the forbidden.
    thresholds : Thresholds, optional

    Returns
    -------
    StudyResult
    """
    th = thresholds or Thresholds()
    rows = analysis.nodules
    uid = rows[0]["series_uid"] if rows else analysis.volume.series_uid
    series = next((s for s in truth["series"] if s["series_uid"] == uid), None)
    if series is None:
        raise ValueError(f"series {uid} analysed is not in truth.json")
    spacing = _fmt_spacing(series)
    vol_tol = th.volume_pct(spacing)
    matched, splits = match_rows(rows, truth["lesions"])
    failures: list[str] = []
    forbidden: list[str] = []
    results: list[LesionResult] = []
    for les in truth["lesions"]:
        kind = les["kind"]
        res = LesionResult(
            id=les["id"],
            kind=kind,
            size_mm=float(les["max_diameter_mm"]),
            required=kind in NODULE_KINDS and les["max_diameter_mm"] >= th.min_size_mm,
        )
        results.append(res)
        i = matched.get(les["id"])
        if i is None:
            if res.required:
                failures.append(f"{les['id']} ({kind}, {res.size_mm:.1f} mm) missed")
            continue
        row = rows[i]
        if kind in NEVER_KINDS and scene is not None:
            # A row near the cyst that is mostly fat (walled off beside it) is a
            # false candidate, not the cyst reported; the phantom's tissue says which.
            tissue, share = _tissue_under(analysis, int(row["nodule_id"]), scene)
            if Tissue[tissue.upper()] not in NEVER_TISSUES:
                del matched[les["id"]]
                continue
        res.found = True
        res.nodule_id = int(row["nodule_id"])
        if kind in NEVER_KINDS:
            under = ""
            if scene is not None:
                tissue, share = _tissue_under(analysis, res.nodule_id, scene)
                under = f" ({tissue} under {100 * share:.0f}% of it)"
            forbidden.append(f"{les['id']} ({kind}) reported as nodule {res.nodule_id}{under}")
        section = les.get("sections", {}).get(uid, {})
        t_long = section.get("long_axis_mm", float("nan"))
        t_short = section.get("short_axis_mm", float("nan"))
        res.errors = {
            "centroid_mm": float(np.linalg.norm(_centroid(row) - les["centroid_lps_mm"])),
            "volume_pct": 100.0 * (row["volume_mm3"] / les["core_volume_mm3"] - 1.0),
            "long_axis_mm": row["long_axis_mm"] - t_long,
            "short_axis_mm": row["short_axis_mm"] - t_short,
            "max_diameter_mm": row["max_diameter_mm"] - les["max_diameter_mm"],
            "fascia_offset_mm": row["fascia_offset_mm"] - les["fascia_offset_mm"],
            "fascia_min_mm": row["fascia_min_mm"] - les["fascia_min_mm"],
            "fascia_max_mm": row["fascia_max_mm"] - les["fascia_max_mm"],
            "skin_depth_mm": row["skin_depth_mm"] - les["skin_depth_mm"],
        }
        res.truth = {
            "long_axis_mm": t_long,
            "short_axis_mm": t_short,
            "volume_mm3": les["core_volume_mm3"],
            "fascia_offset_mm": les["fascia_offset_mm"],
            "side": les["side"],
            "relation": les["relation"],
            "subtype": les["expected_subtype"],
            "wide": les.get("wide"),
        }
        res.measured = {
            "volume_mm3": row["volume_mm3"],
            "long_axis_mm": row["long_axis_mm"],
            "fascia_offset_mm": row["fascia_offset_mm"],
            "fascia_min_mm": row["fascia_min_mm"],
            "fascia_max_mm": row["fascia_max_mm"],
            "side": row["side"],
            "relation": row["relation"],
            "subtype": row["suggested_subtype"],
            "red_flags": row["red_flags"],
        }
        if not res.required:
            continue
        e = res.errors
        if not e["centroid_mm"] <= th.centroid_mm:
            res.failures.append(f"centroid {e['centroid_mm']:.2f} mm > {th.centroid_mm:g}")
        if not abs(e["volume_pct"]) <= vol_tol:
            res.failures.append(f"volume {e['volume_pct']:+.1f}% beyond ±{vol_tol:g}%")
        long_tol = th.long_axis(t_long)
        if not abs(e["long_axis_mm"]) <= long_tol:
            res.failures.append(f"long axis {e['long_axis_mm']:+.2f} mm beyond ±{long_tol:.2f}")
        if not abs(e["fascia_offset_mm"]) <= th.fascia_offset_mm:
            res.failures.append(
                f"fascia offset {e['fascia_offset_mm']:+.2f} mm beyond ±{th.fascia_offset_mm:g}"
            )
        if row["relation"] != les["relation"]:
            res.failures.append(f"relation {row['relation']} (truth {les['relation']})")
        failures.extend(f"{les['id']}: {f}" for f in res.failures)

    false: list[FalseCandidate] = []
    taken = set(matched.values())
    for i, row in enumerate(rows):
        if i in taken:
            continue
        fc = FalseCandidate(
            nodule_id=int(row["nodule_id"]),
            centroid_lps_mm=[float(v) for v in _centroid(row)],
            max_diameter_mm=float(row["max_diameter_mm"]),
            volume_mm3=float(row["volume_mm3"]),
            relation=row["relation"],
            split_of=splits.get(i),
        )
        if scene is not None:
            fc.tissue, fc.tissue_share = _tissue_under(analysis, fc.nodule_id, scene)
            if Tissue[fc.tissue.upper()] in NEVER_TISSUES:
                forbidden.append(f"nodule {fc.nodule_id} is {fc.tissue}")
        false.append(fc)
    if len(false) > th.max_false:
        failures.append(f"{len(false)} false candidates > {th.max_false}")
    failures.extend(f"never reported, but: {f}" for f in forbidden)
    return StudyResult(
        sample=str(truth.get("sample", "?")),
        seed=int(truth.get("seed", -1)),
        series_uid=uid,
        spacing_mm=spacing,
        lesions=results,
        false=false,
        forbidden=forbidden,
        failures=failures,
        timings=dict(analysis.timings),
    )


def run_study(
    sample: str, seed: int, out_dir: str | Path, *, thresholds: Thresholds | None = None
) -> tuple[StudyResult, Analysis]:
    """Write (or reuse), analyse and evaluate one phantom study.

    Parameters
    ----------
    sample : str
    seed : int
    out_dir : str or Path
        Parent folder of the study.
    thresholds : Thresholds, optional

    Returns
    -------
    StudyResult
    Analysis
    """
    study = generate(sample, seed, out_dir)
    truth = json.loads((study / "truth.json").read_text(encoding="utf-8"))
    t0 = time.perf_counter()
    analysis = analyze(study)
    seconds = time.perf_counter() - t0
    scene = sample_scene(sample, seed)
    result = evaluate(analysis, truth, scene=scene, thresholds=thresholds)
    result.seconds = seconds
    return result, analysis


# ------------------------------------------------------------------------- reports

_COLUMNS = (
    ("lesion", 6),
    ("kind", 11),
    ("size", 6),
    ("status", 8),
    ("id", 3),
    ("d_cen", 6),
    ("vol%", 7),
    ("long", 6),
    ("short", 6),
    ("maxd", 6),
    ("f_off", 6),
    ("f_min", 6),
    ("f_max", 6),
    ("skin", 6),
    ("side", 6),
    ("relation", 17),
    ("subtype (expected>suggested)", 0),
)
_ERRORS = (
    "centroid_mm",
    "volume_pct",
    "long_axis_mm",
    "short_axis_mm",
    "max_diameter_mm",
    "fascia_offset_mm",
    "fascia_min_mm",
    "fascia_max_mm",
    "skin_depth_mm",
)
_KIND = {
    "encapsulated_fat_nodule": "nodule",
    "liposarcoma_like": "liposarcoma",
    "fat_prominence": "prominence",
    "cyst": "cyst",
}
_REL = {"subcutaneous": "sc", "transfascial": "trans", "subfascial": "sub"}


def _cell(text: str, width: int) -> str:
    return f"{text:>{width}} " if width else text


def _status(res: LesionResult) -> str:
    if res.found:
        return "FOUND" if res.kind not in NEVER_KINDS else "REPORTED"
    if res.required:
        return "MISSED"
    return "-"


def format_study(result: StudyResult) -> str:
    """A table of one study: a line per truth lesion, then the false candidates.

    Errors are measured minus truth (mm; volume in %); ``*`` marks a broken
    threshold; lesions not required (small, prominence, cyst) are shown in
    lower case.
    """
    sp = "x".join(f"{v:g}" for v in result.spacing_mm)
    lines = [
        f"== {result.sample} seed {result.seed} ({sp} mm), analyse {result.seconds:.1f} s: "
        + ("pass" if result.passed else "FAIL"),
        "".join(_cell(name, w) for name, w in _COLUMNS),
    ]
    for res in result.lesions:
        status = _status(res)
        cells = [
            res.id,
            _KIND.get(res.kind, res.kind),
            f"{res.size_mm:.1f}",
            status if res.required or res.kind in NEVER_KINDS else status.lower(),
            "" if res.nodule_id is None else str(res.nodule_id),
        ]
        if res.found:
            marks = " ".join(res.failures)
            for key in _ERRORS:
                v = res.errors[key]
                flag = ""
                if res.required and (
                    (key == "centroid_mm" and "centroid" in marks)
                    or (key == "volume_pct" and "volume" in marks)
                    or (key == "long_axis_mm" and "long axis" in marks)
                    or (key == "fascia_offset_mm" and "fascia offset" in marks)
                ):
                    flag = "*"
                fmt = f"{v:+.1f}" if key == "volume_pct" else f"{v:+.2f}"
                if key == "centroid_mm":
                    fmt = f"{v:.2f}"
                cells.append(fmt + flag)
            t, m = res.truth, res.measured
            side = "ok" if m["side"] == t["side"] else f"{m['side']}!"
            rel = _REL.get(t["relation"], t["relation"])
            if m["relation"] != t["relation"]:
                rel += ">" + _REL.get(m["relation"], m["relation"]) + ("*" if res.required else "")
            else:
                rel += " ok"
            cells += [side, rel]
            sub = "ok" if m["subtype"] == t["subtype"] else f"{t['subtype']}>{m['subtype']}"
            cells.append(sub if not m["red_flags"] else f"{sub} [{m['red_flags']}]")
        else:
            cells += [""] * (len(_COLUMNS) - len(cells))
        lines.append("".join(_cell(c, w) for c, (_, w) in zip(cells, _COLUMNS, strict=True)))
    for fc in result.false:
        c = ", ".join(f"{v:.1f}" for v in fc.centroid_lps_mm)
        what = f"split of {fc.split_of}, " if fc.split_of else ""
        lines.append(
            f"  false #{fc.nodule_id}: ({c}) {fc.max_diameter_mm:.1f} mm, "
            f"{fc.volume_mm3:.0f} mm3, {fc.relation}, {what}"
            f"{fc.tissue} ({100 * fc.tissue_share:.0f}% of voxels)"
        )
    for f in result.failures:
        lines.append(f"  ! {f}")
    return "\n".join(lines)


def summarise(results: list[StudyResult], thresholds: Thresholds | None = None) -> dict:
    """Per sample: counts, the worst errors, and pass/fail against each threshold.

    Parameters
    ----------
    results : list of StudyResult
    thresholds : Thresholds, optional

    Returns
    -------
    dict of str to dict
        Per sample: ``studies``, ``required``, ``found``, ``missed``,
        ``small_found`` (nodules under the size limit found), ``prominence``
        (found / present), ``false`` (total), ``max_false`` (per study),
        ``forbidden``, ``worst`` (largest absolute error of each measurement
        over the required nodules found), ``relation_wrong``, ``side_wrong``,
        ``subtype_wrong``, ``checks`` (threshold name to bool) and ``passed``.
    """
    th = thresholds or Thresholds()
    out: dict[str, dict] = {}
    for sample in dict.fromkeys(r.sample for r in results):
        rs = [r for r in results if r.sample == sample]
        req = [les for r in rs for les in r.lesions if les.required]
        found = [les for les in req if les.found]
        small = [
            les for r in rs for les in r.lesions if les.kind in NODULE_KINDS and not les.required
        ]
        prom = [les for r in rs for les in r.lesions if les.kind in APART_KINDS]
        worst = {
            key: max((abs(les.errors[key]) for les in found), default=float("nan"))
            for key in _ERRORS
        }
        vol_tol = th.volume_pct(rs[0].spacing_mm)
        long_ok = all(
            abs(les.errors["long_axis_mm"]) <= th.long_axis(les.truth["long_axis_mm"])
            for les in found
        )
        checks = {
            "all found": len(found) == len(req),
            f"false <= {th.max_false}": all(len(r.false) <= th.max_false for r in rs),
            "never reported": not any(r.forbidden for r in rs),
            f"centroid <= {th.centroid_mm:g} mm": all(
                les.errors["centroid_mm"] <= th.centroid_mm for les in found
            ),
            f"volume <= {vol_tol:g}%": all(
                abs(les.errors["volume_pct"]) <= vol_tol for les in found
            ),
            "long axis": long_ok,
            f"fascia offset <= {th.fascia_offset_mm:g} mm": all(
                abs(les.errors["fascia_offset_mm"]) <= th.fascia_offset_mm for les in found
            ),
            "relation": all(les.measured["relation"] == les.truth["relation"] for les in found),
        }
        out[sample] = {
            "studies": len(rs),
            "seeds": [r.seed for r in rs],
            "required": len(req),
            "found": len(found),
            "missed": [
                f"{les.id}@{r.seed}"
                for r in rs
                for les in r.lesions
                if les.required and not les.found
            ],
            "small_found": f"{sum(les.found for les in small)}/{len(small)}",
            "prominence": f"{sum(les.found for les in prom)}/{len(prom)}",
            "false": sum(len(r.false) for r in rs),
            "max_false": max(len(r.false) for r in rs),
            "forbidden": [f"{f}@{r.seed}" for r in rs for f in r.forbidden],
            "worst": worst,
            "relation_wrong": sum(
                les.measured["relation"] != les.truth["relation"] for les in found
            ),
            "side_wrong": sum(les.measured["side"] != les.truth["side"] for les in found),
            "subtype_wrong": sum(les.measured["subtype"] != les.truth["subtype"] for les in found),
            "analyse_s": float(np.median([r.seconds for r in rs])),
            "checks": checks,
            "passed": all(checks.values()),
        }
    return out


def format_summary(summary: dict) -> str:
    """One block per sample: the counts, the worst errors, and a PASS/FAIL line."""
    lines = ["== summary (worst |error| over the required nodules found)"]
    for sample, s in summary.items():
        w = s["worst"]
        lines.append(
            f"{sample}: seeds {' '.join(map(str, s['seeds']))}; found {s['found']}/"
            f"{s['required']} (missed {', '.join(s['missed']) or 'none'}); small nodules found "
            f"{s['small_found']}; prominence found {s['prominence']}; false {s['false']} "
            f"(max {s['max_false']}/study); forbidden {', '.join(s['forbidden']) or 'none'}"
        )
        lines.append(
            f"  worst: centroid {w['centroid_mm']:.2f} mm, volume {w['volume_pct']:.1f}%, "
            f"long {w['long_axis_mm']:.2f}, short {w['short_axis_mm']:.2f}, "
            f"max diam {w['max_diameter_mm']:.2f}, fascia offset {w['fascia_offset_mm']:.2f} "
            f"/ min {w['fascia_min_mm']:.2f} / max {w['fascia_max_mm']:.2f}, skin "
            f"{w['skin_depth_mm']:.2f} mm; wrong: relation {s['relation_wrong']}, side "
            f"{s['side_wrong']}, subtype {s['subtype_wrong']}; analyse {s['analyse_s']:.1f} s"
        )
        checks = ", ".join(f"{k} {'ok' if v else 'FAIL'}" for k, v in s["checks"].items())
        lines.append(f"  {sample}: {'PASS' if s['passed'] else 'FAIL'} ({checks})")
    return "\n".join(lines)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    """Run the accuracy bench; returns the exit code (0 pass, 3 fail)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[100, 101, 102])
    parser.add_argument("--samples", nargs="+", default=list(DEFAULT_SAMPLES))
    parser.add_argument("--out", type=Path, help="keep the studies here (and reuse them)")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    for name in args.samples:
        get_sample(name)  # fail early on a bad name
    results: list[StudyResult] = []
    with tempfile.TemporaryDirectory(prefix="backmice_accuracy_") as tmp:
        out = args.out or Path(tmp)
        for sample in args.samples:
            for seed in args.seeds:
                try:
                    result, _ = run_study(sample, seed, out)
                # The phantom has no room for a lesion (write_sample says so as an InputError).
                except (PlacementError, InputError) as exc:
                    print(f"== {sample} seed {seed}: no phantom ({exc}); seed skipped")
                    continue
                results.append(result)
                print(format_study(result), flush=True)
    if not results:
        return 1
    summary = summarise(results)
    print(format_summary(summary))
    if args.json:
        doc = {"studies": [asdict(r) for r in results], "summary": summary}
        args.json.write_text(json.dumps(_jsonable(doc), indent=1) + "\n", encoding="utf-8")
    return 0 if all(s["passed"] for s in summary.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
