"""The MRI analysis, stage by stage: :func:`analyze` a study, or :func:`analyze_volume`.

1. choose the stack(s) by role: a Dixon fat + water pair, a T1, or the in-phase and
   opposed-phase echoes of a dual-echo T1 (:func:`choose_stacks`, :func:`choose`);
2. body mask and depth below the skin;
3. fat signal: N4-corrected T1 fat score, the Dixon fat fraction, or the two-point
   Dixon fat fraction of the in/opposed-phase echoes;
4. subcutaneous fat, the fascia and the signed distance to it;
5. candidate nodules;
6. every SPEC measurement of each.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from backmice._names import study_name
from backmice.errors import InputError
from backmice.io import Role, Stack, Study, Volume, load, open_study
from backmice.io.nifti import nifti_series
from backmice.measure.nodules import RedFlagRules, SiteMaps, measure_nodules
from backmice.segment import (
    Body,
    CandidateOptions,
    Fascia,
    FatSignal,
    body_mask,
    fascia_distance,
    fat_signal_dixon,
    fat_signal_t1,
    find_candidates,
    n4_correct,
    slices_without_fat,
    subcutaneous_fat,
)
from backmice.segment.body import posterior_half
from backmice.segment.fat import fat_signal_two_point
from backmice.segment.level import sacrum_top_z_mm
from backmice.vocab import Method, Modality

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

__all__ = [
    "Analysis",
    "AnalysisOptions",
    "StackChoice",
    "analyze",
    "analyze_choice",
    "analyze_volume",
    "choose",
    "choose_stacks",
    "midline_x_mm",
    "site_maps",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[str, float], None]

#: Ridge strength (Sato's filter on the fat fraction) of a thin dark line that
#: separates fat even where its pixels pass the fat threshold: on Dixon images a
#: capsule thinner than a pixel leaves its pixels partly fat (fat fraction
#: 0.7-0.9 in a layer of 0.94); 0.04 is above the 99th percentile of the
#: filter in plain subcutaneous fat on the phantoms.
#: On T1 the capsule is resolved and looking for fainter lines turns septa near
#: the fascia into pockets (false candidates), so it is used for Dixon only.
VALLEY_DEPTH = {Method.DIXON: 0.04, Method.INOUT: 0.04, Method.T1: None}


#: In-plane pixel sizes (mm) the analysis of a lower back can work on: its filters
#: are sized in mm, and at 15 mm per pixel the analysis of 16 slices took minutes,
#: at 1000 mm it did not finish.
ANALYSIS_PIXEL_MM = (0.05, 5.0)
#: Distances between slices (mm) the analysis can work on (0.02 mm did not finish
#: in minutes; 1e5 mm exhausted the memory).
ANALYSIS_SLICE_MM = (0.3, 30.0)


#: Subcutaneous fat found deeper than this below the fascia (mm) is taken out of
#: the layer: it is a herniation that joined it, not the layer.
SAT_DEEP_MM = 1.5


def _thin_dark_lines(score: np.ndarray, *, depth: float) -> np.ndarray:
    """Pixels on thin dark lines (capsules, septa), slice by slice.

    A Hessian ridge filter (Sato's, for dark ridges, at the scale of a pixel)
    integrates along a line, so a capsule that dims the fat fraction by only a
    few noise levels per pixel still stands out.
    """
    from skimage.filters import sato

    out = np.zeros(score.shape, dtype=bool)
    for k in range(score.shape[0]):
        out[k] = sato(score[k], sigmas=[0.8], black_ridges=True, mode="reflect") > depth
    return out


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    """Options of the analysis.

    Attributes
    ----------
    method : Method or None
        ``t1``, ``dixon`` or ``inout``; None chooses from the roles found
        (:func:`choose`: Dixon when a fat and water pair of the same geometry is
        there, then a pre-contrast T1, then an in/opposed-phase pair).
    threshold : float or None
        Fat threshold on the fat score (T1) or fat fraction (Dixon, in/opposed
        phase); None: 0.5.
    n4 : bool
        Correct the T1 bias field first.
    candidates : CandidateOptions
        Size limits and region of interest.
    red_flags : RedFlagRules
        When red flags are raised.
    sacrum_top_z_mm : float or None
        LPS z (mm) of the top of the sacrum, when the reader knows it: nodules
        below it are suggested as lumbosacral herniations. None: unknown
        (suggested lumbar), unless ``find_sacrum`` finds it.
    find_sacrum : bool
        Look for the top of the sacrum when it is not given
        (:func:`backmice.segment.level.sacrum_top_z_mm`: the sacral alae beside
        the midline, in LPS, so any slice orientation). When the answer is not
        clear it is None (level unknown, suggested lumbar), never a guess. On the
        phantoms: within a slice in 129 of 129 studies (``docs/analysis.md``);
        not yet checked on real studies with L5 transverse processes or
        transitional vertebrae.
    """

    method: Method | None = None
    threshold: float | None = None
    n4: bool = True
    candidates: CandidateOptions = field(default_factory=CandidateOptions)
    red_flags: RedFlagRules = field(default_factory=RedFlagRules)
    sacrum_top_z_mm: float | None = None
    find_sacrum: bool = True


@dataclass(slots=True)
class Analysis:
    """Everything the analysis found in one study.

    Attributes
    ----------
    study : str
        The study's name (folder name, or the path given).
    method : Method
    stacks : tuple of Stack
        The stacks used (T1; Dixon fat, water; or in-phase, opposed-phase).
    volume : Volume
        The image analysed (T1, Dixon fat, or the in-phase echo); its grid is
        the grid of every map.
    fat : FatSignal
    body : Body
    subcutaneous : ndarray of bool
    fascia : Fascia
    labels : ndarray of uint32, shape (slice, row, col)
        Nodule labels; the label is the ``nodule_id``.
    nodules : list of dict
        One row of SPEC columns per nodule.
    timings : dict of str to float
        Seconds per stage.
    warnings : list of str
    sacrum_top_z_mm : float or None
        LPS z of the top of the sacrum (:func:`backmice.segment.level.sacrum_top_z_mm`),
        None when it could not be told.
    red_flag_rules : RedFlagRules
        The rules its red flags were raised by (``options.red_flags``): whoever
        re-measures a nodule (the editor, the store) uses them too.
    """

    study: str
    method: Method
    stacks: tuple[Stack, ...]
    volume: Volume
    fat: FatSignal
    body: Body
    subcutaneous: np.ndarray
    fascia: Fascia
    labels: np.ndarray
    nodules: list[dict]
    timings: dict[str, float]
    warnings: list[str] = field(default_factory=list)
    sacrum_top_z_mm: float | None = None
    red_flag_rules: RedFlagRules = field(default_factory=RedFlagRules)

    def to_dataframe(self) -> pd.DataFrame:
        """The nodules as a pandas DataFrame: what ``nodules.csv`` holds, typed.

        Returns
        -------
        pandas.DataFrame
            One row per nodule, the SPEC columns in order (``backmice.vocab.COLUMNS``);
            lengths in mm (px where ``units`` says so), volumes in mm³.
        """
        from backmice.notebook import rows_frame

        return rows_frame(self.nodules)

    def qc_figure(self) -> Figure:
        """The QC picture (``qc.png``) as a matplotlib Figure, with the patient directions.

        Returns
        -------
        matplotlib.figure.Figure
            See :func:`backmice.report.qc.draw_qc`.
        """
        from backmice.report.qc import draw_qc

        return draw_qc(self)

    def _repr_html_(self) -> str:
        """The notebook display: the nodule table and the QC picture."""
        from backmice.notebook import analysis_html

        return analysis_html(self)


def _same_grid(a: Stack, b: Stack) -> bool:
    return a.shape == b.shape and np.allclose(a.affine, b.affine, atol=1e-3)


def _rank(stack: Stack) -> tuple:
    """Preference among stacks of one role: axial, more slices, calibrated, lower series."""
    return (
        stack.orientation != "axial",
        not stack.calibrated,
        -stack.shape[0],
        stack.series_number if stack.series_number is not None else 1 << 31,
    )


@dataclass(frozen=True, slots=True)
class StackChoice:
    """What :func:`choose` picked, and why.

    Attributes
    ----------
    method : Method
    stacks : tuple of Stack
        ``(t1,)``, ``(fat, water)`` or ``(in_phase, opposed)``.
    notes : tuple of str
        What the user should be told about the choice (which echo, which
        method, what was passed over); the analysis adds them to its warnings.
    """

    method: Method
    stacks: tuple[Stack, ...]
    notes: tuple[str, ...] = ()


def _echo_label(stack: Stack) -> str:
    parts = [] if stack.echo_number is None else [f"echo {stack.echo_number}"]
    if stack.echo_time_ms is not None:
        parts.append(f"TE {stack.echo_time_ms:g} ms")
    return ", ".join(parts) or stack.description


def _echo_index(stack: Stack, stacks: list[Stack]) -> int | None:
    """The echo number a user names a stack by: EchoNumbers, else its place by TE in its series."""
    if stack.echo_number is not None:
        return stack.echo_number
    times = sorted(
        {s.echo_time_ms for s in stacks if s.series_uid == stack.series_uid and s.echo_time_ms}
    )
    return times.index(stack.echo_time_ms) + 1 if stack.echo_time_ms in times else None


def _in_opposed_pairs(stacks: list[Stack]) -> list[tuple[Stack, Stack]]:
    """In-phase and opposed-phase stacks of the same grid, best first (same series first)."""
    ins = sorted((s for s in stacks if s.role is Role.DIXON_IN), key=_rank)
    outs = [s for s in stacks if s.role is Role.DIXON_OUT]
    pairs = [(i, o) for i in ins for o in outs if _same_grid(i, o)]
    return sorted(pairs, key=lambda p: (p[0].series_uid != p[1].series_uid, _rank(p[0])))


def choose(
    study: Study,
    *,
    method: Method | str | None = None,
    series_uid: str | None = None,
    echo: int | None = None,
) -> StackChoice:
    """Pick what to analyse, and say why.

    In order, unless ``method`` says otherwise: a Dixon fat + water pair of
    the same grid (``dixon``); a pre-contrast T1 stack (``t1``); an in-phase
    and an opposed-phase echo of the same grid (``inout``: the two-point Dixon
    fat fraction, :func:`~backmice.segment.fat.fat_signal_two_point`); an
    in-phase echo alone, analysed as the fat-bright image (``t1``); a dynamic
    or post-contrast T1 (``t1``). A series or echo named explicitly is
    analysed as fat-bright whatever its role. Among stacks of one role:
    axial, calibrated, more slices, lower series number first.

    Parameters
    ----------
    study : Study
    method : Method or str, optional
        Force ``t1``, ``dixon`` or ``inout``. ``t1`` on a dual-echo study
        takes the in-phase echo.
    series_uid : str, optional
        Only consider stacks of this series (for NIfTI: the file, by its path
        or name).
    echo : int, optional
        Only consider this echo: its EchoNumbers (``backmice info`` shows it
        as ``echo N``), or its place by echo time in its series when the files
        have no EchoNumbers.

    Returns
    -------
    StackChoice

    Raises
    ------
    InputError
        No usable stack; the message says what was found.
    """
    method = None if method is None else Method(method)
    stacks = [s for s in study.stacks if s.role.is_image and s.modality == Modality.MR]
    if series_uid:  # a NIfTI file may be named by its path or name
        series_uid = nifti_series(study.stacks, series_uid)
    if series_uid:
        stacks = [s for s in stacks if s.series_uid == series_uid]
        if not stacks:
            raise InputError(f"no MR image stack with series UID {series_uid}", path=study.path)
    if echo is not None:
        every = stacks
        stacks = [s for s in every if _echo_index(s, every) == echo]
        if not stacks:
            found = sorted({str(i) for s in every if (i := _echo_index(s, every)) is not None})
            raise InputError(
                f"no echo {echo}"
                + (f" in series {series_uid}" if series_uid else "")
                + (f"; echoes found: {', '.join(found)}" if found else "; no echo numbers found"),
                path=study.path,
            )
    fats = sorted((s for s in stacks if s.role is Role.DIXON_FAT), key=_rank)
    waters = [s for s in stacks if s.role is Role.DIXON_WATER]
    pairs = [(f, w) for f in fats for w in waters if _same_grid(f, w)]
    if method in (None, Method.DIXON) and pairs:
        return StackChoice(Method.DIXON, pairs[0])
    if method is Method.DIXON:
        raise InputError(
            "Dixon analysis needs a fat and a water stack of the same geometry; found "
            + _found(study),
            path=study.path,
        )
    t1 = sorted((s for s in stacks if s.role is Role.T1), key=_rank)
    pre = [s for s in t1 if not s.post_contrast]
    post = [s for s in t1 if s.post_contrast]
    in_out = _in_opposed_pairs(stacks)
    if (method is Method.INOUT or (method is None and not pre)) and in_out:
        ip, op = in_out[0]
        return StackChoice(
            Method.INOUT,
            (ip, op),
            (
                f"in/opposed phase: fat fraction from the two-point Dixon estimate of the "
                f"in-phase ({_echo_label(ip)}) and opposed-phase ({_echo_label(op)}) echoes, "
                "fat-dominant where the in-phase image is fat-bright (docs/roles.md)",
            ),
        )
    if method is Method.INOUT:
        raise InputError(
            "in/opposed-phase analysis needs an in-phase and an opposed-phase echo of the same "
            "geometry; found " + _found(study),
            path=study.path,
        )
    if pre:
        return StackChoice(Method.T1, (pre[0],))
    ins = sorted((s for s in stacks if s.role is Role.DIXON_IN), key=_rank)
    if ins:
        ip = ins[0]
        outs = [s for s in stacks if s.role is Role.DIXON_OUT]
        if in_out:
            why = "as asked (--method t1)"
        elif outs:
            why = (
                "its opposed-phase echo is on another grid ("
                + "; ".join(f"{'x'.join(map(str, s.shape))} '{s.description}'" for s in outs)
                + f" vs {'x'.join(map(str, ip.shape))}), so no two-point fat fraction"
            )
        else:
            why = "there is no opposed-phase echo, so no two-point fat fraction"
        return StackChoice(
            Method.T1,
            (ip,),
            (
                f"the in-phase echo ({_echo_label(ip)}, series {ip.series_uid}) is analysed as "
                f"the T1 (fat-bright) image: {why}",
            ),
        )
    if post:
        return StackChoice(
            Method.T1,
            (post[0],),
            (
                f"the only T1 stack is dynamic or post-contrast ('{post[0].description}'): "
                "enhancing tissue can look like fat",
            ),
        )
    if series_uid or echo is not None:
        # A series named explicitly is taken as fat-bright whatever its role.
        named = sorted(
            (s for s in stacks if s.role is not Role.LOCALIZER),
            key=lambda s: (s.role is Role.DIXON_OUT, _rank(s)),
        )
        if named:
            caveat = (
                ": an opposed-phase echo darkens every voxel where fat and water mix"
                if named[0].role is Role.DIXON_OUT
                else ""
            )
            return StackChoice(
                Method.T1,
                (named[0],),
                (
                    f"'{named[0].description}' (role {named[0].role}) is analysed as the T1 "
                    f"(fat-bright) image, as asked{caveat}",
                ),
            )
    raise InputError(
        "no T1 stack and no Dixon fat + water pair (nor an in/opposed-phase echo); found "
        + _found(study),
        path=study.path,
    )


def choose_stacks(
    study: Study,
    *,
    method: Method | str | None = None,
    series_uid: str | None = None,
    echo: int | None = None,
) -> tuple[Method, list[Stack]]:
    """Pick what to analyse: a Dixon fat + water pair, a T1 stack, or an in/opposed pair.

    :func:`choose` without the notes.

    Parameters
    ----------
    study : Study
    method : Method or str, optional
        Force ``t1``, ``dixon`` or ``inout``.
    series_uid : str, optional
        Only consider stacks of this series.
    echo : int, optional
        Only consider this echo (see :func:`choose`).

    Returns
    -------
    method : Method
    stacks : list of Stack
        ``[t1]``, ``[fat, water]`` or ``[in_phase, opposed]``.

    Raises
    ------
    InputError
        No usable stack; the message says what was found.
    """
    choice = choose(study, method=method, series_uid=series_uid, echo=echo)
    return choice.method, list(choice.stacks)


def _found(study: Study) -> str:
    if not study.stacks:
        if study.skipped:  # the first reason: often the only file, and its problem
            first = study.skipped[0]
            return (
                f"no images ({len(study.skipped)} file(s) skipped; {Path(first.path).name}: "
                f"{first.reason})"
            )
        return "no images"
    parts = [
        f"{s.role} ({s.modality}, {s.description!r}, {'x'.join(map(str, s.shape))})"
        for s in study.stacks
    ]
    return ", ".join(parts)


def _grid(volume: Volume) -> tuple[np.ndarray, tuple[float, float, float], bool]:
    """Affine and spacing to compute on (pixels when uncalibrated)."""
    slice_mm, row_mm, col_mm = volume.spacing_mm
    if volume.calibrated and row_mm is not None and col_mm is not None:
        if slice_mm is None:  # a single slice: its normal step is 1 mm in the affine
            slice_mm = float(np.linalg.norm(volume.affine[:3, 0]))
        spacing = (float(slice_mm), float(row_mm), float(col_mm))
        return volume.affine, spacing, True
    return np.diag([1.0, 1.0, 1.0, 1.0]), (1.0, 1.0, 1.0), False


def _check_spacing(image: Volume, spacing: tuple[float, float, float]) -> None:
    """Refuse a calibrated grid whose spacing the analysis cannot work on (InputError)."""
    low, high = ANALYSIS_PIXEL_MM
    lo_s, hi_s = ANALYSIS_SLICE_MM
    series = f"series {image.description!r} ({image.series_uid})"
    if not all(low <= s <= high for s in spacing[1:]):
        raise InputError(
            f"{series} has pixels of {spacing[1]:g} x {spacing[2]:g} mm: the analysis works on "
            f"{low:g}-{high:g} mm (check PixelSpacing, or choose another series with --series)"
        )
    if image.array.shape[0] > 1 and not lo_s <= spacing[0] <= hi_s:
        raise InputError(
            f"{series} has slices {spacing[0]:g} mm apart: the analysis works on "
            f"{lo_s:g}-{hi_s:g} mm (check ImagePositionPatient, or choose another series with "
            "--series)"
        )


def fat_stage(
    array: np.ndarray,
    *,
    spacing_mm: tuple[float, float, float],
    water: np.ndarray | None = None,
    opposed: np.ndarray | None = None,
    n4: bool = True,
    threshold: float | None = None,
    stage: Callable[[str, float], None] | None = None,
    lap: Callable[[str], None] | None = None,
) -> tuple[Body, FatSignal]:
    """The analysis' first stages: the body mask, then the fat signal it thresholds.

    The Dixon fat fraction with ``water``; the two-point fat fraction with
    ``opposed`` (fat or water dominance from the in-phase image's T1 fat score,
    after N4); else the T1 fat score after N4. One owner for the analysis
    (:func:`analyze_volume`) and the threshold preview
    (:func:`backmice.preview.fat_score`).

    Parameters
    ----------
    array : ndarray of float32, shape (slice, row, col)
        The T1, in-phase or Dixon fat image.
    spacing_mm : (float, float, float)
        Spacing to compute on, mm (pixels when uncalibrated).
    water, opposed : ndarray, optional
        The Dixon water image or the opposed-phase echo, on ``array``'s grid.
    n4 : bool
        Correct the bias field before the T1 fat score.
    threshold : float, optional
        The fat threshold (None: the default).
    stage, lap : callable, optional
        Called with each stage's name (and its share of the whole analysis)
        as it starts, and with its timing key as it ends.

    Returns
    -------
    body : Body
    fat : FatSignal

    Raises
    ------
    InputError
        ``water`` or ``opposed`` is not on ``array``'s grid.
    """

    def start(name: str, fraction: float) -> None:
        if stage is not None:
            stage(name, fraction)

    def end(name: str) -> None:
        if lap is not None:
            lap(name)

    if water is not None and water.shape != array.shape:
        raise InputError("the Dixon fat and water images differ in shape")
    if opposed is not None and opposed.shape != array.shape:
        raise InputError("the in-phase and opposed-phase echoes differ in shape")
    start("body", 0.05)
    body = body_mask(array if water is None else array + water, spacing_mm=spacing_mm)
    end("body")
    if water is not None:
        start("fat fraction", 0.15)
        fat = fat_signal_dixon(array, water, body.mask, threshold=threshold)
        end("fat")
        return body, fat
    start("bias correction", 0.15)
    corrected = n4_correct(array, body.mask, spacing_mm=spacing_mm)[0] if n4 else array
    end("n4")
    if opposed is not None:
        start("fat fraction", 0.45)
        # Which of fat and water dominates comes from the in-phase image's T1 fat score.
        t1 = fat_signal_t1(corrected, body.mask, body.depth_mm, spacing_mm=spacing_mm)
        fat = fat_signal_two_point(array, opposed, body.mask, t1.score, threshold=threshold)
    else:
        start("fat score", 0.45)
        fat = fat_signal_t1(
            corrected, body.mask, body.depth_mm, threshold=threshold, spacing_mm=spacing_mm
        )
    end("fat")
    return body, fat


def analyze_volume(
    image: Volume,
    *,
    water: Volume | None = None,
    opposed: Volume | None = None,
    options: AnalysisOptions | None = None,
    study: str = "",
    stacks: tuple[Stack, ...] = (),
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Run the analysis on a loaded volume (a T1, or a Dixon fat image with its water).

    Parameters
    ----------
    image : Volume
        T1 (fat bright), the Dixon fat image, or the in-phase echo.
    water : Volume, optional
        The Dixon water image (same grid); selects the Dixon method.
    opposed : Volume, optional
        The opposed-phase echo (same grid as the in-phase ``image``); selects
        the two-point Dixon method (``inout``).
    options : AnalysisOptions, optional
    study : str
        Name written into the rows.
    stacks : tuple of Stack
        The stacks the volumes came from (for the record).
    progress : callable, optional
        Called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis
    """
    options = options or AnalysisOptions()
    if water is not None and opposed is not None:
        raise InputError("give a Dixon water image or an opposed-phase echo, not both")
    method = (
        Method.DIXON if water is not None else Method.INOUT if opposed is not None else Method.T1
    )
    if options.method is not None and options.method is not method:
        raise InputError(f"method {options.method} asked for, but the volumes given are {method}")
    affine, spacing, calibrated = _grid(image)
    timings: dict[str, float] = {}
    warnings = list(image.warnings)
    if calibrated:
        _check_spacing(image, spacing)
    else:
        warnings.append("no calibration: lengths are in pixels (units px)")
    if image.array.shape[0] == 1:
        warnings.append(
            "a single slice: analysed in 2D"
            + (" (N4 bias correction in 2D)" if options.n4 and water is None else "")
            + "; volumes take the slice as 1 "
            + ("mm" if calibrated else "px")
            + " thick and the through-plane extent is unknown"
        )

    def stage(name: str, fraction: float) -> None:
        log.info("%s", name)
        if progress is not None:
            progress(name, fraction)

    t = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal t
        now = time.perf_counter()
        timings[name] = now - t
        t = now

    body, fat = fat_stage(
        image.array,
        spacing_mm=spacing,
        water=None if water is None else water.array,
        opposed=None if opposed is None else opposed.array,
        n4=options.n4,
        threshold=options.threshold,
        stage=stage,
        lap=lap,
    )
    fat_mask = fat.mask & body.mask
    stage("subcutaneous fat and fascia", 0.5)
    depth = VALLEY_DEPTH[method]
    strict = fat_mask if depth is None else fat_mask & ~_thin_dark_lines(fat.score, depth=depth)
    sat = subcutaneous_fat(fat_mask, body.mask, body.depth_mm, pixel_mm=spacing[1:], strict=strict)
    fascia = fascia_distance(
        sat,
        body.mask,
        body.depth_mm,
        spacing_mm=spacing,
        exclude=fat_mask & ~sat,
        score=fat.score,
        cut=body.cut(),
    )
    # Fat deep to the fascia is not subcutaneous, even where a herniation's capsule,
    # lost in the partial volume, let the layer flow into it.
    sat &= ~(fascia.signed_mm < -SAT_DEEP_MM)
    warnings.extend(_missing_fat_warning(sat, body.mask, affine, spacing))
    lap("fascia")
    stage("candidates", 0.7)
    labels = find_candidates(
        fat_mask,
        fat.score,
        sat,
        body.mask,
        fascia.signed_mm,
        affine=affine,
        options=options.candidates,
        strict=strict,
        skin_depth_mm=body.skin_depth_mm,
        field_of_view=body.field_of_view,
    )
    lap("candidates")
    stage("measurements", 0.85)
    analysis = Analysis(
        study=study,
        method=method,
        stacks=stacks,
        volume=image,
        fat=fat,
        body=body,
        subcutaneous=sat,
        fascia=fascia,
        labels=labels,
        nodules=[],
        timings=timings,
        warnings=warnings,
        red_flag_rules=options.red_flags,
    )
    site = site_maps(analysis)
    sacrum_top = options.sacrum_top_z_mm
    if sacrum_top is None and options.find_sacrum and site.midline_x_mm is not None:
        sacrum_top = sacrum_top_z_mm(
            fat_mask & ~sat & (labels == 0),
            fascia.signed_mm,
            affine=affine,
            midline_x_mm=site.midline_x_mm,
        )
    analysis.sacrum_top_z_mm = site.sacrum_top_z_mm = sacrum_top
    rows = measure_nodules(
        labels,
        affine,
        site,
        study=study,
        series_uid=image.series_uid,
        calibrated=calibrated,
        rules=options.red_flags,
    )
    analysis.labels, analysis.nodules = _size_filter(labels, rows, options.candidates)
    lap("measure")
    stage("done", 1.0)
    log.info(
        "%d nodule(s); stages %s",
        len(analysis.nodules),
        ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()),
    )
    return analysis


