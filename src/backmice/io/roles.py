"""Give each stack a :class:`~backmice.io.model.Role` from its headers.

The rules, in the order they are tried, are written out for users in
``docs/roles.md``; keep the two in step. In short: SOP class (SEG, SR), then
modality (US), then localizer, phase images, Dixon component, in/opposed-phase
echo, fat suppression, and T2/T1 weighting — from ImageType/FrameType first,
SeriesDescription/ProtocolName/SequenceName next, and sequence timing last.
A series that holds several echoes is then looked at as a whole
(:func:`echo_roles`): its echoes are told in-phase or opposed-phase from their
EchoTime and the field strength. :func:`is_post_contrast` marks dynamic and
post-contrast series, which the analysis ranks below a pre-contrast T1.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from backmice.io.header import Header
from backmice.io.model import Role
from backmice.vocab import Modality

__all__ = [
    "FAT_WATER_SHIFT_PPM",
    "PHASE_TOLERANCE",
    "assign_role",
    "echo_phase",
    "echo_roles",
    "field_strength_t",
    "is_post_contrast",
]

_LOCALIZER_TEXT = re.compile(
    r"locali[sz]er|scout|survey|3[\s_-]?pl(ane)?\b|tri[\s_-]?pilot|\bpilot\b|\bloc\b|aahead"
)
_DIXON_CONTEXT = re.compile(
    r"dixon|ideal|\bflex\b|lava[\s_-]?flex|\b[23]pt\b|mdixon|\bq[\s_-]?dixon"
)
_FAT_SUPPRESSED_TEXT = re.compile(
    r"fat[\s_-]?sat|fatsat|fat[\s_-]?supp|(?<![a-z0-9])fs(?![a-z0-9])|stir|tirm|spair|\bspir\b|"
    r"\bsfs\b|"
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

# In/opposed-phase echoes named without a Dixon context (Philips "T1DUAL_InPhase",
# GE "Ax DUAL ECHO OUT PHASE", Siemens "t1_fl2d_opp-in"). Opposed before in-phase.
_OPPOSED_TEXT = re.compile(
    r"opp(osed)?[\s_-]?phase|out[\s_-]?(of[\s_-]?)?phase|outphase|\bopp\b|_opp\b|\bopp_"
)
_IN_PHASE_TEXT = re.compile(r"in[\s_-]?phase")
# Names for both echoes of a dual-echo series ("in-opp", "IP/OP"), and for a dual
# echo that does not say which echo it is: the echo time then tells them apart.
_BOTH_ECHOES_TEXT = re.compile(
    r"in[\s_/&-]*(and[\s_-]*)?opp|opp[\s_/&-]*(and[\s_-]*)?in(?![a-z])|"
    r"(?<![a-z])ip[\s_/&-]*op(?![a-z])|(?<![a-z])op[\s_/&-]*ip(?![a-z])|"
    r"in[\s_/&-]*out[\s_-]?(of[\s_-]?)?phase"
)
_DUAL_ECHO_TEXT = re.compile(r"t1[\s_-]?dual|dual[\s_-]?echo|\bdual\b|chem(ical)?[\s_-]?shift")
# T1-weighted sequences named by vendors (gradient echo and turbo/fast spin echo):
# Siemens VIBE, FLASH (SequenceName *fl2d*, *fl3d*, *fldyn3d*), MPRAGE (*tfl3d*);
# Philips T1-FFE, THRIVE; GE LAVA, SPGR, FSPGR, FGRE, BRAVO; Canon QUICK 3D, FAME.
_T1_SEQUENCE_TEXT = re.compile(
    r"vibe|flash|\*?fl[23]d|\*?fldyn|\btfl|mprage|mp[\s_-]?rage|t1[\s_-]?ffe|\bthrive|"
    r"\blava\b|lava[\s_-]|spgr|\bfgre|efgre|\bbravo|quick[\s_-]?3d|\bfame\b"
)
# Gradient echo that is not T1-weighted: balanced SSFP, T2*, susceptibility, angiography.
_NOT_T1_GRE_TEXT = re.compile(
    r"tru[\s_-]?fi|\*?tfi\d|fiesta|b[\s_-]?ffe|b[\s_-]?tfe|balanced|ssfp|\bfisp|psif|"
    r"t2\s?\*|t2[\s_-]?star|medic|\bmerge\b|hemo|\bswi|swan|\btof\b|_tof|angio|\bmra\b"
)
_SPIN_ECHO_TEXT = re.compile(r"\btse|_tse|\bfse|_fse|\bse\b|_se\b|turbo[\s_-]?spin|fast[\s_-]?spin")
# Dynamic (time-resolved) and post-contrast series.
_POST_CONTRAST_TEXT = re.compile(
    r"(?<![a-z])post(?![a-z])|post[\s_-]?(gd|c|km|contrast)\b|\+\s?c\b|\+\s?gd|\bgd\b|_gd\b|"
    r"gado|contrast|"
    r"\bkm\b|_km\b|dyn|twist|tricks|disco|\bdce|_dce|arterial|portal|venous|delay|\bsub\b|"
    r"subtr|perf|\b4d\b"
)
_PRE_CONTRAST_TEXT = re.compile(r"\bpre\b|_pre\b|\bpre_|native|\bnativ")
# Phase, real and imaginary images (ImageType values 3 and later): never analysed.
_NOT_MAGNITUDE_TOKENS = {
    "P",
    "PHASE",
    "PHASE MAP",
    "PHASE_MAP",
    "R",
    "REAL",
    "I",
    "IMAGINARY",
    "P_FFE",
    "R_FFE",
    "I_FFE",
    "P_SE",
    "R_SE",
    "I_SE",
    "P_IR",
    "R_IR",
    "I_IR",
}

#: Inversion times (ms) up to which an inversion-recovery sequence is a STIR.
STIR_MAX_TI_MS = 250.0
#: Chemical shift between the main fat peak and water, ppm.
FAT_WATER_SHIFT_PPM = 3.5
#: Gyromagnetic ratio of 1H over 2π, MHz/T.
PROTON_MHZ_PER_T = 42.577
#: How far (in cycles of the fat-water beat) an echo time may be from an in-phase or
#: opposed-phase time and still count as one: real protocols round the times
#: (4.6 ms for 4.47 ms at 1.5 T; 2.5 ms for 2.24 ms at 3 T) and use 3.4 ppm.
PHASE_TOLERANCE = 0.125
#: Echo times beyond this many cycles of the fat-water beat are not called in- or
#: opposed-phase (a multi-echo T2* series passes through both many times).
MAX_PHASE_CYCLES = 2.25
#: Gradient echo counts as T1-weighted from its timing when TE, TR and flip angle
#: are within these limits (ms, ms, degrees): short TE (no T2*), short TR and a
#: flip angle well above a proton-density one.
T1_GRE_MAX_TE_MS = 6.0
T1_GRE_MAX_TR_MS = 400.0
T1_GRE_MIN_FLIP_DEG = 10.0


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


def _is_not_magnitude(image_type: Iterable[str]) -> bool:
    return any(v.strip().upper() in _NOT_MAGNITUDE_TOKENS for v in tuple(image_type)[2:])


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


def field_strength_t(header: Header) -> float | None:
    """MagneticFieldStrength in tesla (old files in gauss are converted), or None."""
    b0 = header.mr.get("field_strength")
    if not isinstance(b0, float) or b0 <= 0:
        return None
    return b0 / 10_000.0 if b0 > 100 else b0  # 15000 (gauss) -> 1.5 T


def echo_phase(te_ms: float | None, field_t: float | None) -> Role | None:
    """In-phase or opposed-phase, from the echo time and the field strength.

    Fat and water precess apart at ``3.5 ppm × 42.58 MHz/T × B0`` (223 Hz at
    1.5 T): they are in phase every ``1 / that`` (4.47 ms at 1.5 T, 2.24 ms at
    3 T) and opposed half-way between (2.24 and 1.12 ms).

    Parameters
    ----------
    te_ms : float or None
        EchoTime, ms.
    field_t : float or None
        Field strength, T.

    Returns
    -------
    Role or None
        ``dixon_in`` or ``dixon_out`` when TE is within :data:`PHASE_TOLERANCE`
        of a cycle of one of them (and within :data:`MAX_PHASE_CYCLES`); None
        otherwise or when either value is unknown.
    """
    if not te_ms or not field_t or te_ms <= 0 or field_t <= 0:
        return None
    period_ms = 1e3 / (FAT_WATER_SHIFT_PPM * PROTON_MHZ_PER_T * field_t)
    cycles = te_ms / period_ms
    if cycles > MAX_PHASE_CYCLES or cycles < 0.5 - PHASE_TOLERANCE:
        return None
    offset = cycles - np.floor(cycles)  # 0: in phase, 0.5: opposed
    if min(offset, 1.0 - offset) <= PHASE_TOLERANCE:
        return Role.DIXON_IN
    if abs(offset - 0.5) <= PHASE_TOLERANCE:
        return Role.DIXON_OUT
    return None


def _in_opposed_from_text(text: str) -> Role | None:
    """``dixon_out`` / ``dixon_in`` when the name says which echo, else None."""
    if _BOTH_ECHOES_TEXT.search(text):
        return None
    opposed, in_phase = _OPPOSED_TEXT.search(text), _IN_PHASE_TEXT.search(text)
    if opposed and not in_phase:
        return Role.DIXON_OUT
    if in_phase and not opposed:
        return Role.DIXON_IN
    return None


def _names_dual_echo(text: str) -> bool:
    """The name is that of a dual-echo (in/opposed-phase) series, whichever echo."""
    return bool(
        _BOTH_ECHOES_TEXT.search(text)
        or _DUAL_ECHO_TEXT.search(text)
        or (_OPPOSED_TEXT.search(text) and _IN_PHASE_TEXT.search(text))
    )


def _is_fat_suppressed(header: Header, text: str) -> bool:
    mr = header.mr
    scan_options = set(mr.get("scan_options") or ())
    if scan_options & {"FS", "SFS", "FAT", "FATSAT", "SPIR", "SPAIR", "WE", "CHESS"}:
        return True
    if str(mr.get("fat_suppression") or "") in ("FAT", "FAT_AND_WATER", "SILICON_FAT"):
        return True
    ti = mr.get("ti")
    if "IR" in (mr.get("scanning_sequence") or ()) and ti and float(ti) <= STIR_MAX_TI_MS:
        return True
    return bool(_FAT_SUPPRESSED_TEXT.search(text))


def _is_t1_gradient_echo(header: Header, text: str, te: float | None) -> bool:
    """A T1-weighted gradient echo, from its name or its timing."""
    if _NOT_T1_GRE_TEXT.search(text):
        return False
    mr = header.mr
    if _T1_SEQUENCE_TEXT.search(text):
        return te is None or te <= 2 * T1_GRE_MAX_TE_MS  # a FLASH with TE 20 ms is T2*
    sequence = mr.get("scanning_sequence") or ()
    gradient = "GR" in sequence and "EP" not in sequence
    tr, flip = mr.get("tr"), mr.get("flip_angle")
    if not gradient or te is None or tr is None or flip is None:
        return False  # weighting depends on the flip angle: don't guess without it
    return te <= T1_GRE_MAX_TE_MS and tr <= T1_GRE_MAX_TR_MS and flip >= T1_GRE_MIN_FLIP_DEG


def _weighting(header: Header, text: str, te: float | None) -> Role | None:
    if _T2_TEXT.search(text):
        return Role.T2
    if _T1_TEXT.search(text):
        return Role.T1
    if _is_t1_gradient_echo(header, text, te):
        return Role.T1
    mr = header.mr
    tr = mr.get("tr")
    if not isinstance(tr, float) or not isinstance(te, float):
        return None
    spin_echo = "SE" in (mr.get("scanning_sequence") or ()) or (
        not mr.get("scanning_sequence") and bool(_SPIN_ECHO_TEXT.search(text))
    )
    if not spin_echo:
        return None
    if tr >= 1500 and te >= 60:
        return Role.T2
    if tr <= 1000 and te <= 30:
        return Role.T1
    return None


def _names(header: Header) -> str:
    return _text(header.description, header.mr.get("protocol_name"), header.mr.get("sequence_name"))


def assign_role(
    header: Header,
    *,
    image_type: tuple[str, ...] | None = None,
    echo_time_ms: float | None = None,
) -> Role:
    """The role of a stack whose first file has ``header``.

    Parameters
    ----------
    header : Header
        Header of a file of the stack.
    image_type : tuple of str, optional
        The stack's ImageType or FrameType, when it differs from the file's
        (enhanced multi-frame files hold several).
    echo_time_ms : float, optional
        The stack's EchoTime when it differs from the file's (enhanced files).

    Returns
    -------
    Role
    """
    if header.is_seg:
        return Role.SEG
    if header.is_sr:
        return Role.SR
    if header.modality == Modality.US:
        return Role.US
    image_type = header.image_type if image_type is None else image_type
    text = _names(header)
    if "LOCALIZER" in image_type or _LOCALIZER_TEXT.search(text):
        return Role.LOCALIZER
    if header.modality != Modality.MR:
        return Role.OTHER
    if _is_not_magnitude(image_type):
        return Role.OTHER
    dixon = _dixon_from_type(image_type) or _dixon_from_text(text)
    if dixon is not None:
        return dixon
    te = echo_time_ms if echo_time_ms is not None else header.mr.get("te")
    te = te if isinstance(te, float) else None
    in_opposed = _in_opposed_from_text(text)
    if in_opposed is None and _names_dual_echo(text) and not _is_fat_suppressed(header, text):
        in_opposed = echo_phase(te, field_strength_t(header))
    if in_opposed is not None:
        return in_opposed
    if _is_fat_suppressed(header, text):
        return Role.FATSAT
    return _weighting(header, text, te) or Role.OTHER


def echo_roles(
    roles: Sequence[Role], echo_times_ms: Sequence[float | None], header: Header
) -> list[Role]:
    """Tell the echoes of one series apart as in-phase and opposed-phase.

    A series that holds several echoes (Philips T1 dual echo writes both under
    one SeriesInstanceUID, and may name both ``T1DUAL_InPhase``) is split into
    one stack per echo, each given a role by :func:`assign_role`. When those
    roles do not already name one in-phase and one opposed-phase echo each,
    the echo times decide (:func:`echo_phase`, with the series' field strength;
    without it, two echoes whose times differ by a factor of 1.7-2.3 are taken
    as opposed (the shorter) and in-phase (the longer), which holds for the
    first pair at any field). Names that already tell the echoes apart win.

    Parameters
    ----------
    roles : sequence of Role
        The role of each echo's stack, from :func:`assign_role`.
    echo_times_ms : sequence of float or None
        EchoTime of each stack, ms.
    header : Header
        A header of the series (field strength, sequence).

    Returns
    -------
    list of Role
        The roles, changed only for echoes whose role is ``dixon_in``,
        ``dixon_out``, ``t1`` or ``other``, and only when the echo times give
        at least one in-phase and one opposed-phase echo; a spin-echo series
        (a PD/T2 dual echo) is never changed.
    """
    roles = list(roles)
    changeable = {Role.DIXON_IN, Role.DIXON_OUT, Role.T1, Role.OTHER}
    tes = list(echo_times_ms)
    if len(roles) < 2 or len({te for te in tes if te}) < 2:
        return roles
    if "SE" in (header.mr.get("scanning_sequence") or ()):
        return roles
    named = [r for r in roles if r in (Role.DIXON_IN, Role.DIXON_OUT)]
    if named.count(Role.DIXON_IN) == 1 and named.count(Role.DIXON_OUT) == 1:
        return roles  # the names tell them apart
    b0 = field_strength_t(header)
    phases = [echo_phase(te, b0) for te in tes]
    te_a, te_b = (tes[0], tes[1]) if len(tes) == 2 else (None, None)
    if b0 is None and len(roles) == 2 and te_a and te_b:
        short, long_ = (0, 1) if te_a <= te_b else (1, 0)
        if 1.7 <= max(te_a, te_b) / min(te_a, te_b) <= 2.3:
            phases = [None, None]
            phases[short], phases[long_] = Role.DIXON_OUT, Role.DIXON_IN
    if Role.DIXON_IN not in phases or Role.DIXON_OUT not in phases:
        return roles
    return [
        p if p is not None and r in changeable else r for r, p in zip(roles, phases, strict=True)
    ]


def is_post_contrast(header: Header) -> bool:
    """A dynamic (time-resolved) or post-contrast series.

    True when ContrastBolusAgent is filled in, NumberOfTemporalPositions is
    above 1, or the names say so (*post*, *+C*, *Gd*, *KM*, *dyn*, *TWIST*,
    *TRICKS*, *DISCO*, *DCE*, *arterial*, *portal*, *venous*, *delayed*,
    *sub*(traction), *perf*, *4D*; Siemens SequenceName ``*fldyn3d*``), unless
    they also say *pre* or *native* and no agent is recorded.

    Parameters
    ----------
    header : Header

    Returns
    -------
    bool
    """
    mr = header.mr
    agent = str(mr.get("contrast_agent") or "").strip().lower()
    if agent and agent not in ("none", "no", "n", "-", "0"):
        return True
    text = _names(header)
    if _PRE_CONTRAST_TEXT.search(text):
        return False
    positions = mr.get("temporal_positions")
    if isinstance(positions, int) and positions > 1:
        return True
    return bool(_POST_CONTRAST_TEXT.search(text))
