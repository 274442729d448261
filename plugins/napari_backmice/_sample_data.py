"""npe2 sample data: the bundled sample studies, written at run time and read back.

The package cannot carry the repository's ``sample_data/`` folder (see
``NOTES.md``), so each sample is rendered once with
:func:`backmice.phantom.samples.write_sample` (seed 0, as committed) into a
cache folder and read with the plugin's reader from there.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

from backmice import __version__, open_study
from backmice.phantom.samples import write_sample

from ._reader import LayerData, study_layers

__all__ = ["dixon", "sample_dir", "sample_layers", "t1_axial", "us"]

log = logging.getLogger(__name__)


def _cache_root() -> Path:
    """``$BACKMICE_CACHE`` or the user cache folder (platformdirs), per backmice version."""
    env = os.environ.get("BACKMICE_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("backmice")) / "samples" / __version__


def sample_dir(name: str, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """The folder of sample ``name``, written on first use.

    Parameters
    ----------
    name : str
        A sample name (``backmice sample list``).
    cache : path-like, optional
        Where samples are kept; default :func:`_cache_root`.

    Returns
    -------
    Path
        A study folder with the DICOM files and ``truth.json``.
    """
    root = Path(cache) if cache is not None else _cache_root()
    target = root / name
    if (target / "truth.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    # Render into a temporary sibling and rename, so an interrupted write never
    # leaves a half study that would be taken for a complete one.
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=root))
    try:
        write_sample(name, tmp, seed=0, overwrite=True)
        if target.exists():
            shutil.rmtree(target)
        tmp.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("sample %s written to %s", name, target)
    return target


def sample_layers(name: str) -> list[LayerData]:
    """Layer data tuples of sample ``name`` (written to the cache first if needed)."""
    return study_layers(open_study(sample_dir(name)))


def t1_axial() -> list[LayerData]:
    """The ``t1_axial`` sample: a 2D axial T1 of the lower back with back mice."""
    return sample_layers("t1_axial")


def dixon() -> list[LayerData]:
    """The ``dixon`` sample: 2D axial Dixon fat and water."""
    return sample_layers("dixon")


def us() -> list[LayerData]:
    """The ``us`` sample: a B-mode frame over the episacroiliac lipoma, in mm."""
    return sample_layers("us")
