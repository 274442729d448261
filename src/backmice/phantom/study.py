"""Write a phantom as a DICOM study: MR series and ultrasound files, plus ``truth.json``.

A study is a folder with one sub-folder per series (``01_t1_ax/``, ...) and
``truth.json`` at the top. UIDs are derived from the study name and the seed,
so the same call writes the same files.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.uid import generate_uid

from backmice.io.writer import write_series, write_ultrasound
from backmice.phantom.render import Grid, acquire, quantities_for, render
from backmice.phantom.scene import Scene
from backmice.phantom.tissues import Contrast
from backmice.phantom.truth import truth_document, write_truth
from backmice.phantom.ultrasound import UltrasoundPlane, render_ultrasound, ultrasound_truth

__all__ = [
    "SERIES_DEFAULTS",
    "MRSeries",
    "StudyWritten",
    "UltrasoundSeries",
    "phantom_uid",
    "write_study",
]

log = logging.getLogger(__name__)

_T1_TAGS = {"ScanningSequence": "SE", "RepetitionTime": 550.0, "EchoTime": 12.0}
_T2FS_TAGS = {
    "ScanningSequence": "SE",
    "SequenceVariant": "SK",
    "ScanOptions": "FS",
    "RepetitionTime": 4200.0,
    "EchoTime": 90.0,
    "EchoTrainLength": 16,
}
_DIXON_TAGS = {
    "ScanningSequence": "GR",
    "SequenceVariant": "SP",
    "RepetitionTime": 7.2,
    "EchoTime": 2.4,
    "FlipAngle": 10.0,
    "EchoTrainLength": 2,
}

#: Per contrast: (SeriesDescription, ImageType, folder suffix, acquisition tags).
SERIES_DEFAULTS: dict[Contrast, tuple[str, tuple[str, ...], str, dict[str, Any]]] = {
    Contrast.T1: ("T1 TSE AX", ("ORIGINAL", "PRIMARY", "M", "NONE"), "t1", _T1_TAGS),
    Contrast.T2_FATSAT: (
        "T2 TSE FS AX",
        ("ORIGINAL", "PRIMARY", "M", "NONE"),
        "t2_fs",
        _T2FS_TAGS,
    ),
    Contrast.DIXON_FAT: (
        "T1 DIXON AX F",
        ("DERIVED", "PRIMARY", "DIXON", "FAT"),
        "dixon_fat",
        _DIXON_TAGS,
    ),
    Contrast.DIXON_WATER: (
        "T1 DIXON AX W",
        ("DERIVED", "PRIMARY", "DIXON", "WATER"),
        "dixon_water",
        _DIXON_TAGS,
    ),
    Contrast.DIXON_IN: (
        "T1 DIXON AX IN",
        ("ORIGINAL", "PRIMARY", "DIXON", "IN_PHASE"),
        "dixon_in",
        _DIXON_TAGS,
    ),
    Contrast.DIXON_OUT: (
        "T1 DIXON AX OPP",
        ("ORIGINAL", "PRIMARY", "DIXON", "OUT_PHASE"),
        "dixon_opp",
        _DIXON_TAGS,
    ),
}


def phantom_uid(*parts: object) -> str:
    """A UID determined by its parts (pydicom's root + a hash), for reproducible studies."""
    return str(generate_uid(entropy_srcs=["backmice.phantom", *map(str, parts)]))


@dataclass(frozen=True)
class MRSeries:
    """One MR series to write.

    Attributes
    ----------
    contrast : Contrast
    grid : Grid
        Series with the same grid object are rendered together.
    snr : float or None
        See :func:`backmice.phantom.render.acquire`.
    bias : float
        Coil bias field strength.
    rescale : (float, float) or None
        ``(slope, intercept)`` to store with; None stores rounded values as is.
    description : str or None
        SeriesDescription; default from :data:`SERIES_DEFAULTS`.
    coil : dict or None
        Shape of the coil field (keyword arguments of
        :func:`~backmice.phantom.render.coil_bias`); None for the default.
    """

    contrast: Contrast
    grid: Grid
    snr: float | None = 30.0
    bias: float = 1.0
    rescale: tuple[float, float] | None = None
    description: str | None = None
    coil: dict[str, float] | None = None


@dataclass(frozen=True)
class UltrasoundSeries:
    """One ultrasound file to write: a probe position and how many frames."""

    plane: UltrasoundPlane
    frames: int = 1
    description: str = "US BACK TRANS"


@dataclass
class StudyWritten:
    """What :func:`write_study` wrote.

    Attributes
    ----------
    path : Path
        The study folder.
    files : list of Path
        Every DICOM file, in series order.
    truth_path : Path
        The ``truth.json``.
    truth : dict
        Its content.
    """

    path: Path
    files: list[Path]
    truth_path: Path
    truth: dict[str, Any] = field(repr=False)


def write_study(
    scene: Scene,
    out_dir: str | Path,
    *,
    name: str,
    mr: Sequence[MRSeries] = (),
    ultrasound: Sequence[UltrasoundSeries] = (),
    shuffle: bool = False,
    overwrite: bool = False,
) -> StudyWritten:
    """Render and write a study with ground truth.

    Parameters
    ----------
    scene : Scene
    out_dir : str or Path
        The study folder (created).
    name : str
        Study name: goes into the UIDs, StudyDescription and ``truth.json``.
    mr, ultrasound : sequences
        What to write, in this order (series numbers 1, 2, ...).
    shuffle : bool
        Random file names and InstanceNumbers (MR series).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    StudyWritten
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    seed = scene.seed
    study_uid = phantom_uid(name, seed, "study")
    for_uid = phantom_uid(name, seed, "frame-of-reference")
    patient_name, patient_id = "PHANTOM^BACKMICE", f"BM-{name.upper()}-{seed}"
    study_tags = {"StudyDescription": f"backmice phantom {name} (seed {seed})"}
    files: list[Path] = []
    series_truth: list[dict[str, Any]] = []
    grids: dict[str, Grid] = {}

    # Render each distinct grid once, with every quantity its series need.
    rendered: dict[int, Any] = {}
    wanted: dict[int, set[str]] = {}
    for s in mr:
        wanted.setdefault(id(s.grid), set()).update(quantities_for(s.contrast))
    number = 0
    for s in mr:
        number += 1
        key = id(s.grid)
        if key not in rendered:
            rendered[key] = render(scene, s.grid, quantities=tuple(sorted(wanted[key])))
        image = acquire(rendered[key], s.contrast, snr=s.snr, bias=s.bias, seed=seed, coil=s.coil)
        desc, image_type, folder, tags = SERIES_DEFAULTS[s.contrast]
        desc = s.description or desc
        series_uid = phantom_uid(name, seed, "series", number)
        slope, intercept = s.rescale if s.rescale else (None, None)
        folder_path = out / f"{number:02d}_{folder}"
        paths = write_series(
            image,
            folder_path,
            affine=s.grid.affine,
            modality="MR",
            series_description=desc,
            image_type=image_type,
            slice_thickness=s.grid.slice_thickness_mm,
            rescale_slope=slope,
            rescale_intercept=intercept,
            bits_stored=12 if s.rescale is None else 16,
            study_uid=study_uid,
            series_uid=series_uid,
            frame_of_reference_uid=for_uid,
            series_number=number,
            shuffle=shuffle,
            seed=seed,
            extra_tags={**tags, **study_tags},
            overwrite=overwrite,
            patient_name=patient_name,
            patient_id=patient_id,
        )
        files.extend(paths)
        grids[series_uid] = s.grid
        series_truth.append(
            {
                "series_number": number,
                "series_uid": series_uid,
                "folder": folder_path.name,
                "modality": "MR",
                "contrast": str(s.contrast),
                "description": desc,
                "image_type": list(image_type),
                "shape": list(s.grid.shape),
                "spacing_mm": [round(v, 6) for v in s.grid.spacing_mm],
                "slice_thickness_mm": round(s.grid.thickness_mm, 6),
                "affine": [[round(float(v), 6) for v in row] for row in s.grid.affine],
                "n_files": len(paths),
                "snr": s.snr,
                "bias": s.bias,
                "rescale": list(s.rescale) if s.rescale else None,
                "shuffled": shuffle,
                "supersampled_fraction": round(rendered[key].mixed_fraction, 4),
            }
        )
        if s.coil is not None:
            series_truth[-1]["coil"] = {k: round(float(v), 3) for k, v in s.coil.items()}
        log.info("wrote %s (%d files) to %s", desc, len(paths), folder_path)

    us_truth: list[dict[str, Any]] = []
    for u in ultrasound:
        number += 1
        frame = render_ultrasound(scene, u.plane, frames=u.frames, seed=seed + number)
        series_uid = phantom_uid(name, seed, "series", number)
        folder_path = out / f"{number:02d}_us"
        path = write_ultrasound(
            frame.image,
            folder_path / ("US_CINE.dcm" if u.frames > 1 else "US_0001.dcm"),
            region=frame.region,
            delta_mm=u.plane.delta_mm,
            frame_time_ms=1000.0 / 28.0 if u.frames > 1 else None,
            study_uid=study_uid,
            series_uid=series_uid,
            series_number=number,
            series_description=u.description,
            seed=seed,
            extra_tags={"BurnedInAnnotation": "YES", **study_tags},
            overwrite=overwrite,
            patient_name=patient_name,
            patient_id=patient_id,
        )
        files.append(path)
        entry = {
            "series_number": number,
            "series_uid": series_uid,
            "folder": folder_path.name,
            "modality": "US",
            "description": u.description,
            "frames": u.frames,
            "frame_shape": list(frame.image.shape[1:]),
            "n_files": 1,
        }
        series_truth.append(entry)
        us_truth.append({"series_uid": series_uid, **ultrasound_truth(scene, frame)})
        log.info("wrote ultrasound (%d frame(s)) to %s", u.frames, path)

    doc = truth_document(
        scene,
        sample=name,
        series=series_truth,
        grids=grids,
        extra={"study_uid": study_uid, "frame_of_reference_uid": for_uid, "ultrasound": us_truth},
    )
    truth_path = write_truth(doc, out / "truth.json")
    return StudyWritten(out, files, truth_path, doc)
