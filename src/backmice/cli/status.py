"""``backmice status PROJECT [--json]``: review progress of an annotation project, per reader."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from backmice.cli import make_console
from backmice.errors import InputError, StoreError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice status``."""
    p = subparsers.add_parser(
        "status",
        help="review progress of an annotation project, per reader",
        description=(
            "Print every study of an annotation project (a folder with backmice.db) and, per "
            "reader, how many of its nodules they accepted or rejected; then the studies each "
            "reader has finished."
        ),
    )
    p.add_argument("project", type=Path, metavar="PROJECT", help="project folder or backmice.db")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout instead")
    p.set_defaults(func=run)


def open_project(path: Path):
    """Open an existing project for the command line: a store problem is bad input (exit 2)."""
    from backmice.store import Project

    try:
        return Project.open(path, create=False)
    except StoreError as exc:
        if isinstance(exc, InputError):
            raise
        raise InputError(exc.problem, path=exc.path) from exc


def run(args: argparse.Namespace) -> int:
    """Run ``backmice status``; returns the exit code."""
    project = open_project(args.project)
    try:
        studies = project.studies()
        progress = project.progress()
    except StoreError as exc:
        raise InputError(exc.problem, path=exc.path) from exc
    finally:
        project.close()
    readers = sorted(progress)
    if args.json:
        doc = {
            "project": str(project.path),
            "readers": progress,
            "studies": [
                {
                    "study": s.key,
                    "n_nodules": s.n_nodules,
                    "readers": {
                        r: {
                            "n_nodules": st.n_nodules,
                            "n_reviewed": st.n_reviewed,
                            "done": st.done,
                            "updated": st.updated,
                        }
                        for r, st in s.readers.items()
                    },
                }
                for s in studies
            ],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
        return 0
    from rich.table import Table
    from rich.text import Text

    console = make_console()
    table = Table(title=f"{project.path}", title_justify="left")
    table.add_column("study")
    table.add_column("nodules", justify="right")
    for reader in readers:
        table.add_column(reader, justify="right")
    for s in studies:
        cells: list[str | Text] = []
        for reader in readers:
            st = s.readers.get(reader)
            if st is None:
                cells.append("-")
            else:
                cell = Text(f"{st.n_reviewed}/{st.n_nodules}")
                if st.done:
                    cell.append(" done", style="green")
                cells.append(cell)
        table.add_row(s.key, str(s.n_nodules), *cells)
    console.print(table)
    if not readers:
        console.print(f"{len(studies)} studies, no reviews yet")
    for reader in readers:
        p = progress[reader]
        console.print(
            f"{reader}: {p['done']}/{p['studies']} studies reviewed "
            f"({p['started']} started, {p['nodules_reviewed']} nodules reviewed)",
            highlight=False,
            markup=False,
        )
    return 0
