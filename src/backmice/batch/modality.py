"""Which analysis a study gets: MRI (T1 / Dixon) or ultrasound.

:func:`is_ultrasound_study` is the one rule, shared by ``backmice batch`` and
meant to be shared by ``backmice analyze`` (whose ``_is_ultrasound`` applies the
same rule to its command-line arguments). It reads only the stacks' headers
(:class:`~backmice.io.Study`), so it costs nothing.
"""

from __future__ import annotations

from backmice.io import Role, Study
from backmice.vocab import Modality, UltrasoundMethod

__all__ = ["ULTRASOUND", "is_ultrasound_study"]

#: The ``method`` of an ultrasound study in the batch tables (``t1``/``dixon`` for MRI).
ULTRASOUND = UltrasoundMethod.ULTRASOUND


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
