"""npe2 reader: a DICOM folder, file or DICOMDIR → one image layer per stack.

The reader claims a path only when :func:`backmice.open_study` finds image
stacks there, from headers alone; for anything else it returns None, so
napari asks the next reader. A single file is first checked for the DICOM
preamble (``DICM`` at byte 128) without parsing it, which keeps the claim fast
for the images, tables and archives users drop on the viewer.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from backmice.errors import BackmiceError, InputError
from backmice.io import Role, Stack, Study, load, open_study

from ._layers import image_layer_data, layer_name

__all__ = ["analysed_stack", "get_reader", "read_study", "study_layers"]

log = logging.getLogger(__name__)

LayerData = tuple[Any, dict, str]
ReaderFunction = Callable[[str | Sequence[str]], list[LayerData]]


def _looks_like_dicom(path: Path) -> bool:
    """A DICOM preamble (``DICM`` at 128), a DICOMDIR, or a ``.dcm`` name."""
    if path.name.upper() == "DICOMDIR" or path.suffix.lower() in (".dcm", ".dicom"):
        return True
    try:
        with path.open("rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _open(path: str | os.PathLike[str]) -> Study | None:
    path = Path(path)
    if path.is_file() and not _looks_like_dicom(path):
        return None
    if not (path.is_file() or path.is_dir()):
        return None
    try:
        study = open_study(path)
    except InputError:
        return None
    # A folder of NIfTI files that are not images of a known role (an analysis'
    # labels.nii.gz and fascia.nii.gz) is left to napari's other readers.
    if not any(
        s.role.is_image and (s.nifti is None or s.role is not Role.OTHER) for s in study.stacks
    ):
        return None
    return study


def study_layers(study: Study) -> list[LayerData]:
    """Layer data tuples of every image stack of an opened study.

    Parameters
    ----------
    study : Study
        From :func:`backmice.open_study`.

    Returns
    -------
    list of (data, kwargs, "image")
        One per image stack, named ``role: description`` (a number is added
        when two stacks would share a name), in the world of
        :mod:`napari_backmice._layers`. ``metadata["study_path"]`` is the path.
        When the study has a stack the analysis would take
        (:func:`analysed_stack`), only that layer is visible (the others are
        one click away in the layer list), and its ``metadata["analysed"]`` is
        True; otherwise every layer is visible.
    """
    layers: list[LayerData] = []
    names: set[str] = set()
    main = analysed_stack(study)
    for stack in study.stacks:
        if not stack.role.is_image:
            continue
        name = layer_name(stack)
        if name in names:
            name = f"{name} ({stack.series_number or len(names) + 1})"
        names.add(name)
        data, kwargs, kind = image_layer_data(load(stack), name=name)
        kwargs["metadata"]["study_path"] = str(study.path)
        if main is not None:
            kwargs["visible"] = kwargs["metadata"]["analysed"] = stack is main
        layers.append((data, kwargs, kind))
    return layers


def analysed_stack(study: Study) -> Stack | None:
    """The stack ``backmice analyze`` would measure on (from headers), or None.

    The T1, the Dixon fat image or the in-phase echo
    (:func:`backmice.analysis.choose`); None for a study it would not analyse
    (ultrasound, no usable MR stack), or with a single image stack (nothing to hide).
    """
    if sum(1 for s in study.stacks if s.role.is_image) < 2:
        return None
    from backmice.analysis import choose

    try:
        return choose(study).stacks[0]
    except BackmiceError:
        return None


def read_study(path: str | Sequence[str]) -> list[LayerData]:
    """Read a DICOM folder, file or DICOMDIR (or several) into layer data tuples."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    layers: list[LayerData] = []
    for p in paths:
        study = open_study(p)
        layers.extend(study_layers(study))
    return layers


def get_reader(path: str | Sequence[str]) -> ReaderFunction | None:
    """npe2 ``reader`` command: the read function if ``path`` holds DICOM images, else None."""
    paths = [path] if isinstance(path, str | os.PathLike) else list(path)
    if not paths:
        return None
    studies = [_open(p) for p in paths]
    if any(s is None for s in studies):
        return None

    def _read(_path: str | Sequence[str]) -> list[LayerData]:
        out: list[LayerData] = []
        for study in studies:
            out.extend(study_layers(study))  # type: ignore[arg-type]
        return out

    return _read
