"""Accuracy of the MRI analysis on nodules drawn into real studies (``backmice.phantom.insert``).

For each study under ``../shared/real`` (``--root``; the bench says so and exits
0 when it is missing) the lesion-free study is analysed once (its anatomy places
the nodules, and its own candidates are the baseline of false ones); then for
each seed, ``--count`` encapsulated fat nodules are drawn into it with
:func:`backmice.phantom.insert.insert_nodules`, the new study is analysed with
:func:`backmice.analysis.analyze`, and the rows are matched to the truth and
the errors tabulated by ``bench/accuracy.py`` (:func:`accuracy.evaluate`,
:func:`accuracy.format_study`, :func:`accuracy.summarise`), with the issue's
limit of 1 false candidate per study.

Usage::

    python bench/accuracy_real.py [--root DIR] [--studies NAME ...] \
        [--seeds 900 901] [--count 3] [--out DIR] [--json FILE]

The default run (6 studies, 2 seeds, 3 nodules) takes about 5 minutes on 2
cores. Without ``--out`` the studies are written to a temporary folder and
removed. Exit code 0 when every study passes (or there are no real studies), 3
otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from backmice.analysis import analyze
from backmice.errors import InputError
from backmice.io import open_study
from backmice.phantom.insert import insert_nodules

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import (
    StudyResult,
    Thresholds,
    _jsonable,
    evaluate,
    format_study,
    format_summary,
    summarise,
)
from real import default_root

#: The issue's contract on real studies: at most one false candidate per study.
THRESHOLDS = Thresholds(max_false=1)
#: Seeds of the default run (never used while developing the insertion).
DEFAULT_SEEDS = (900, 901)


def studies_under(root: Path) -> list[Path]:
    """The study folders under ``root`` (every sub-folder), sorted by name."""
    return sorted(p for p in root.iterdir() if p.is_dir())


def run(
    study: Path,
    seeds: list[int],
    count: int,
    out: Path,
    *,
    thresholds: Thresholds = THRESHOLDS,
) -> tuple[list[StudyResult], int]:
    """Insert, analyse and evaluate one real study for each seed.

    Returns
    -------
    results : list of StudyResult
    baseline_false : int
        Candidates the analysis reports on the study before insertion.
    """
    opened = open_study(study)
    base = analyze(opened)
    results = []
    for seed in seeds:
        target = out / f"{study.name}_{seed}"
        try:
            written = insert_nodules(
                opened, target, seed=seed, count=count, analysis=base, overwrite=True
            )
        except InputError as exc:
            print(f"== {study.name} seed {seed}: no insertion ({exc}); seed skipped")
            continue
        t0 = time.perf_counter()
        analysis = analyze(target)
        seconds = time.perf_counter() - t0
        result = evaluate(analysis, written.truth, thresholds=thresholds)
        result.seconds = seconds
        kinds = ", ".join(
            f"{t['id']}={t['intended_relation']}/{t['relation']}"
            f" capsule {t['wall_mm']:.1f} mm{'' if t['capsule']['complete'] else ' (incomplete)'}"
            for t in written.truth["lesions"]
        )
        print(format_study(result))
        print(f"  drawn: {kinds}", flush=True)
        results.append(result)
    return results, len(base.nodules)


def main(argv: list[str] | None = None) -> int:
    """Run the bench; returns the exit code (0 pass or nothing to run, 3 fail)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, default=None, help="real studies (../shared/real)")
    parser.add_argument("--studies", nargs="+", help="only these study folders (names)")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS))
    parser.add_argument("--count", type=int, default=3, help="nodules per study (default 3)")
    parser.add_argument("--out", type=Path, help="keep the studies written here")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    root = args.root or default_root()
    if not root.is_dir():
        print(f"no real studies at {root} (../shared/real): nothing to measure")
        return 0
    studies = studies_under(root)
    if args.studies:
        studies = [s for s in studies if s.name in set(args.studies)]
    if not studies:
        print(f"no study folders under {root}: nothing to measure")
        return 0
    results: list[StudyResult] = []
    baseline: dict[str, int] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="backmice_accuracy_real_") as tmp:
        out = args.out or Path(tmp)
        for study in studies:
            try:
                rs, base = run(study, args.seeds, args.count, out)
            except InputError as exc:
                print(f"== {study.name}: cannot analyse ({exc}); skipped")
                continue
            baseline[study.name] = base
            results.extend(rs)
    if not results:
        print("no study could take nodules")
        return 3
    summary = summarise(results, THRESHOLDS)
    print(format_summary(summary))
    print(
        "candidates before insertion (all false): "
        + ", ".join(f"{k} {v}" for k, v in baseline.items())
    )
    print(f"total {time.perf_counter() - t0:.0f} s")
    if args.json:
        doc = {
            "studies": [asdict(r) for r in results],
            "summary": summary,
            "baseline_false": baseline,
        }
        args.json.write_text(json.dumps(_jsonable(doc), indent=1) + "\n", encoding="utf-8")
    return 0 if all(s["passed"] for s in summary.values()) else 3


if __name__ == "__main__":
    sys.exit(main())
