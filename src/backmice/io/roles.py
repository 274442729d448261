"""Give each stack a :class:`~backmice.io.model.Role` from its headers.

The rules, in the order they are tried, are written out for users in
``docs/roles.md``; keep the two in step. In short: SOP class (SEG, SR), then
modality (US), then localizer, Dixon component, fat suppression, and T2/T1
weighting — from ImageType/FrameType first, SeriesDescription/ProtocolName
next, and sequence timing last.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from backmice.io.header import Header
from backmice.io.model import Role

__all__ = ["assign_role"]

_LOCALIZER_TEXT = re.compile(
    r"locali[sz]er|scout|survey|3[\s_-]?pl(ane)?\b|tri[\s_-]?pilot|\bpilot\b|\bloc\b|aahead"
)
_DIXON_CONTEXT = re.compile(
    r"dixon|ideal|\bflex\b|lava[\s_-]?flex|\b[23]pt\b|mdixon|\bq[\s_-]?dixon"
)
_FAT_SUPPRESSED_TEXT = re.compile(
    r"fat[\s_-]?sat|fatsat|fat[\s_-]?supp|\bfs\b|_fs\b|\bfs_|stir|tirm|spair|\bspir\b|\bsfs\b|"
    r"chess|\bfsat\b|water[\s_-]?exc|\bwe\b"
)
_FAT_FRACTION_TEXT = re.compile(r"fat[\s_-]?frac|\bff\b|\bpdff\b|\bfatfrac|fraction")
# Dixon components named in free text. Order matters: "opp" before "in" (as in "in/opp").
_DIXON_TEXT = (
    (Role.DIXON_OUT, re.compile(r"opp|out[\s_-]?(of[\s_-]?)?phase|\bop\b|\boop\b|_op\b")),
    (Role.DIXON_IN, re.compile(r"in[\s_-]?phase|\bip\b|_ip\b|\bin\b|_in\b")),
    (Role.DIXON_WATER, re.compile(r"water|\bw\b|_w\b|\bwat\b")),
    (Role.DIXON_FAT, re.compile(r"\bfat\b|_fat\b|\bf\b|_f\b")),
)
# Dixon components in ImageType/FrameType values (Siemens, GE, Philips, enhanced MR).
_DIXON_TOKENS = {
    "FAT": Role.DIXON_FAT,
    "F": Role.DIXON_FAT,
    "WATER": Role.DIXON_WATER,
    "W": Role.DIXON_WATER,
    "IN_PHASE": Role.DIXON_IN,
    "IN PHASE": Role.DIXON_IN,
    "INPHASE": Role.DIXON_IN,
    "IP": Role.DIXON_IN,
    "OUT_PHASE": Role.DIXON_OUT,
    "OUT PHASE": Role.DIXON_OUT,
    "OPP_PHASE": Role.DIXON_OUT,
    "OUT_OF_PHASE": Role.DIXON_OUT,
    "OPPOSED_PHASE": Role.DIXON_OUT,
    "OP": Role.DIXON_OUT,
}
_T2_TEXT = re.compile(r"t2(?![\s_-]?\*)(w|_|\b|[\s-])|\bt2$")
_T1_TEXT = re.compile(r"t1(w|_|\b|[\s-])|\bt1$")

#: Inversion times (ms) up to which an inversion-recovery sequence is a STIR.
STIR_MAX_TI_MS = 250.0


def _text(*parts: object) -> str:
    return " ".join(str(p) for p in parts if p).lower()


def _dixon_from_type(image_type: Iterable[str]) -> Role | None:
    values = tuple(image_type)
    # Values 1 and 2 are ORIGINAL/DERIVED and PRIMARY/SECONDARY: never a component.
    for value in values[2:]:
        role = _DIXON_TOKENS.get(value.strip().upper())
        if role is not None:
            return role
    return None


def _dixon_from_text(text: str) -> Role | None:
    if not _DIXON_CONTEXT.search(text) and not re.search(r"\bfat\b|\bwater\b", text):
        return None
    if _FAT_FRACTION_TEXT.search(text):
        return None
    for role, pattern in _DIXON_TEXT:
        if pattern.search(text):
            if role is Role.DIXON_FAT and _FAT_SUPPRESSED_TEXT.search(text):
                continue
            return role
    return None


def _is_fat_suppressed(header: Header, text: str) -> bool:
    mr = header.mr
    scan_options = set(mr.get("scan_options") or ())  # type: ignore[arg-type]
    if scan_options & {"FS", "SFS", "FAT", "FATSAT", "SPIR", "SPAIR", "WE", "CHESS"}:
        return True
    if str(mr.get("fat_suppression") or "") in ("FAT", "FAT_AND_WATER", "SILICON_FAT"):
        return True
    ti = mr.get("ti")
    if "IR" in (mr.get("scanning_sequence") or ()) and ti and float(ti) <= STIR_MAX_TI_MS:  # type: ignore[arg-type]
        return True
    return bool(_FAT_SUPPRESSED_TEXT.search(text))


def _weighting(header: Header, text: str) -> Role | None:
    if _T2_TEXT.search(text):
        return Role.T2
    if _T1_TEXT.search(text):
        return Role.T1
    mr = header.mr
    tr, te = mr.get("tr"), mr.get("te")
    if not isinstance(tr, float) or not isinstance(te, float):
        return None
    spin_echo = "SE" in (mr.get("scanning_sequence") or ())  # type: ignore[operator]
    if not spin_echo:
        return None  # gradient echo weighting depends on the flip angle: don't guess
    if tr >= 1500 and te >= 60:
        return Role.T2
    if tr <= 1000 and te <= 30:
        return Role.T1
    return None


def assign_role(header: Header, *, image_type: tuple[str, ...] | None = None) -> Role:
    """The role of a stack whose first file has ``header``.

    Parameters
    ----------
    header : Header
        Header of a file of the stack.
    image_type : tuple of str, optional
        The stack's ImageType or FrameType, when it differs from the file's
        (enhanced multi-frame files hold several).

    Returns
    -------
    Role
    """
    if header.is_seg:
        return Role.SEG
    if header.is_sr:
        return Role.SR
    if header.modality == "US":
        return Role.US
    image_type = header.image_type if image_type is None else image_type
    text = _text(header.description, header.mr.get("protocol_name"), header.mr.get("sequence_name"))
    if "LOCALIZER" in image_type or _LOCALIZER_TEXT.search(text):
        return Role.LOCALIZER
    if header.modality != "MR":
        return Role.OTHER
    dixon = _dixon_from_type(image_type) or _dixon_from_text(text)
    if dixon is not None:
        return dixon
    if _is_fat_suppressed(header, text):
        return Role.FATSAT
    return _weighting(header, text) or Role.OTHER
