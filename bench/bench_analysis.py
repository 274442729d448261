"""How long the MRI analysis takes, and how much memory, on a 512×512×160 T1 series.

The issue's targets, on 2 cores: ``analyze`` of a 512×512×160 T1 series (one
file per slice) in under 20 s wall as a fresh command, with a peak resident
memory under 3 GB.

The script writes, once, a phantom T1 series of that size with
:func:`backmice.phantom.write_study` (a 3D T1 of 0.8×0.8×1 mm by default,
shuffled file names; the phantom's body fills about 340×230 mm of the 410 mm
field of view), then runs, ``--repeat`` times, a fresh Python process that
does ``from backmice.analysis import analyze; analyze(DIR)`` and reports the
stage timings (:attr:`backmice.analysis.Analysis.timings`). It prints per
stage the median and minimum, the wall time of the whole command (median and
minimum), and the peak resident memory of the children
(``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``, the largest over the runs).

Usage::

    python bench/bench_analysis.py [--dir DIR] [--repeat 3] [--seed 0] \
        [--shape 160 512 512] [--spacing 1.0 0.8 0.8]

With ``--dir`` the series is kept there and reused when its shape, spacing and
seed match; without it a temporary folder is used and removed. Exit code 0
when both targets are met, 3 when one is missed, 1 when a run fails.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backmice.phantom import Contrast, Grid, MRSeries, make_scene, write_study

TARGET_WALL_S = 20.0
#: Lesion kinds of the phantom that are nodules (as in ``bench/accuracy.py``).
NODULE_KINDS = ("encapsulated_fat_nodule", "liposarcoma_like")
TARGET_PEAK_GB = 3.0

#: What each fresh process runs: the analysis, timed, its stages as JSON on stdout.
CHILD = """\
import json, sys, time
t0 = time.perf_counter()
from backmice.analysis import analyze
t1 = time.perf_counter()
a = analyze(sys.argv[1])
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "analyze": t2 - t1, "timings": a.timings,
                  "nodules": len(a.nodules), "shape": list(a.labels.shape)}))
"""


def prepare(
    folder: Path,
    *,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    seed: int,
) -> tuple[Path, float | None]:
    """Write the phantom T1 series into ``folder`` unless a matching one is there.

    Parameters
    ----------
    folder : Path
        The study folder.
    shape : (int, int, int)
        ``(slice, row, col)``.
    spacing : (float, float, float)
        ``(slice, row, col)`` spacing, mm.
    seed : int
        Phantom seed.

    Returns
    -------
    folder : Path
    seconds : float or None
        Time taken to write it; None when it was reused.
    """
    truth = folder / "truth.json"
    if truth.is_file():
        doc = json.loads(truth.read_text(encoding="utf-8"))
        series = doc.get("series") or [{}]
        if (
            doc.get("seed") == seed
            and series[0].get("shape") == list(shape)
            and series[0].get("spacing_mm") == [round(v, 6) for v in spacing]
        ):
            return folder, None
    t0 = time.perf_counter()
    grid = Grid.centred(shape, spacing, centre=(0.0, 0.0, 0.0))
    write_study(
        make_scene(seed),
        folder,
        name="bench_analysis",
        mr=[MRSeries(Contrast.T1, grid)],
        shuffle=True,
        overwrite=True,
    )
    return folder, time.perf_counter() - t0


def run_once(folder: Path) -> tuple[float, dict]:
    """Run the analysis as a fresh command; returns its wall time and its report.

    Raises
    ------
    RuntimeError
        The command failed (its stderr is in the message).
    """
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(folder)], capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"analysis failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return wall, json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, help="keep the series here and reuse it")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(160, 512, 512))
    parser.add_argument("--spacing", type=float, nargs=3, default=(1.0, 0.8, 0.8))
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    shape = tuple(args.shape)
    spacing = tuple(args.spacing)
    with tempfile.TemporaryDirectory(prefix="backmice_bench_analysis_") as tmp:
        folder = args.dir or Path(tmp) / "study"
        folder, wrote = prepare(folder, shape=shape, spacing=spacing, seed=args.seed)
        truth = json.loads((folder / "truth.json").read_text(encoding="utf-8"))
        walls: list[float] = []
        reports: list[dict] = []
        try:
            for _ in range(args.repeat):
                wall, report = run_once(folder)
                walls.append(wall)
                reports.append(report)
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 1
    peak_gb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9  # KiB on Linux

    stages = list(dict.fromkeys(k for r in reports for k in r["timings"]))
    rows: list[tuple[str, list[float]]] = [
        (name, [r["timings"].get(name, 0.0) for r in reports]) for name in stages
    ]
    staged = [sum(r["timings"].values()) for r in reports]
    rows.append(("stages (sum)", staged))
    rows.append(("open + load", [r["analyze"] - s for r, s in zip(reports, staged, strict=True)]))
    rows.append(("analyze()", [r["analyze"] for r in reports]))
    rows.append(("import", [r["import"] for r in reports]))
    rows.append(("fresh command", walls))

    sz = "x".join(map(str, shape))
    sp = " x ".join(f"{v:g}" for v in spacing)
    print(f"analyze: phantom T1 {sz} at {sp} mm, seed {args.seed}, {args.repeat} runs")
    big = [
        les["id"]
        for les in truth.get("lesions", [])
        if les["kind"] in NODULE_KINDS and les["max_diameter_mm"] >= 10.0
    ]
    print(
        "series written in "
        + (f"{wrote:.1f} s" if wrote is not None else "(reused)")
        + f"; {reports[0]['nodules']} nodule(s) reported"
        + f" (the phantom holds {len(big)} of 10 mm or more)"
    )
    print(f"{'stage':<16}{'median s':>10}{'min s':>10}")
    for name, values in rows:
        print(f"{name:<16}{statistics.median(values):>10.2f}{min(values):>10.2f}")
    wall = statistics.median(walls)
    print(f"{'peak RSS':<16}{peak_gb:>9.2f}G   (largest over the runs)")
    ok_wall = wall < TARGET_WALL_S
    ok_peak = peak_gb < TARGET_PEAK_GB
    print(
        f"wall {wall:.1f} s (target < {TARGET_WALL_S:g} s): {'met' if ok_wall else 'MISSED'}; "
        f"peak {peak_gb:.2f} GB (target < {TARGET_PEAK_GB:g} GB): "
        f"{'met' if ok_peak else 'MISSED'}"
    )
    return 0 if ok_wall and ok_peak else 3


if __name__ == "__main__":
    sys.exit(main())
