"""Shared fixtures: one phantom scene and the samples, each made once per session."""

from __future__ import annotations

import pytest

from backmice.phantom import make_scene, write_sample


@pytest.fixture(scope="session")
def scene():
    """The seed-0 phantom (the one the committed samples show)."""
    return make_scene(0)


@pytest.fixture(scope="session")
def redflag_scene():
    """The seed-0 phantom with the liposarcoma-like nodule."""
    return make_scene(0, red_flag=True)


@pytest.fixture(scope="session")
def written(tmp_path_factory):
    """Write a sample (seed 0, default options) once per session; returns its StudyWritten."""
    cache = {}

    def _get(name: str, *, shuffle: bool = False):
        key = (name, shuffle)
        if key not in cache:
            out = tmp_path_factory.mktemp(f"{name}{'_shuffled' if shuffle else ''}")
            cache[key] = write_sample(name, out, seed=0, shuffle=shuffle)
        return cache[key]

    return _get
