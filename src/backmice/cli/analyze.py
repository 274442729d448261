"""``backmice analyze PATH --out DIR``: find and measure the nodules of one study."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from backmice.cli import make_console, print_labelled
from backmice.cli._options import add_analysis_options, options_from_args
from backmice.errors import InputError
from backmice.io.model import Role

__all__ = ["add_parser", "run"]

log = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice analyze``."""
    p = subparsers.add_parser(
        "analyze",
        help="find and measure candidate nodules in one study",
        description=(
            "Pick the study's Dixon fat + water pair, T1 stack or in/opposed-phase echoes "
            "(says which; docs/roles.md), segment the fat, "
            "the skin and the fascia, find candidate nodules and measure them. Writes "
            "DIR/nodules.csv, DIR/nodules.json, DIR/labels.nii.gz, DIR/fascia.nii.gz and "
            "DIR/qc.png, and prints a table. Ultrasound (a study with no MR images, or one "
            "named by --series, --seed, --frame or --all-frames) is analysed as B-mode: the skin "
            "and fascia lines, the nodule at --seed (or automatic candidates), in mm from the "
            "ultrasound region's calibration."
        ),
    )
    p.add_argument(
        "path",
        type=Path,
        metavar="PATH",
        help="study folder, DICOM file, DICOMDIR, or NIfTI file (.nii, .nii.gz; docs/nifti.md)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--series",
        metavar="UID|FILE",
        help="analyse this series (SeriesInstanceUID), or this NIfTI file of the folder (taken "
        "as the fat-bright T1 image unless its role says otherwise)",
    )
    p.add_argument(
        "--echo",
        type=int,
        metavar="N",
        help="analyse this echo of a series that holds several (its number, as 'backmice info' "
        "shows it: 'echo N'); without it both echoes of an in/opposed-phase series are used, "
        "or the in-phase one with --method t1",
    )
    add_analysis_options(p)
    us = p.add_argument_group("ultrasound (a B-mode frame or cine: see docs/ultrasound.md)")
    us.add_argument(
        "--seed",
        type=_seed,
        metavar="COL,ROW",
        help="a point inside the nodule, pixels of the original image (as a DICOM viewer shows "
        "them); without it, automatic candidates",
    )
    us.add_argument(
        "--frame", type=int, default=None, metavar="N", help="cine frame to measure (0-based; 0)"
    )
    us.add_argument(
        "--all-frames",
        action="store_true",
        help="measure every cine frame too and report the spread",
    )
    p.add_argument("--no-qc", action="store_true", help="do not draw qc.png")
    p.set_defaults(func=run)


def _warn(err, text: str, args: argparse.Namespace) -> None:
    """An analysis warning on the terminal (not with -q) and in the log (--log-file)."""
    if not getattr(args, "quiet", False):
        print_labelled(err, "warning:", text)
    log.info("warning: %s", text, extra={"file_only": True})


def _seed(text: str) -> tuple[float, float]:
    """``COL,ROW`` → (col, row)."""
    try:
        col, row = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected COL,ROW in pixels, not {text!r}") from None
    return col, row


def _table(analysis) -> None:
    from rich.table import Table

    console = make_console()
    unit = analysis.volume.units
    table = Table(
        title=f"{analysis.study}: {len(analysis.nodules)} candidate nodule(s)", title_justify="left"
    )
    for name in (
        "id",
        "relation",
        "side",
        f"volume {unit}³",
        f"max {unit}",
        f"long × short {unit}",
        f"fascia {unit}",
        "suggested subtype",
        "red flags",
    ):
        table.add_column(name, justify="right" if name[0].isdigit() or unit in name else "left")
    for r in analysis.nodules:
        table.add_row(
            str(r["nodule_id"]),
            r["relation"],
            r["side"] or "?",
            f"{r['volume_mm3']:.0f}",
            f"{r['max_diameter_mm']:.1f}",
            f"{r['long_axis_mm']:.1f} × {r['short_axis_mm']:.1f}",
            f"{r['fascia_offset_mm']:+.1f}",
            r["suggested_subtype"],
            r["red_flags"] or "-",
        )
    console.print(table)