#: A slice is judged for subcutaneous fat over the back when the posterior body
#: there is at least this large (mm²): the first and last slices of a stack may
#: graze the body.
MIN_BACK_AREA_MM2 = 2000.0


def _missing_fat_warning(
    sat: np.ndarray,
    body: np.ndarray,
    affine: np.ndarray,
    spacing: tuple[float, float, float],
) -> list[str]:
    """A warning naming the slices whose posterior body has no subcutaneous fat."""
    area_px = int(MIN_BACK_AREA_MM2 / (spacing[1] * spacing[2]))
    missing = slices_without_fat(sat, posterior_half(body, affine), min_area_px=area_px)
    if not missing:
        return []
    listed = ", ".join(map(str, missing[:12])) + (", ..." if len(missing) > 12 else "")
    return [
        f"no subcutaneous fat found over the back on {len(missing)} slice(s) "
        f"({listed}): the fascia and the depths there are unreliable; "
        "check the image and the fat threshold (--threshold)"
    ]


def midline_x_mm(body: np.ndarray, affine: np.ndarray) -> float | None:
    """LPS x (mm) of the body's midsagittal plane: the mean x of the body mask's voxels.

    Parameters
    ----------
    body : ndarray of bool, shape (slice, row, col)
    affine : ndarray of shape (4, 4)
        Index to LPS mm.

    Returns
    -------
    float or None
        None for an empty mask. The mask is sub-sampled by 2 in the slice plane.
    """
    k, r, c = np.nonzero(body[:, ::2, ::2])
    if not k.size:
        return None
    x = affine[0, 3] + affine[0, 0] * k + affine[0, 1] * (2 * r) + affine[0, 2] * (2 * c)
    return float(np.mean(x))


