"""Fuzz backmice's loader for a long time: hypothesis (default) or atheris (coverage-guided).

The classes of hostile input, the seed files and the oracle (what backmice may do:
load, or refuse with an InputError naming the file) are those of the test suite,
``tests/robustness/fuzzing.py``; the suite runs a few hundred cases, this runs as
many as asked. Each class runs in its own worker process with a capped address
space (``--memory-mib``), a time limit per case (``--timeout``) and a watchdog, so
a hang, a memory blow-up or a process abort (a C library calling ``abort()``) is
recorded instead of stopping the run. The files of every failing case are written
to ``--out`` (a folder per case, with ``CASE.txt`` saying what was done and what
happened); a summary table is printed at the end.

Usage (from the repository root)::

    python bench/fuzz.py --examples 2000                 # hypothesis, every class
    python bench/fuzz.py --examples 500 --classes truncated,pixel_format --jobs 2
    python bench/fuzz.py --atheris --runs 100000          # needs `pip install atheris`

Exit code: 0 when no case failed, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the fuzzing module lives with the tests
    sys.path.insert(0, str(ROOT))

OUTCOMES = (
    "loaded",
    "load refused",
    "skipped",
    "open refused",
    "DICOMDIR followed",
    "not an image (refused)",
)


# --------------------------------------------------------------------------- one worker


def _quiet() -> None:
    """Broken files make pydicom and numpy warn on every case; the table says what matters."""
    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)


def _setup(args: argparse.Namespace) -> None:
    from backmice.io import header

    _quiet()
    header.MAX_PIXELS = args.max_pixels


def _save_case(case_dir: Path, out: Path, label: str, text: str) -> Path:
    """Copy the case's files to ``out/label-N`` with a CASE.txt."""
    out.mkdir(parents=True, exist_ok=True)
    n = 1 + sum(1 for p in out.glob(f"{label}-*"))
    dest = out / f"{label}-{n:03d}"
    if case_dir.exists():
        shutil.copytree(case_dir, dest / "case", dirs_exist_ok=True)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "CASE.txt").write_text(text)
    return dest


def _write_status(path: Path, status: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(status))
    tmp.replace(path)


def run_worker(args: argparse.Namespace) -> int:
    """Run ``args.examples`` hypothesis cases of one class; report through a status file."""
    from hypothesis import HealthCheck, Phase, given, seed, settings
    from tests.robustness.fuzzing import (
        LONG_SEEDS,
        SUITE_SEEDS,
        Violation,
        bounded_memory,
        case_strategy,
        check,
    )

    _setup(args)
    seeds = LONG_SEEDS if args.seeds == "long" else SUITE_SEEDS
    out, status_path = Path(args.out), Path(args.status)
    current = out / f"_current-{args.worker}"
    status = {"cases": 0, "outcomes": Counter(), "violations": 0, "seed": args.seed}
    describe = {"text": ""}

    def one(case) -> None:
        shutil.rmtree(current, ignore_errors=True)
        files = case.write(current)
        describe["text"] = case.describe()
        (current.parent / f"_current-{args.worker}.txt").write_text(case.describe())
        status["cases"] += 1
        _write_status(status_path, status)  # counts the case a crash may end the worker in
        result = check(current, files, load=case.load, timeout=args.timeout)
        status["outcomes"].update(result.outcomes)
        _write_status(status_path, status)

    run_seed = args.seed
    with bounded_memory(args.memory_mib * 2**20):
        while status["cases"] < args.examples:
            budget = args.examples - status["cases"]
            test = settings(
                max_examples=budget,
                deadline=None,
                database=None,
                phases=(Phase.generate, Phase.shrink),
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )(given(case=case_strategy(args.worker, seeds))(one))
            try:
                seed(run_seed)(test)()
            except Violation as exc:  # shrunk: the last case run is the minimal one
                status["violations"] += 1
                _save_case(
                    current, out, f"violation-{args.worker}", f"{describe['text']}\n\n{exc}\n"
                )
            except Exception:  # making a case failed: a bug in tests/robustness/fuzzing.py
                status["harness_errors"] = status.get("harness_errors", 0) + 1
                _save_case(
                    Path("/nonexistent"),
                    out,
                    f"harness-{args.worker}",
                    f"{describe['text']}\n\n{traceback.format_exc()}\n",
                )
            run_seed += 1
            _write_status(status_path, status)
    shutil.rmtree(current, ignore_errors=True)
    _write_status(status_path, {**status, "done": True})
    return 0


