"""``backmice export PROJECT_OR_RESULT --format csv|json|nifti|seg|sr --out DIR``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice export``."""
    p = subparsers.add_parser(
        "export",
        help="export nodules as CSV, JSON, NIfTI, DICOM SEG or DICOM SR",
        description=(
            "Export the nodules of an analysis result folder (backmice analyze --out) or a "
            "project: csv and json write DIR/nodules.csv|json; nifti, seg and sr write "
            "DIR/STUDY/labels.nii.gz, seg.dcm and sr.dcm (an SR comes with the SEG it "
            "references). --anonymize replaces patient and study names with keyed-hash "
            "pseudonyms (key: $BACKMICE_ANON_KEY, else random per export)."
        ),
    )
    p.add_argument(
        "source", type=Path, metavar="PROJECT_OR_RESULT", help="result folder or project"
    )
    p.add_argument(
        "--format",
        required=True,
        action="append",
        choices=("csv", "json", "nifti", "seg", "sr"),
        help="what to write (repeat for several)",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--reader", metavar="NAME", help="export this reader's annotations")
    p.add_argument("--anonymize", action="store_true", help="pseudonymise patient and study names")
    p.add_argument(
        "--include-rejected",
        action="store_true",
        help="also write rejected candidates into the SEG and SR (left out by default: viewers "
        "show every segment as a finding)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``backmice export``; returns the exit code."""

    from backmice.cli import make_console
    from backmice.export import export_annotations

    written = export_annotations(
        args.source,
        args.out,
        formats=args.format,
        reader=args.reader,
        anonymize=args.anonymize,
        include_rejected=args.include_rejected,
    )
    make_console().print(
        f"wrote {len(written)} file(s) to {args.out}: "
        + ", ".join(str(p.relative_to(args.out)) for p in written),
        highlight=False,
        soft_wrap=True,
    )
    return 0
