"""How fast backmice loads a DICOM series, against the floor and against SimpleITK.

Writes (once) a 512×512×160 int16 MR series, one uncompressed file per slice with
shuffled names, then times, interleaved over several rounds with a warm cache:

- raw read: ``Path.read_bytes`` of every file;
- raw read + ``np.frombuffer`` into a float32 volume (what any loader must do: the
  floor the targets are measured against, as in ``shared/MEASURED.md``);
- backmice ``open_study`` (headers only), ``load`` alone, and both together;
- SimpleITK ``ImageSeriesReader`` (sorting included) with float32 output and
  ``GetArrayViewFromImage``;
- a plain pydicom loop (``dcmread`` + ``pixel_array``, sort by position, stack).

``--scan-files N`` instead writes N small files in many series and times
``open_study`` over them, with its peak memory and the bytes it read.

Usage::

    python bench/bench_load.py [--slices 160] [--size 512] [--repeat 7] [--dir DIR]
    python bench/bench_load.py --scan-files 5000 [--scan-size 64] [--dir DIR]

See ``bench/README.md`` for the targets.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

TARGET_VS_SITK = 1.0
TARGET_VS_RAW = 6.0


# --------------------------------------------------------------------------- data


def _phantom(slices: int, size: int, seed: int = 0) -> np.ndarray:
    """An int16 MR-like volume ``(slice, row, col)``: body ellipse, fat layer, noise."""
    rng = np.random.default_rng(seed)
    r, c = np.ogrid[:size, :size]
    rr = (r - size / 2) / (size * 0.42)
    cc = (c - size / 2) / (size * 0.47)
    d = np.sqrt(rr**2 + cc**2)
    plane = np.where(d < 1.0, 400.0, 0.0) + np.where((d > 0.85) & (d < 1.0), 700.0, 0.0)
    vol = np.empty((slices, size, size), dtype=np.int16)
    for k in range(slices):
        noise = rng.normal(0.0, 20.0, (size, size))
        vol[k] = np.clip(plane * (0.9 + 0.2 * k / max(slices, 1)) + noise, -100, 3000)
    return vol


def _ensure_series(root: Path, slices: int, size: int) -> Path:
    """The benchmark series under ``root`` (written unless a complete copy is there)."""
    from backmice.io.writer import make_affine, write_series

    folder = root / f"mr_{slices}x{size}x{size}"
    marker = root / f"mr_{slices}x{size}x{size}.json"
    params = {"slices": slices, "size": size, "version": 1}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return folder
    print(f"writing {slices} slices of {size}x{size} to {folder} ...", flush=True)
    t0 = time.perf_counter()
    if folder.exists():
        for p in folder.iterdir():
            p.unlink()
    vol = _phantom(slices, size)
    affine = make_affine((3.0, 0.6, 0.6), origin=(-150.0, -120.0, -200.0))
    write_series(vol, folder, affine=affine, shuffle=True, series_description="bench t1")
    marker.write_text(json.dumps(params))
    print(f"  written in {time.perf_counter() - t0:.1f} s", flush=True)
    return folder


def _ensure_scan_files(root: Path, n_files: int, size: int, per_series: int) -> Path:
    """``n_files`` small files in series of ``per_series`` slices under ``root``."""
    from backmice.io.writer import make_affine, write_series

    folder = root / f"scan_{n_files}_{size}"
    marker = root / f"scan_{n_files}_{size}.json"
    params = {"n_files": n_files, "size": size, "per_series": per_series, "version": 1}
    if marker.exists() and json.loads(marker.read_text()) == params:
        return folder
    print(f"writing {n_files} files of {size}x{size} to {folder} ...", flush=True)
    t0 = time.perf_counter()
    n_series = -(-n_files // per_series)
    vol = _phantom(per_series, size)
    orientations = ("axial", "sagittal", "coronal")
    for s in range(n_series):
        n = min(per_series, n_files - s * per_series)
        affine = make_affine((4.0, 1.0, 1.0), orientation=orientations[s % 3])
        write_series(
            vol[:n],
            folder / f"series_{s:04d}",
            affine=affine,
            series_number=s + 1,
            series_description=f"scan bench {s}",
            shuffle=True,
            seed=s,
            overwrite=True,
        )
    marker.write_text(json.dumps(params))
    print(f"  written in {time.perf_counter() - t0:.1f} s", flush=True)
    return folder


# --------------------------------------------------------------------------- readers


def _raw_read(files: list[Path]) -> int:
    return sum(len(p.read_bytes()) for p in files)


def _raw_decode(files: list[Path], rows: int, cols: int) -> np.ndarray:
    """Read bytes, take the trailing pixel data, convert to float32 (file order)."""
    out = np.empty((len(files), rows, cols), dtype=np.float32)
    n = rows * cols * 2
    for k, p in enumerate(files):
        buf = p.read_bytes()
        out[k] = np.frombuffer(buf, dtype="<i2", count=rows * cols, offset=len(buf) - n).reshape(
            rows, cols
        )
    return out


def _sitk(folder: Path) -> tuple[object, np.ndarray]:
    """The SimpleITK image (which must outlive the view) and a float32 view of it."""
    import SimpleITK as sitk

    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(sitk.ImageSeriesReader.GetGDCMSeriesFileNames(str(folder)))
    reader.SetOutputPixelType(sitk.sitkFloat32)
    image = reader.Execute()
    return image, sitk.GetArrayViewFromImage(image)


def _pydicom_loop(files: list[Path]) -> np.ndarray:
    import pydicom

    slices = []
    for p in files:
        ds = pydicom.dcmread(p)
        iop = np.array([float(v) for v in ds.ImageOrientationPatient])
        normal = np.cross(iop[:3], iop[3:])
        z = float(np.dot([float(v) for v in ds.ImagePositionPatient], normal))
        slope = float(ds.get("RescaleSlope", 1.0))
        intercept = float(ds.get("RescaleIntercept", 0.0))
        slices.append((z, ds.pixel_array.astype(np.float32) * slope + intercept))
    slices.sort(key=lambda t: t[0])
    return np.stack([s for _, s in slices])


# --------------------------------------------------------------------------- timing


def _time_interleaved(
    cases: dict[str, Callable[[], object]], repeat: int
) -> dict[str, list[float]]:
    """Run every case once to warm up, then ``repeat`` rounds in rotating order."""
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()
    names = list(cases)
    for r in range(repeat):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            gc.collect()
            t0 = time.perf_counter()
            result = cases[name]()
            times[name].append(time.perf_counter() - t0)
            del result
    return times


def _peak_traced(fn: Callable[[], object]) -> tuple[float, object]:
    """Peak Python/numpy allocation of ``fn()``, MiB, and its result."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 2**20, result


