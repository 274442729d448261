"""The public surface: one exception hierarchy, vocabularies in one module, old paths kept."""

from __future__ import annotations

import inspect

import pytest

from backmice import errors, vocab


def test_every_exception_derives_from_backmice_error():
    classes = [
        c for _, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__
    ]
    assert len(classes) >= 8
    for cls in classes:
        assert issubclass(cls, errors.BackmiceError), cls
    # What callers caught before still catches them.
    assert issubclass(errors.GeometryError, ValueError)
    assert issubclass(errors.PlacementError, RuntimeError)
    assert issubclass(errors.NotAProjectError, errors.InputError)
    assert issubclass(errors.NotAProjectError, errors.StoreError)


def test_old_import_paths_are_the_same_classes():
    from backmice.io.geometry import GeometryError
    from backmice.phantom import PlacementError
    from backmice.phantom.lesions import PlacementError as PlacementError2
    from backmice.segment import Method
    from backmice.segment.fat import Method as Method2
    from backmice.store import NotAProjectError, StoreError

    assert GeometryError is errors.GeometryError
    assert PlacementError is PlacementError2 is errors.PlacementError
    assert StoreError is errors.StoreError and NotAProjectError is errors.NotAProjectError
    assert Method is Method2 is vocab.Method


def test_vocabulary_values_are_what_files_hold():
    assert [str(m) for m in vocab.Method] == ["t1", "dixon", "inout"]
    assert str(vocab.UltrasoundMethod.ULTRASOUND) == "ultrasound"
    assert {str(m) for m in vocab.Modality} >= {"MR", "US", "SEG", "SR"}
    from backmice.batch import ULTRASOUND

    assert ULTRASOUND == "ultrasound" and ULTRASOUND is vocab.UltrasoundMethod.ULTRASOUND


def test_store_error_names_the_file():
    exc = errors.StoreError("the disk is full", path="/p/backmice.db", code="SQLITE_FULL")
    assert str(exc) == "/p/backmice.db: the disk is full" and exc.code == "SQLITE_FULL"
    with pytest.raises(errors.BackmiceError):
        raise exc


def test_top_level_names():
    import backmice
    from backmice.analysis import AnalysisOptions
    from backmice.notebook import analyze
    from backmice.ultrasound import analyze_ultrasound

    for name in backmice.__all__:
        assert getattr(backmice, name) is not None, name
    assert set(backmice.__all__) <= set(dir(backmice))
    assert backmice.analyze is analyze
    assert backmice.analyze_ultrasound is analyze_ultrasound
    assert backmice.AnalysisOptions is AnalysisOptions
    assert backmice.Method is vocab.Method and backmice.StoreError is errors.StoreError
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = backmice.nothing
