"""``backmice import FILE... --into RESULT``: read a DICOM SEG and/or SR back."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice import``."""
    p = subparsers.add_parser(
        "import",
        help="import a DICOM SEG and/or SR into a result folder or project",
        description=(
            "Read a DICOM Segmentation (from backmice, 3D Slicer, OHIF: any binary, fractional "
            "or label-map SEG over the series) and TID 1500 SRs. Into a result folder: write its "
            "labels.nii.gz, nodules.csv and nodules.json from them. Into a project: record them "
            "as the reader's actions (added, edited, deleted nodules, status, subtype)."
        ),
    )
    p.add_argument("files", type=Path, nargs="+", metavar="FILE", help="SEG and SR files")
    p.add_argument(
        "--into",
        type=Path,
        required=True,
        metavar="PROJECT_OR_DIR",
        help="result folder or project",
    )
    p.add_argument(
        "--reader",
        metavar="NAME",
        help="project only: whose annotations these are, when the SR does not say",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``backmice import``; returns the exit code."""

    from backmice.cli import make_console, print_labelled
    from backmice.export import import_files

    result = import_files(args.files, into=args.into, reader=args.reader)
    console = make_console()
    for w in result.warnings:
        print_labelled(console, "warning:", w)
    console.print(
        f"imported {len(result.rows)} nodule(s) into {args.into}", highlight=False, soft_wrap=True
    )
    return 0