def _us_table(result) -> None:
    """Print the ultrasound nodules, the warnings (uncalibrated: loudly) and the cine spread."""
    from rich.table import Table

    console = make_console()
    unit = result.units
    if unit == "px":
        console.print(
            "UNCALIBRATED: this ultrasound has no usable region; every length below "
            "is in PIXELS, not mm",
            style="bold red",
        )
    frames = result.volume.array.shape[0]
    table = Table(
        title=(
            f"{result.study}: {len(result.nodules)} nodule(s), frame {result.frame} of "
            f"0-{frames - 1} (0-based, as --frame)"
        ),
        title_justify="left",
    )
    for name in (
        "id",
        "found by",
        "status",
        "relation",
        f"long × short {unit}",
        f"area {unit}²",
        f"fascia {unit}",
        f"skin {unit}",
        "suggested subtype",
    ):
        table.add_column(name)
    for r in result.nodules:
        table.add_row(
            str(r["nodule_id"]),
            r["found_by"],
            r["status"],
            r["relation"],
            f"{r['long_axis_mm']:.1f} × {r['short_axis_mm']:.1f}",
            f"{r['area_mm2']:.0f}",
            f"{r['fascia_offset_mm']:+.1f}",
            f"{r['skin_depth_mm']:.1f}",
            r["suggested_subtype"],
        )
    console.print(table)
    for s in result.spread:
        parts = [
            f"{key.removesuffix('_mm').replace('_', ' ')} {s[key]['min']:.1f}-{s[key]['max']:.1f} "
            f"(median {s[key]['median']:.1f})"
            for key in ("long_axis_mm", "short_axis_mm", "fascia_offset_mm")
            if key in s
        ]
        console.print(
            f"nodule {s['nodule_id']} over {s['frames']}/{result.frames_measured} frames: "
            + ", ".join(parts)
            + f" {unit}",
            highlight=False,
        )


def _run_ultrasound(plan, args: argparse.Namespace) -> int:
    """``backmice analyze`` on an ultrasound series."""

    from backmice.run import run_ultrasound
    from backmice.ultrasound import write_ultrasound

    err = make_console(stderr=True)
    out = make_console()
    out.print(plan.describe(), highlight=False)
    result = run_ultrasound(plan, seed=args.seed, frame=args.frame, all_frames=args.all_frames)
    for w in result.warnings:
        _warn(err, w, args)
    written = write_ultrasound(result, args.out, qc=not args.no_qc)
    _us_table(result)
    out.print(f"wrote {', '.join(p.name for p in written.values())} to {args.out}", highlight=False)
    return 0


def _one_study(study, args: argparse.Namespace) -> None:
    """Refuse a folder holding several studies (patients) unless --series names one series.

    Raises
    ------
    InputError
        Lists the studies (StudyInstanceUID, their series) and says what to do.
    """
    if args.series:
        return
    by_study: dict[str, list[str]] = {}
    for s in study.stacks:
        if s.role.is_image:
            by_study.setdefault(s.study_uid, []).append(f"{s.role} {s.description!r}")
    if len(by_study) < 2:
        return
    listed = "; ".join(
        f"study {uid or '(no StudyInstanceUID)'}: {', '.join(stacks)}"
        for uid, stacks in sorted(by_study.items())
    )
    raise InputError(
        f"holds {len(by_study)} studies ({listed}): analyse them all with 'backmice batch', "
        "or one with --series UID ('backmice info' lists the series)",
        path=args.path,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``backmice analyze``; returns the exit code."""

    from backmice.io import open_study
    from backmice.report import write_analysis
    from backmice.run import is_ultrasound_study, plan, run_mri

    options = options_from_args(args)
    err = make_console(stderr=True)
    study = open_study(args.path)
    ultrasound_asked = args.seed is not None or args.frame is not None or args.all_frames
    # One plan (backmice.run), as the batch makes it: ultrasound or MRI, which stacks.
    if is_ultrasound_study(
        study, method=args.method, series_uid=args.series, ultrasound_asked=ultrasound_asked
    ):
        return _run_ultrasound(plan(study, series_uid=args.series, ultrasound=True), args)
    if ultrasound_asked:
        raise InputError(
            "--seed, --frame and --all-frames are for ultrasound, and there is none here",
            path=args.path,
        )
    _one_study(study, args)
    try:
        planned = plan(
            study, method=options.method, series_uid=args.series, echo=args.echo, ultrasound=False
        )
    except InputError as exc:
        if not any(s.role is Role.US for s in study.stacks):
            raise
        raise InputError(
            f"{exc.problem}; to analyse the ultrasound, "
            + ("leave out --method" if args.method else "give --series UID or --seed"),
            path=exc.path,
        ) from None
    out = make_console()
    out.print(planned.describe(), highlight=False)
    if sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TimeElapsedColumn

        with Progress(
            "{task.description}", BarColumn(), TimeElapsedColumn(), console=err, transient=True
        ) as bar:
            task = bar.add_task("loading", total=1.0)
            analysis = run_mri(
                planned,
                options=options,
                progress=lambda stage, f: bar.update(task, description=stage, completed=f),
            )
    else:
        analysis = run_mri(planned, options=options)
    for w in analysis.warnings:
        _warn(err, w, args)
    written = write_analysis(analysis, args.out, qc=not args.no_qc)
    _table(analysis)
    out.print(f"wrote {', '.join(p.name for p in written.values())} to {args.out}", highlight=False)
    return 0
