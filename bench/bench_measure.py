"""How fast (and how right) :mod:`backmice.measure.shape` measures nodules.

Default: times :func:`~backmice.measure.measure_labels` and
:func:`~backmice.measure.distance_stats` on a 512×512×160 label image at
0.8×0.8×4 mm (oblique), once with ~20 ellipsoids of 8–50 mm and once with 2000
small blobs, next to SimpleITK's ``LabelShapeStatisticsImageFilter`` (without
and with Feret diameter) on the same labels; medians of ``--repeat`` runs.

``--calibrate`` instead fits the adaptive digitisation correction of
``shape._ADAPTIVE`` on random digitised ellipsoids (3D Feret) and ellipses (2D
long axis and perpendicular width), and prints the error of every correction
choice in units of the voxel extent ``w`` and in mm.

Usage::

    python bench/bench_measure.py [--repeat 5] [--small 2000]
    python bench/bench_measure.py --calibrate [--n 600] [--seed 0]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import SimpleITK as sitk
from scipy.optimize import minimize

from backmice.io.writer import make_affine, rotation_matrix
from backmice.measure import shape
from backmice.measure.shape import distance_stats, ellipsoid_axes_mm, measure_labels

# --------------------------------------------------------------------------- shapes


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 3D rotation matrix."""
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    return q


