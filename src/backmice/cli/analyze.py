"""``backmice analyze PATH --out DIR``: find and measure the nodules of one study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backmice.cli import console_width

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice analyze``."""
    p = subparsers.add_parser(
        "analyze",
        help="find and measure candidate nodules in one study",
        description=(
            "Pick the study's T1 stack or Dixon fat + water pair (says which), segment the fat, "
            "the skin and the fascia, find candidate nodules and measure them. Writes "
            "DIR/nodules.csv, DIR/nodules.json, DIR/labels.nii.gz, DIR/fascia.nii.gz and "
            "DIR/qc.png, and prints a table."
        ),
    )
    p.add_argument("path", type=Path, metavar="PATH", help="study folder, DICOM file or DICOMDIR")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--series", metavar="UID", help="analyse this series (SeriesInstanceUID)")
    p.add_argument("--method", choices=("t1", "dixon"), help="force the fat method")
    p.add_argument(
        "--threshold",
        type=float,
        metavar="X",
        help="fat threshold: fat score (T1, 0 muscle .. 1 fat) or fat fraction (Dixon); "
        "default 0.5",
    )
    p.add_argument(
        "--min-size",
        type=float,
        default=5.0,
        metavar="MM",
        help="smallest nodule, largest diameter in mm (default 5)",
    )
    p.add_argument(
        "--max-size",
        type=float,
        default=100.0,
        metavar="MM",
        help="largest nodule, largest diameter in mm (default 100)",
    )
    p.add_argument(
        "--roi-depth",
        type=float,
        default=20.0,
        metavar="MM",
        help="how far deep to the fascia to look, mm (default 20)",
    )
    p.add_argument("--no-n4", action="store_true", help="skip the T1 bias-field correction")
    p.add_argument("--no-qc", action="store_true", help="do not draw qc.png")
    p.set_defaults(func=run)


def _table(analysis) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=console_width())
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


def run(args: argparse.Namespace) -> int:
    """Run ``backmice analyze``; returns the exit code."""
    from rich.console import Console

    from backmice.analysis import AnalysisOptions, analyze, choose_stacks
    from backmice.io import open_study
    from backmice.report import write_analysis
    from backmice.segment import CandidateOptions, Method

    options = AnalysisOptions(
        method=None if args.method is None else Method(args.method),
        threshold=args.threshold,
        n4=not args.no_n4,
        candidates=CandidateOptions(
            min_size_mm=args.min_size, max_size_mm=args.max_size, roi_deep_mm=args.roi_depth
        ),
    )
    err = Console(stderr=True, width=console_width())
    study = open_study(args.path)
    method, stacks = choose_stacks(study, method=options.method, series_uid=args.series)
    out = Console(width=console_width())
    out.print(
        f"using {method}: "
        + "; ".join(
            f"{s.role} '{s.description}' ({'x'.join(map(str, s.shape))}, series {s.series_uid})"
            for s in stacks
        ),
        highlight=False,
    )
    if sys.stderr.isatty():
        from rich.progress import BarColumn, Progress, TimeElapsedColumn

        with Progress(
            "{task.description}", BarColumn(), TimeElapsedColumn(), console=err, transient=True
        ) as bar:
            task = bar.add_task("loading", total=1.0)
            analysis = analyze(
                study,
                options=options,
                series_uid=args.series,
                progress=lambda stage, f: bar.update(task, description=stage, completed=f),
            )
    else:
        analysis = analyze(study, options=options, series_uid=args.series)
    for w in analysis.warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    written = write_analysis(analysis, args.out, qc=not args.no_qc)
    _table(analysis)
    out.print(f"wrote {', '.join(p.name for p in written.values())} to {args.out}", highlight=False)
    return 0
