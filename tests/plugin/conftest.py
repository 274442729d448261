"""GUI tests of the napari plugin: a display and napari/Qt are needed.

pytest-xvfb starts a virtual display (Xvfb) for the session. Where napari, Qt
or a display is missing the GUI tests are skipped on a developer's machine,
but when the ``CI`` environment variable is set that is a FAILURE: GUI tests
must run in CI, never be skipped there silently.

Sample studies are written once per session into a temporary cache
(``BACKMICE_CACHE``), not into the user's cache. The committed samples are
copied there first (``tests/phantom/test_sample_data.py`` checks they are what
the generator writes), so only the others are rendered (``t1_oblique_iso``, in
``test_reader.py``, goes through the rendering path).
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.conftest import SAMPLES

CI = bool(os.environ.get("CI"))


def _gui_problem() -> str | None:
    try:
        import napari  # noqa: F401
        import qtpy.QtWidgets  # noqa: F401
    except Exception as exc:
        return f"napari/Qt cannot be imported: {type(exc).__name__}: {exc}"
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "no display (install Xvfb: pytest-xvfb starts it)"
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skip (locally) or fail (CI) a ``gui`` test when napari, Qt or a display is missing.

    A hook, not an autouse fixture: it must act before the session fixtures a
    GUI test asks for (pytest-qt's ``qapp``), since a QApplication without a
    display aborts the whole process.
    """
    if item.get_closest_marker("gui") is None:
        return
    problem = _gui_problem()
    if problem is None:
        return
    if CI:
        pytest.fail(f"GUI test cannot run in CI: {problem}", pytrace=False)
    pytest.skip(problem)


@pytest.fixture(scope="session", autouse=True)
def _sample_cache(tmp_path_factory):
    """Keep sample studies in a session folder (not the user's cache), the committed ones copied."""
    old = os.environ.get("BACKMICE_CACHE")
    cache = tmp_path_factory.mktemp("backmice-samples")
    for name in ("t1_axial", "dixon", "us"):
        shutil.copytree(SAMPLES / name, cache / name)
    os.environ["BACKMICE_CACHE"] = str(cache)
    yield
    if old is None:
        os.environ.pop("BACKMICE_CACHE", None)
    else:
        os.environ["BACKMICE_CACHE"] = old


@pytest.fixture(scope="session")
def t1_study(_sample_cache):
    """The t1_axial sample study folder as the plugin's sample data finds it (the committed one)."""
    from napari_backmice._sample_data import sample_dir

    return sample_dir("t1_axial")