def site_maps(analysis: Analysis) -> SiteMaps:
    """The maps an analysis measures its nodules with (and re-measures them after an edit).

    Parameters
    ----------
    analysis : Analysis

    Returns
    -------
    SiteMaps
        Views of the analysis' own arrays, plus the fat mask within the body.
    """
    affine, _spacing, calibrated = _grid(analysis.volume)
    fat = analysis.fat
    return SiteMaps(
        signed_fascia_mm=analysis.fascia.signed_mm,
        skin_depth_mm=analysis.body.skin_depth_mm,
        image=fat.image,
        subcutaneous=analysis.subcutaneous,
        fat=fat.mask & analysis.body.mask,
        midline_x_mm=midline_x_mm(analysis.body.mask, affine) if calibrated else None,
        fat_fraction=fat.fat_fraction,
        sacrum_top_z_mm=analysis.sacrum_top_z_mm,
        # Dixon: the fat fraction of a capsule pixel is not the core's share of it
        # (the label already holds the faint capsule); the volume weighs by the
        # fat fraction instead (measure_nodules).
        fat_share=fat.score if analysis.method is Method.T1 else None,
    )


def _size_filter(
    labels: np.ndarray, rows: list[dict], options: CandidateOptions
) -> tuple[np.ndarray, list[dict]]:
    """Keep nodules whose largest diameter is within the size limits; renumber 1..n."""
    kept = [r for r in rows if options.min_size_mm <= r["max_diameter_mm"] <= options.max_size_mm]
    lut = np.zeros(int(labels.max()) + 1, dtype=np.uint32)
    for new, row in enumerate(kept, start=1):
        lut[row["nodule_id"]] = new
        row["nodule_id"] = new
    return lut[labels], kept


