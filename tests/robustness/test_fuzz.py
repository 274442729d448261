"""Fuzzing the loader: every class of hostile DICOM loads or is refused with an InputError.

Each class of :data:`~tests.robustness.fuzzing.CLASSES` runs a fixed number of
hypothesis examples (:data:`~tests.robustness.fuzzing.SUITE_EXAMPLES`,
derandomized, so CI sees the same cases every time), each under a time limit
and with the address space capped, so a hang or a huge allocation fails the
test instead of the machine. ``bench/fuzz.py`` runs the same classes for longer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from backmice.io import header
from tests.robustness.fuzzing import (
    CLASSES,
    SUITE_EXAMPLES,
    bounded_memory,
    case_strategy,
    check,
)

#: MAX_PIXELS while fuzzing: above every seed (the largest is 640x480x3), low enough
#: that whatever a lying header makes backmice allocate fits in the capped address space.
FUZZ_MAX_PIXELS = 2**24
#: Address space allowed on top of what the test process has mapped already.
HEADROOM = 2**30
#: Seconds one case may take before it counts as a hang (a case takes milliseconds).
CASE_TIMEOUT = 60
#: Classes where most cases must be refused (the others mostly load, uncalibrated or
#: with warnings, which is what they should do).
ALWAYS_REFUSED = {"truncated", "huge_length", "no_pixels", "compressed_frames", "junk"}

# Broken files make pydicom and numpy warn; that is expected here.
pytestmark = [
    pytest.mark.filterwarnings("ignore::UserWarning"),
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),
]


@pytest.mark.slow
@pytest.mark.parametrize("cls", list(CLASSES))
def test_hostile_input_loads_or_is_refused(cls, tmp_path, monkeypatch):
    monkeypatch.setattr(header, "MAX_PIXELS", FUZZ_MAX_PIXELS)
    outcomes: Counter[str] = Counter()
    ran = 0

    @settings(
        max_examples=SUITE_EXAMPLES[cls],
        deadline=None,
        database=None,
        derandomize=True,
        phases=(Phase.generate, Phase.shrink),
        suppress_health_check=list(HealthCheck),
    )
    @given(case=case_strategy(cls))
    def run(case):
        nonlocal ran
        ran += 1
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        try:
            files = case.write(folder / "case")
            result = check(folder / "case", files, load=case.load, timeout=CASE_TIMEOUT)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        outcomes.update(result.outcomes)

    with bounded_memory(HEADROOM):
        run()
    assert ran == SUITE_EXAMPLES[cls]  # docs/robustness.md states these numbers
    assert sum(outcomes.values()) >= ran
    if cls in ALWAYS_REFUSED:  # the damage reaches backmice's refusals, not only its happy path
        refused = outcomes["skipped"] + outcomes["load refused"] + outcomes["open refused"]
        assert refused > ran // 2, outcomes
