"""Accuracy of the automatic sacrum finder (issue #4) against the phantom's truth.

For each sample (geometry) and seed, the phantom study is written with
:func:`backmice.phantom.write_sample` and analysed with
:func:`backmice.analysis.analyze` with ``find_sacrum=True``. The level found
(``Analysis.sacrum_top_z_mm``) is compared with the truth's
``anatomy.sacrum_top_z_mm``:

- ``ok``: within the tolerance, one slice thickness (4 mm for the isotropic
  series, whose slices are thinner than the step the finder resolves);
- ``unknown``: the finder said None (the suggestion falls back to lumbar);
- ``WRONG``: a level outside the tolerance (worse than unknown).

For the trans- and subfascial nodules matched to a truth lesion (as in
``bench/accuracy.py``), the suggested subtype is compared with the truth's
expected lumbar / lumbosacral subtype. The time of the finder itself, called
on the analysis' arrays as the analysis calls it, is reported too.

Seeds listed in ``--tuned`` are the ones the finder's parameters were chosen
on; the summary reports them apart from the others.

Usage::

    python bench/accuracy_level.py [--seeds 20 21 ...] [--tuned 0 1 ...] \
        [--samples t1_axial dixon t1_oblique_iso] [--out DIR]

Without ``--out`` the studies are written to a temporary folder and removed;
with it they are kept (``DIR/<sample>_<seed>/``) and reused. Each study is
analysed in a fresh process: a study whose analysis crashes the interpreter
(a native-code fault) is reported as ``crashed`` and the others go on. Exit
code 0 when no level is wrong and nothing crashed, 3 otherwise.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backmice.analysis import AnalysisOptions, analyze, site_maps
from backmice.errors import InputError
from backmice.phantom import PlacementError, write_sample
from backmice.segment.level import sacrum_top_z_mm
from backmice.vocab import Relation, Subtype

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import match_rows

__all__ = ["LevelResult", "format_summary", "main", "run_study"]

DEFAULT_SAMPLES = ("t1_axial", "dixon", "t1_oblique_iso")
#: Seeds the finder's parameters were tuned on (the rest were never looked at while tuning).
TUNED_SEEDS = tuple(range(20))
_HERNIATIONS = {Subtype.LUMBAR_FASCIAL_FAT_HERNIATION, Subtype.LUMBOSACRAL_FAT_HERNIATION}


@dataclass
class LevelResult:
    """The level found in one study, against the truth."""

    sample: str
    seed: int
    truth_mm: float
    found_mm: float | None
    tolerance_mm: float
    finder_s: float
    subtype_right: int
    subtype_wrong: int

    @property
    def error_mm(self) -> float | None:
        """Found minus truth, mm (None when unknown)."""
        return None if self.found_mm is None else self.found_mm - self.truth_mm

    @property
    def verdict(self) -> str:
        """``ok``, ``unknown`` or ``WRONG``."""
        if self.found_mm is None:
            return "unknown"
        return "ok" if abs(self.error_mm) <= self.tolerance_mm else "WRONG"


def run_study(sample: str, seed: int, folder: Path) -> LevelResult:
    """Write (or reuse) one study, analyse it with the finder on, and judge the level.

    Raises
    ------
    PlacementError, InputError
        When the phantom of that seed cannot hold every lesion.
    """
    if not (folder / "truth.json").exists():
        write_sample(sample, folder, seed=seed, overwrite=True)
    truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
    analysis = analyze(folder, options=AnalysisOptions(find_sacrum=True))
    # The finder alone, on the arrays the analysis hands it.
    site = site_maps(analysis)
    deep = analysis.fat.mask & analysis.body.mask & ~analysis.subcutaneous & (analysis.labels == 0)
    t = time.perf_counter()
    if site.midline_x_mm is not None:
        sacrum_top_z_mm(
            deep,
            analysis.fascia.signed_mm,
            affine=analysis.volume.affine,
            midline_x_mm=site.midline_x_mm,
        )
    finder_s = time.perf_counter() - t
    spacing = analysis.volume.spacing_mm
    iso = max(spacing) - min(spacing) < 0.1
    tolerance = 4.0 if iso else float(spacing[0])
    lesions = truth["lesions"]
    matched, _splits = match_rows(analysis.nodules, lesions)
    right = wrong = 0
    for lesion in lesions:
        if lesion["expected_subtype"] not in _HERNIATIONS or lesion["id"] not in matched:
            continue
        row = analysis.nodules[matched[lesion["id"]]]
        if row["relation"] == Relation.SUBCUTANEOUS or row["red_flags"]:
            continue  # another rule decides; not the level's doing
        if row["suggested_subtype"] == lesion["expected_subtype"]:
            right += 1
        else:
            wrong += 1
    return LevelResult(
        sample=sample,
        seed=seed,
        truth_mm=float(truth["anatomy"]["sacrum_top_z_mm"]),
        found_mm=analysis.sacrum_top_z_mm,
        tolerance_mm=tolerance,
        finder_s=finder_s,
        subtype_right=right,
        subtype_wrong=wrong,
    )


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}" if v < 0 or v > 0 else "0.0"


def format_summary(results: list[LevelResult], tuned: set[int]) -> str:
    """Per sample, and tuned / untuned seeds apart: counts of each verdict and the errors."""
    lines = [
        f"{'sample':16} {'seeds':8} {'n':>3} {'ok':>3} {'unknown':>7} {'WRONG':>5} "
        f"{'mean err':>8} {'max |err|':>9} {'hern. subtype ok/wrong':>22} {'finder s':>8}"
    ]
    for sample in dict.fromkeys(r.sample for r in results):
        for label, keep in (("tuned", True), ("untuned", False)):
            rs = [r for r in results if r.sample == sample and (r.seed in tuned) == keep]
            if not rs:
                continue
            errs = [r.error_mm for r in rs if r.error_mm is not None]
            count = {v: sum(r.verdict == v for r in rs) for v in ("ok", "unknown", "WRONG")}
            lines.append(
                f"{sample:16} {label:8} {len(rs):3d} {count['ok']:3d} {count['unknown']:7d} "
                f"{count['WRONG']:5d} "
                f"{(f'{np.mean(errs):+.2f}' if errs else '-'):>8} "
                f"{(f'{np.max(np.abs(errs)):.2f}' if errs else '-'):>9} "
                f"{sum(r.subtype_right for r in rs):>11d}/{sum(r.subtype_wrong for r in rs):<10d} "
                f"{max(r.finder_s for r in rs):8.3f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print a table per study and a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(20, 44)))
    parser.add_argument("--tuned", type=int, nargs="*", default=list(TUNED_SEEDS))
    parser.add_argument("--samples", nargs="+", default=list(DEFAULT_SAMPLES))
    parser.add_argument("--out", type=Path, help="keep the studies here (and reuse them)")
    args = parser.parse_args(argv)
    results: list[LevelResult] = []
    crashed: list[str] = []
    print(f"{'sample':16} {'seed':>4} {'truth z':>8} {'found z':>8} {'error':>6}  verdict")
    spawn = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="backmice_level_") as tmp:
        root = args.out or Path(tmp)
        for seed in args.seeds:
            for sample in args.samples:
                # One process per study: the analysis of one study cannot take the run down.
                with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
                    future = pool.submit(run_study, sample, seed, root / f"{sample}_{seed}")
                    try:
                        r = future.result()
                    except (PlacementError, InputError) as exc:
                        print(f"{sample:16} {seed:4d}  skipped: {exc}")
                        continue
                    except BrokenProcessPool:
                        print(f"{sample:16} {seed:4d}  crashed (the analysis process died)")
                        crashed.append(f"{sample}_{seed}")
                        continue
                results.append(r)
                found = "None" if r.found_mm is None else f"{r.found_mm:.1f}"
                print(
                    f"{sample:16} {seed:4d} {r.truth_mm:8.1f} {found:>8} "
                    f"{_fmt(r.error_mm):>6}  {r.verdict}",
                    flush=True,
                )
    print()
    print(format_summary(results, set(args.tuned)))
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    return 3 if crashed or any(r.verdict == "WRONG" for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