def analyze(
    path: str | os.PathLike[str] | Study,
    *,
    options: AnalysisOptions | None = None,
    series_uid: str | None = None,
    echo: int | None = None,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Analyse a study: choose its stack(s), load them and run every stage.

    Parameters
    ----------
    path : path-like or Study
        A study folder, file or DICOMDIR, or an opened study.
    options : AnalysisOptions, optional
    series_uid : str, optional
        Analyse this series.
    echo : int, optional
        Analyse this echo (its EchoNumbers; see :func:`choose`).
    progress : callable, optional
        Called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis
        Its ``warnings`` start with what :func:`choose` said about the choice
        (the echo taken, the method, what was passed over).

    Raises
    ------
    InputError
        No usable stack, or a file cannot be read.
    """
    options = options or AnalysisOptions()
    study = path if isinstance(path, Study) else open_study(path)
    choice = choose(study, method=options.method, series_uid=series_uid, echo=echo)
    return analyze_choice(study, choice, options=options, progress=progress)


def analyze_choice(
    study: Study,
    choice: StackChoice,
    *,
    options: AnalysisOptions | None = None,
    name: str | None = None,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Analyse the stack(s) :func:`choose` picked: load them and run every stage.

    The second half of :func:`analyze`, for a caller that planned the study
    itself (:func:`backmice.run.plan`: ``backmice analyze`` and the batch).

    Parameters
    ----------
    study : Study
        The study the stacks are from.
    choice : StackChoice
        What :func:`choose` picked.
    options : AnalysisOptions, optional
        Its ``method``, when set, is replaced by the choice's.
    name : str, optional
        The study's name in the rows (default: from its path, :func:`study_name`).
    progress : callable, optional
        Called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis
        Its ``warnings`` start with the choice's notes.

    Raises
    ------
    InputError
        A file cannot be read.
    """
    options = options or AnalysisOptions()
    method, stacks = choice.method, choice.stacks
    log.info(
        "analysing %s with %s: %s",
        study.path,
        method,
        "; ".join(f"{s.role} {s.description!r} ({s.series_uid})" for s in stacks),
    )
    for note in choice.notes:
        log.info("%s", note)
    image = load(stacks[0])
    second = load(stacks[1]) if len(stacks) > 1 else None
    notes = list(choice.notes)
    if method is Method.INOUT and second is not None and second.array.shape != image.array.shape:
        notes = [
            f"the opposed-phase echo loaded as {second.array.shape}, the in-phase echo as "
            f"{image.array.shape}: the in-phase echo is analysed as the T1 (fat-bright) image"
        ]
        method, stacks, second = Method.T1, stacks[:1], None
    if options.method is not None and options.method is not method:
        options = replace(options, method=method)
    analysis = analyze_volume(
        image,
        water=second if method is Method.DIXON else None,
        opposed=second if method is Method.INOUT else None,
        options=options,
        study=study_name(study.path) if name is None else name,
        stacks=tuple(stacks),
        progress=progress,
    )
    analysis.warnings[:0] = notes
    return analysis
