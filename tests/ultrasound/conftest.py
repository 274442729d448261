"""Shared fixtures of the ultrasound tests: the bench's phantom cases and the committed sample."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_data" / "us"


def _bench():
    """Import ``bench/accuracy_us.py`` (not a package) under a private name."""
    name = "_backmice_bench_accuracy_us"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "accuracy_us.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def bench():
    """The accuracy bench module (its cases and thresholds)."""
    return _bench()


@pytest.fixture(scope="session")
def sample_truth():
    """``truth.json`` of the committed ultrasound sample: (plane, the lipoma's section)."""
    truth = json.loads((SAMPLE / "truth.json").read_text())["ultrasound"][0]
    return truth["plane"], truth["lesions"][0], truth


@pytest.fixture(scope="session")
def sample_file():
    """The committed B-mode DICOM file."""
    return next((SAMPLE / "01_us").glob("*.dcm"))
