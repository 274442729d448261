"""Shared fixtures: real DICOM files from pydicom and pydicom-data, and the sample analyses.

The analyses of the committed samples (``sample_data/``) are the expensive
fixtures of the suite (the T1 one spends seconds in N4 bias correction), so each
is run once per test run, here, and shared by every package of tests — and by
every pytest-xdist worker (:func:`build_once`). Their arrays are made read-only
and their rows are checked unchanged at the end of the session: a test that
changes an analysis must ``copy.deepcopy`` it first.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

try:
    import fcntl
except ImportError:  # Windows: every xdist worker builds its own copy
    fcntl = None

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"
#: The distinctive patient written into the copy of the T1 sample that the
#: command line analyses (:func:`t1_cli_result`): name, ID, birth date.
PATIENT = ("Zyxwvuts^Qponmlk", "PID-8675309", "19230405")


def real_file(name: str) -> Path:
    """A real file from pydicom's test files or the pydicom-data package (never downloaded)."""
    path = get_testdata_file(name, download=False)
    if path is None:
        raise FileNotFoundError(
            f"{name} is not installed: install the test extra (pip install -e '.[test]'), "
            "which brings pydicom-data"
        )
    return Path(path)


def assert_same_row(got: dict, want: dict, *, columns=None, skip=(), tol: float = 1e-9) -> None:
    """Two nodule rows are the same, every column (floats to ``tol``: the same measurement).

    Parameters
    ----------
    got, want : dict
    columns : iterable of str, optional
        Default: :data:`backmice.vocab.COLUMNS` and :data:`backmice.vocab.DETAILS`.
    skip : iterable of str
        Columns not compared (say why at the call).
    tol : float
        Relative and absolute tolerance of floats.
    """
    import math

    from backmice.vocab import COLUMNS, DETAILS

    for key in columns or (*COLUMNS, *DETAILS):
        if key in skip:
            continue
        a, b = got.get(key), want.get(key)
        if isinstance(b, float) and math.isnan(b):
            # JSON, and so the project store, has no NaN: it keeps None.
            assert a is None or (isinstance(a, float) and math.isnan(a)), (key, a, b)
        elif isinstance(b, float) and isinstance(a, float):
            assert a == pytest.approx(b, rel=tol, abs=tol), (key, a, b)
        else:
            assert a == b, (key, a, b)


def ellipsoid(shape, centre, semi_px) -> np.ndarray:
    """Voxels whose index lies within the axis-aligned ellipsoid (semi-axes in voxels)."""
    k, r, c = np.indices(shape)
    return (
        ((k - centre[0]) / semi_px[0]) ** 2
        + ((r - centre[1]) / semi_px[1]) ** 2
        + ((c - centre[2]) / semi_px[2]) ** 2
    ) <= 1.0


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) across processes."""
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_once(tmp_path_factory, name: str, build: Callable[[Path], object]):
    """Build an expensive session fixture once per test run, whichever xdist worker asks first.

    Session fixtures are per process: under ``pytest -n 2`` each worker would
    build its own. Here the first worker to ask runs ``build(folder)`` under a
    file lock in the run's temporary root (shared by the workers and removed
    with it), keeps ``folder`` and pickles the value it returns; the others wait
    for the lock and unpickle that value. Without xdist (or without ``fcntl``)
    it is ``build(tmp_path_factory.mktemp(name))``.

    Parameters
    ----------
    tmp_path_factory : pytest.TempPathFactory
    name : str
        Unique among the callers: names the folder, the lock and the pickle.
    build : callable
        ``build(folder) -> value``; writes only into ``folder``; ``value`` must
        pickle. A build that raises leaves nothing behind: the next worker tries again.

    Returns
    -------
    object
        ``build``'s value (this worker built it) or an unpickled copy of it.
    """
    if fcntl is None or "PYTEST_XDIST_WORKER" not in os.environ:
        return build(tmp_path_factory.mktemp(name))
    root = tmp_path_factory.getbasetemp().parent / "built-once"
    root.mkdir(exist_ok=True)
    folder, done = root / name, root / f"{name}.pickle"
    with _locked(root / f"{name}.lock"):
        if done.exists():
            return pickle.loads(done.read_bytes())
        shutil.rmtree(folder, ignore_errors=True)  # a build that failed in another worker
        folder.mkdir()
        value = build(folder)
        partial = done.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(value))
        partial.replace(done)
        return value


@pytest.fixture
def copy_files(tmp_path):
    """Copy named test files into a fresh folder; returns the folder."""

    def _copy(*names: str, folder: str = "study") -> Path:
        out = tmp_path / folder
        out.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(real_file(name), out / name)
        return out

    return _copy


class UnsafeErosion(AssertionError):
    """scipy's iterated erosion was asked to run on an input smaller than its structure."""