def render_ellipsoid(
    affine: np.ndarray, centre: np.ndarray, semi: np.ndarray, rot: np.ndarray, pad: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Voxels whose centre lies in the ellipsoid: ``(mask, first index of the mask's box)``.

    The ellipsoid has semi-axes ``semi`` (mm) along the columns of ``rot`` (LPS).
    """
    lin, t = affine[:3, :3], affine[:3, 3]
    axes = rot * semi  # columns: semi-axis vectors
    half = np.sqrt((axes**2).sum(axis=1))  # LPS half extents
    corners = np.array(np.meshgrid(*[[-1.0, 1.0]] * 3, indexing="ij")).reshape(3, -1).T
    idx = (corners * half + centre - t) @ np.linalg.inv(lin).T
    lo = np.floor(idx.min(axis=0)).astype(int) - pad
    hi = np.ceil(idx.max(axis=0)).astype(int) + pad
    grid = np.stack(
        np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi, strict=True)], indexing="ij"),
        axis=-1,
    )
    q = (grid @ lin.T + t - centre) @ rot
    return ((q / semi) ** 2).sum(axis=-1) <= 1.0, lo


def render_ellipse(
    lin2: np.ndarray, centre: np.ndarray, semi: np.ndarray, angle: float
) -> np.ndarray:
    """2D mask of pixels ``(row, col)`` whose centre (``lin2 @ (row, col)``) is in the ellipse."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    half = np.sqrt(((rot * semi) ** 2).sum(axis=1))
    idx_hi = np.ceil(np.abs(np.linalg.inv(lin2)) @ (np.abs(centre) + half)).astype(int) + 2
    grid = np.stack(
        np.meshgrid(np.arange(idx_hi[0] + 1), np.arange(idx_hi[1] + 1), indexing="ij"), axis=-1
    )
    q = (grid @ lin2.T - centre) @ rot
    return ((q / semi) ** 2).sum(axis=-1) <= 1.0


def paint(labels: np.ndarray, mask: np.ndarray, lo: np.ndarray, value: int) -> bool:
    """Write ``value`` where ``mask`` is set, at offset ``lo``; False if it does not fit."""
    hi = lo + np.array(mask.shape)
    if np.any(lo < 0) or np.any(hi > labels.shape):
        return False
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    labels[box][mask] = value
    return True


# ------------------------------------------------------------------------- benchmark


def oblique_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """An axial affine tilted 12° about x and 7° about z."""
    rot = rotation_matrix("x", 12.0) @ rotation_matrix("z", 7.0)
    return make_affine(spacing, origin=(-200.0, -180.0, -300.0), rotation=rot)


def label_image(
    shape_: tuple[int, int, int], affine: np.ndarray, n: int, diam: tuple[float, float], seed: int
) -> np.ndarray:
    """``n`` non-overlapping random ellipsoids with diameters in ``diam`` mm."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape_, dtype=np.int32)
    lin, t = affine[:3, :3], affine[:3, 3]
    value = 0
    tries = 0
    while value < n and tries < 50 * n:
        tries += 1
        a = rng.uniform(*diam) / 2
        semi = a * np.array([1.0, rng.uniform(0.5, 1.0), rng.uniform(0.3, 0.8)])
        centre = lin @ (rng.uniform(0.05, 0.95, 3) * np.array(shape_)) + t
        mask, lo = render_ellipsoid(affine, centre, semi, random_rotation(rng))
        hi = lo + np.array(mask.shape)
        if np.any(lo < 0) or np.any(hi > shape_) or not mask.any():
            continue
        box = tuple(slice(p, q) for p, q in zip(lo, hi, strict=True))
        if np.any(labels[box][mask]):
            continue
        value += 1
        paint(labels, mask, lo, value)
    return labels


def to_sitk(labels: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image with the same geometry (SimpleITK index order is col, row, slice)."""
    img = sitk.GetImageFromArray(labels)
    cols = affine[:3, [2, 1, 0]]
    spacing = np.linalg.norm(cols, axis=0)
    img.SetSpacing(spacing.tolist())
    img.SetDirection((cols / spacing).ravel().tolist())
    img.SetOrigin(affine[:3, 3].tolist())
    return img


def sitk_shape(img: sitk.Image, feret: bool) -> sitk.LabelShapeStatisticsImageFilter:
    f = sitk.LabelShapeStatisticsImageFilter()
    f.ComputePerimeterOff()
    f.SetComputeFeretDiameter(feret)
    f.Execute(img)
    return f


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(repeat: int, n_small: int) -> None:
    shape_ = (160, 512, 512)
    spacing = (4.0, 0.8, 0.8)
    affine = oblique_affine(spacing)
    cases = {
        "20 ellipsoids 8-50 mm": label_image(shape_, affine, 20, (8.0, 50.0), seed=1),
        f"{n_small} blobs 3-8 mm": label_image(shape_, affine, n_small, (3.0, 8.0), seed=2),
    }
    rng = np.random.default_rng(3)
    dist = rng.normal(0.0, 10.0, shape_).astype(np.float32)
    print(f"label image {shape_} (slice, row, col), spacing {spacing} mm, oblique; {repeat} runs")
    print()
    print(f"| case | labels | voxels | {'step':<44} | s (median) |")
    print(f"| --- | --- | --- | {'---':<44} | --- |")
    for name, labels in cases.items():
        n = int(labels.max())
        nvox = int(np.count_nonzero(labels))
        img = to_sitk(labels, affine)
        steps: dict[str, Callable[[], object]] = {
            "backmice measure_labels (all measures)": lambda lab=labels: measure_labels(
                lab, affine
            ),
            "backmice distance_stats (min/max/mean/median)": lambda lab=labels: distance_stats(
                lab, dist
            ),
            "SimpleITK LabelShapeStatistics, no Feret": lambda im=img: sitk_shape(im, False),
            "SimpleITK LabelShapeStatistics + Feret": lambda im=img: sitk_shape(im, True),
        }
        for step, fn in steps.items():
            print(f"| {name} | {n} | {nvox} | {step:<44} | {timed(fn, repeat):.3f} |")


# ----------------------------------------------------------------------- calibration

SPACINGS_3D = [(1.0, 1.0, 1.0), (4.0, 0.8, 0.8), (3.0, 0.7, 0.7), (2.0, 0.6, 0.9)]
SPACINGS_2D = [(1.0, 1.0), (0.8, 0.8), (0.6, 0.9), (0.5, 1.0)]


def samples_3d(n: int, seed: int) -> np.ndarray:
    """Rows ``(centre error mm, w, m, true diameter, spacing id)`` for random ellipsoids."""
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < n:
        sid = len(rows) % len(SPACINGS_3D)
        tilt = random_rotation(rng) if rng.random() < 0.5 else None
        affine = make_affine(SPACINGS_3D[sid], rotation=tilt, origin=rng.uniform(-1, 1, 3))
        a = rng.uniform(4.0, 25.0)
        b = a * rng.uniform(0.4, 1.0)
        semi = np.array([a, b, b * rng.uniform(0.4, 1.0)])
        mask, _ = render_ellipsoid(affine, rng.uniform(-2, 2, 3), semi, random_rotation(rng))
        lin = affine[:3, :3]
        pts = np.argwhere(mask)
        if len(pts) < 2:
            continue
        mom = shape._moments(pts, lin)
        d = shape._feret(np.argwhere(shape._boundary(mask)), lin, mom.cov_mm, "none", "feret3d")
        w, m = shape._tip_ratio(d.u, lin, 5.0 * mom.cov_mm, abs(np.linalg.det(lin)))
        rows.append((d.centre_mm - 2 * a, w, m, 2 * a, sid))
    return np.array(rows)


def samples_2d(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows as :func:`samples_3d` for random ellipses: (long axis, perpendicular width).

    The width's "true" value for calibration is the ellipse's width along the
    measured perpendicular direction; its last column is the minor axis 2b.
    """
    rng = np.random.default_rng(seed)
    long_rows, short_rows = [], []
    while len(long_rows) < n:
        sid = len(long_rows) % len(SPACINGS_2D)
        row_mm, col_mm = SPACINGS_2D[sid]
        lin2 = np.array([[0.0, col_mm], [row_mm, 0.0]])
        a = rng.uniform(4.0, 25.0)
        b = a * rng.uniform(0.3, 1.0)
        angle = rng.uniform(0, np.pi)
        centre = np.array([a, a]) + 3 + rng.uniform(0, 2, 2)
        mask = render_ellipse(lin2, centre, np.array([a, b]), angle)
        pts = np.argwhere(mask)
        if len(pts) < 2:
            continue
        mom = shape._moments(pts, lin2)
        ax = shape._axes_2d(mask, lin2, "none")
        cell = abs(np.linalg.det(lin2))
        w, m = shape._tip_ratio(ax.long.u, lin2, 4.0 * mom.cov_mm, cell)
        long_rows.append((ax.long.centre_mm - 2 * a, w, m, 2 * a, sid))
        v = np.array([-ax.long.u[1], ax.long.u[0]])
        c, s = np.cos(angle), np.sin(angle)
        rot = np.array([[c, -s], [s, c]])
        true_w = 2 * np.sqrt(v @ rot @ np.diag([a * a, b * b]) @ rot.T @ v)
        wv, mv = shape._tip_ratio(v, lin2, 4.0 * mom.cov_mm, cell)
        short_rows.append((ax.short_centre_mm - true_w, wv, mv, 2 * b, sid))
    return np.array(long_rows), np.array(short_rows)


def fit(rows: np.ndarray) -> tuple[float, float]:
    """``(c, p)`` minimising the squared error of ``centre + min(c m^p, 1) w``."""
    err, w, m = rows[:, 0], rows[:, 1], rows[:, 2]

    def loss(x: np.ndarray) -> float:
        k = np.minimum(x[0] * m ** x[1], 1.0)
        return float(np.mean(((err + k * w) / w) ** 2))

    res = minimize(loss, x0=[1.0, 1.2], method="Nelder-Mead")
    return float(res.x[0]), float(res.x[1])


def report(name: str, rows: np.ndarray, cp: tuple[float, float]) -> None:
    err, w, m = rows[:, 0], rows[:, 1], rows[:, 2]
    ks = {
        "none": np.zeros_like(m),
        "half": np.full_like(m, 0.5),
        "full": np.ones_like(m),
        "adaptive": np.minimum(cp[0] * m ** cp[1], 1.0),
    }
    for corr, k in ks.items():
        e = err + k * w
        ew = e / w
        print(
            f"| {name} | {corr:<8} | {ew.mean():+.2f} | {ew.std():.2f} | "
            f"{np.percentile(ew, 5):+.2f} … {np.percentile(ew, 95):+.2f} | "
            f"{e.mean():+.2f} | {np.sqrt((e**2).mean()):.2f} | {np.abs(e).max():.2f} |"
        )


def axes_table(n: int, seed: int) -> None:
    """Mean error (mm) of the ellipsoid axes for each ``cell_moment`` choice."""
    rng = np.random.default_rng(seed)
    configs = [
        ((1.0, 1.0, 1.0), (3.0, 6.0), False),
        ((4.0, 0.8, 0.8), (3.0, 6.0), False),
        ((4.0, 0.8, 0.8), (1.5, 3.0), False),
        ((4.0, 0.8, 0.8), (1.5, 3.0), True),
    ]
    modes = ("auto", "always", "never")
    print("| spacing mm | c mm | " + " | ".join(modes) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in modes) + " |")
    for spacing, (cmin, cmax), lens in configs:
        errs = []
        while len(errs) < n:
            affine = make_affine(spacing, origin=rng.uniform(-3, 3, 3))
            c = rng.uniform(cmin, cmax)
            a = max(rng.uniform(4.0, 25.0), c)
            semi = np.array([a, rng.uniform(max(c, 0.5 * a), a), c])
            if lens:  # flattened along the slice normal (z), tilted up to 15°
                rot = rotation_matrix("z", rng.uniform(0, 180)) @ rotation_matrix(
                    "x", rng.uniform(-15, 15)
                )
            else:
                rot = random_rotation(rng)
            mask, _ = render_ellipsoid(affine, rng.uniform(-2, 2, 3), semi, rot)
            if not mask.any():
                continue
            truth = np.sort(2 * semi)[::-1]
            errs.append([ellipsoid_axes_mm(mask, affine, cell_moment=m) - truth for m in modes])
        mean = np.mean(errs, axis=0)
        cells = " | ".join(" ".join(f"{x:+.2f}" for x in row) for row in mean)
        name = f"{spacing}{' lens' if lens else ''}"
        print(f"| {name} | {cmin}–{cmax} | {cells} |")


def calibrate(n: int, seed: int) -> None:
    t0 = time.perf_counter()
    r3 = samples_3d(n, seed)
    r2l, r2s = samples_2d(n, seed + 1)
    fits = {"feret3d": fit(r3), "feret2d": fit(r2l), "width2d": fit(r2s)}
    print(f"{n} ellipsoids / ellipses each, seed {seed}, {time.perf_counter() - t0:.1f} s")
    print("_ADAPTIVE = {")
    for kind, (c, p) in fits.items():
        print(f'    "{kind}": ({c:.3f}, {p:.3f}),')
    print("}")
    print()
    print("error = measured − true; w = one voxel's extent along the measured direction")
    print()
    print("| measure | correction | mean/w | sd/w | 5…95 % /w | mean mm | rms mm | max abs mm |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, rows, kind in [
        ("3D Feret", r3, "feret3d"),
        ("2D long", r2l, "feret2d"),
        ("2D width", r2s, "width2d"),
    ]:
        report(name, rows, fits[kind])
    print()
    print("3D Feret, adaptive, by spacing (slice, row, col):")
    c, p = fits["feret3d"]
    for sid, sp in enumerate(SPACINGS_3D):
        sel = r3[:, 4] == sid
        e = r3[sel, 0] + np.minimum(c * r3[sel, 2] ** p, 1.0) * r3[sel, 1]
        ew = e / r3[sel, 1]
        print(
            f"  {sp}: n={sel.sum()} mean {ew.mean():+.2f} w, sd {ew.std():.2f} w, "
            f"mean {e.mean():+.2f} mm, rms {np.sqrt((e**2).mean()):.2f} mm"
        )
    print()
    print("Ellipsoid axes: mean error of axis 1 / 2 / 3, mm, by cell_moment")
    print()
    axes_table(max(50, n // 20), seed + 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--small", type=int, default=2000, help="number of small blobs")
    parser.add_argument("--calibrate", action="store_true")
    parser.add_argument("--n", type=int, default=600, help="shapes per calibration set")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.n, args.seed)
    else:
        bench(args.repeat, args.small)


if __name__ == "__main__":
    main()
