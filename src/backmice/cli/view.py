"""``backmice view PATH [--screenshot FILE]``: the study in napari with the plugin's widgets."""

from __future__ import annotations

import argparse
from pathlib import Path

from backmice.errors import InputError

__all__ = ["add_parser", "run"]


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``backmice view``."""
    p = subparsers.add_parser(
        "view",
        help="open a study in napari with the backmice widgets docked",
        description=(
            "Open the DICOM folder, file or DICOMDIR in napari, one layer per stack in patient "
            "coordinates (mm; ultrasound in its image plane, in mm from its calibration), with "
            "the Analyze, Review, Edit and Measure widgets docked (an ultrasound study: the "
            "Ultrasound and Measure widgets). With --screenshot: run the analysis, select the "
            "first nodule, save a PNG of the whole window and exit."
        ),
    )
    p.add_argument("path", type=Path, metavar="PATH", help="study folder, DICOM file or DICOMDIR")
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE",
        help="analyse, select the first nodule, save the window as FILE (PNG) and exit",
    )
    p.set_defaults(func=run)


def _plugin():
    try:
        import napari  # noqa: F401

        import napari_backmice._view as view
    except ImportError as exc:
        raise InputError(
            f"the viewer needs napari and a Qt binding ({exc}); "
            "install them with: pip install 'backmice[napari]' pyqt5"
        ) from None
    return view


def run(args: argparse.Namespace) -> int:
    """Run ``backmice view``; returns the exit code."""
    view = _plugin()
    if args.screenshot is not None:
        out = view.screenshot_session(args.path, args.screenshot)
        print(out)  # noqa: T201 - the command's output
        return 0
    import napari

    view.open_viewer(args.path, show=True)
    napari.run()
    return 0
