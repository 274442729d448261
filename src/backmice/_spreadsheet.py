"""CSV cells that no spreadsheet runs as a formula (CSV injection), and back.

Kept apart from :mod:`backmice.report.write` (which re-exports them) so that
readers of the tables (``backmice.batch``) need not import the report package
(matplotlib, the measurement and segmentation code).
"""

from __future__ import annotations

__all__ = ["FORMULA_STARTS", "spreadsheet_safe", "spreadsheet_text"]

#: First characters that make a spreadsheet read a cell as a formula (OWASP's
#: CSV injection list): a folder named ``=1+2`` or a SeriesDescription
#: ``=HYPERLINK(...)`` must reach Excel or LibreOffice as text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """A CSV cell that no spreadsheet runs: text starting with a formula character gets ``'``.

    Numbers are left alone (``-6.5`` is a number, not a formula); only ``str``
    values change. JSON and Parquet keep the text as it is
    (:func:`spreadsheet_text` undoes this when a CSV is read back).

    Parameters
    ----------
    value : object

    Returns
    -------
    object
        ``"'" + value`` for text starting with one of :data:`FORMULA_STARTS`, else ``value``.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def spreadsheet_text(value: object) -> object:
    """Undo :func:`spreadsheet_safe` on a cell read from a backmice CSV."""
    if isinstance(value, str) and value.startswith("'") and value[1:2] and value[1] in "=+-@\t\r":
        return value[1:]
    return value
