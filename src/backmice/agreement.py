"""Agreement between readers of an annotation project, each statistic with a 95 % CI.

For nodules seen by two or more readers (accepted or rejected by each):

- accept/reject and subtype: Cohen's kappa for every pair of readers
  (statsmodels, asymptotic CI), Fleiss' kappa over all readers when there are more
  than two (statsmodels, on the nodules every reader rated; CI by bootstrap over
  nodules), and the proportion of agreement per pair (Wilson CI, statsmodels);
- masks: Dice between every two readers' masks of a nodule both accepted
  (SciPy), and its mean per pair with a bootstrap CI;
- each diameter (``max_diameter_mm``, ``long_axis_mm``, ``short_axis_mm``) and
  ``fascia_offset_mm`` of nodules accepted by every reader compared:
  ICC(2,1) (Shrout & Fleiss: two-way random effects, absolute agreement, single
  rater; pingouin's ``ICC(A,1)``, CI of McGraw & Wong 1996) and, per pair of
  readers, Bland–Altman limits of agreement (mean difference ± 1.96 SD of the
  differences), with the CI of the bias (t, SciPy) and of each limit (Bland &
  Altman 1986: standard error ``sqrt(3 s² / n)``, t with ``n - 1`` degrees of
  freedom).

:func:`agreement` computes it from a :class:`backmice.store.Project`;
:func:`write_agreement` writes ``agreement.csv``, ``agreement.json`` and the
Bland–Altman panels ``agreement.png``. The libraries (statsmodels, pingouin,
SciPy) are imported on first use, so ``import backmice.agreement`` stays light.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from backmice.errors import InputError

if TYPE_CHECKING:
    from backmice.store import Project

__all__ = [
    "CONFIDENCE",
    "CSV_COLUMNS",
    "QUANTITIES",
    "AgreementResult",
    "BlandAltman",
    "Estimate",
    "agreement",
    "bland_altman",
    "bland_altman_figure",
    "cohen_kappa",
    "dice",
    "fleiss_kappa",
    "icc_2_1",
    "mean_dice",
    "proportion_agreement",
    "write_agreement",
]

log = logging.getLogger(__name__)

#: The confidence level of every interval.
CONFIDENCE = 0.95

#: Bootstrap resamples for the CIs that have no closed form here (Fleiss' kappa,
#: mean Dice); the generator is seeded, so a project gives the same CI every run.
BOOTSTRAP_RESAMPLES = 2000
_BOOTSTRAP_SEED = 20

#: The measurements compared between readers (SPEC columns, mm).
QUANTITIES: tuple[str, ...] = (
    "max_diameter_mm",
    "long_axis_mm",
    "short_axis_mm",
    "fascia_offset_mm",
)

#: Columns of ``agreement.csv``. ``ci_low``/``ci_high``: the 95 % CI of ``value``;
#: ``lower``/``upper``: Bland–Altman limits of agreement (bias rows) or the
#: smallest and largest Dice (Dice rows).
CSV_COLUMNS: tuple[str, ...] = (
    "measure",
    "quantity",
    "readers",
    "method",
    "n",
    "value",
    "ci_low",
    "ci_high",
    "sd",
    "lower",
    "upper",
)


# ----------------------------------------------------------------- statistics


@dataclass(frozen=True, slots=True)
class Estimate:
    """A statistic with its 95 % confidence interval.

    Attributes
    ----------
    value : float
        The estimate; NaN when undefined.
    low, high : float
        The confidence interval (level :data:`CONFIDENCE`); NaN when it cannot be
        given (too few items, or the statistic undefined).
    n : int
        Items the estimate is taken over.
    """

    value: float
    low: float = math.nan
    high: float = math.nan
    n: int = 0

    def __float__(self) -> float:
        return float(self.value)


_NAN = Estimate(math.nan)


def _bootstrap(n: int, statistic: Callable[[np.ndarray], float]) -> tuple[float, float]:
    """Percentile bootstrap CI over ``n`` items (resampled with replacement).

    ``statistic(indices)`` returns the statistic of the items at ``indices``;
    resamples where it is undefined (NaN: e.g. every reader used one category)
    are left out, and no CI is given when more than half are.
    """
    if n < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(_BOOTSTRAP_SEED)
    draws = rng.integers(0, n, size=(BOOTSTRAP_RESAMPLES, n))
    values = np.array([statistic(idx) for idx in draws], dtype=float)
    values = values[np.isfinite(values)]
    if values.size < BOOTSTRAP_RESAMPLES / 2:
        return math.nan, math.nan
    alpha = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(values, [alpha, 1.0 - alpha])
    return float(low), float(high)


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> Estimate:
    """Cohen's kappa of two raters' categorical ratings of the same items.

    Computed by :func:`statsmodels.stats.inter_rater.cohens_kappa` from the
    raters' contingency table; the CI is its asymptotic one (standard error of
    Fleiss, Cohen & Everitt 1969).

    Parameters
    ----------
    a, b : sequence, length n
        The two raters' categories, item by item.

    Returns
    -------
    Estimate
        ``(p_o - p_e) / (1 - p_e)`` with its 95 % CI; NaN when undefined (no
        items, or both raters used one and the same category throughout, so
        ``p_e = 1``).
    """
    if len(a) != len(b):
        raise ValueError(f"the raters rated {len(a)} and {len(b)} items")
    n = len(a)
    cats = sorted(set(a) | set(b), key=str)
    if n == 0 or len(cats) < 2:
        return Estimate(math.nan, n=n)
    from statsmodels.stats.inter_rater import cohens_kappa

    index = {c: i for i, c in enumerate(cats)}
    table = np.zeros((len(cats), len(cats)))
    np.add.at(table, ([index[x] for x in a], [index[y] for y in b]), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        res = cohens_kappa(table)
    kappa = float(res.kappa)
    if not math.isfinite(kappa):
        return Estimate(math.nan, n=n)
    low, high = float(res.kappa_low), float(res.kappa_upp)
    if not (math.isfinite(low) and math.isfinite(high)):
        low = high = math.nan
    return Estimate(kappa, low, high, n)


def fleiss_kappa(counts: np.ndarray) -> Estimate:
    """Fleiss' kappa from a table of counts, with a bootstrap CI over items.

    Computed by :func:`statsmodels.stats.inter_rater.fleiss_kappa`; the CI is a
    percentile bootstrap over the items (:data:`BOOTSTRAP_RESAMPLES`, seeded).

    Parameters
    ----------
    counts : array_like of int, shape (items, categories)
        ``counts[i, j]``: how many raters put item ``i`` in category ``j``. Every
        item must have the same number of raters, at least 2 (Fleiss 1971).

    Returns
    -------
    Estimate
        Fleiss' kappa with its 95 % CI; NaN when undefined (no items, or one
        category only).

    Raises
    ------
    ValueError
        The table is not 2-D, or its items have different numbers of raters.
    """
    x = np.asarray(counts, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"counts must be (items, categories), got shape {x.shape}")
    n = len(x)
    if n == 0:
        return _NAN
    raters = x.sum(axis=1)
    if np.any(raters != raters[0]) or raters[0] < 2:
        raise ValueError("Fleiss' kappa needs the same number (2 or more) of raters per item")
    from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss

    def kappa(rows: np.ndarray) -> float:
        table = x[rows]
        if np.count_nonzero(table.sum(axis=0)) < 2:
            return math.nan  # one category: p_e = 1
        return float(sm_fleiss(table, method="fleiss"))

    value = kappa(np.arange(n))
    if not math.isfinite(value):
        return Estimate(math.nan, n=n)
    low, high = _bootstrap(n, kappa)
    return Estimate(value, low, high, n)


def proportion_agreement(agree: int, n: int) -> Estimate:
    """The proportion of items two raters agree on, with its Wilson 95 % CI.

    Parameters
    ----------
    agree, n : int
        Items agreed on, items rated by both.

    Returns
    -------
    Estimate
        ``agree / n`` and the Wilson score interval
        (:func:`statsmodels.stats.proportion.proportion_confint`); NaN without items.
    """
    if n == 0:
        return _NAN
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(agree, n, alpha=1.0 - CONFIDENCE, method="wilson")
    return Estimate(agree / n, float(low), float(high), n)


def icc_2_1(ratings: np.ndarray) -> Estimate:
    """ICC(2,1) of Shrout & Fleiss (1979): two-way random, absolute agreement, single rater.

    Computed by :func:`pingouin.intraclass_corr` (its ``ICC(A,1)``, formerly
    ``ICC2``), with the F-based 95 % CI of McGraw & Wong (1996).

    Parameters
    ----------
    ratings : array_like of float, shape (targets, raters)
        Complete: every rater measured every target.

    Returns
    -------
    Estimate
        ``(BMS - EMS) / (BMS + (k - 1) EMS + k (JMS - EMS) / n)`` with its CI; NaN
        with fewer than 2 targets or raters, non-finite ratings, or no variance.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ValueError(f"ratings must be (targets, raters), got shape {x.shape}")
    n, k = x.shape
    if n < 2 or k < 2 or not np.isfinite(x).all() or np.ptp(x) == 0:
        return Estimate(math.nan, n=n)
    if np.all(np.ptp(x, axis=1) == 0):
        # Every rater agrees exactly on targets that differ (EMS = JMS = 0): the
        # ICC is 1 and the F-based CI undefined.
        return Estimate(1.0, n=n)
    import pandas as pd
    import pingouin

    long = pd.DataFrame(
        {
            "target": np.repeat(np.arange(n), k),
            "rater": np.tile(np.arange(k), n),
            "rating": x.ravel(),
        }
    )
    # pingouin rounds its CI column to 2 decimals by default: keep full precision.
    saved = dict(pingouin.options)
    pingouin.options.update({"round.column.CI95": None, "round.column.CI95%": None})
    try:
        with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
            # pingouin's own use of pandas APIs pandas deprecates; not ours to fix.
            warnings.filterwarnings("ignore", category=DeprecationWarning, module="pingouin")
            warnings.filterwarnings("ignore", category=FutureWarning, module="pingouin")
            table = pingouin.intraclass_corr(
                data=long, targets="target", raters="rater", ratings="rating"
            )
    finally:
        pingouin.options.clear()
        pingouin.options.update(saved)
    row = table.iloc[1]  # ICC(A,1) (pingouin >= 0.7) / ICC2 (earlier): Shrout & Fleiss ICC(2,1)
    if str(row["Type"]) not in ("ICC(A,1)", "ICC2"):
        raise RuntimeError(f"pingouin's second ICC is {row['Type']}, not ICC(2,1)")
    value = float(row["ICC"])
    ci = np.asarray(row["CI95"] if "CI95" in row.index else row["CI95%"], dtype=float)
    if not math.isfinite(value):
        return Estimate(math.nan, n=n)
    low, high = (float(ci[0]), float(ci[1])) if np.isfinite(ci).all() else (math.nan, math.nan)
    return Estimate(value, low, high, n)


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
    bias_ci : tuple of float
        95 % CI of the bias (one-sample t, :func:`scipy.stats.ttest_1samp`).
    lower_ci, upper_ci : tuple of float
        95 % CI of each limit (Bland & Altman 1986: standard error
        ``sqrt(3 sd² / n)``, t with ``n - 1`` degrees of freedom).
    """

    n: int
    mean_diff: float
    sd: float
    lower: float
    upper: float
    means: np.ndarray = field(repr=False)
    diffs: np.ndarray = field(repr=False)
    bias_ci: tuple[float, float] = (math.nan, math.nan)
    lower_ci: tuple[float, float] = (math.nan, math.nan)
    upper_ci: tuple[float, float] = (math.nan, math.nan)


def bland_altman(a: Sequence[float], b: Sequence[float]) -> BlandAltman:
    """Bias and limits of agreement of two readers' measurements of the same items.

    Parameters
    ----------
    a, b : sequence of float, length n
        The two readers' measurements (mm), item by item; pairs with a
        non-finite value are left out.

    Returns
    -------
    BlandAltman
        The bias, SD, limits ``bias ∓ 1.96 SD`` and their 95 % CIs (NaN with
        fewer than 2 pairs).
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape:
        raise ValueError(f"{x.shape} and {y.shape} measurements")
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    d = x - y
    n = int(d.size)
    mean = float(d.mean()) if n else math.nan
    sd = float(d.std(ddof=1)) if n >= 2 else math.nan
    lower, upper = mean - 1.96 * sd, mean + 1.96 * sd
    nan2 = (math.nan, math.nan)
    bias_ci, lower_ci, upper_ci = nan2, nan2, nan2
    if n >= 2 and math.isfinite(sd):
        from scipy import stats

        if sd > 0:
            ci = stats.ttest_1samp(d, 0.0).confidence_interval(CONFIDENCE)
            bias_ci = (float(ci.low), float(ci.high))
        else:
            bias_ci = (mean, mean)
        se_limit = math.sqrt(3.0 * sd * sd / n)
        t = float(stats.t.ppf(0.5 + CONFIDENCE / 2.0, n - 1))
        lower_ci = (lower - t * se_limit, lower + t * se_limit)
        upper_ci = (upper - t * se_limit, upper + t * se_limit)
    return BlandAltman(n, mean, sd, lower, upper, (x + y) / 2, d, bias_ci, lower_ci, upper_ci)


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice coefficient ``2|A∩B| / (|A| + |B|)`` of two masks (NaN when both are empty).

    Parameters
    ----------
    a, b : ndarray of bool, same shape
        The two masks (any shape, e.g. ``(slice, row, col)``).

    Returns
    -------
    float
        One minus SciPy's Dice dissimilarity (:func:`scipy.spatial.distance.dice`).
    """
    from scipy.spatial.distance import dice as dice_dissimilarity

    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of shapes {a.shape} and {b.shape}")
    if not (a.any() or b.any()):
        return math.nan
    return 1.0 - float(dice_dissimilarity(a.ravel(), b.ravel()))


def mean_dice(values: Sequence[float]) -> Estimate:
    """Mean of per-nodule Dice coefficients with a percentile-bootstrap 95 % CI.

    Parameters
    ----------
    values : sequence of float
        Dice per nodule (NaN values are left out).

    Returns
    -------
    Estimate
        The mean and its CI (resampling nodules; none with fewer than 2).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return _NAN
    low, high = _bootstrap(v.size, lambda idx: float(v[idx].mean()))
    return Estimate(float(v.mean()), low, high, int(v.size))


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
        measure: str,
        quantity: str,
        rs: Sequence[str],
        method: str,
        n: int,
        estimate: Estimate | None = None,
        **v: float | None,
    ) -> None:
        row = dict.fromkeys(CSV_COLUMNS)
        row.update(measure=measure, quantity=quantity, readers=";".join(rs), method=method, n=n)
        if estimate is not None:
            row.update(value=estimate.value, ci_low=estimate.low, ci_high=estimate.high)
        row.update(v)
        summary.append(row)

    for quantity in ("status", "subtype"):
        rated = [
            {r: v[quantity] for r, v in it["readers"].items() if v[quantity] is not None}
            for it in items
        ]
        rated = [x for x in rated if len(x) >= 2]
        if len(names) > 2:
            # Fleiss' kappa over the nodules every reader rated (a fixed number of raters).
            full = [x for x in rated if len(x) == len(names)]
            cats = sorted({c for x in full for c in x.values()})
            counts = np.array([[list(x.values()).count(c) for c in cats] for x in full])
            kappa = fleiss_kappa(counts) if full else _NAN
            add("kappa", quantity, names, "fleiss", len(full), kappa)
        for a, b in itertools.combinations(names, 2):
            both = [x for x in rated if a in x and b in x]
            va, vb = [x[a] for x in both], [x[b] for x in both]
            add("kappa", quantity, (a, b), "cohen", len(both), cohen_kappa(va, vb))
            agree = sum(x == y for x, y in zip(va, vb, strict=True))
            add(
                "percent_agreement",
                quantity,
                (a, b),
                "proportion",
                len(both),
                proportion_agreement(agree, len(both)),
            )
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
                mean_dice(ds),
                sd=float(np.std(ds, ddof=1)) if len(ds) > 1 else None,
                lower=float(np.min(ds)),
                upper=float(np.max(ds)),
            )
    if len(names) > 2 and all_dice:
        add("dice", "mask", names, "mean_all_pairs", len(all_dice), mean_dice(all_dice))
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
            icc_2_1(x) if len(full) else _NAN,
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
                Estimate(res.mean_diff, *res.bias_ci, res.n),
                sd=res.sd,
                lower=res.lower,
                upper=res.upper,
            )
            for method, value, ci in (
                ("lower_loa", res.lower, res.lower_ci),
                ("upper_loa", res.upper, res.upper_ci),
            ):
                add("bland_altman", quantity, (a, b), method, res.n, Estimate(value, *ci, res.n))
    for row in summary:
        for k in ("value", "ci_low", "ci_high", "sd", "lower", "upper"):
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
                for y, ci in ((res.lower, res.lower_ci), (res.upper, res.upper_ci)):
                    ax.axhline(y, color=color, lw=1, ls="--")
                    if all(math.isfinite(c) for c in ci):
                        ax.axhspan(*ci, color=color, alpha=0.1, lw=0)
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
    fig.suptitle(
        "Bland–Altman: mean difference and limits of agreement (± 1.96 SD), "
        "shaded: 95 % CI of each limit"
    )
    return fig