# --------------------------------------------------------------------------- the supervisor


def _worker_limits(args: argparse.Namespace, out: Path, status_path: Path) -> list[str]:
    """The options every worker process gets: seeds, output, status file and limits."""
    return [
        "--seeds",
        args.seeds,
        "--out",
        str(out),
        "--status",
        str(status_path),
        "--timeout",
        str(args.timeout),
        "--memory-mib",
        str(args.memory_mib),
        "--max-pixels",
        str(args.max_pixels),
    ]


def _run_class(args: argparse.Namespace, cls: str, out: Path) -> dict:
    """Run one class in worker processes until its examples are done; restart after deaths."""
    status_path = out / f"_status-{cls}.json"
    totals: dict = {
        "cases": 0,
        "outcomes": Counter(),
        "violations": 0,
        "deaths": 0,
        "harness_errors": 0,
    }
    seed_ = args.seed
    start = time.perf_counter()
    while totals["cases"] < args.examples:
        status_path.unlink(missing_ok=True)
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            cls,
            "--examples",
            str(args.examples - totals["cases"]),
            "--seed",
            str(seed_),
            *_worker_limits(args, out, status_path),
        ]
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
        last_change, last_cases = time.monotonic(), -1
        while proc.poll() is None:
            time.sleep(1.0)
            status = _read_status(status_path)
            cases = status.get("cases", 0) if status else 0
            if cases != last_cases:
                last_change, last_cases = time.monotonic(), cases
            elif time.monotonic() - last_change > 10 * args.timeout + 60:  # stuck in C code
                proc.kill()
        stderr = proc.stderr.read() if proc.stderr else ""
        status = _read_status(status_path) or {}
        totals["cases"] += status.get("cases", 0)
        totals["outcomes"].update(status.get("outcomes", {}))
        totals["violations"] += status.get("violations", 0)
        totals["harness_errors"] += status.get("harness_errors", 0)
        if proc.returncode != 0:  # died: abort, segfault, killed as hung or out of memory
            totals["deaths"] += 1
            what = (
                (out / f"_current-{cls}.txt").read_text()
                if (out / f"_current-{cls}.txt").exists()
                else ""
            )
            _save_case(
                out / f"_current-{cls}",
                out,
                f"crash-{cls}",
                f"{what}\n\nworker exit code {proc.returncode}\n\n{stderr[-5000:]}\n",
            )
        seed_ += 1000
    for leftover in (out / f"_current-{cls}", out / f"_current-{cls}.txt", status_path):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    totals["seconds"] = time.perf_counter() - start
    return totals


