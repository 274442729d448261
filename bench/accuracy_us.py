"""Ultrasound accuracy on fresh phantoms: seeded nodule, axes, fascia depth, relation.

For each phantom seed, a transverse probe is put over each encapsulated nodule
(``backmice.phantom.plane_over``, 56 mm wide, 40 mm deep), a frame is rendered with its own
speckle, and a seed point is dropped inside the nodule at a random offset from
its centre (up to a third of its short semi-axis). :func:`backmice.ultrasound.
analyze_frame` then measures it. Thresholds (issue #8): long and short axis
within max(1 mm, 10 %), fascia depth below the nodule within 0.5 mm, relation
right. The truth of the relation is the in-plane one: the rendered fat core's
pixels against the rendered fascia's superficial face.

    python bench/accuracy_us.py [--seeds 101 102 103] [--json out.json] [--speed]
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from backmice.errors import InputError
from backmice.phantom import Tissue, make_scene, plane_over, render_ultrasound
from backmice.phantom.scene import PlacementError
from backmice.phantom.ultrasound import ultrasound_truth
from backmice.ultrasound import analyze_frame, signed_distance_mm
from backmice.vocab import Relation

#: Phantom seeds of the table (103 and 105 cannot place every lesion). Tests use 202.
SEEDS = (101, 102, 104, 106, 107)
DEPTH_MM = 40.0
WIDTH_MM = 56.0


@dataclass
class Case:
    """One seeded nodule and how well it was measured."""

    seed: int
    lesion: str
    found: bool
    long_true: float
    long_err: float
    short_true: float
    short_err: float
    fascia_err: float
    relation_true: str
    relation: str
    seconds: float

    @property
    def passed(self) -> bool:
        """Within every threshold of issue #8."""
        return (
            self.found
            and abs(self.long_err) <= max(1.0, 0.1 * self.long_true)
            and abs(self.short_err) <= max(1.0, 0.1 * self.short_true)
            and abs(self.fascia_err) <= 0.5
            and self.relation == self.relation_true
        )


def _truth_relation(labels: np.ndarray, delta: tuple[float, float]) -> str:
    """Relation of the rendered core to the rendered fascia's superficial face, in plane."""
    fascia = labels == Tissue.FASCIA
    cols = np.flatnonzero(fascia.any(axis=0))
    top = fascia[:, cols].argmax(axis=0).astype(float) - 0.5
    line = np.column_stack([cols, top])
    signed = signed_distance_mm(line, labels.shape, spacing_mm=delta)
    core = signed[labels == Tissue.LESION_FAT]
    return str(Relation.from_extent(float(core.min()), float(core.max())))


def cases_of(seed: int, *, speckle_seed: int | None = None) -> list[dict]:
    """Rendered frames with truth for every encapsulated nodule of one phantom seed.

    Returns
    -------
    list of dict
        ``image`` (region, float32), ``delta`` (row, col mm), ``seed_rc``,
        ``truth`` (the lesion's ``ultrasound_truth`` entry), ``relation``, ``lesion``.
    """
    try:
        scene = make_scene(seed)
    except (PlacementError, InputError):
        return []
    rng = np.random.default_rng(seed)
    out = []
    for lesion in scene.lesions:
        if str(lesion.kind) != "encapsulated_fat_nodule":
            continue
        plane = plane_over(scene, lesion.core.centre, depth_mm=DEPTH_MM, width_mm=WIDTH_MM)
        us = render_ultrasound(
            scene, plane, frame_size=(600, 860), seed=speckle_seed or seed * 7 + 1
        )
        truth = ultrasound_truth(scene, us)
        entry = next((t for t in truth["lesions"] if t["id"] == lesion.id), None)
        if entry is None or (us.labels == Tissue.LESION_FAT).sum() < 50:
            continue
        rows, cols = us.labels.shape
        dx, dy = plane.delta_mm
        half = entry["long_axis_mm"] / 2
        inside = (
            entry["x_mm"] - half > 0.5
            and entry["x_mm"] + half < (cols - 1) * dx - 0.5
            and entry["depth_mm"] + half < (rows - 1) * dy - 0.5
        )
        if not inside:
            continue
        angle = rng.uniform(0, 2 * math.pi)
        r = rng.uniform(0, entry["short_axis_mm"] / 6)
        seed_rc = (
            (entry["depth_mm"] + r * math.sin(angle)) / dy,
            (entry["x_mm"] + r * math.cos(angle)) / dx,
        )
        x0, y0, x1, y1 = us.region
        out.append(
            {
                "image": us.image[0, y0 : y1 + 1, x0 : x1 + 1].astype(np.float32),
                "delta": (dy, dx),
                "seed_rc": seed_rc,
                "truth": entry,
                "relation": _truth_relation(us.labels, (dy, dx)),
                "lesion": lesion.id,
            }
        )
    return out


