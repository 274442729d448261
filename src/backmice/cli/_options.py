"""The analysis options that ``backmice analyze`` and ``backmice batch`` share.

One definition of the flags and one mapping to
:class:`~backmice.analysis.AnalysisOptions`, so the two commands cannot drift.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from backmice.analysis import AnalysisOptions

__all__ = ["DEFAULTS", "add_analysis_options", "options_from_args"]

#: Defaults shown in --help; None on the command line takes ``CandidateOptions``'
#: own default (these equal them: tests check), without importing the
#: segmentation package to build the parser.
DEFAULTS = {"min_size_mm": 5.0, "max_size_mm": 100.0, "roi_deep_mm": 20.0}


def _fraction(text: str) -> float:
    """A threshold strictly between 0 and 1 (fat score or fat fraction)."""
    value = _number(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), not {text}")
    return value


def _positive_mm(text: str) -> float:
    """A length in mm greater than 0."""
    value = _number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a length in mm above 0, not {text}")
    return value


def _number(text: str) -> float:
    import math

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"not a finite number: {text!r}")
    return value


def add_analysis_options(p: argparse.ArgumentParser, *, each_study: bool = False) -> None:
    """Add ``--method``, ``--threshold``, the size limits, the level and ``--no-n4`` to ``p``.

    Parameters
    ----------
    p : argparse.ArgumentParser
    each_study : bool
        Word the help for a cohort (batch) rather than one study.
    """
    every = " for every study" if each_study else ""
    p.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="analysis presets from a TOML file (a study's protocol; 'backmice config show' "
        "prints every option with its default and unit); the flags below win over it",
    )
    p.add_argument(
        "--method",
        choices=("t1", "dixon", "inout"),
        help="force the fat method: t1 (a T1 stack, or the in-phase echo), dixon (a fat + water "
        "pair), inout (two-point Dixon from in-phase and opposed-phase echoes); default: the "
        "first of dixon, a pre-contrast t1, inout that the study allows",
    )
    p.add_argument(
        "--threshold",
        type=_fraction,
        metavar="X",
        help="fat threshold: fat score (T1, 0 muscle .. 1 fat) or fat fraction (Dixon, inout); "
        "default 0.5",
    )
    p.add_argument(
        "--min-size",
        type=_positive_mm,
        metavar="MM",
        help=f"smallest nodule, largest diameter in mm (default {DEFAULTS['min_size_mm']:g})",
    )
    p.add_argument(
        "--max-size",
        type=_positive_mm,
        metavar="MM",
        help=f"largest nodule, largest diameter in mm (default {DEFAULTS['max_size_mm']:g})",
    )
    p.add_argument(
        "--roi-depth",
        type=_positive_mm,
        metavar="MM",
        help=f"how far deep to the fascia to look, mm (default {DEFAULTS['roi_deep_mm']:g})",
    )
    p.add_argument(
        "--sacrum-top-z",
        type=float,
        metavar="MM",
        help=f"LPS z of the top of the sacrum (S1 endplate), mm{every}: herniations below it "
        "are suggested as lumbosacral (default: found from the image, see --find-sacrum)",
    )
    p.add_argument(
        "--find-sacrum",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="find the top of the sacrum from the image when --sacrum-top-z is not given; "
        "when it is unclear the level is unknown and herniations are suggested lumbar "
        "(default: on; see docs/analysis.md)",
    )
    p.add_argument("--no-n4", action="store_true", help="skip the T1 bias-field correction")


def options_from_args(args: argparse.Namespace) -> AnalysisOptions:
    """The ``AnalysisOptions`` that the flags of :func:`add_analysis_options` ask for.

    The defaults, then the ``--config`` file's values, then the flags given.
    """
    from dataclasses import replace

    from backmice.analysis import AnalysisOptions
    from backmice.errors import InputError
    from backmice.vocab import Method

    if args.min_size is not None and args.max_size is not None and args.min_size > args.max_size:
        raise InputError(f"--min-size {args.min_size:g} is above --max-size {args.max_size:g}")
    config = getattr(args, "config", None)
    if config is not None:
        from backmice.config import load_config

        base = load_config(config)
    else:
        base = AnalysisOptions()
    given = {
        "min_size_mm": args.min_size,
        "max_size_mm": args.max_size,
        "roi_deep_mm": args.roi_depth,
    }
    candidates = replace(base.candidates, **{k: v for k, v in given.items() if v is not None})
    if candidates.min_size_mm > candidates.max_size_mm:
        raise InputError(
            f"the smallest nodule ({candidates.min_size_mm:g} mm, --min-size) is above the "
            f"largest ({candidates.max_size_mm:g} mm, --max-size)",
            path=config,
        )
    flags = {
        "method": None if args.method is None else Method(args.method),
        "threshold": args.threshold,
        "n4": False if args.no_n4 else None,
        "sacrum_top_z_mm": args.sacrum_top_z,
        "find_sacrum": args.find_sacrum,
    }
    return replace(base, candidates=candidates, **{k: v for k, v in flags.items() if v is not None})
