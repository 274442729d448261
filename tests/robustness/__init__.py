"""Robustness tests: hostile DICOM, strange folders (see docs/robustness.md)."""

import tempfile
from pathlib import Path

from hypothesis.configuration import set_hypothesis_home_dir

# Even with database=None, hypothesis caches constants it finds in the code under
# ``.hypothesis/`` of the working directory: keep that out of the repository.
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "backmice-hypothesis")
