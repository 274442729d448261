"""Analysis presets in a TOML file: a study's protocol as one file in its repository.

::

    # protocol.toml
    [analysis]
    method = "dixon"
    threshold = 0.45

    [analysis.candidates]
    min_size_mm = 8.0

    [analysis.red_flags]
    deep_mm = 10.0

``backmice analyze --config protocol.toml`` (and ``batch``) start from the file's
values; flags given on the command line win over it. ``backmice config show``
prints every option with its default (or the file's value), its unit and what
it does (:func:`options_toml`). The options are the fields of
:class:`~backmice.analysis.AnalysisOptions`, with its ``candidates``
(:class:`~backmice.segment.CandidateOptions`) and ``red_flags``
(:class:`~backmice.measure.red_flags.RedFlagRules`) as sub-tables: their
docstrings are the one description of each, read here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import textwrap
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backmice.errors import InputError

if TYPE_CHECKING:
    from backmice.analysis import AnalysisOptions

__all__ = ["Option", "load_config", "option_list", "options_from_mapping", "options_toml"]

#: Units of the options whose names do not say it (``_mm``, ``_mm2``, ``_mm3`` do).
_UNITS = {
    "method": "t1 | dixon | inout",
    "threshold": "0-1",
    "min_in_roi": "fraction",
    "min_solidity": "fraction",
    "min_shell_fat": "fraction",
    "min_core_fat": "fraction",
    "fat_share": "fraction",
    "fat_ratio": "fraction",
    "fat_fraction": "fraction",
    "max_elongation": "ratio",
    "nodular_elongation": "ratio",
}
#: What an option left unset (None) means.
_UNSET = {
    "method": "chosen from the roles found (dixon, a pre-contrast t1, inout)",
    "threshold": "0.5",
    "sacrum_top_z_mm": "found from the image when find_sacrum is on",
}
#: Options that may be any finite number (a position, not a length).
_SIGNED = {"sacrum_top_z_mm"}


@dataclass(frozen=True, slots=True)
class Option:
    """One analysis option, as ``backmice config show`` lists it.

    Attributes
    ----------
    table : str
        ``analysis``, ``analysis.candidates`` or ``analysis.red_flags``.
    name : str
        The key in that table (the dataclass field).
    default : object
        Its default (None: unset, see ``unset``).
    kind : type
        ``bool``, ``float`` or ``str``.
    unit : str
        ``mm``, ``mm²``, ``fraction``, ``0-1``, ... (empty for a switch).
    doc : str
        The first sentence of its description in the docstring.
    unset : str
        What None means, for options that may be unset.
    """

    table: str
    name: str
    default: object
    kind: type
    unit: str
    doc: str
    unset: str = ""


def _docs(cls: type) -> dict[str, str]:
    """The first sentence of each attribute in a numpydoc ``Attributes`` section."""
    text = cls.__doc__ or ""
    section = text.split("Attributes\n", 1)[-1]
    out: dict[str, str] = {}
    names: list[str] = []
    lines: list[str] = []

    def flush() -> None:
        if names:
            sentence = re.split(r"(?<=[a-z)\]])\. ", " ".join(lines).strip(), maxsplit=1)[0]
            sentence = re.sub(r":\w+:`~?([^`]+)`", r"\1", sentence)  # :func:`x` -> x
            sentence = sentence.rstrip(". ").replace("``", "")
            for n in names:
                out[n] = sentence
        lines.clear()

    for line in section.splitlines():
        header = re.match(r"^ {4}([a-z_0-9]+(?:, [a-z_0-9]+)*) : ", line)
        if header:
            flush()
            names = header.group(1).split(", ")
        elif line.startswith("        "):
            lines.append(line.strip())
        elif line.strip() and not line.startswith(" " * 4) and names:
            break
    flush()
    return out


def _unit(name: str, kind: type) -> str:
    if kind is bool:
        return ""
    for suffix, unit in (("_mm3", "mm³"), ("_mm2", "mm²"), ("_mm", "mm")):
        if name.endswith(suffix):
            return unit
    return _UNITS.get(name, "")


def _kind(value: object, name: str) -> type:
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float) or (name in _UNSET and name != "method"):
        return float
    return str


def _tables() -> list[tuple[str, type, object]]:
    """(table, dataclass, its default instance) of the three option tables."""
    from backmice.analysis import AnalysisOptions

    base = AnalysisOptions()
    return [
        ("analysis", AnalysisOptions, base),
        ("analysis.candidates", type(base.candidates), base.candidates),
        ("analysis.red_flags", type(base.red_flags), base.red_flags),
    ]


def option_list() -> list[Option]:
    """Every analysis option with its default, unit and description.

    Returns
    -------
    list of Option
        In the order of the dataclass fields: ``analysis`` first, then
        ``analysis.candidates`` and ``analysis.red_flags``.
    """
    out = []
    for table, cls, default in _tables():
        docs = _docs(cls)
        for f in dataclasses.fields(cls):
            value = getattr(default, f.name)
            if dataclasses.is_dataclass(value):
                continue  # a sub-table
            kind = _kind(value, f.name)
            out.append(
                Option(
                    table=table,
                    name=f.name,
                    default=value,
                    kind=kind,
                    unit=_unit(f.name, kind),
                    doc=docs.get(f.name, ""),
                    unset=_UNSET.get(f.name, ""),
                )
            )
    return out


def _value(option: Option, value: object, where: str | os.PathLike[str] | None) -> object:
    """A value from the file checked against its option (InputError naming the key)."""
    key = f"{option.table}.{option.name}"

    def bad(why: str) -> InputError:
        return InputError(f"{key} = {value!r}: {why}", path=where)

    if option.kind is bool:
        if not isinstance(value, bool):
            raise bad("expected true or false")
        return value
    if option.kind is str:
        from backmice.vocab import Method

        if value not in {m.value for m in Method}:
            raise bad(f"expected one of {', '.join(repr(m.value) for m in Method)}")
        return Method(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad("expected a finite number" + (f" in {option.unit}" if option.unit else ""))
    value = float(value)
    if option.name == "threshold" and not 0.0 < value < 1.0:
        raise bad("must be between 0 and 1 (exclusive)")
    if option.unit == "fraction" and not 0.0 <= value <= 1.0:
        raise bad("must be a fraction from 0 to 1")
    if option.unit.startswith("mm") and option.name not in _SIGNED and value < 0:
        raise bad(f"must be a length of at least 0 {option.unit}")
    if option.unit == "ratio" and value < 0:
        raise bad("must be a ratio of at least 0")
    return value


def options_from_mapping(
    doc: dict, *, where: str | os.PathLike[str] | None = None, base: AnalysisOptions | None = None
):
    """``AnalysisOptions`` from a parsed TOML document (``{"analysis": {...}}``).

    Parameters
    ----------
    doc : dict
        The document: only an ``analysis`` table, with optional ``candidates``
        and ``red_flags`` sub-tables.
    where : path-like, optional
        Named in errors (the file).
    base : AnalysisOptions, optional
        The options the document changes (default: the defaults).

    Returns
    -------
    AnalysisOptions

    Raises
    ------
    InputError
        An unknown table or key (with the nearest known one), a value of the
        wrong type or out of range, or ``min_size_mm`` above ``max_size_mm``.
    """
    from backmice.analysis import AnalysisOptions

    options = base if base is not None else AnalysisOptions()
    known = {(o.table, o.name): o for o in option_list()}
    extra = sorted(set(doc) - {"analysis"})
    if extra:
        raise InputError(
            f"unknown table(s) {', '.join(extra)}: the options live in [analysis], "
            "[analysis.candidates] and [analysis.red_flags] ('backmice config show')",
            path=where,
        )
    analysis = doc.get("analysis", {})
    if not isinstance(analysis, dict):
        raise InputError("[analysis] must be a table", path=where)
    changes: dict[str, dict[str, Any]] = {
        "analysis": {},
        "analysis.candidates": {},
        "analysis.red_flags": {},
    }

    def take(table: str, items: dict) -> None:
        for key, value in items.items():
            if table == "analysis" and key in ("candidates", "red_flags"):
                if not isinstance(value, dict):
                    raise InputError(f"analysis.{key} must be a table", path=where)
                take(f"analysis.{key}", value)
                continue
            option = known.get((table, key))
            if option is None:
                names = [n for t, n in known if t == table]
                near = difflib.get_close_matches(key, names, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise InputError(f"unknown option {table}.{key}{hint}", path=where)
            changes[table][key] = _value(option, value, where)

    take("analysis", analysis)
    candidates = dataclasses.replace(options.candidates, **changes["analysis.candidates"])
    if candidates.min_size_mm > candidates.max_size_mm:
        raise InputError(
            f"analysis.candidates.min_size_mm {candidates.min_size_mm:g} is above max_size_mm "
            f"{candidates.max_size_mm:g}",
            path=where,
        )
    red_flags = dataclasses.replace(options.red_flags, **changes["analysis.red_flags"])
    return dataclasses.replace(
        options, candidates=candidates, red_flags=red_flags, **changes["analysis"]
    )


def load_config(path: str | os.PathLike[str]):
    """The ``AnalysisOptions`` a TOML preset file sets (the defaults for what it leaves out).

    Parameters
    ----------
    path : path-like
        A TOML file (see the module docstring; ``backmice config show`` prints
        one with every option).

    Returns
    -------
    AnalysisOptions

    Raises
    ------
    InputError
        The file is missing, not TOML (the message says the line), or an
        option is unknown or wrong (see :func:`options_from_mapping`).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("no such configuration file", path=path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read the configuration file ({exc})", path=path) from None
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", path=path) from None
    return options_from_mapping(doc, where=path)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return f'"{value}"'


def options_toml(options=None, *, source: str = "the defaults") -> str:
    """Every option as a TOML preset file: its value, unit and description.

    Parameters
    ----------
    options : AnalysisOptions, optional
        The values to print (default: the defaults).
    source : str
        Where the values come from, said in the header.

    Returns
    -------
    str
        A TOML document that :func:`load_config` reads back to ``options``;
        options left unset are commented out, with what unset means.
    """
    from backmice.analysis import AnalysisOptions

    options = options or AnalysisOptions()
    lines = [
        "# backmice analysis options (TOML): give a file like this to --config FILE.",
        f"# Values: {source}. Flags on the command line win over the file.",
    ]
    table = None
    for o in option_list():
        if o.table != table:
            table = o.table
            lines += ["", f"[{table}]"]
        holder = options
        for part in o.table.split(".")[1:]:
            holder = getattr(holder, part)
        value = getattr(holder, o.name)
        default = "unset" if o.default is None else _toml(o.default)
        about = "; ".join(
            p
            for p in (
                o.unit and f"unit: {o.unit}",
                f"default: {default}" + (f" ({o.unset})" if o.unset else ""),
                o.doc,
            )
            if p
        )
        lines += textwrap.wrap(about, width=98, initial_indent="# ", subsequent_indent="#   ")
        if value is None:
            lines.append(f"# {o.name} =")
        else:
            lines.append(f"{o.name} = {_toml(getattr(value, 'value', value))}")
    return "\n".join(lines) + "\n"
