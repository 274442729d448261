"""``backmice sample``: list the sample studies, or write one with its ground truth.

::

    backmice sample list
    backmice sample t1_axial --out DIR [--seed N] [--shuffle] [--force]
    backmice sample insert STUDY --out DIR [--seed N] [--count K] [--force]

A sample is written *into* ``DIR`` (one sub-folder per series and
``truth.json``), which must be empty or missing unless ``--force`` is given.
``insert`` draws encapsulated fat nodules into a real study instead
(:mod:`backmice.phantom.insert`, ``docs/insert.md``).
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
            "written. 'backmice sample list' shows what can be written. "
            "'backmice sample insert STUDY --out DIR' draws encapsulated fat nodules into a "
            "real T1, Dixon or in/opposed-phase study and writes it with its truth.json."
        ),
    )
    parser.add_argument("name", metavar="NAME", help="a sample name, 'list', or 'insert'")
    parser.add_argument(
        "study",
        metavar="STUDY",
        nargs="?",
        type=Path,
        help="insert: the real study (folder, file or DICOMDIR) to draw nodules into",
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="study folder to write into (created)"
    )
    parser.add_argument("--seed", type=int, default=0, help="phantom seed (default 0)")
    parser.add_argument(
        "--count",
        type=int,
        default=3,
        metavar="K",
        help="insert: how many nodules to draw (default 3)",
    )
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
    table.add_row(
        "insert STUDY",
        "encapsulated fat nodules drawn into your own T1, Dixon or in/opposed-phase study",
        "",
    )
    from backmice.cli import make_console

    make_console().print(table)
    return 0


def _check_out(args: argparse.Namespace, usage: str) -> Path:
    """The output folder, checked before anything is read or written."""
    if args.out is None:
        raise InputError(f"say where to write the sample: {usage}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a folder", path=out)
    if out.is_dir() and any(out.iterdir()) and not args.force:
        raise InputError("folder is not empty (use --force to write into it anyway)", path=out)
    if args.seed < 0:
        raise InputError(f"--seed must be 0 or more, not {args.seed}")
    return out


def _insert(args: argparse.Namespace) -> int:
    """``backmice sample insert STUDY --out DIR``."""
    usage = "backmice sample insert STUDY --out DIR"
    if args.study is None:
        raise InputError(f"say which real study to draw nodules into: {usage}")
    study: Path = args.study
    if not study.exists():
        raise InputError("no such file or folder", path=study)
    out = _check_out(args, usage)
    if args.count < 1:
        raise InputError(f"--count must be 1 or more, not {args.count}")
    if study.is_dir() and out.resolve().is_relative_to(study.resolve()):
        raise InputError(
            f"is inside the study {study}: write the new study elsewhere (the source would "
            "read it as more series)",
            path=out,
        )
    from backmice.phantom.insert import insert_nodules

    written = insert_nodules(study, out, seed=args.seed, count=args.count, overwrite=args.force)

    from backmice.cli import make_console

    kinds = ", ".join(
        f"{t['id']} {t['intended_relation']} {t['max_diameter_mm']:.0f} mm"
        for t in written.truth["lesions"]
    )
    make_console().print(
        f"wrote {len(written.files)} DICOM file(s) and {written.truth_path.name} "
        f"({len(written.truth['lesions'])} nodules: {kinds}) to {written.path}",
        highlight=False,
    )
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``backmice sample``; returns the exit code."""
    if args.name == "insert":
        return _insert(args)
    if args.study is not None:
        raise InputError(
            f"unexpected {args.study}: only 'backmice sample insert STUDY' takes a study"
        )
    if args.name == "list":
        return _list()
    from backmice.phantom.samples import get_sample, write_sample

    get_sample(args.name)  # an unknown name is bad input, before anything is written
    _check_out(args, f"backmice sample {args.name} --out DIR")
    out: Path = args.out
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
