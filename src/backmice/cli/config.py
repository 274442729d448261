"""``backmice config show [--config FILE]``: every analysis option, its default and unit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice config``."""
    p = subparsers.add_parser(
        "config",
        help="analysis presets: print every option with its default and unit",
        description=(
            "Analysis presets live in a TOML file (a study's protocol, kept in its repository) "
            "given to 'backmice analyze' or 'batch' with --config FILE. 'backmice config show' "
            "prints every option as such a file: its value (the default, or FILE's), its unit and "
            "what it does; redirect it to a file to start a preset. See docs/config.md."
        ),
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    show = sub.add_parser("show", help="print every option with its default (or FILE's value)")
    show.add_argument(
        "--config", type=Path, metavar="FILE", help="show the values this preset file sets"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``backmice config show``; returns the exit code."""
    from backmice.config import load_config, options_toml

    if args.config is not None:
        text = options_toml(load_config(args.config), source=f"{args.config}, else the defaults")
    else:
        text = options_toml()
    sys.stdout.write(text)
    return 0