def _rchar() -> int | None:
    """Bytes this process has read through read() so far (Linux), or None."""
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_mib() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


# --------------------------------------------------------------------------- modes


def bench_load(root: Path, slices: int, size: int, repeat: int) -> int:
    import backmice

    folder = _ensure_series(root, slices, size)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    nbytes = sum(p.stat().st_size for p in files)
    print(f"\nseries: {len(files)} files, {nbytes / 2**20:.1f} MiB, in {folder}")

    # Correctness first: every reader gives the same volume.
    study = backmice.open_study(folder)
    if len(study.stacks) != 1:
        print(f"expected 1 stack, found {len(study.stacks)}", file=sys.stderr)
        return 1
    sitk_image, reference = _sitk(folder)
    vol = backmice.load(study.stacks[0])
    diff = float(np.abs(vol.array - reference).max())
    diff_pd = float(np.abs(_pydicom_loop(files) - reference).max())
    print(f"max |backmice - SimpleITK| = {diff:g}, max |pydicom loop - SimpleITK| = {diff_pd:g}")
    if vol.array.dtype != np.float32 or vol.array.shape != reference.shape or diff > 0:
        print("backmice and SimpleITK disagree: not timing", file=sys.stderr)
        return 1
    del vol, reference, sitk_image

    cases: dict[str, Callable[[], object]] = {
        "raw read (read_bytes)": lambda: _raw_read(files),
        "raw read + frombuffer -> float32": lambda: _raw_decode(files, size, size),
        "backmice open_study + load": lambda: backmice.load(backmice.open_study(folder).stacks[0]),
        "backmice load (study open)": lambda: backmice.load(study.stacks[0]),
        "backmice open_study (headers)": lambda: backmice.open_study(folder),
        "SimpleITK series, float32 view": lambda: _sitk(folder),
        "pydicom dcmread + pixel_array": lambda: _pydicom_loop(files),
    }
    print(f"timing {len(cases)} cases, {repeat} interleaved rounds (+1 warm-up) ...", flush=True)
    times = _time_interleaved(cases, repeat)
    med = {name: statistics.median(t) for name, t in times.items()}
    # The floor, as in shared/MEASURED.md: read the bytes and turn them into a float32
    # volume (np.frombuffer + conversion). Plain read_bytes is shown for reference.
    raw = med["raw read + frombuffer -> float32"]
    read_only = med["raw read (read_bytes)"]

    print("\n| path | median s | min s | × floor | × read_bytes |\n| --- | --- | --- | --- | --- |")
    for name, t in times.items():
        print(
            f"| {name} | {med[name]:.4f} | {min(t):.4f} | {med[name] / raw:.1f} "
            f"| {med[name] / read_only:.1f} |"
        )

    full = med["backmice open_study + load"]
    load_only = med["backmice load (study open)"]
    sitk_t = med["SimpleITK series, float32 view"]
    checks = [
        ("backmice (open+load) / SimpleITK", full / sitk_t, TARGET_VS_SITK),
        ("backmice load alone / SimpleITK", load_only / sitk_t, None),
        ("backmice (open+load) / floor (read + frombuffer)", full / raw, TARGET_VS_RAW),
        ("backmice load alone / floor", load_only / raw, None),
        ("backmice (open+load) / read_bytes alone", full / read_only, None),
    ]
    print("\n| ratio | value | target |\n| --- | --- | --- |")
    ok = True
    for label, value, target in checks:
        if target is None:
            print(f"| {label} | {value:.2f} | |")
        else:
            passed = value <= target
            ok &= passed
            print(f"| {label} | {value:.2f} | <= {target:g} {'ok' if passed else 'MISSED'} |")

    peak, _ = _peak_traced(lambda: backmice.load(backmice.open_study(folder).stacks[0]))
    array_mib = slices * size * size * 4 / 2**20
    print(
        f"\npeak traced memory of open_study + load: {peak:.0f} MiB "
        f"(the float32 volume is {array_mib:.0f} MiB); process max RSS {_maxrss_mib():.0f} MiB"
    )
    return 0 if ok else 3