def _read_status(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _table(rows: dict[str, dict]) -> str:
    header = ["class", "cases", *OUTCOMES, "violations", "crashes", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    total = Counter()
    for cls, r in rows.items():
        values = [
            cls,
            r["cases"],
            *(r["outcomes"].get(o, 0) for o in OUTCOMES),
            r["violations"],
            r["deaths"],
            f"{r['seconds']:.0f}",
        ]
        lines.append("| " + " | ".join(map(str, values)) + " |")
        total.update({"cases": r["cases"], "violations": r["violations"], "deaths": r["deaths"]})
        total.update({f"o:{o}": r["outcomes"].get(o, 0) for o in OUTCOMES})
        total["seconds"] += r["seconds"]
    values = [
        "**all**",
        total["cases"],
        *(total[f"o:{o}"] for o in OUTCOMES),
        total["violations"],
        total["deaths"],
        f"{total['seconds']:.0f}",
    ]
    lines.append("| " + " | ".join(map(str, values)) + " |")
    return "\n".join(lines)


def run_hypothesis(args: argparse.Namespace, classes: list[str], out: Path) -> int:
    from concurrent.futures import ThreadPoolExecutor

    print(
        f"fuzzing {len(classes)} class(es) x {args.examples} cases with hypothesis, "
        f"{args.jobs} job(s), seeds {args.seeds}; failing cases go to {out}",
        flush=True,
    )
    start = time.perf_counter()
    with ThreadPoolExecutor(args.jobs) as pool:
        results = dict(
            zip(classes, pool.map(lambda c: _run_class(args, c, out), classes), strict=True)
        )
    print(_table(results))
    bad = sum(r["violations"] + r["deaths"] for r in results.values())
    cases = sum(r["cases"] for r in results.values())
    harness = sum(r["harness_errors"] for r in results.values())
    if harness:
        print(f"\n{harness} case(s) could not be made (bugs in the fuzzer): harness-* in {out}")
    print(
        f"\n{cases} cases in {time.perf_counter() - start:.0f} s; {bad} failing case(s)"
        + (f" saved in {out}" if bad else "")
    )
    return 1 if bad else 0


# --------------------------------------------------------------------------- atheris


def run_atheris_worker(args: argparse.Namespace, classes: list[str]) -> None:
    """The atheris target (runs in a child; libFuzzer exits the process when done)."""
    import atheris
    from tests.robustness.fuzzing import (
        LONG_SEEDS,
        SUITE_SEEDS,
        ProviderChooser,
        check,
        make_case,
    )

    if not args.replay:
        # backmice and pydicom are imported by now: instrument what is loaded, so that
        # libFuzzer sees which branches a case reaches and keeps the ones reaching new ones.
        atheris.instrument_all()

    _setup(args)
    seeds = LONG_SEEDS if args.seeds == "long" else SUITE_SEEDS
    status_path = Path(args.status)
    status = {"cases": 0, "outcomes": {c: Counter() for c in classes}, "per_class": Counter()}
    tmp = Path(tempfile.mkdtemp(prefix="backmice-fuzz-"))

    def one(data: bytes) -> None:
        fdp = atheris.FuzzedDataProvider(data)
        cls = classes[fdp.ConsumeIntInRange(0, len(classes) - 1)]
        case = make_case(cls, ProviderChooser(fdp), seeds)
        folder = tmp / "case"
        shutil.rmtree(folder, ignore_errors=True)
        files = case.write(folder)
        status["cases"] += 1
        status["per_class"][cls] += 1
        try:
            result = check(folder, files, load=case.load, timeout=0)  # libFuzzer times out
        except BaseException:
            print(f"\nCASE: {case.describe()}", file=sys.stderr)
            raise
        status["outcomes"][cls].update(result.outcomes)
        if status["cases"] % 50 == 0:
            _write_status(status_path, status)

    def replay(path: str) -> None:  # write a crash input's case out as files
        fdp = atheris.FuzzedDataProvider(Path(path).read_bytes())
        cls = classes[fdp.ConsumeIntInRange(0, len(classes) - 1)]
        case = make_case(cls, ProviderChooser(fdp), seeds)
        dest = Path(path + ".case")
        case.write(dest)
        (dest / "CASE.txt").write_text(case.describe() + "\n")
        print(f"{path}: {case.describe()} -> {dest}")

    if args.replay:
        replay(args.replay)
        return
    with contextlib.suppress(Exception):
        signal.signal(signal.SIGTERM, lambda *a: (_write_status(status_path, status), sys.exit(1)))
    atheris.Setup(
        [
            sys.argv[0],
            f"-runs={args.runs}",
            f"-artifact_prefix={args.out}/",
            f"-timeout={args.timeout}",
            f"-rss_limit_mb={args.memory_mib}",
            f"-malloc_limit_mb={args.memory_mib}",
            "-print_final_stats=1",
        ],
        lambda data: (
            one(data),
            _write_status(status_path, status) if status["cases"] >= args.runs else None,
        ),
    )
    atheris.Fuzz()


def run_atheris(args: argparse.Namespace, classes: list[str], out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    status_path = out / "_status-atheris.json"
    status_path.unlink(missing_ok=True)
    before = set(out.glob("crash-*")) | set(out.glob("timeout-*")) | set(out.glob("oom-*"))
    cmd = [
        sys.executable,
        __file__,
        "--atheris-worker",
        "--runs",
        str(args.runs),
        "--classes",
        ",".join(classes),
        *_worker_limits(args, out, status_path),
    ]
    print(
        f"fuzzing with atheris: {args.runs} runs over {len(classes)} class(es); artifacts in {out}"
    )
    start = time.perf_counter()
    done = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, errors="replace")
    seconds = time.perf_counter() - start
    status = _read_status(status_path) or {"cases": 0, "outcomes": {}, "per_class": {}}
    found = sorted(
        (set(out.glob("crash-*")) | set(out.glob("timeout-*")) | set(out.glob("oom-*"))) - before
    )
    found = [p for p in found if not p.name.endswith(".case")]
    rows = {}
    for cls in classes:
        rows[cls] = {
            "cases": status["per_class"].get(cls, 0),
            "outcomes": Counter(status["outcomes"].get(cls, {})),
            "violations": 0,
            "deaths": 0,
            "seconds": seconds * status["per_class"].get(cls, 0) / max(status["cases"], 1),
        }
    print(_table(rows))
    tail = [line for line in done.stderr.splitlines() if line.startswith(("stat::", "Done", "=="))]
    print("\n".join(tail[-8:]))
    for path in found:
        replay = subprocess.run(
            [*cmd[:2], "--atheris-worker", "--replay", str(path), *cmd[3:]],
            capture_output=True,
            text=True,
        )
        print(f"failing input {path}: {replay.stdout.strip()}")
    print(f"\n{status['cases']} cases in {seconds:.0f} s; {len(found)} failing input(s)")
    return 1 if found or done.returncode not in (0,) else 0


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    from tests.robustness.fuzzing import CLASSES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="cases per class (hypothesis)")
    parser.add_argument("--atheris", action="store_true", help="coverage-guided, with atheris")
    parser.add_argument("--runs", type=int, default=10000, help="atheris runs in all")
    parser.add_argument("--classes", default="", help="comma-separated classes (default all)")
    parser.add_argument("--seeds", choices=("suite", "long"), default="long", help="seed files")
    parser.add_argument(
        "--jobs", type=int, default=max(os.cpu_count() or 1, 1), help="workers at once (CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed")
    parser.add_argument(
        "--out",
        default=str(Path(tempfile.gettempdir()) / "backmice-fuzz"),
        help="where failing cases go (default: backmice-fuzz in the temp folder)",
    )
    parser.add_argument("--timeout", type=int, default=60, help="seconds per case")
    parser.add_argument(
        "--memory-mib",
        type=int,
        default=2048,
        help="memory per worker beyond what it has loaded (address space; atheris: RSS)",
    )
    parser.add_argument(
        "--max-pixels", type=int, default=2**26, help="backmice.io.header.MAX_PIXELS in workers"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--atheris-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--replay", help=argparse.SUPPRESS)
    parser.add_argument("--status", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    classes = [c for c in args.classes.split(",") if c] or list(CLASSES)
    unknown = set(classes) - set(CLASSES)
    if unknown:
        parser.error(f"unknown classes {sorted(unknown)}; known: {', '.join(CLASSES)}")
    if args.worker:
        return run_worker(args)
    if args.atheris_worker:
        run_atheris_worker(args, classes)
        return 0
    out = Path(args.out).resolve()
    if args.atheris:
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("atheris is not installed (pip install atheris); use --examples instead")
            return 2
        return run_atheris(args, classes, out)
    return run_hypothesis(args, classes, out)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception:  # pragma: no cover - a bug in this script
        traceback.print_exc()
        sys.exit(3)
