"""How long the phantom takes to render and write a 320×420×24 T1 study.

The issue's target: a 320×420×24 T1 study (0.8 × 0.8 mm, 4 mm slices) renders
in under 30 s on 2 cores. This script times, each ``--repeat`` times (medians
printed):

- ``make_scene``: anatomy tables, septa and lesion placement;
- ``render``: sampling the scene with partial volume (supersampling the voxels
  that straddle a boundary);
- ``acquire``: bias field and Rician noise;
- ``write``: the DICOM files (one per slice) with ``backmice.io.writer``;
- ``truth``: ``truth.json`` (every lesion's truth values and its sections).

"render + acquire" is what the target is about; the whole study (all five)
is printed too. Exit code 0 when the target is met, 3 when it is missed.

Usage::

    python bench/bench_phantom.py [--repeat 3] [--seed 0] [--shape 24 320 420]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from backmice.io.writer import write_series
from backmice.phantom import Contrast, Grid, acquire, make_scene, render
from backmice.phantom.truth import truth_document

TARGET_S = 30.0


def _time(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t0, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shape", type=int, nargs=3, default=(24, 320, 420))
    args = parser.parse_args(argv)
    shape = tuple(args.shape)
    grid = Grid.centred(shape, (4.0, 0.8, 0.8), centre=(0.0, 20.0, 0.0))
    times: dict[str, list[float]] = {
        k: [] for k in ("scene", "render", "acquire", "write", "truth")
    }
    mixed = 0.0
    for _ in range(args.repeat):
        t, scene = _time(make_scene, args.seed)
        times["scene"].append(t)
        t, rendered = _time(render, scene, grid, quantities=("t1",))
        times["render"].append(t)
        mixed = rendered.mixed_fraction
        t, image = _time(acquire, rendered, Contrast.T1, seed=args.seed)
        times["acquire"].append(t)
        with tempfile.TemporaryDirectory() as tmp:
            t, _ = _time(write_series, image, Path(tmp), affine=grid.affine, bits_stored=12)
        times["write"].append(t)
        t, _ = _time(truth_document, scene, sample="bench", series=[], grids={"bench": grid})
        times["truth"].append(t)

    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"phantom T1 {shape[0]}x{shape[1]}x{shape[2]} at 4 x 0.8 x 0.8 mm, seed {args.seed}")
    print(f"supersampling {grid.auto_supersample()} on {100 * mixed:.1f}% of voxels")
    print(f"{'step':<18}{'median s':>10}{'min s':>10}")
    for k, v in times.items():
        print(f"{k:<18}{med[k]:>10.2f}{min(v):>10.2f}")
    core = med["render"] + med["acquire"]
    total = sum(med.values())
    print(f"{'render + acquire':<18}{core:>10.2f}   (target < {TARGET_S:.0f} s)")
    print(f"{'whole study':<18}{total:>10.2f}")
    met = core < TARGET_S
    print("target met" if met else "target MISSED")
    return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