def bench_scan(root: Path, n_files: int, size: int, per_series: int, repeat: int) -> int:
    import backmice

    folder = _ensure_scan_files(root, n_files, size, per_series)
    files = [p for p in folder.rglob("*") if p.is_file()]
    nbytes = sum(p.stat().st_size for p in files)
    n_series = -(-n_files // per_series)
    print(f"\nscan: {len(files)} files in {n_series} series, {nbytes / 2**20:.1f} MiB, {folder}")

    study = backmice.open_study(folder)  # warm-up (and the cache)
    print(f"stacks found: {len(study.stacks)} (expected {n_series}), skipped: {len(study.skipped)}")

    before = _rchar()
    backmice.open_study(folder)
    after = _rchar()

    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        backmice.open_study(folder)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    peak, _ = _peak_traced(lambda: backmice.open_study(folder))

    print("\n| measure | value |\n| --- | --- |")
    print(f"| open_study median | {med:.3f} s ({1e3 * med / len(files):.2f} ms per file) |")
    print(f"| open_study min | {min(times):.3f} s |")
    print(f"| peak traced memory | {peak:.1f} MiB ({1024 * peak / len(files):.1f} KiB per file) |")
    if before is not None and after is not None:
        read = after - before
        print(
            f"| bytes read / bytes on disk | {read / 2**20:.1f} / {nbytes / 2**20:.1f} MiB "
            f"({read / nbytes:.2f}) |"
        )
    print(f"| process max RSS | {_maxrss_mib():.0f} MiB |")
    return 0 if len(study.stacks) == n_series else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=160, help="slices of the series (160)")
    parser.add_argument("--size", type=int, default=512, help="rows = columns (512)")
    parser.add_argument("--repeat", type=int, default=7, help="interleaved rounds (7, >= 5)")
    parser.add_argument(
        "--dir", type=Path, default=None, help="keep and reuse the data here (default: temp)"
    )
    parser.add_argument(
        "--scan-files", type=int, default=0, metavar="N", help="time open_study over N files"
    )
    parser.add_argument("--scan-size", type=int, default=64, help="rows = columns in scan mode")
    parser.add_argument("--per-series", type=int, default=32, help="slices per series, scan mode")
    args = parser.parse_args(argv)
    if args.repeat < 5:
        parser.error("--repeat must be at least 5")

    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpu(s)")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
        return _run(args, args.dir)
    with tempfile.TemporaryDirectory(prefix="backmice-bench-") as tmp:
        return _run(args, Path(tmp))


def _run(args: argparse.Namespace, root: Path) -> int:
    if args.scan_files:
        return bench_scan(root, args.scan_files, args.scan_size, args.per_series, args.repeat)
    return bench_load(root, args.slices, args.size, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
