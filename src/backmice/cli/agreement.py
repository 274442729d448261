"""``backmice agreement PROJECT --out DIR``: agreement between the readers of a project."""

from __future__ import annotations

import argparse
from pathlib import Path

from backmice.cli import make_console
from backmice.errors import InputError, StoreError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice agreement``."""
    p = subparsers.add_parser(
        "agreement",
        help="agreement between readers: kappa, Dice, ICC, Bland-Altman",
        description=(
            "For nodules seen by two or more readers: Cohen's (two readers) or Fleiss' kappa "
            "on accept/reject and on the subtype, Dice between their masks, ICC(2,1) and "
            "Bland-Altman limits of agreement for each diameter and the fascia offset. Writes "
            "DIR/agreement.csv, DIR/agreement.json and DIR/agreement.png."
        ),
    )
    p.add_argument("project", type=Path, metavar="PROJECT", help="project folder or backmice.db")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.add_argument("--readers", metavar="A,B,...", help="compare these readers only (default: all)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``backmice agreement``; returns the exit code."""
    from rich.table import Table

    from backmice.agreement import agreement, write_agreement
    from backmice.cli.status import open_project

    readers = [r.strip() for r in args.readers.split(",") if r.strip()] if args.readers else None
    project = open_project(args.project)
    try:
        result = agreement(project, readers=readers)
    except StoreError as exc:
        raise InputError(exc.problem, path=exc.path) from exc
    finally:
        project.close()
    written = write_agreement(result, args.out)
    console = make_console()
    table = Table(title=f"agreement of {', '.join(result.readers)}", title_justify="left")
    for name in ("measure", "quantity", "readers", "method", "n", "value", "95% CI", "range"):
        table.add_column(name, justify="left" if name in ("measure", "quantity") else "right")

    def interval(low: float | None, high: float | None) -> str:
        return "" if low is None or high is None else f"{low:.3f} – {high:.3f}"

    for row in result.summary:
        table.add_row(
            *(str(row[c]) for c in ("measure", "quantity", "readers", "method", "n")),
            "" if row["value"] is None else f"{row['value']:.3f}",
            interval(row["ci_low"], row["ci_high"]),
            interval(row["lower"], row["upper"]),
        )
    console.print(table)
    console.print(
        f"{len(result.nodules)} nodule(s) compared; wrote "
        + ", ".join(str(p) for p in written.values()),
        highlight=False,
        markup=False,
    )
    return 0
