"""The package's metadata: its license, its files and the libraries it imports.

Checked from the repository's own files (``pyproject.toml``, ``LICENSE`` and the
sources), so a fresh clone answers without building a wheel.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
PROJECT = PYPROJECT["project"]

# Modules whose distribution name differs from what the environment maps them to,
# or that come with another declared package (napari brings vispy, Qt comes
# through qtpy, pydicom-data installs the module ``data``...).
_PROVIDED_BY = {
    "qtpy": "qtpy",
    "PyQt5": "pyqt5",
    "vispy": "napari",
    "superqt": "napari",
    "app_model": "napari",
    "psygnal": "napari",
    "dask": "dask",
    "distributed": "dask",
    "pytest": "pytest",
    "pytestqt": "pytest-qt",
    "hypothesis": "hypothesis",
    "atheris": "atheris",
}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(spec: str) -> str:
    return _normalise(re.split(r"[\s<>=!~;\[(@]", spec, maxsplit=1)[0])


def _declared() -> set[str]:
    names = {_requirement_name(s) for s in PROJECT["dependencies"]}
    for extra in PROJECT.get("optional-dependencies", {}).values():
        names |= {_requirement_name(s) for s in extra}
    return names


def _imported_modules(folder: Path) -> set[str]:
    modules: set[str] = set()
    for path in folder.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_license_file_matches_the_declared_license():
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert text.startswith("BSD 3-Clause License")
    # PEP 639: the SPDX expression replaces license classifiers; both would disagree.
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_project_files_a_user_looks_for_exist():
    for name in ("README.md", "LICENSE", "CHANGELOG.md", "CONTRIBUTING.md", "CITATION.cff"):
        assert (ROOT / name).is_file(), name
    assert {"Homepage", "Documentation", "Issues"} <= set(PROJECT["urls"])
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    assert "license: BSD-3-Clause" in cff
    assert f"version: {PROJECT['version']}" in cff


def test_python_versions_agree():
    assert PROJECT["requires-python"] == ">=3.11"
    assert "Programming Language :: Python :: 3.11" in PROJECT["classifiers"]
    assert "Python 3.11 or newer" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("folder", ["src/backmice", "plugins/napari_backmice"])
def test_every_imported_library_is_declared(folder):
    own = {"backmice", "napari_backmice"}
    third_party = {
        m for m in _imported_modules(ROOT / folder) if m not in sys.stdlib_module_names
    } - own
    dists = packages_distributions()
    declared = _declared()
    missing = []
    for module in sorted(third_party):
        candidates = {_normalise(d) for d in dists.get(module, [])}
        if module in _PROVIDED_BY:
            candidates.add(_normalise(_PROVIDED_BY[module]))
        if not candidates:
            candidates = {_normalise(module)}
        if not candidates & declared:
            missing.append(f"{module} ({', '.join(sorted(candidates))})")
    assert not missing, f"imported in {folder} but not in pyproject.toml: {missing}"
