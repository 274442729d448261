"""Red flags on synthetic nodules with known interiors: each published criterion, and
partial volume that must not raise any."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from backmice.measure.nodules import SiteMaps, measure_nodules, suggest_subtype
from backmice.measure.red_flags import apply_checks, deep_check, flags_with_values, size_check
from backmice.report.write import write_csv, write_json
from backmice.vocab import COLUMNS, RedFlag, Relation, Subtype


def _nodule(*, septum_px: int = 0, ball_mm: float = 0.0):
    """A 40x24 mm ellipsoidal fat nodule (1 mm voxels) with a septum or a solid ball inside."""
    z, y, x = np.mgrid[:20, :60, :80].astype(float)
    core = ((x - 40) / 20) ** 2 + ((y - 30) / 12) ** 2 + ((z - 10) / 8) ** 2 <= 1
    fat = core.copy()
    if septum_px:
        fat &= ~(np.abs(x - 40) <= (septum_px - 1) / 2)  # a plane across the nodule
    if ball_mm:
        fat &= ~(((x - 46) ** 2 + (y - 30) ** 2 + (z - 10) ** 2) <= ball_mm**2)
    labels = fat.astype(np.uint32)
    shape = fat.shape
    site = SiteMaps(
        signed_fascia_mm=np.full(shape, 10.0, np.float32),
        skin_depth_mm=np.full(shape, 8.0, np.float32),
        image=np.where(fat, 1.0, 0.2).astype(np.float32),
        subcutaneous=~core,
        fat=fat | ~core,
        midline_x_mm=None,
    )
    site.image[~core] = 1.0
    return labels, site


@pytest.mark.parametrize(
    ("septum_px", "ball_mm", "thick", "nonfat"),
    [(0, 0.0, False, False), (1, 0.0, False, False), (3, 0.0, True, False), (0, 6.0, False, True)],
)
def test_thick_septa_and_nonfat_component(septum_px, ball_mm, thick, nonfat):
    labels, site = _nodule(septum_px=septum_px, ball_mm=ball_mm)
    (row,) = measure_nodules(labels, np.eye(4), site)
    flags = set(filter(None, row["red_flags"].split(";")))
    assert (str(RedFlag.THICK_SEPTA) in flags) is thick, flags
    assert (str(RedFlag.NONFAT_COMPONENT) in flags) is nonfat, flags


def _site(fat: np.ndarray, image: np.ndarray, *, fascia_mm: float = 10.0) -> SiteMaps:
    """Maps for a synthetic nodule: everything outside it is subcutaneous fat of signal 1."""
    return SiteMaps(
        signed_fascia_mm=np.full(fat.shape, fascia_mm, np.float32),
        skin_depth_mm=np.full(fat.shape, 8.0, np.float32),
        image=image.astype(np.float32),
        subcutaneous=fat & (image >= 1.0),
        fat=fat,
        midline_x_mm=None,
    )


def _checks(row: dict) -> dict[str, dict]:
    return {c["flag"]: c for c in row["red_flag_criteria"]}


def _ellipsoid(shape, centre, semi):
    z, y, x = np.mgrid[: shape[0], : shape[1], : shape[2]].astype(float)
    return sum(((g - c) / s) ** 2 for g, c, s in zip((z, y, x), centre, semi, strict=True)) <= 1


@pytest.mark.parametrize(("length_mm", "flagged"), [(120.0, True), (60.0, False)])
def test_size_over_10cm(length_mm, flagged):
    """A 12 cm lipoma (2 mm voxels) is flagged for size; a 6 cm one is not (no more size>50mm)."""
    core = _ellipsoid((16, 24, 70), (8, 12, 35), (5, 8, length_mm / 4))
    site = _site(np.ones(core.shape, bool), np.ones(core.shape))
    (row,) = measure_nodules(core.astype(np.uint32), np.diag([2.0, 2.0, 2.0, 1.0]), site)
    size = _checks(row)[str(RedFlag.SIZE_OVER_100MM)]
    assert size["met"] is flagged and size["value"] == pytest.approx(length_mm, abs=3.0)
    assert size["threshold"] == 100.0 and size["unit"] == "mm"
    assert size["criterion"] == "lesion larger than 10 cm" and "Kransdorf" in size["source"]
    assert (row["red_flags"] == "size>100mm") is flagged, row["red_flags"]
    assert "size>50mm" not in row["red_flags"]
    assert (row["suggested_subtype"] == "liposarcoma_suspected") is flagged


@pytest.mark.parametrize(
    ("pixel_mm", "septum_mm", "flagged"),
    [(0.75, 3.0, True), (0.75, 1.5, False), (1.0, 1.0, False), (0.5, 2.5, True)],
)
def test_septum_over_2mm(pixel_mm, septum_mm, flagged):
    """A septum across a 40 mm nodule is flagged when over 2 mm, and its width is measured."""
    n = round(60 / pixel_mm)
    z, y, x = (
        np.mgrid[:12, :n, :n].astype(float)
        * np.array([2.0, pixel_mm, pixel_mm])[:, None, None, None]
    )
    core = ((x - 30) / 20) ** 2 + ((y - 30) / 12) ** 2 + ((z - 12) / 10) ** 2 <= 1
    # A plane oblique to the pixel grid, septum_mm thick.
    septum = np.abs(x - 30 + 0.3 * (y - 30)) / np.hypot(1, 0.3) < septum_mm / 2
    fat = ~(core & septum)
    image = np.where(fat, 1.0, 0.2)
    labels = (core & fat).astype(np.uint32)
    affine = np.diag([2.0, pixel_mm, pixel_mm, 1.0])
    (row,) = measure_nodules(labels, affine, _site(fat, image))
    septa = _checks(row)[str(RedFlag.THICK_SEPTA)]
    assert septa["met"] is flagged, septa
    # Measured across the line (it runs obliquely), within a pixel.
    assert septa["value"] == pytest.approx(septum_mm, abs=pixel_mm), septa
    assert (str(RedFlag.THICK_SEPTA) in row["red_flags"].split(";")) is flagged


def test_globular_nonfat_area_and_fat_share():
    """A 12 mm non-fat globule in a 40 mm lipoma is nodular; one of 26 mm leaves under 75 % fat."""
    shape = (40, 60, 80)
    core = _ellipsoid(shape, (20, 30, 40), (16, 16, 22))
    for radius, under_75 in ((6.0, False), (13.0, True)):
        ball = _ellipsoid(shape, (20, 30, 42), (radius, radius, radius))
        fat = ~(core & ball)
        (row,) = measure_nodules(
            (core & fat).astype(np.uint32), np.eye(4), _site(fat, np.where(fat, 1.0, 0.2))
        )
        checks = _checks(row)
        nodular = checks[str(RedFlag.NONFAT_COMPONENT)]
        assert nodular["met"] and nodular["value"] == pytest.approx(2 * radius, abs=1.5)
        share = checks[str(RedFlag.FAT_UNDER_75PCT)]
        truth = 1 - ball.sum() / core.sum()
        assert share["value"] == pytest.approx(truth, abs=0.03)
        assert share["met"] is under_75, share
        assert row["suggested_subtype"] == "liposarcoma_suspected"


def test_partial_volume_rim_and_sliver_are_not_flagged():
    """Partial-volume voxels at a nodule's edge, or a sliver made only of them, are not not_fat."""
    shape = (8, 40, 60)
    # A flat nodule in 3 slices: the end slices and the rim are partial volume.
    core = _ellipsoid(shape, (4, 20, 30), (1.5, 6, 20))
    interior = ndimage.binary_erosion(core, structure=np.ones((3, 3, 3), bool))
    image = np.ones(shape)
    image[core & ~interior] = 0.45
    fat = np.ones(shape, bool)
    (row,) = measure_nodules(core.astype(np.uint32), np.eye(4), _site(fat, image))
    assert row["fat_signal_ratio"] < 0.75  # the whole nodule's median: partial volume
    not_fat = _checks(row)[str(RedFlag.NOT_FAT)]
    assert not not_fat["met"] and not_fat["value"] == pytest.approx(1.0)
    assert row["red_flags"] == ""
    # A curved sliver two pixels thick over dark muscle: no interior, nothing judged.
    y, x = np.mgrid[:40, :60]
    arc = np.abs(np.hypot(y - 45, x - 30) - 30) < 1.0
    sliver = np.zeros(shape, bool)
    sliver[2:6] = arc & (y < 30)
    muscle = np.zeros(shape, bool)
    muscle[:, :, :] = np.hypot(y - 45, x - 30) < 29
    image = np.where(muscle, 0.2, 1.0)
    image[sliver] = 0.5
    (row,) = measure_nodules(sliver.astype(np.uint32), np.eye(4), _site(~muscle, image))
    checks = _checks(row)
    assert checks[str(RedFlag.NOT_FAT)]["value"] is None
    assert "partial volume" in checks[str(RedFlag.NOT_FAT)]["note"]
    assert row["red_flags"] == "", row["red_flags"]


