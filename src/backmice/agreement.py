"""Agreement between readers of an annotation project.

For nodules seen by two or more readers (accepted or rejected by each):

- accept/reject and subtype: Cohen's kappa for two readers, Fleiss' kappa for
  more (and Cohen's for every pair), with the raw proportion of agreement;
- masks: Dice between every two readers' masks of a nodule both accepted;
- each diameter (``max_diameter_mm``, ``long_axis_mm``, ``short_axis_mm``) and
  ``fascia_offset_mm`` of nodules accepted by every reader compared:
  ICC(2,1) (Shrout & Fleiss: two-way random effects, absolute agreement, single
  rater) and, per pair of readers, Bland–Altman limits of agreement (mean
  difference ± 1.96 SD of the differences).

:func:`agreement` computes it from a :class:`backmice.store.Project`;
:func:`write_agreement` writes ``agreement.csv``, ``agreement.json`` and the
Bland–Altman panels ``agreement.png``.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backmice.errors import InputError

if TYPE_CHECKING:
    from backmice.store import Project

__all__ = [
    "CSV_COLUMNS",
    "QUANTITIES",
    "AgreementResult",
    "BlandAltman",
    "agreement",
    "bland_altman",
    "bland_altman_figure",
    "cohen_kappa",
    "dice",
    "fleiss_kappa",
    "icc_2_1",
    "write_agreement",
]

log = logging.getLogger(__name__)

#: The measurements compared between readers (SPEC columns, mm).
QUANTITIES: tuple[str, ...] = (
    "max_diameter_mm",
    "long_axis_mm",
    "short_axis_mm",
    "fascia_offset_mm",
)

#: Columns of ``agreement.csv``.
CSV_COLUMNS: tuple[str, ...] = (
    "measure",
    "quantity",
    "readers",
    "method",
    "n",
    "value",
    "sd",
    "lower",
    "upper",
)


# ----------------------------------------------------------------- statistics


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float:
    """Cohen's kappa of two raters' categorical ratings of the same items.

    Parameters
    ----------
    a, b : sequence, length n
        The two raters' categories, item by item.

    Returns
    -------
    float
        ``(p_o - p_e) / (1 - p_e)``; NaN when undefined (no items, or both raters
        used one and the same category throughout, so ``p_e = 1``).
    """
    if len(a) != len(b):
        raise ValueError(f"the raters rated {len(a)} and {len(b)} items")
    n = len(a)
    if n == 0:
        return math.nan
    cats = sorted(set(a) | set(b), key=str)
    p_o = sum(x == y for x, y in zip(a, b, strict=True)) / n
    p_e = sum((list(a).count(c) / n) * (list(b).count(c) / n) for c in cats)
    if math.isclose(p_e, 1.0):
        return math.nan
    return (p_o - p_e) / (1.0 - p_e)


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa from a table of counts.

    Parameters
    ----------
    counts : array_like of int, shape (items, categories)
        ``counts[i, j]``: how many raters put item ``i`` in category ``j``. Items
        may have different numbers of raters (at least 2 each); the agreement of
        each item is then taken over its own raters.

    Returns
    -------
    float
        Fleiss' kappa; NaN when undefined (no items, or one category only).
    """
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"counts must be (items, categories), got shape {x.shape}")
    n_i = x.sum(axis=1)
    x, n_i = x[n_i >= 2], n_i[n_i >= 2]
    if not len(x):
        return math.nan
    p_i = ((x * x).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = float(p_i.mean())
    p_j = x.sum(axis=0) / n_i.sum()
    p_e = float((p_j * p_j).sum())
    if math.isclose(p_e, 1.0):
        return math.nan
    return (p_bar - p_e) / (1.0 - p_e)


def icc_2_1(ratings: np.ndarray) -> float:
    """ICC(2,1) of Shrout & Fleiss (1979): two-way random, absolute agreement, single rater.

    Parameters
    ----------
    ratings : array_like of float, shape (targets, raters)
        Complete: every rater measured every target.

    Returns
    -------
    float
        ``(BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)``; NaN with fewer
        than 2 targets or raters, or no variance at all.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be (targets, raters), got shape {x.shape}")
    n, k = x.shape
    if n < 2 or k < 2 or not np.isfinite(x).all():
        return math.nan
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_total = ((x - grand) ** 2).sum()
    bms = ss_rows / (n - 1)
    jms = ss_cols / (k - 1)
    ems = (ss_total - ss_rows - ss_cols) / ((n - 1) * (k - 1))
    denom = bms + (k - 1) * ems + k * (jms - ems) / n
    if denom <= 0 or not math.isfinite(denom):
        return math.nan
    return float((bms - ems) / denom)


@dataclass(frozen=True, slots=True)
class BlandAltman:
    """Bland–Altman comparison of two readers (differences ``a - b``).

    Attributes
    ----------
    n : int
    mean_diff : float
        Bias, same unit as the measurements (mm).
    sd : float
        SD of the differences (ddof 1).
    lower, upper : float
        Limits of agreement, ``mean_diff ∓ 1.96 sd``.
    means, diffs : ndarray, shape (n,)
        Per item, the mean of the two and their difference (for the plot).
    """

    n: int
    mean_diff: float
    sd: float
    lower: float
    upper: float
    means: np.ndarray = field(repr=False)
    diffs: np.ndarray = field(repr=False)


def bland_altman(a: Sequence[float], b: Sequence[float]) -> BlandAltman:
    """Bias and limits of agreement of two readers' measurements of the same items."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"{x.shape} and {y.shape} measurements")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = x - y
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    return BlandAltman(n, mean, sd, mean - 1.96 * sd, mean + 1.96 * sd, (x + y) / 2, d)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of two masks (NaN when both are empty)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int((a & b).sum()) / total if total else math.nan


# ------------------------------------------------------------------ projects


@dataclass(slots=True)
class AgreementResult:
    """Everything :func:`agreement` found.

    Attributes
    ----------
    readers : list of str
    summary : list of dict
        One row per statistic, keys :data:`CSV_COLUMNS` (``agreement.csv``).
    nodules : list of dict
        Per nodule seen by two or more readers: study, nodule_id, each reader's
        status, subtype and measurements, and the pairwise Dice.
    bland_altman : dict of (str, (str, str)) to BlandAltman
        Per quantity and reader pair, for the plot.
    """

    readers: list[str]
    summary: list[dict]
    nodules: list[dict]
    bland_altman: dict[tuple[str, tuple[str, str]], BlandAltman]


def _num(value: Any) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return math.nan
    return out


def agreement(project: Project, *, readers: Sequence[str] | None = None) -> AgreementResult:
    """Agreement between the readers of a project (see the module's description).

    Parameters
    ----------
    project : backmice.store.Project
    readers : sequence of str, optional
        Compare these readers only; default every reader of the project.

    Returns
    -------
    AgreementResult

    Raises
    ------
    InputError
        Fewer than two readers, or no nodule seen by two of them.
    """
    names = sorted(readers) if readers is not None else project.readers()
    unknown = set(names) - set(project.readers())
    if unknown:
        raise InputError(f"no reader {sorted(unknown)} in the project", path=project.path)
    if len(names) < 2:
        raise InputError(
            f"agreement needs two or more readers; the project has {names or 'none'}",
            path=project.path,
        )
    items: list[dict] = []
    for study in project.studies():
        views = {
            r: {n["nodule_id"]: n for n in project.nodules(study.key, reader=r)} for r in names
        }
        ids = sorted(set().union(*views.values()))
        masks: dict[tuple[str, int], np.ndarray] = {}
        for nid in ids:
            seen = {
                r: views[r][nid]
                for r in names
                if nid in views[r] and views[r][nid]["status"] in ("accepted", "rejected")
            }
            if len(seen) < 2:
                continue
            item: dict[str, Any] = {"study": study.key, "nodule_id": nid, "readers": {}}
            for r, row in seen.items():
                item["readers"][r] = {
                    "status": row["status"],
                    "subtype": row["subtype"],
                    **{q: row.get(q) for q in QUANTITIES},
                }
            accepted = [r for r in seen if seen[r]["status"] == "accepted"]
            pair_dice = {}
            for a, b in itertools.combinations(accepted, 2):
                for r in (a, b):
                    if (r, nid) not in masks:
                        masks[(r, nid)] = project.mask(study.key, nid, reader=r)
                pair_dice[f"{a};{b}"] = dice(masks[(a, nid)], masks[(b, nid)])
            item["dice"] = pair_dice
            items.append(item)
    if not items:
        raise InputError(
            "no nodule was reviewed (accepted or rejected) by two or more readers",
            path=project.path,
        )
    summary: list[dict] = []

    def add(
        measure: str, quantity: str, rs: Sequence[str], method: str, n: int, **v: float | None
    ) -> None:
        row = dict.fromkeys(CSV_COLUMNS)
        row.update(measure=measure, quantity=quantity, readers=";".join(rs), method=method, n=n)
        row.update(v)
        summary.append(row)

    for quantity in ("status", "subtype"):
        rated = [
            {r: v[quantity] for r, v in it["readers"].items() if v[quantity] is not None}
            for it in items
        ]
        rated = [x for x in rated if len(x) >= 2]
        if len(names) > 2:
            cats = sorted({c for x in rated for c in x.values()})
            counts = np.array([[list(x.values()).count(c) for c in cats] for x in rated])
            kappa = fleiss_kappa(counts) if rated else math.nan
            add("kappa", quantity, names, "fleiss", len(rated), value=kappa)
        for a, b in itertools.combinations(names, 2):
            both = [x for x in rated if a in x and b in x]
            va, vb = [x[a] for x in both], [x[b] for x in both]
            add("kappa", quantity, (a, b), "cohen", len(both), value=cohen_kappa(va, vb))
            agree = sum(x == y for x, y in zip(va, vb, strict=True)) / len(both) if both else None
            add("percent_agreement", quantity, (a, b), "proportion", len(both), value=agree)
    all_dice = [d for it in items for d in it["dice"].values() if math.isfinite(d)]
    for a, b in itertools.combinations(names, 2):
        ds = [it["dice"][f"{a};{b}"] for it in items if f"{a};{b}" in it["dice"]]
        if ds:
            add(
                "dice",
                "mask",
                (a, b),
                "mean",
                len(ds),
                value=float(np.mean(ds)),
                sd=float(np.std(ds, ddof=1)) if len(ds) > 1 else None,
                lower=float(np.min(ds)),
                upper=float(np.max(ds)),
            )
    if len(names) > 2 and all_dice:
        add("dice", "mask", names, "mean_all_pairs", len(all_dice), value=float(np.mean(all_dice)))
    ba: dict[tuple[str, tuple[str, str]], BlandAltman] = {}
    for quantity in QUANTITIES:
        full = [
            it
            for it in items
            if all(
                r in it["readers"]
                and it["readers"][r]["status"] == "accepted"
                and math.isfinite(_num(it["readers"][r][quantity]))
                for r in names
            )
        ]
        x = np.array([[_num(it["readers"][r][quantity]) for r in names] for it in full])
        add(
            "icc",
            quantity,
            names,
            "icc(2,1)",
            len(full),
            value=icc_2_1(x) if len(full) else math.nan,
        )
        for a, b in itertools.combinations(names, 2):
            both = [
                it
                for it in items
                if all(
                    r in it["readers"] and it["readers"][r]["status"] == "accepted" for r in (a, b)
                )
            ]
            res = bland_altman(
                [_num(it["readers"][a][quantity]) for it in both],
                [_num(it["readers"][b][quantity]) for it in both],
            )
            ba[(quantity, (a, b))] = res
            add(
                "bland_altman",
                quantity,
                (a, b),
                "mean_diff (a - b)",
                res.n,
                value=res.mean_diff,
                sd=res.sd,
                lower=res.lower,
                upper=res.upper,
            )
    for row in summary:
        for k in ("value", "sd", "lower", "upper"):
            if isinstance(row[k], float) and not math.isfinite(row[k]):
                row[k] = None
    log.info("agreement: %d nodule(s) seen by two or more of %s", len(items), names)
    return AgreementResult(readers=names, summary=summary, nodules=items, bland_altman=ba)


def _cell(value: Any) -> Any:
    from backmice.report.write import spreadsheet_safe

    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, 4)
    return spreadsheet_safe(value)


