"""``backmice batch ROOT --out DIR``: measure every study of a cohort (see docs/batch.md)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backmice.cli import EXIT_OK, EXIT_PARTIAL, make_console
from backmice.cli._options import add_analysis_options, options_from_args

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["add_parser", "options_from_args", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice batch``."""
    p = subparsers.add_parser(
        "batch",
        help="measure every study of a cohort, in parallel, resumably",
        description=(
            "Analyse each study folder under ROOT (a folder holding several studies is split by "
            "StudyInstanceUID) in worker processes. Writes DIR/studies/<name>/ per study (what "
            "'backmice analyze' writes) and DIR/nodules.csv, DIR/nodules.parquet, "
            "DIR/studies.csv and DIR/summary.png. Exit code 3 when any study failed "
            "(status error or no_stack); the others' results are written. A study with "
            "ultrasound and no MR images is analysed as ultrasound (automatic candidates on the "
            "first frame, as 'backmice analyze' without --seed); the MRI options do not apply "
            "to it."
        ),
    )
    p.add_argument(
        "root",
        type=Path,
        metavar="ROOT",
        help="cohort folder: one sub-folder per study (DICOM or NIfTI; a folder of BIDS NIfTI "
        "files is split by subject; docs/nifti.md)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--workers", type=int, metavar="N", help="worker processes (default: the number of CPUs)"
    )
    p.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads each worker's libraries may use (SimpleITK, OpenMP, BLAS; default: the "
        "number of CPUs divided by the workers, 1 on a Dask cluster given by address)",
    )
    p.add_argument(
        "--scheduler",
        metavar="local|ADDRESS",
        help="run on Dask: 'local' starts a LocalCluster of N workers; an address "
        "(tcp://host:8786) uses a running cluster whose workers see ROOT and DIR",
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="skip studies whose files, options and backmice version are unchanged since they "
        "succeeded; run changed and failed ones again",
    )
    add_analysis_options(p, each_study=True)
    p.add_argument(
        "--project",
        type=Path,
        metavar="PATH",
        help="also add every analysed study to this annotation project (created if missing) "
        "for review in napari",
    )
    p.add_argument("--no-qc", action="store_true", help="do not draw each study's qc.png")
    p.set_defaults(func=run)


#: Said of a study measured without calibration (an ultrasound image without a usable region).
_PX = "UNCALIBRATED: every length is in PIXELS, not mm (units px)"


def _px_studies(studies_csv: Path) -> list[str]:
    """The studies of ``studies.csv`` whose lengths are in px."""
    import csv

    with studies_csv.open(encoding="utf-8", newline="") as fh:
        return [row["study"] for row in csv.DictReader(fh) if row.get("units") == "px"]


class _Lines:
    """One line per finished study (quiet, or output piped to a file)."""

    def __init__(self, console) -> None:
        self.console = console

    def __call__(self, record, done: int, total: int) -> None:
        if record is None:
            reused = f", {done} unchanged (resumed)" if done else ""
            self.console.print(f"{total} stud(ies){reused}", highlight=False)
            return
        what = f"{record.n_nodules} nodule(s)" if record.status == "ok" else record.message
        self.console.print(
            f"[{done}/{total}] {record.study}: {record.status} {what} ({record.seconds:.1f} s)"
            + (f" {_PX}" if record.units == "px" else ""),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


class _Bar:
    """A rich progress bar with counts, failures and the time left."""

    def __init__(self, console) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self.task: TaskID | None = None
        self.failed = 0

    def __call__(self, record, done: int, total: int) -> None:
        if self.task is None:
            self.task = self.bar.add_task("studies", total=total, completed=done, failed=0)
            return
        if record is not None and record.status != "ok":
            self.failed += 1
            self.bar.console.print(
                f"{record.study}: {record.status}: {record.message}", markup=False, highlight=False
            )
        elif record is not None and record.units == "px":
            self.bar.console.print(f"{record.study}: {_PX}", markup=False, highlight=False)
        self.bar.update(self.task, completed=done, failed=self.failed)


def run(args: argparse.Namespace) -> int:
    """Run ``backmice batch``; returns the exit code (3 when any study failed)."""

    from backmice.batch import run as run_batch

    options = options_from_args(args)
    console = make_console()
    # -q / --quiet (a global flag, anywhere): one line per study, no progress bar.
    interactive = sys.stdout.isatty() and not getattr(args, "quiet", False)
    bar = _Bar(console) if interactive else None
    show = bar if bar is not None else _Lines(console)
    counts = {"total": 0, "failed": 0}

    def progress(record, done: int, total: int) -> None:
        counts["total"] = total
        if record is not None and record.status != "ok":
            counts["failed"] += 1
        show(record, done, total)

    with bar.bar if bar is not None else contextlib.nullcontext():
        frame = run_batch(
            args.root,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            threads=args.threads,
            resume=args.resume,
            options=options,
            qc=not args.no_qc,
            progress=progress,
            log_level=getattr(args, "console_level", None),
        )
    failed = counts["failed"]
    if args.project is not None:
        from backmice.batch import to_project

        keys = to_project(args.out, args.project)
        console.print(f"{len(keys)} stud(ies) in project {args.project}", highlight=False)
    console.print(
        f"{counts['total']} stud(ies): {counts['total'] - failed} ok, {failed} failed "
        f"(see {args.out / 'studies.csv'}); {len(frame)} nodule(s) in {args.out / 'nodules.csv'}",
        highlight=False,
        soft_wrap=True,
    )
    px = _px_studies(args.out / "studies.csv")
    if px:
        shown = ", ".join(px[:5]) + (f" and {len(px) - 5} more" if len(px) > 5 else "")
        console.print(
            f"{len(px)} stud(ies) {_PX}: {shown}",
            style="bold red",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    return EXIT_PARTIAL if failed else EXIT_OK
