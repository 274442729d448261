"""The MRI analysis, stage by stage: :func:`analyze` a study, or :func:`analyze_volume`.

1. choose the stack(s) by role: a Dixon fat + water pair, or a T1 (:func:`choose_stacks`);
2. body mask and depth below the skin;
3. fat signal: N4-corrected T1 fat score, or the Dixon fat fraction;
4. subcutaneous fat, the fascia and the signed distance to it;
5. candidate nodules;
6. every SPEC measurement of each.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backmice._names import study_name
from backmice.errors import InputError
from backmice.io import Role, Stack, Study, Volume, load, open_study
from backmice.measure.nodules import RedFlagRules, SiteMaps, measure_nodules
from backmice.segment import (
    Body,
    CandidateOptions,
    Fascia,
    FatSignal,
    Method,
    body_mask,
    fascia_distance,
    fat_signal_dixon,
    fat_signal_t1,
    find_candidates,
    n4_correct,
    subcutaneous_fat,
)
from backmice.segment.level import sacrum_top_z_mm

__all__ = [
    "Analysis",
    "AnalysisOptions",
    "analyze",
    "analyze_volume",
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
VALLEY_DEPTH = {Method.DIXON: 0.04, Method.T1: None}


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
        ``t1`` or ``dixon``; None chooses from the roles found (Dixon when a fat
        and water pair of the same geometry is there).
    threshold : float or None
        Fat threshold on the fat score (T1) or fat fraction (Dixon); None: 0.5.
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
        The stacks used (T1; or Dixon fat, water).
    volume : Volume
        The image analysed (T1, or Dixon fat); its grid is the grid of every map.
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


def choose_stacks(
    study: Study, *, method: Method | str | None = None, series_uid: str | None = None
) -> tuple[Method, list[Stack]]:
    """Pick what to analyse: a Dixon fat + water pair, or a T1 stack.

    Parameters
    ----------
    study : Study
    method : Method or str, optional
        Force ``t1`` or ``dixon``.
    series_uid : str, optional
        Only consider stacks of this series.

    Returns
    -------
    method : Method
    stacks : list of Stack
        ``[t1]`` or ``[fat, water]``.

    Raises
    ------
    InputError
        No usable stack; the message says what was found.
    """
    method = None if method is None else Method(method)
    stacks = [s for s in study.stacks if s.role.is_image and s.modality == "MR"]
    if series_uid:
        stacks = [s for s in stacks if s.series_uid == series_uid]
        if not stacks:
            raise InputError(f"no MR image stack with series UID {series_uid}", path=study.path)
    fats = sorted((s for s in stacks if s.role is Role.DIXON_FAT), key=_rank)
    waters = [s for s in stacks if s.role is Role.DIXON_WATER]
    pairs = [(f, w) for f in fats for w in waters if _same_grid(f, w)]
    if method in (None, Method.DIXON) and pairs:
        return Method.DIXON, list(pairs[0])
    if method is Method.DIXON:
        raise InputError(
            "Dixon analysis needs a fat and a water stack of the same geometry; found "
            + _found(study),
            path=study.path,
        )
    t1 = sorted((s for s in stacks if s.role is Role.T1), key=_rank)
    if series_uid and not t1:
        # A series named explicitly is taken as fat-bright whatever its role.
        t1 = sorted((s for s in stacks if s.role not in (Role.LOCALIZER,)), key=_rank)
    if t1:
        return Method.T1, [t1[0]]
    raise InputError(
        "no T1 stack and no Dixon fat + water pair; found " + _found(study), path=study.path
    )


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
    if volume.calibrated and all(s is not None for s in volume.spacing_mm[1:]):
        slice_mm = volume.spacing_mm[0]
        if slice_mm is None:  # a single slice: its normal step is 1 mm in the affine
            slice_mm = float(np.linalg.norm(volume.affine[:3, 0]))
        spacing = (float(slice_mm), float(volume.spacing_mm[1]), float(volume.spacing_mm[2]))
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


def analyze_volume(
    image: Volume,
    *,
    water: Volume | None = None,
    options: AnalysisOptions | None = None,
    study: str = "",
    stacks: tuple[Stack, ...] = (),
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Run the analysis on a loaded volume (a T1, or a Dixon fat image with its water).

    Parameters
    ----------
    image : Volume
        T1 (fat bright), or the Dixon fat image.
    water : Volume, optional
        The Dixon water image (same grid); selects the Dixon method.
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
    method = Method.DIXON if water is not None else Method.T1
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

    stage("body", 0.05)
    array = image.array
    if water is not None:
        if water.array.shape != array.shape:
            raise InputError("the Dixon fat and water images differ in shape")
        body = body_mask(array + water.array, spacing_mm=spacing)
    else:
        body = body_mask(array, spacing_mm=spacing)
    lap("body")
    if water is not None:
        stage("fat fraction", 0.15)
        fat = fat_signal_dixon(array, water.array, body.mask, threshold=options.threshold)
        lap("fat")
    else:
        stage("bias correction", 0.15)
        corrected = n4_correct(array, body.mask, spacing_mm=spacing)[0] if options.n4 else array
        lap("n4")
        stage("fat score", 0.45)
        fat = fat_signal_t1(
            corrected, body.mask, body.depth_mm, threshold=options.threshold, spacing_mm=spacing
        )
        lap("fat")
    fat_mask = fat.mask & body.mask
    stage("subcutaneous fat and fascia", 0.5)
    depth = VALLEY_DEPTH[method]
    strict = fat_mask if depth is None else fat_mask & ~_thin_dark_lines(fat.score, depth=depth)
    sat = subcutaneous_fat(fat_mask, body.mask, body.depth_mm, pixel_mm=spacing[1:], strict=strict)
    fascia = fascia_distance(
        sat, body.mask, body.depth_mm, spacing_mm=spacing, exclude=fat_mask & ~sat
    )
    # Fat deep to the fascia is not subcutaneous, even where a herniation's capsule,
    # lost in the partial volume, let the layer flow into it.
    sat &= ~(fascia.signed_mm < -SAT_DEEP_MM)
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
    progress : callable, optional
        Called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis

    Raises
    ------
    InputError
        No usable stack, or a file cannot be read.
    """
    options = options or AnalysisOptions()
    study = path if isinstance(path, Study) else open_study(path)
    method, stacks = choose_stacks(study, method=options.method, series_uid=series_uid)
    log.info(
        "analysing %s with %s: %s",
        study.path,
        method,
        "; ".join(f"{s.role} {s.description!r} ({s.series_uid})" for s in stacks),
    )
    image = load(stacks[0])
    water = load(stacks[1]) if method is Method.DIXON else None
    name = study_name(study.path)
    return analyze_volume(
        image, water=water, options=options, study=name, stacks=tuple(stacks), progress=progress
    )
