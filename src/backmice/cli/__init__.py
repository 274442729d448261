"""The ``backmice`` command line: a thin layer over the library.

Each subcommand lives in its own module of this package and provides
``add_parser(subparsers)``, which registers an :mod:`argparse` parser whose
``func`` default is a callable ``run(args) -> int``.

Exit codes (``docs/SPEC.md``): 0 done; 1 an error in backmice itself; 2 bad input
(one readable line naming the file and the problem, no traceback unless
``--debug``); 3 a batch finished with some studies failed.
"""

from __future__ import annotations

import argparse
import importlib
import keyword
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from backmice import __version__
from backmice.errors import WRITE_ERRNOS, InputError, OutputError, StoreError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_BUG",
    "EXIT_OK",
    "EXIT_PARTIAL",
    "console_width",
    "main",
    "make_console",
    "print_labelled",
]

EXIT_OK = 0
EXIT_BUG = 1
EXIT_BAD_INPUT = 2
EXIT_PARTIAL = 3

#: Subcommand modules, in the order ``backmice --help`` lists them.
SUBCOMMANDS = (
    "info",
    "analyze",
    "sample",
    "view",
    "batch",
    "status",
    "agreement",
    "export",
    "import",
    "config",
)

log = logging.getLogger("backmice")


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors say ``backmice: error: ...`` and exit 2 (bad input)."""

    def error(self, message: str) -> NoReturn:  # pragma: no cover - exercised via main()
        self.print_usage(sys.stderr)
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser, with every available subcommand."""
    parser = _Parser(
        prog="backmice",
        description="Find, measure and annotate back mice on MR and ultrasound DICOM.",
    )
    parser.add_argument("--version", action="version", version=f"backmice {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("-q", "--quiet", action="store_true", default=False, help=_QUIET)
    parser.add_argument("--log-file", type=Path, metavar="FILE", default=None, help=_LOG_FILE)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        # A subcommand named after a Python keyword lives in ``<name>_.py``.
        modname = f"backmice.cli.{name}_" if keyword.iskeyword(name) else f"backmice.cli.{name}"
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:  # a subcommand not built yet
            if exc.name != modname:
                raise
            continue
        module.add_parser(sub)
    # --debug, -v, -q and --log-file also after the subcommand ("run again with --debug"
    # says nothing of where); SUPPRESS keeps the value given before it when they are
    # not repeated.
    for subparser in sub.choices.values():
        subparser.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output"
        )
        subparser.add_argument(
            "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
        )
        subparser.add_argument(
            "-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=_QUIET
        )
        subparser.add_argument(
            "--log-file", type=Path, metavar="FILE", default=argparse.SUPPRESS, help=_LOG_FILE
        )
    return parser


_QUIET = (
    "less output: only errors on the terminal, no progress bar (batch: one line per study); "
    "the results and --log-file keep everything"
)
_LOG_FILE = (
    "also write the log to FILE (appended; times and levels; INFO, or DEBUG with -vv), "
    "with the errors, whatever -q or -v say on the terminal"
)


class _NotFileOnly(logging.Filter):
    """Keep records meant for the log file only (an error the terminal already shows) off it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "file_only", False)


def _setup_logging(verbose: int, *, quiet: bool = False, log_file: Path | None = None) -> int:
    """Log to the terminal (and to ``log_file``); returns the terminal's level.

    Raises
    ------
    OSError
        ``log_file`` cannot be opened for writing.
    """
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    if quiet and verbose == 0:
        level = logging.ERROR
    handler = RichHandler(console=_stderr_console(), show_time=False, show_path=False, markup=False)
    handler.setLevel(level)
    handler.addFilter(_NotFileOnly())
    handlers: list[logging.Handler] = [handler]
    root_level = level
    if log_file is not None:
        file_level = logging.DEBUG if verbose >= 2 else logging.INFO
        to_file = logging.FileHandler(log_file, mode="a", encoding="utf-8")
        to_file.setLevel(file_level)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers.append(to_file)
        root_level = min(level, file_level)
    logging.basicConfig(level=root_level, handlers=handlers, force=True)
    # pydicom is chatty about recoverable oddities (invalid VR values, decoder
    # fallbacks); backmice's own messages say what matters to the user.
    if verbose < 2:
        import pydicom.config

        pydicom.config.settings.reading_validation_mode = pydicom.config.IGNORE
        logging.getLogger("pydicom").setLevel(logging.CRITICAL)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR if verbose < 2 else logging.WARNING)
    return level


def _stderr_console():
    return make_console(stderr=True)


def make_console(*, stderr: bool = False):
    """A rich console that prints text as it is: no markup, so a file name, a series
    description or a hint such as ``backmice[napari]`` is never eaten as a style tag.

    Parameters
    ----------
    stderr : bool
        Print to standard error.
    """
    from rich.console import Console

    return Console(stderr=stderr, width=console_width(), markup=False)


def print_labelled(console, label: str, text: str, *, style: str = "yellow") -> None:
    """Print ``label`` in ``style`` and then ``text`` as it is (never read as markup).

    Parameters
    ----------
    console : rich.console.Console
    label : str
        E.g. ``warning:``.
    text : str
        The message (file names, DICOM text).
    style : str
        Rich style of the label.
    """
    from rich.text import Text

    message = Text(label, style=style)
    message.append(" " + text)
    console.print(message, highlight=False, soft_wrap=True)


def console_width() -> int:
    """Terminal width, or a wide default when output is piped (tables stay readable)."""
    import shutil

    return max(shutil.get_terminal_size((160, 24)).columns, 80)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_OK
    try:
        args.console_level = _setup_logging(args.verbose, quiet=args.quiet, log_file=args.log_file)
    except OSError as exc:  # logging is not set up: say it on the terminal only
        why = OutputError(f"cannot write the log file ({exc.strerror or exc})", path=args.log_file)
        print_labelled(_stderr_console(), "error:", str(why), style="bold red")
        return EXIT_BAD_INPUT
    log.info("backmice %s: %s", __version__, " ".join(sys.argv[1:] if argv is None else argv))
    try:
        return int(args.func(args) or EXIT_OK)
    except (InputError, StoreError, OutputError) as exc:
        if args.debug:
            traceback.print_exc()
        # One line per problem, however long: never wrapped at the terminal width.
        _print_error("error:", str(exc))
        return EXIT_BAD_INPUT
    except MemoryError as exc:
        if args.debug:
            traceback.print_exc()
        _print_error(
            "error:",
            f"not enough memory for this input ({exc or 'MemoryError'}): it is larger than "
            "this machine can load or analyse",
        )
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _stderr_console().print("interrupted")
        return 130
    except Exception as exc:
        if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:  # full disk, read-only
            if args.debug:
                traceback.print_exc()
            _print_error("error:", str(OutputError.from_os_error(exc)))
            return EXIT_BAD_INPUT
        if args.debug:
            raise
        _print_error(
            "internal error (a bug in backmice):",
            f"{type(exc).__name__}: {exc}\n"
            "Run again with --debug for the traceback, and please report it.",
        )
        return EXIT_BUG


def _print_error(prefix: str, text: str) -> None:
    """``prefix`` in bold red, then ``text`` as it is (file names and hints are not markup).

    The message also goes to ``--log-file`` (not to the terminal a second time).
    """
    print_labelled(_stderr_console(), prefix, text, style="bold red")
    log.error("%s %s", prefix, text, extra={"file_only": True})
