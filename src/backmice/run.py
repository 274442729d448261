"""Running one study: plan it once (MRI or ultrasound, which stacks), then run the plan.

The one owner of "what does this study get": ``backmice analyze``, the batch
worker and :func:`backmice.analyze` plan with :func:`plan` and run with
:func:`run`, so a study is planned once, named once, and the three agree::

    study = backmice.open_study("study/")
    p = plan(study, name="px")          # which analysis, which stacks, what to tell the user
    print(p.describe())                 # "using dixon: dixon_fat 'FAT' (...)"
    result = run(p, options=options)    # Analysis (MRI) or UltrasoundResult

The rule that picks ultrasound over MRI is
:func:`is_ultrasound_study`; the choice of MRI stacks
is :func:`backmice.analysis.choose`; of an ultrasound series,
:func:`backmice.ultrasound.choose_ultrasound`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from backmice._names import study_name
from backmice.io.model import Role
from backmice.vocab import Method, Modality, UltrasoundMethod

if TYPE_CHECKING:
    from backmice.analysis import Analysis, AnalysisOptions, ProgressCallback, StackChoice
    from backmice.io import Stack, Study
    from backmice.ultrasound import UltrasoundResult

__all__ = ["Plan", "is_ultrasound_study", "plan", "run", "run_mri", "run_ultrasound"]


@dataclass(frozen=True)
class Plan:
    """What one study's analysis runs on.

    Attributes
    ----------
    study : Study
        The study (headers only).
    name : str
        The study's name in the rows, tables and QC title.
    method : Method or UltrasoundMethod
        The MRI fat method, or ``ultrasound``.
    stacks : tuple of Stack
        ``(t1,)``, ``(fat, water)``, ``(in_phase, opposed)``, or the ultrasound stack.
    choice : StackChoice or None
        The MRI choice (its notes become the analysis' first warnings); None for ultrasound.
    """

    study: Study
    name: str
    method: Method | UltrasoundMethod
    stacks: tuple[Stack, ...]
    choice: StackChoice | None = None

    @property
    def ultrasound(self) -> bool:
        """True for an ultrasound analysis."""
        return self.choice is None

    def describe(self) -> str:
        """One line for the user: the method and the stacks it uses."""
        if self.ultrasound:
            s = self.stacks[0]
            return (
                f"using ultrasound '{s.description}' ({'x'.join(map(str, s.shape))}, "
                f"series {s.series_uid})"
            )
        return f"using {self.method}: " + "; ".join(
            f"{s.role} '{s.description}' ({'x'.join(map(str, s.shape))}, series {s.series_uid})"
            for s in self.stacks
        )


def is_ultrasound_study(
    study: Study,
    *,
    method: object | None = None,
    series_uid: str | None = None,
    ultrasound_asked: bool = False,
) -> bool:
    """Whether a study is analysed as ultrasound rather than MRI.

    Ultrasound when the study has an ultrasound stack and either it is asked
    for (``series_uid`` names an ultrasound series, or ``ultrasound_asked``: a
    seed, a frame or every frame was given), or the study has no MR image
    stack and no MRI method is forced.

    Parameters
    ----------
    study : Study
        The study (headers only, :func:`backmice.open_study`).
    method : Method or str, optional
        An MRI fat method asked for (``t1``/``dixon``): keeps MRI unless the
        series or the ultrasound options say otherwise.
    series_uid : str, optional
        The series asked for: ultrasound exactly when it is an ultrasound series.
    ultrasound_asked : bool
        An ultrasound-only option was given (``--seed``, ``--frame``, ``--all-frames``).

    Returns
    -------
    bool
        False whenever the study has no ultrasound stack.
    """
    us = [s for s in study.stacks if s.role is Role.US]
    if not us:
        return False
    if series_uid:
        return any(s.series_uid == series_uid for s in us)
    if ultrasound_asked:
        return True
    if method is not None:  # t1 / dixon are MRI methods
        return False
    return not any(s.role.is_image and s.modality == Modality.MR for s in study.stacks)


def plan(
    study: Study,
    *,
    method: Method | str | None = None,
    series_uid: str | None = None,
    echo: int | None = None,
    ultrasound: bool | None = None,
    ultrasound_asked: bool = False,
    name: str | None = None,
) -> Plan:
    """Decide what a study gets: MRI (which stacks, which method) or ultrasound (which series).

    Parameters
    ----------
    study : Study
        The study (:func:`backmice.open_study`).
    method : Method or str, optional
        An MRI fat method asked for (``t1``, ``dixon``, ``inout``).
    series_uid : str, optional
        The series asked for (a NIfTI file by its path or name).
    echo : int, optional
        The echo asked for (MRI).
    ultrasound : bool, optional
        Already decided by the caller (True: ultrasound); default: by the rule
        (:func:`is_ultrasound_study`).
    ultrasound_asked : bool
        An ultrasound-only option was given (a seed, a frame, every frame).
    name : str, optional
        The study's name in the results (default: from its path).

    Returns
    -------
    Plan

    Raises
    ------
    InputError
        No usable stack; the message says what was found.
    """
    if ultrasound is None:
        ultrasound = is_ultrasound_study(
            study, method=method, series_uid=series_uid, ultrasound_asked=ultrasound_asked
        )
    name = study_name(study.path) if name is None else name
    if ultrasound:
        from backmice.ultrasound import choose_ultrasound

        stack = choose_ultrasound(study, series_uid=series_uid)
        return Plan(study, name, UltrasoundMethod.ULTRASOUND, (stack,))
    from backmice.analysis import choose

    choice = choose(study, method=method, series_uid=series_uid, echo=echo)
    return Plan(study, name, choice.method, tuple(choice.stacks), choice)


def run(
    plan: Plan,
    *,
    options: AnalysisOptions | None = None,
    seed: tuple[float, float] | None = None,
    frame: int | None = None,
    all_frames: bool = False,
    progress: ProgressCallback | None = None,
) -> Analysis | UltrasoundResult:
    """Run a plan: load its stacks and analyse them (nothing is written).

    :func:`run_mri` or :func:`run_ultrasound`, as the plan says.

    Parameters
    ----------
    plan : Plan
        From :func:`plan`.
    options : AnalysisOptions, optional
        MRI options (the ultrasound analysis takes none).
    seed : (float, float), optional
        Ultrasound: ``(col, row)`` in pixels of the stored image, inside the nodule.
    frame : int, optional
        Ultrasound: the cine frame measured (0-based; default 0).
    all_frames : bool
        Ultrasound: measure every cine frame too and report the spread.
    progress : callable, optional
        MRI: called as ``progress(stage, fraction_done)``.

    Returns
    -------
    Analysis or UltrasoundResult

    Raises
    ------
    InputError
        A file cannot be read, or an ultrasound frame or seed is out of range.
    """
    if plan.ultrasound:
        return run_ultrasound(plan, seed=seed, frame=frame, all_frames=all_frames)
    return run_mri(plan, options=options, progress=progress)


def run_mri(
    plan: Plan,
    *,
    options: AnalysisOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Analysis:
    """Run an MRI plan (:func:`backmice.analysis.analyze_choice`); see :func:`run`.

    Raises
    ------
    ValueError
        The plan is an ultrasound one (a bug in the caller).
    """
    from backmice.analysis import analyze_choice

    if plan.choice is None:
        raise ValueError(f"{plan.name}: an ultrasound plan, not an MRI one")
    return analyze_choice(
        plan.study, plan.choice, options=options, name=plan.name, progress=progress
    )


def run_ultrasound(
    plan: Plan,
    *,
    seed: tuple[float, float] | None = None,
    frame: int | None = None,
    all_frames: bool = False,
) -> UltrasoundResult:
    """Run an ultrasound plan (:func:`backmice.ultrasound.analyze_ultrasound`); see :func:`run`.

    Raises
    ------
    ValueError
        The plan is an MRI one (a bug in the caller).
    """
    from backmice.io import load
    from backmice.ultrasound import analyze_ultrasound

    if not plan.ultrasound:
        raise ValueError(f"{plan.name}: an MRI plan, not an ultrasound one")
    stack = plan.stacks[0]
    return analyze_ultrasound(
        load(stack),
        seed=seed,
        frame=0 if frame is None else frame,
        all_frames=all_frames,
        study=plan.name,
        stack=stack,
    )
