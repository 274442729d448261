"""Result folders to export: small synthetic ones with exact masks, and one real analysis."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from backmice.io import load, open_study
from backmice.io.writer import make_affine, rotation_matrix, write_series
from backmice.measure import measure_labels
from backmice.report.write import write_csv, write_json, write_nifti
from backmice.vocab import COLUMNS
from tests.conftest import ellipsoid

PATIENT_NAME = "Doe^Jane"
PATIENT_ID = "PID-8842-XQ"
BIRTH_DATE = "19700304"
#: What must never appear in tables, and nowhere at all with --anonymize.
SECRETS = (PATIENT_NAME, PATIENT_ID, BIRTH_DATE, "Doe", "Jane")


def make_result(
    folder: Path,
    *,
    shape: tuple[int, int, int] = (7, 40, 48),
    oblique: bool = True,
    enhanced: bool = False,
    study: str = "case01",
    dixon_one_series: bool = False,
    nonuniform: bool = False,
) -> Path:
    """A result folder like ``backmice analyze --out`` writes, over a fresh synthetic series.

    Three nodules (one of them a single slice thick), shuffled file names, an
    oblique geometry; rows measured from the masks, with reader edits on two.
    """
    rotation = rotation_matrix("x", 12.0) @ rotation_matrix("z", -7.0) if oblique else None
    affine = make_affine((3.0, 0.9, 0.85), origin=(-20.0, 35.5, 11.25), rotation=rotation)
    rng = np.random.default_rng(1)
    image = rng.integers(50, 400, size=shape).astype(np.float32)
    dicom = folder / "dicom"
    common = dict(
        affine=affine,
        patient_name=PATIENT_NAME,
        patient_id=PATIENT_ID,
        shuffle=not enhanced,
        enhanced=enhanced,
        extra_tags={"PatientBirthDate": BIRTH_DATE},
        seed=3,
    )
    if nonuniform:  # slices 3 mm apart, but one gap of 4.2 mm
        steps = np.array([0, 3, 6, 9, 13.2, 16.2, 19.2][: shape[0]])
        common["positions"] = affine[:3, 3] + steps[:, None] * affine[:3, 0] / 3.0
    role = "t1"
    if dixon_one_series:
        uid = "1.2.826.0.1.3680043.8.498.4242"
        for kind, scale in (("WATER", 0.3), ("FAT", 1.0)):
            write_series(
                image * scale,
                dicom / kind.lower(),
                series_description="T1 DIXON AX",
                image_type=("DERIVED", "PRIMARY", "DIXON", kind),
                series_uid=uid,
                **common,
            )
        role = "dixon_fat"
    else:
        write_series(image, dicom, series_description="T1 TSE AX", **common)
    stacks = open_study(dicom).stacks
    stack = next(s for s in stacks if str(s.role) == role)
    # Water's files listed first: the source must still be the analysed (fat) image.
    all_files = [p for s in sorted(stacks, key=lambda s: s.role != "dixon_water") for p in s.paths]
    volume = load(stack)
    labels = np.zeros(shape, dtype=np.uint32)
    labels[ellipsoid(shape, (2, 12, 14), (1.6, 6, 7))] = 1
    labels[ellipsoid(shape, (4, 26, 33), (2.2, 5, 4))] = 2
    labels[5, 30:34, 8:13] = 3  # one slice only
    out = folder / "result"
    rows = []
    for s in measure_labels(labels, volume.affine):
        row = dict.fromkeys(COLUMNS)
        x, y, z = (round(float(v), 3) for v in s.centroid_lps)
        row.update(
            study=study,
            series_uid=volume.series_uid,
            nodule_id=s.label,
            centroid_x_mm=x,
            centroid_y_mm=y,
            centroid_z_mm=z,
            volume_mm3=round(s.volume_mm3, 3),
            max_diameter_mm=round(s.max_diameter_mm, 3),
            long_axis_mm=round(s.long_axis_mm, 3),
            short_axis_mm=round(s.short_axis_mm, 3),
            axis_1_mm=round(float(s.axes_mm[0]), 3),
            axis_2_mm=round(float(s.axes_mm[1]), 3),
            axis_3_mm=round(float(s.axes_mm[2]), 3),
            fascia_offset_mm=round(4.2 - 3.1 * s.label, 3),
            fascia_min_mm=round(1.5 - 4 * s.label, 3),
            fascia_max_mm=round(9.25 - s.label, 3),
            skin_depth_mm=12.5 + s.label,
            midline_distance_mm=round(3.0 + 20 * s.label, 3),
            fat_signal_ratio=0.875,
            units="mm",
            status="candidate",
            red_flags="",
        )
        rows.append(row)
    rows[0].update(
        relation="subcutaneous",
        side="right",
        suggested_subtype="episacroiliac_lipoma",
        subtype="episacroiliac_lipoma",
        status="accepted",
        reader="anna",
        updated="2026-11-20T10:00:00+00:00",
    )
    rows[1].update(
        relation="transfascial",
        side="left",
        fat_fraction=0.912,
        suggested_subtype="liposarcoma_suspected",
        status="rejected",
        reader="anna",
        updated="2026-11-20T10:05:00+00:00",
        red_flags="thick_septa;fat<75%",
        red_flag_criteria=[
            {
                "flag": "thick_septa",
                "criterion": "septa thicker than 2 mm",
                "met": True,
                "value": 3.25,
                "threshold": 2.0,
                "unit": "mm",
            },
            {
                "flag": "fat<75%",
                "criterion": "lesion less than 75% fat",
                "met": True,
                "value": 0.62,
                "threshold": 0.75,
                "unit": "ratio",
            },
        ],
    )
    rows[2].update(relation="subfascial", side="midline", suggested_subtype="other")
    write_csv(out / "nodules.csv", rows)
    write_json(
        out / "nodules.json",
        rows,
        study=study,
        source_files=[str(p.resolve()) for p in all_files],
        method="t1",
        series=[
            {
                "series_uid": volume.series_uid,
                "role": role,
                "description": stack.description,
                "shape": list(shape),
                "spacing_mm": list(volume.spacing_mm),
            }
        ],
        units="mm",
        warnings=[],
    )
    write_nifti(out / "labels.nii.gz", labels.astype(np.uint16), volume.affine)
    fascia = np.linspace(-10, 10, labels.size, dtype=np.float32).reshape(shape)
    write_nifti(out / "fascia.nii.gz", fascia, volume.affine)
    return out


@pytest.fixture(scope="session")
def result_template(tmp_path_factory) -> Path:
    return make_result(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture
def result(result_template, tmp_path) -> Path:
    """A fresh copy of the synthetic result folder (its source DICOM stays shared)."""
    out = tmp_path / "result"
    shutil.copytree(result_template, out)
    return out
