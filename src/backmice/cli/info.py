"""``backmice info PATH [--json]``: what a study holds, from headers alone."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from backmice.cli import make_console, print_labelled
from backmice.errors import InputError
from backmice.io import Study, open_study

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = ["add_parser", "run"]

#: How many skipped files the table lists before summarising the rest.
_SKIPPED_SHOWN = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice info``."""
    p = subparsers.add_parser(
        "info",
        help="list the image stacks of a DICOM folder, file or DICOMDIR",
        description=(
            "List the image stacks (series, split by orientation and image type) found under "
            "PATH, with role, shape, spacing in mm and orientation, and the files skipped. "
            "Reads headers only."
        ),
    )
    p.add_argument("path", type=Path, metavar="PATH", help="folder, DICOM file or DICOMDIR")
    p.add_argument(
        "--json", action="store_true", help="print exactly one JSON object on stdout instead"
    )
    p.set_defaults(func=run)


def _fmt_spacing(spacing) -> str:
    return " x ".join("?" if s is None else f"{s:.3g}" for s in spacing)


def _print_table(study: Study) -> None:
    from rich.table import Table

    console = make_console()
    table = Table(title=f"{study.path}", title_justify="left")
    studies = sorted({s.study_uid for s in study.stacks})
    several = len(studies) > 1
    if several:  # a folder of several studies (patients): say which stack is whose
        table.add_column("study", justify="right")
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("#", "right"),
        ("role", "left"),
        ("mod.", "left"),
        ("description", "left"),
        ("shape (slice x row x col)", "right"),
        ("spacing (mm)", "right"),
        ("orientation", "left"),
        ("units", "left"),
        ("files", "right"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for i, s in enumerate(study.stacks, 1):
        table.add_row(
            *([str(studies.index(s.study_uid) + 1)] if several else []),
            str(i),
            str(s.role),
            s.modality,
            s.description,
            " x ".join(map(str, s.shape)),
            _fmt_spacing(s.spacing_mm),
            s.orientation or "-",
            s.units if s.role.is_image else "-",
            str(s.n_files),
        )
    console.print(table)
    if several:
        console.print(
            f"{len(studies)} studies (StudyInstanceUID) in this folder: "
            + "; ".join(f"{k} {uid or '(none)'}" for k, uid in enumerate(studies, 1))
            + "; 'backmice batch' analyses each",
            highlight=False,
            soft_wrap=True,
        )
    for i, s in enumerate(study.stacks, 1):
        for w in s.warnings:
            print_labelled(console, f"#{i}:", w)
    if study.skipped:
        console.print(f"{len(study.skipped)} file(s) skipped:", style="bold")
        for skip in study.skipped[:_SKIPPED_SHOWN]:
            console.print(f"  {skip.path}: {skip.reason}", highlight=False, markup=False)
        if len(study.skipped) > _SKIPPED_SHOWN:
            console.print(
                f"  ... and {len(study.skipped) - _SKIPPED_SHOWN} more (--json lists all)"
            )


def _open_with_progress(path: Path) -> Study:
    """open_study, with a progress bar on an interactive terminal."""
    if not sys.stderr.isatty():
        return open_study(path)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task("reading headers", total=None)
        return open_study(
            path, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )


def run(args: argparse.Namespace) -> int:
    """Run ``backmice info``; returns the exit code."""
    study = _open_with_progress(args.path)
    if args.json:
        sys.stdout.write(json.dumps(study.summary()) + "\n")
    else:
        _print_table(study)
    if not study.stacks:
        if args.path.is_file() and len(study.skipped) == 1:  # its own problem is the message
            raise InputError(study.skipped[0].reason, path=study.skipped[0].path)
        raise InputError(
            f"no DICOM images found ({len(study.skipped)} file(s) skipped)", path=args.path
        )
    return 0
