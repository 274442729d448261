"""Which analysis a study gets in the batch tables' ``method`` column.

The rule (MRI or ultrasound) is :func:`backmice.run.is_ultrasound_study`, shared
by ``backmice analyze``, ``backmice batch`` and :func:`backmice.analyze`; it is
re-exported here, where the batch has always found it.
"""

from __future__ import annotations

from backmice.run import is_ultrasound_study
from backmice.vocab import UltrasoundMethod

__all__ = ["ULTRASOUND", "is_ultrasound_study"]

#: The ``method`` of an ultrasound study in the batch tables (``t1``/``dixon`` for MRI).
ULTRASOUND = UltrasoundMethod.ULTRASOUND
