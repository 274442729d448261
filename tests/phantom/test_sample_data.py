"""The committed sample_data/ is what the generator writes today.

Headers (UIDs included) must be identical, except the fields that name the
pydicom version that wrote them. Pixels may differ by one stored unit, and at
most one pixel in 10 000 by more: float rounding in another numpy build can
move a supersampling point across a tissue boundary. If numpy changes its
random streams, this test fails: regenerate sample_data/ as its README says.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pydicom
import pytest

from backmice.phantom import SAMPLES, read_truth

SAMPLE_DATA = Path(__file__).resolve().parents[2] / "sample_data"
COMMITTED = [name for name, sample in SAMPLES.items() if sample.committed]
#: Elements that record the software version, not the content.
VERSION_FIELDS = {"SoftwareVersions", "ImplementationClassUID", "ImplementationVersionName"}

pytestmark = pytest.mark.skipif(
    not SAMPLE_DATA.is_dir(), reason="sample_data/ is not in this checkout"
)


def _close(a, b, path="") -> list[str]:
    """Differences between two JSON values, floats compared to 1e-3."""
    if isinstance(a, dict) and isinstance(b, dict):
        if set(a) != set(b):
            return [f"{path}: keys {sorted(set(a) ^ set(b))}"]
        return [d for k in a for d in _close(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _close(x, y, f"{path}[{i}]")
        ]
    if isinstance(a, float) or isinstance(b, float):
        ok = (
            isinstance(a, int | float)
            and isinstance(b, int | float)
            and math.isclose(a, b, abs_tol=1e-3)
        )
        return [] if ok else [f"{path}: {a} != {b}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _elements(ds: pydicom.Dataset) -> dict:
    out = {}
    for elem in ds.iterall():
        if elem.keyword in VERSION_FIELDS or elem.keyword == "PixelData":
            continue
        out[(elem.tag, elem.VR)] = elem.value
    return out


@pytest.mark.parametrize("name", COMMITTED)
def test_committed_sample_matches_a_fresh_one(written, name):
    committed = SAMPLE_DATA / name
    fresh = written(name).path
    files = sorted(p.relative_to(committed) for p in committed.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    assert not (diff := _close(read_truth(committed), read_truth(fresh))), diff[:10]
    for rel in files:
        if rel.suffix == ".json":
            continue
        a, b = pydicom.dcmread(committed / rel), pydicom.dcmread(fresh / rel)
        ea, eb = _elements(a), _elements(b)
        assert ea.keys() == eb.keys(), rel
        changed = [k for k in ea if ea[k] != eb[k]]
        assert not changed, (rel, changed[:5])
        meta_a, meta_b = _elements(a.file_meta), _elements(b.file_meta)
        assert meta_a == meta_b, rel
        pa, pb = a.pixel_array.astype(np.int64), b.pixel_array.astype(np.int64)
        assert pa.shape == pb.shape, rel
        d = np.abs(pa - pb)
        assert (d > 1).mean() <= 1e-4, (rel, int(d.max()))


def test_sample_data_has_a_readme_for_every_sample():
    text = (SAMPLE_DATA / "README.md").read_text(encoding="utf-8")
    for name in COMMITTED:
        assert f"`{name}`" in text
    assert sum(p.stat().st_size for p in SAMPLE_DATA.rglob("*") if p.is_file()) < 6_000_000