@contextlib.contextmanager
def erosion_guard() -> Iterator[list[tuple[tuple[int, ...], tuple[int, ...]]]]:
    """Record calls of scipy's ``NI_BinaryErosion2``; refuse the ones that overflow.

    ``scipy.ndimage``'s iterated erosion writes out of bounds when its structure
    is larger than the input along an axis (scipy/scipy#11400; see
    ``tests/segment/test_heap_safety.py``). Inside this context the C entry point
    is replaced by a guard that records every call, forwards the safe ones and
    raises :class:`UnsafeErosion` on the unsafe ones without running them.

    Yields
    ------
    list of (tuple, tuple)
        ``(array shape, structure shape)`` of every call, safe or not.
    """
    from scipy.ndimage import _morphology

    real = _morphology._nd_image.binary_erosion2
    calls: list[tuple[tuple[int, ...], tuple[int, ...]]] = []

    def guard(array, structure, *args):
        calls.append((array.shape, structure.shape))
        if any(a < s for a, s in zip(array.shape, structure.shape, strict=True)):
            raise UnsafeErosion(
                f"iterated binary erosion of a {array.shape} array with a "
                f"{structure.shape} structure (scipy/scipy#11400: writes out of bounds)"
            )
        return real(array, structure, *args)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(_morphology._nd_image, "binary_erosion2", guard)
        yield calls


def _freeze(obj, depth: int = 0) -> None:
    """Make every array of a (nested) dataclass read-only, so a test cannot change it."""
    if depth > 3 or not dataclasses.is_dataclass(obj):
        return
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name, None)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
        else:
            _freeze(value, depth + 1)


def _analyse_sample(sample: str):
    """``(analysis, erosion calls)`` of a committed sample, default options (erosion guarded)."""
    from backmice.analysis import analyze

    with erosion_guard() as calls:
        analysis = analyze(SAMPLES / sample)
    return analysis, calls


@contextlib.contextmanager
def _shared_analysis(tmp_path_factory, sample: str):
    """Analyse a committed sample once per run (:func:`build_once`), read-only.

    Yields ``(analysis, erosion calls)``; afterwards, checks that no test
    changed the rows.
    """
    analysis, calls = build_once(
        tmp_path_factory, f"analysis-{sample}", lambda _: _analyse_sample(sample)
    )
    _freeze(analysis)
    rows = copy.deepcopy(analysis.nodules)
    yield analysis, calls
    assert analysis.nodules == rows, f"a test changed the shared {sample} analysis' rows"


@pytest.fixture(scope="session")
def t1_run(tmp_path_factory):
    """``(analysis, erosion calls)`` of ``sample_data/t1_axial``, default options, once."""
    with _shared_analysis(tmp_path_factory, "t1_axial") as run:
        yield run


@pytest.fixture(scope="session")
def dixon_run(tmp_path_factory):
    """``(analysis, erosion calls)`` of ``sample_data/dixon``, default options, once."""
    with _shared_analysis(tmp_path_factory, "dixon") as run:
        yield run


@pytest.fixture(scope="session")
def t1_analysis(t1_run):
    """The analysis of ``sample_data/t1_axial`` (default options; read-only arrays)."""
    return t1_run[0]


@pytest.fixture(scope="session")
def dixon_analysis(dixon_run):
    """The analysis of ``sample_data/dixon`` (default options; read-only arrays)."""
    return dixon_run[0]


def _analyse_t1_with_patient(root: Path) -> Path:
    """``backmice analyze`` of a copy of the T1 sample with :data:`PATIENT`; the result folder."""
    from backmice.cli import main

    study = root / "t1_axial"
    shutil.copytree(SAMPLES / "t1_axial", study)
    for path in study.rglob("*.dcm"):
        ds = pydicom.dcmread(path)
        ds.PatientName, ds.PatientID, ds.PatientBirthDate = PATIENT
        ds.save_as(path)
    out = root / "out"
    assert main(["analyze", str(study), "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="session")
def t1_cli_result(tmp_path_factory) -> Path:
    """``backmice analyze`` of the T1 sample into a result folder, once per run.

    The study is a copy of ``sample_data/t1_axial`` (same folder name) whose
    files carry the distinctive patient :data:`PATIENT`, so the same run serves
    the command line's tests and the privacy tests. Read it, do not change it
    (the xdist workers share it: :func:`build_once`).
    """
    return build_once(tmp_path_factory, "t1-cli", _analyse_t1_with_patient)
