"""``backmice sample``: list the sample studies, or write one with its ground truth.

::

    backmice sample list
    backmice sample t1_axial --out DIR [--seed N] [--shuffle] [--force]

A sample is written *into* ``DIR`` (one sub-folder per series and
``truth.json``), which must be empty or missing unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from backmice.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``sample`` subcommand."""
    parser = subparsers.add_parser(
        "sample",
        help="write a synthetic sample study with ground truth",
        description=(
            "Write a synthetic lower-back study (DICOM and truth.json) a scanner could have "
            "written. 'backmice sample list' shows what can be written."
        ),
    )
    parser.add_argument("name", metavar="NAME", help="a sample name, or 'list'")
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="study folder to write into (created)"
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="random file names and instance numbers, as PACS exports have",
    )
    parser.add_argument(
        "--force", action="store_true", help="write into DIR even if it holds files"
    )
    parser.set_defaults(func=run)
    return parser


def _list() -> int:
    from rich.table import Table

    from backmice.phantom.samples import SAMPLES

    table = Table(box=None, show_header=True, header_style="bold")
    table.add_column("name")
    table.add_column("contents")
    table.add_column("in sample_data/")
    for sample in SAMPLES.values():
        table.add_row(sample.name, sample.description, "yes" if sample.committed else "")
    from backmice.cli import make_console

    make_console().print(table)
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``backmice sample``; returns the exit code."""
    if args.name == "list":
        return _list()
    from backmice.phantom.samples import get_sample, write_sample

    get_sample(args.name)  # an unknown name is bad input, before anything is written
    if args.out is None:
        raise InputError(f"say where to write the sample: backmice sample {args.name} --out DIR")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", path=out)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise InputError("folder is not empty (use --force to write into it anyway)", path=out)
    if args.seed < 0:
        raise InputError(f"--seed must be 0 or more, not {args.seed}")
    written = write_sample(
        args.name, out, seed=args.seed, shuffle=args.shuffle, overwrite=args.force
    )

    from backmice.cli import make_console

    n_lesions = len(written.truth["lesions"])
    make_console().print(
        f"wrote {len(written.files)} DICOM file(s) and {written.truth_path.name} "
        f"({n_lesions} lesions) to {written.path}",
        highlight=False,
    )
    return 0
