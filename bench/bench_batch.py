"""Batch throughput: studies per minute with 1 and 2 workers, the scaling, and ``--resume``.

The script makes a cohort of ``--studies`` generated studies (the Dixon sample
written with seeds 1, 2, ... by :func:`backmice.phantom.samples.write_sample`:
2 series of 16 × 120 × 176, 1.3 mm; or ``--sample t1_axial``, 16 × 192 × 288 at
0.8 mm; or ``--sample us``, one 400 × 500 B-mode frame, analysed as
ultrasound), then, for each worker count, runs ``backmice batch`` once as a
fresh command (so worker start-up, the header scan, the tables and
``summary.png`` are all counted) into a new output folder, and prints a table:
wall time, studies per minute, the speed-up over the first row and the scaling
efficiency (speed-up / workers), the median seconds per study inside a worker
(from ``studies.csv``) and the threads each worker's libraries had
(``--threads``; default: CPUs / workers).

With ``--one-thread`` a row of 1 worker capped at 1 thread is added: the
speed-up of 2 workers over it is the scaling of the processes alone (do two
workers slow each other down?), while the speed-up over the default single
worker (which runs N4 on every core) is what a user gains.

Then ``backmice batch --resume`` runs again on the last output folder, with
nothing to do, and is timed against listing the cohort's files (walk + stat,
in this process) and against ``backmice --version`` (a fresh command that
imports the package).

Usage::

    python bench/bench_batch.py [--studies 12] [--workers 1 2] [--sample dixon|t1_axial|us] \
        [--one-thread] [--dir DIR] [--no-qc] [--repeat 3]

With ``--dir`` the cohort is kept there and reused when it has the right
studies; without it a temporary folder is used and removed. Exit code 0, or 1
when a batch run fails (exit code other than 0).
"""

from __future__ import annotations

import argparse
import csv
import os
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


def run_batch(
    cohort: Path, out: Path, workers: int, qc: bool, *, threads: int | None = None, resume=False
) -> float:
    """Wall seconds of one ``backmice batch`` command."""
    cmd = [sys.executable, "-m", "backmice", "batch", str(cohort), "--out", str(out)]
    cmd += ["--workers", str(workers), "--quiet"] + ([] if qc else ["--no-qc"])
    cmd += (["--threads", str(threads)] if threads else []) + (["--resume"] if resume else [])
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"backmice batch exited {proc.returncode}")
    if resume and "[1/" in proc.stdout:
        raise SystemExit("--resume analysed a study again:\n" + proc.stdout)
    return wall


def per_study_seconds(out: Path) -> float:
    with (out / "studies.csv").open() as fh:
        return statistics.median(float(r["seconds"]) for r in csv.DictReader(fh))


def list_files(cohort: Path) -> float:
    """Seconds to walk the cohort and stat every file (what --resume must at least do)."""
    t0 = time.perf_counter()
    for folder, _dirs, files in os.walk(cohort):
        for name in files:
            (Path(folder) / name).stat()
    return time.perf_counter() - t0


def fresh_command() -> float:
    """Seconds of ``backmice --version``: Python start-up and the package import."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "backmice", "--version"], capture_output=True, check=True)
    return time.perf_counter() - t0


def main() -> int:
    from backmice._threads import threads_per_worker

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=12)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--threads", type=int, help="threads per worker (default: CPUs / workers)")
    ap.add_argument("--one-thread", action="store_true", help="add a row: 1 worker, 1 thread")
    ap.add_argument("--sample", default="dixon", choices=("dixon", "t1_axial", "us"))
    ap.add_argument("--dir", type=Path)
    ap.add_argument("--no-qc", action="store_true")
    ap.add_argument("--repeat", type=int, default=3, help="runs of --resume (median)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base = args.dir or Path(tmp)
        t0 = time.perf_counter()
        cohort = make_cohort(base, args.studies, args.sample)
        print(
            f"cohort: {args.studies} {args.sample} studies in {cohort} "
            f"({time.perf_counter() - t0:.1f} s to prepare); {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.2f}"
        )
        runs = [(w, args.threads) for w in args.workers]
        if args.one_thread:
            runs.insert(1, (1, 1))
        rows = []
        for w, threads in runs:
            out = Path(tempfile.mkdtemp(prefix=f"out{w}.", dir=tmp))
            wall = run_batch(cohort, out, w, qc=not args.no_qc, threads=threads)
            used = threads or threads_per_worker(w)
            rows.append((w, used, wall, args.studies / wall * 60.0, per_study_seconds(out)))
        base_rate = rows[0][3] / rows[0][0]
        print(
            f"\n{'workers':>7} {'threads':>7} {'wall s':>8} {'studies/min':>12} {'speed-up':>9} "
            f"{'efficiency':>10} {'s/study in worker':>18} {'steady studies/min':>19}"
        )
        for w, threads, wall, rate, inner in rows:
            speedup = rate / base_rate
            print(
                f"{w:>7} {threads:>7} {wall:>8.1f} {rate:>12.1f} {speedup:>9.2f} "
                f"{speedup / w:>10.0%} {inner:>18.2f} {60.0 * w / inner:>19.1f}"
            )
        print(
            "(steady: workers / s per study in a worker, i.e. without the fixed start-up, "
            "header scan, tables and summary.png of one command)"
        )
        one = [r for r in rows if r[0] == 1 and r[1] == 1]
        two = [r for r in rows if r[0] == 2]
        if one and two:
            print(
                f"2 workers over 1 worker at one thread each: {two[0][3] / one[0][3]:.2f}x wall, "
                f"{one[0][4] * 2 / two[0][4]:.2f}x steady (the processes' own scaling)"
            )
        resume = [
            run_batch(cohort, out, rows[-1][0], qc=not args.no_qc, resume=True)
            for _ in range(args.repeat)
        ]
        listing = statistics.median(list_files(cohort) for _ in range(args.repeat))
        fresh = statistics.median(fresh_command() for _ in range(args.repeat))
        print(
            f"\n--resume with nothing to do: {statistics.median(resume):.2f} s (median of "
            f"{args.repeat}; min {min(resume):.2f}); listing the cohort's files: {listing:.3f} s; "
            f"'backmice --version' (start-up + import): {fresh:.2f} s"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