def measure_case(seed: int, case: dict) -> Case:
    """Run :func:`analyze_frame` on one case and compare with its truth."""
    t = time.perf_counter()
    a = analyze_frame(case["image"], spacing_mm=case["delta"], seed_rc=case["seed_rc"])
    seconds = time.perf_counter() - t
    truth = case["truth"]
    row = a.nodules[0] if a.nodules else None
    nan = math.nan
    return Case(
        seed=seed,
        lesion=case["lesion"],
        found=row is not None,
        long_true=truth["long_axis_mm"],
        long_err=(row["long_axis_mm"] - truth["long_axis_mm"]) if row else nan,
        short_true=truth["short_axis_mm"],
        short_err=(row["short_axis_mm"] - truth["short_axis_mm"]) if row else nan,
        fascia_err=(row["fascia_depth_mm"] - truth["fascia_depth_below_mm"])
        if row and truth["fascia_depth_below_mm"] is not None
        else nan,
        relation_true=case["relation"],
        relation=row["relation"] if row else "",
        seconds=seconds,
    )


def speed() -> None:
    """Time the despeckling filters and a whole frame on a 600x800 region (run once)."""
    from scipy import ndimage as ndi
    from skimage.restoration import denoise_bilateral, denoise_tv_chambolle

    from backmice.ultrasound import despeckle

    scene = make_scene(0)
    plane = plane_over(scene, scene.lesion("N1").core.centre, width_mm=64.0, depth_mm=48.0)
    us = render_ultrasound(scene, plane, frame_size=(700, 900), seed=1)
    x0, y0, x1, y1 = us.region
    image = us.image[0, y0 : y1 + 1, x0 : x1 + 1].astype(np.float32)
    a = image / 255.0
    print(f"region {image.shape[0]}x{image.shape[1]} px")
    for name, run in (
        ("non-local means (used)", lambda: despeckle(image, spacing_mm=(0.08, 0.08))),
        ("bilateral", lambda: denoise_bilateral(a, sigma_color=0.15, sigma_spatial=4)),
        ("total variation", lambda: denoise_tv_chambolle(a, weight=0.1)),
        ("median 9 px", lambda: ndi.median_filter(a, 9)),
    ):
        t = time.perf_counter()
        run()
        print(f"  {name:<24} {time.perf_counter() - t:6.2f} s")
    for label, seed_rc in (("automatic", None), ("seeded", (300.0, 400.0))):
        t = time.perf_counter()
        analyze_frame(image, spacing_mm=(0.08, 0.08), seed_rc=seed_rc)
        print(f"  analyze_frame, {label:<10} {time.perf_counter() - t:6.2f} s")


def main(argv: list[str] | None = None) -> int:
    """Print the accuracy table; returns 0 when every case passes, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--json", help="also write the cases as JSON")
    parser.add_argument("--speed", action="store_true", help="also time a 600x800 frame")
    args = parser.parse_args(argv)
    if args.speed:
        speed()
    results: list[Case] = []
    print(
        f"{'seed':>5} {'lesion':>6} {'found':>5} {'long':>6} {'Δlong':>6} {'short':>6} "
        f"{'Δshort':>6} {'Δfascia':>7} {'relation (truth)':>30} {'s':>5} pass"
    )
    for seed in args.seeds:
        for case in cases_of(seed):
            c = measure_case(seed, case)
            results.append(c)
            print(
                f"{c.seed:>5} {c.lesion:>6} {c.found!s:>5} {c.long_true:6.1f} {c.long_err:+6.2f} "
                f"{c.short_true:6.1f} {c.short_err:+6.2f} {c.fascia_err:+7.2f} "
                f"{c.relation + ' (' + c.relation_true + ')':>30} {c.seconds:5.2f} "
                f"{'PASS' if c.passed else 'FAIL'}"
            )
    n_pass = sum(c.passed for c in results)
    print(f"{n_pass}/{len(results)} cases within every threshold")
    if args.json:
        doc = [asdict(c) | {"passed": c.passed} for c in results]
        Path(args.json).write_text(json.dumps(doc, indent=1), encoding="utf-8")
    return 0 if n_pass == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