def write_agreement(result: AgreementResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``agreement.csv``, ``agreement.json`` and ``agreement.png`` into ``out`` (atomically).

    Returns
    -------
    dict of str to Path
        ``csv``, ``json``, ``png``.
    """
    from backmice._atomic import atomic_path, write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in result.summary:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    doc = {"readers": result.readers, "summary": result.summary, "nodules": result.nodules}
    written = {
        "csv": write_text(out / "agreement.csv", buffer.getvalue()),
        "json": write_text(out / "agreement.json", json.dumps(_json(doc), indent=1) + "\n"),
    }
    with atomic_path(out / "agreement.png") as tmp:
        bland_altman_figure(result).savefig(tmp, dpi=100)
    written["png"] = out / "agreement.png"
    return written


def _json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def bland_altman_figure(result: AgreementResult) -> Any:
    """Bland–Altman panels, one per quantity, every reader pair overlaid (a matplotlib Figure)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8), layout="constrained")
    axes = fig.subplots(2, 2).ravel()
    markers = "osD^v<>"
    for ax, quantity in zip(axes, QUANTITIES, strict=True):
        pairs = [(p, r) for (q, p), r in result.bland_altman.items() if q == quantity]
        for (pair, res), marker in zip(pairs, itertools.cycle(markers), strict=False):
            if not res.n:
                continue
            label = f"{pair[0]} − {pair[1]} (n={res.n})"
            points = ax.scatter(res.means, res.diffs, marker=marker, alpha=0.7, label=label)
            color = points.get_facecolor()[0]
            ax.axhline(res.mean_diff, color=color, lw=1.2)
            if math.isfinite(res.sd):
                for y in (res.lower, res.upper):
                    ax.axhline(y, color=color, lw=1, ls="--")
        ax.axhline(0, color="0.6", lw=0.8)
        ax.set_title(quantity)
        ax.set_xlabel("mean of the two readers (mm)")
        ax.set_ylabel("difference (mm)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
        else:
            ax.text(
                0.5, 0.5, "no nodule accepted by two readers", ha="center", transform=ax.transAxes
            )
    fig.suptitle("Bland–Altman: mean difference and limits of agreement (± 1.96 SD)")
    return fig
