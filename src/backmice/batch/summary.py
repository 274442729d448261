"""``summary.png``: the cohort at a glance (matplotlib, Agg; written atomically)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from backmice._atomic import atomic_path
from backmice.batch.worker import StudyRecord, StudyStatus
from backmice.vocab import Relation, Side

__all__ = ["summary_figure"]

_RELATION_COLOURS = {
    Relation.SUBCUTANEOUS: "tab:green",
    Relation.TRANSFASCIAL: "tab:orange",
    Relation.SUBFASCIAL: "tab:red",
}


def _counts(ax, values: pd.Series, order: Sequence[str], title: str, *, horizontal=False) -> None:
    counts = values.fillna("").replace("", "unknown").value_counts()
    labels = [o for o in order if o in counts.index] + sorted(
        o for o in counts.index if o not in order
    )
    heights = [int(counts[o]) for o in labels]
    if horizontal:
        ax.barh(labels[::-1], heights[::-1], color="tab:blue")
        ax.set_xlabel("nodules")
    else:
        ax.bar(labels, heights, color="tab:blue")
        ax.set_ylabel("nodules")
    ax.set_title(title)


def summary_figure(
    nodules: pd.DataFrame,
    records: Sequence[StudyRecord],
    path: str | os.PathLike[str],
) -> Path:
    """Draw the cohort summary and write it as PNG.

    Panels: largest-diameter distribution (mm), fascia offset (mm) against
    largest diameter (mm) coloured by relation, counts by relation and by side,
    and the suggested subtypes. The title gives the study counts by status.

    Parameters
    ----------
    nodules : pandas.DataFrame
        The cohort nodule table (SPEC columns).
    records : sequence of StudyRecord
        Every study of the batch.
    path : path-like
        The PNG to write.

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure  # no pyplot: renders with Agg, touches no GUI

    fig = Figure(figsize=(15, 9), dpi=80, layout="constrained")
    axes = fig.subplots(2, 3)
    by_status = {s: sum(r.status is s for r in records) for s in StudyStatus}
    units = sorted(set(nodules["units"])) if len(nodules) else ["mm"]
    unit = "/".join(units)
    fig.suptitle(
        f"{len(records)} studies: {by_status[StudyStatus.OK]} ok, "
        f"{by_status[StudyStatus.ERROR]} error, {by_status[StudyStatus.NO_STACK]} no usable stack; "
        f"{len(nodules)} candidate nodules",
        fontsize=13,
    )
    size = nodules["max_diameter_mm"].to_numpy(dtype=float)
    ax = axes[0, 0]
    if np.isfinite(size).any():
        ax.hist(size[np.isfinite(size)], bins="auto", color="tab:blue")
    ax.set_xlabel(f"largest diameter ({unit})")
    ax.set_ylabel("nodules")
    ax.set_title("size distribution")

    ax = axes[0, 1]
    for relation in Relation:
        sel = nodules[nodules["relation"] == str(relation)]
        if len(sel):
            ax.scatter(
                sel["max_diameter_mm"],
                sel["fascia_offset_mm"],
                s=18,
                label=str(relation),
                color=_RELATION_COLOURS[relation],
            )
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(f"largest diameter ({unit})")
    ax.set_ylabel(f"fascia offset ({unit}, + superficial)")
    ax.set_title("fascia offset against size")
    if len(nodules):
        ax.legend(fontsize=8)

    _counts(axes[0, 2], nodules["relation"], [str(r) for r in Relation], "by relation")
    _counts(axes[1, 0], nodules["side"], [str(s) for s in Side], "by side")
    _counts(axes[1, 1], nodules["suggested_subtype"], [], "suggested subtypes", horizontal=True)
    ax = axes[1, 2]
    per_study = [r.n_nodules for r in records if r.status is StudyStatus.OK]
    if per_study:
        ax.hist(per_study, bins=np.arange(max(per_study) + 2) - 0.5, color="tab:blue")
    ax.set_xlabel("candidate nodules per study")
    ax.set_ylabel("studies")
    ax.set_title("nodules per study (studies analysed)")
    for ax in axes.flat:
        if not ax.has_data():
            ax.text(0.5, 0.5, "no nodules", ha="center", va="center", transform=ax.transAxes)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    return Path(path)
