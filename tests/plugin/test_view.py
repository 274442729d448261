"""``backmice view PATH --screenshot FILE``: the whole window, with the labels, as a PNG."""

from __future__ import annotations

import colorsys
import os
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.gui


def _hues(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = rgb.reshape(-1, 3).astype(float) / 255.0
    hsv = np.array([colorsys.rgb_to_hsv(*p) for p in flat[:: max(1, len(flat) // 200_000)]])
    return hsv[:, 0], hsv[:, 1]


@pytest.mark.slow
def test_screenshot_shows_the_study_and_its_labels(t1_study, tmp_path):
    from PIL import Image

    from napari_backmice._analyze import FASCIA_COLOUR

    out = tmp_path / "shot.png"
    env = {**os.environ, "BACKMICE_CACHE": os.environ["BACKMICE_CACHE"]}
    result = subprocess.run(
        [sys.executable, "-m", "backmice", "view", str(t1_study), "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rgb = np.asarray(Image.open(out).convert("RGB"))
    assert rgb.shape[0] >= 600 and rgb.shape[1] >= 1000  # the whole window, not the canvas
    # Not blank: the MR image spans the grey range.
    grey = rgb.mean(axis=2)
    assert grey.std() > 20
    assert np.percentile(grey, 99) > 180
    # The labels show: the fascia's orange contour and the nodules' colours
    # (the MR itself is grey, so saturated pixels come from the overlays).
    hue, sat = _hues(rgb)
    fascia_hue = colorsys.rgb_to_hsv(*FASCIA_COLOUR[:3])[0]
    orange = (np.abs(hue - fascia_hue) < 0.03) & (sat > 0.6)
    assert orange.sum() > 200
    others = (np.abs(hue - fascia_hue) > 0.08) & (sat > 0.35)
    assert others.sum() > 200  # nodule labels (and the green body outline)


def test_view_without_images_is_bad_input(tmp_path):
    (tmp_path / "notes.txt").write_text("nothing to see")
    result = subprocess.run(
        [sys.executable, "-m", "backmice", "view", str(tmp_path), "--screenshot", "x.png"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "no DICOM images" in result.stderr
