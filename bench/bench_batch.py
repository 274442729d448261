"""Batch throughput: studies per minute with 1 and 2 workers, and the scaling efficiency.

The script makes a cohort of ``--studies`` generated studies (the Dixon sample
written with seeds 1, 2, ... by :func:`backmice.phantom.samples.write_sample`:
2 series of 16 × 120 × 176, 1.3 mm; or ``--sample t1_axial``, 16 × 192 × 288 at
0.8 mm; or ``--sample us``, one 400 × 500 B-mode frame, analysed as
ultrasound), then, for each worker count, runs ``backmice batch`` once as a
fresh command (so worker start-up, the header scan, the tables and
``summary.png`` are all counted) into a new output folder, and prints a table:
wall time, studies per minute, the speed-up over one worker and the scaling
efficiency (speed-up / workers), and the median seconds per study inside a
worker (from ``studies.csv``).

Usage::

    python bench/bench_batch.py [--studies 12] [--workers 1 2] [--sample dixon|t1_axial|us] \
        [--dir DIR] [--no-qc]

With ``--dir`` the cohort is kept there and reused when it has the right
studies; without it a temporary folder is used and removed. Exit code 0, or 1
when a batch run fails (exit code other than 0).
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backmice.errors import InputError
from backmice.phantom.samples import write_sample


def make_cohort(root: Path, n: int, sample: str) -> Path:
    """``n`` studies of ``sample`` in ``root/s000`` ... (seeds 1, 2, ...; skips unusable seeds)."""
    cohort = root / f"{sample}_{n}"
    done = sorted(p for p in cohort.glob("s*") if (p / "truth.json").is_file())
    if len(done) >= n:
        return cohort
    seed = 1
    i = 0
    while i < n:
        folder = cohort / f"s{i:03d}"
        if (folder / "truth.json").is_file():
            i += 1
            seed += 1
            continue
        try:
            write_sample(sample, folder, seed=seed, overwrite=True)
        except InputError:  # a seed that leaves a lesion no room: take the next
            seed += 1
            continue
        i += 1
        seed += 1
    return cohort


def run_batch(cohort: Path, out: Path, workers: int, qc: bool) -> float:
    """Wall seconds of one ``backmice batch`` command."""
    cmd = [sys.executable, "-m", "backmice", "batch", str(cohort), "--out", str(out)]
    cmd += ["--workers", str(workers), "--quiet"] + ([] if qc else ["--no-qc"])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"backmice batch exited {proc.returncode}")
    return wall


def per_study_seconds(out: Path) -> float:
    with (out / "studies.csv").open() as fh:
        return statistics.median(float(r["seconds"]) for r in csv.DictReader(fh))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--sample", default="dixon", choices=("dixon", "t1_axial", "us"))
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--no-qc", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        t0 = time.perf_counter()
        cohort = make_cohort(base, args.studies, args.sample)
        print(
            f"cohort: {args.studies} {args.sample} studies in {cohort} "
            f"({time.perf_counter() - t0:.1f} s to prepare)"
        )
        rows = []
        for w in args.workers:
            out = Path(tempfile.mkdtemp(prefix=f"out{w}.", dir=tmp))
            wall = run_batch(cohort, out, w, qc=not args.no_qc)
            rows.append((w, wall, args.studies / wall * 60.0, per_study_seconds(out)))
        base_rate = rows[0][2] / rows[0][0]
        print(
            f"\n{'workers':>7} {'wall s':>8} {'studies/min':>12} {'speed-up':>9} "
            f"{'efficiency':>10} {'s/study in worker':>18}"
        )
        for w, wall, rate, inner in rows:
            speedup = rate / (base_rate)
            print(
                f"{w:>7} {wall:>8.1f} {rate:>12.1f} {speedup:>9.2f} {speedup / w:>10.0%} "
                f"{inner:>18.2f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
