"""The fat-threshold preview: the fat map of a study once, then one slice per threshold.

A viewer previews the fat threshold while the reader moves a slider. What the
analysis thresholds (the T1 fat score after the body mask and N4, the Dixon fat
fraction, or the two-point fat fraction) is computed once per stack by
:func:`fat_score`, which takes seconds on a 512 × 512 × 160 study; each move of
the slider or of the slice then costs :func:`threshold_slice` on one slice
(``score >= threshold``, the rule of
:attr:`backmice.segment.fat.FatSignal.mask`): about a millisecond for 512 × 512.

::

    from backmice.preview import fat_score, threshold_slice
    score = fat_score("study/")                      # once
    mask = threshold_slice(score.score, 80, 0.6)     # per change: (row, col) bool
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backmice.analysis import _grid, choose_stacks, fat_stage
from backmice.io import Study, load, open_study
from backmice.vocab import Method

__all__ = ["FatScore", "fat_score", "threshold_slice"]


@dataclass(slots=True)
class FatScore:
    """The fat map of one stack, for the threshold preview.

    Attributes
    ----------
    score : ndarray of float32, shape (slice, row, col)
        T1 fat score (0 muscle, 1 subcutaneous fat) or Dixon / two-point fat
        fraction: what the analysis thresholds.
    affine : ndarray of shape (4, 4)
        Index → LPS mm of the stack.
    method : Method
    series_uid : str
    """

    score: np.ndarray
    affine: np.ndarray
    method: Method
    series_uid: str


def fat_score(
    study: Study | str,
    *,
    method: Method | str | None = None,
    series_uid: str | None = None,
    n4: bool = True,
) -> FatScore:
    """The fat map the analysis thresholds, for the stack it would choose.

    The same stages as :func:`backmice.analysis.analyze_volume` up to the fat
    signal: body mask, N4 bias correction and the T1 fat score; or the Dixon
    fat fraction; or the two-point fat fraction of in/opposed-phase echoes.

    Parameters
    ----------
    study : Study or path
    method, series_uid
        As for :func:`backmice.analysis.choose_stacks`.
    n4 : bool
        Correct the T1 bias field first (as the analysis does by default).

    Returns
    -------
    FatScore

    Raises
    ------
    InputError
        No stack the analysis can use (see :func:`~backmice.analysis.choose_stacks`).
    """
    study = study if isinstance(study, Study) else open_study(study)
    chosen, stacks = choose_stacks(study, method=method, series_uid=series_uid)
    image = load(stacks[0])
    _, spacing, _ = _grid(image)
    second = load(stacks[1]).array if chosen in (Method.DIXON, Method.INOUT) else None
    _, fat = fat_stage(
        image.array,
        spacing_mm=spacing,
        water=second if chosen is Method.DIXON else None,
        opposed=second if chosen is Method.INOUT else None,
        n4=n4,
    )
    return FatScore(fat.score, image.affine, chosen, image.series_uid)


def threshold_slice(
    score: np.ndarray, index: int, threshold: float, *, out: np.ndarray | None = None
) -> np.ndarray:
    """Fat on one slice: ``score[index] >= threshold``, and nothing else computed.

    Parameters
    ----------
    score : ndarray, shape (slice, row, col)
        A fat map (:attr:`FatScore.score`, or a view of it in display order).
    index : int
        The slice (first axis).
    threshold : float
        Fat score or fat fraction (0..1).
    out : ndarray of shape (row, col), optional
        Where to write the mask (any integer or bool type: 1 fat, 0 not), e.g.
        the slice of a viewer's overlay layer.

    Returns
    -------
    ndarray of bool, shape (row, col)
        Or ``out``, filled.
    """
    if out is None:
        return np.greater_equal(score[index], threshold)
    return np.greater_equal(score[index], threshold, out=out)