def test_a_nodule_that_is_not_fat_is_flagged_and_not_called_liposarcoma():
    core = _ellipsoid((12, 30, 30), (6, 15, 15), (4, 8, 8))
    image = np.where(core, 0.3, 1.0)
    (row,) = measure_nodules(
        core.astype(np.uint32), np.eye(4), _site(np.ones(core.shape, bool), image)
    )
    assert row["red_flags"] == "not_fat"
    assert _checks(row)["not_fat"]["value"] == pytest.approx(0.3)
    assert row["suggested_subtype"] == "other"


@pytest.mark.parametrize(
    ("flags", "liposarcoma"),
    [
        ([RedFlag.DEEP_EXTENSION], False),
        ([RedFlag.SIZE_OVER_50MM], False),
        ([RedFlag.NOT_FAT], False),
        ([RedFlag.FAT_UNDER_75PCT], True),
        ([RedFlag.DEEP_EXTENSION, RedFlag.THICK_SEPTA], True),
    ],
)
def test_liposarcoma_only_on_the_published_criteria(flags, liposarcoma):
    got = suggest_subtype(Relation.TRANSFASCIAL, red_flags=flags)
    assert (got is Subtype.LIPOSARCOMA_SUSPECTED) is liposarcoma


def test_nodules_json_names_each_criterion_and_its_value(tmp_path):
    labels, site = _nodule(septum_px=3)
    rows = measure_nodules(labels, np.eye(4), site)
    write_json(tmp_path / "nodules.json", rows)
    write_csv(tmp_path / "nodules.csv", rows)
    (nodule,) = json.loads((tmp_path / "nodules.json").read_text())["nodules"]
    criteria = {c["flag"]: c for c in nodule["red_flag_criteria"]}
    assert set(criteria) == {str(f) for f in RedFlag} - {"size>50mm"}
    septa = criteria["thick_septa"]
    assert septa["met"] and septa["criterion"] == "septa thicker than 2 mm"
    assert septa["value"] == pytest.approx(3.0) and septa["unit"] == "mm"
    assert septa["liposarcoma_criterion"] and "Knebel" in septa["source"]
    assert septa["length_mm"] >= 10.0
    assert not criteria["deep_extension"]["liposarcoma_criterion"]
    # The CSV keeps the SPEC columns only.
    header = (tmp_path / "nodules.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)


def test_flags_with_values_for_people():
    row = {
        "red_flags": "thick_septa;fat<75%;size>50mm",
        "red_flag_criteria": [
            {"flag": "thick_septa", "value": 3.04, "unit": "mm"},
            {"flag": "fat<75%", "value": 0.62, "unit": "ratio"},
        ],
    }
    assert flags_with_values(row) == "thick_septa 3.0 mm; fat<75% 0.62; size>50mm"


def test_apply_checks_rechecks_size_and_depth_keeping_the_rest():
    """A redrawn mask re-checks the size (the old size>50mm goes) and keeps the image's flags."""
    row = {
        "red_flags": "thick_septa;size>50mm",
        "red_flag_criteria": [{"flag": "thick_septa", "met": True, "value": 3.2}],
    }
    got = apply_checks(row, [size_check(120.0), deep_check(-20.0)])
    assert got["red_flags"] == "size>100mm;thick_septa;deep_extension"
    criteria = {c["flag"]: c for c in got["red_flag_criteria"]}
    assert criteria["thick_septa"]["value"] == 3.2  # kept: it needs the image
    assert criteria["size>100mm"]["value"] == 120.0 and criteria["size>100mm"]["met"]
    assert criteria["deep_extension"]["value"] == -20.0
    assert apply_checks(row, [size_check(60.0)])["red_flags"] == "thick_septa"
    # Uncalibrated: a size in pixels never raises the flag.
    assert not size_check(500.0, calibrated=False).met
