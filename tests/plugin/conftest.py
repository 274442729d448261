"""GUI tests of the napari plugin: a display and napari/Qt are needed.

pytest-xvfb starts a virtual display (Xvfb) for the session. Where napari, Qt
or a display is missing the GUI tests are skipped on a developer's machine,
but when the ``CI`` environment variable is set that is a FAILURE: GUI tests
must run in CI, never be skipped there silently.

Sample studies are written once per session into a temporary cache
(``BACKMICE_CACHE``), not into the user's cache.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

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
    """Write sample studies into a session folder, not the user's cache."""
    old = os.environ.get("BACKMICE_CACHE")
    os.environ["BACKMICE_CACHE"] = str(tmp_path_factory.mktemp("backmice-samples"))
    yield
    if old is None:
        os.environ.pop("BACKMICE_CACHE", None)
    else:
        os.environ["BACKMICE_CACHE"] = old


@pytest.fixture(scope="session")
def t1_study(_sample_cache):
    """The t1_axial sample study folder, as the plugin's sample data finds it.

    The committed ``sample_data/t1_axial`` is copied into the session's cache
    first (``tests/phantom/test_sample_data.py`` checks it is what the generator
    writes), so ``sample_dir`` takes its cached path instead of rendering the
    phantom again; the dixon and us samples still go through the rendering path.
    """
    from napari_backmice._sample_data import sample_dir

    cached = Path(os.environ["BACKMICE_CACHE"]) / "t1_axial"
    # A test that opened the sample before (File > Open Sample) has rendered it there.
    if not cached.exists():
        shutil.copytree(SAMPLES / "t1_axial", cached)
    return sample_dir("t1_axial")
