"""The plugin uses no viewer attribute napari deprecates (0.9: camera, axes, overlays)."""

from __future__ import annotations

import re
from pathlib import Path

PLUGIN = Path(__file__).resolve().parents[2] / "plugins" / "napari_backmice"

#: ``viewer.<name>`` napari 0.9 deprecates, and what replaces it.
DEPRECATED = {
    "camera": "viewer.scene.camera (napari_backmice._state.camera)",
    "axes": "viewer.scene.overlays.axes",
    "floating_axes": "viewer.canvas.overlays.axes",
    "scale_bar": "viewer.canvas.overlays.scale_bar",
    "text_overlay": "viewer.canvas.overlays.text",
}


def test_no_deprecated_viewer_attributes():
    pattern = re.compile(r"\bviewer\.(" + "|".join(DEPRECATED) + r")\b")
    found = []
    for path in sorted(PLUGIN.glob("*.py")):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#", 1)[0]
            for m in pattern.finditer(code):
                if (path.name, m.group(1)) == ("_state.py", "camera"):
                    continue  # the helper itself, with its fallback for napari < 0.9
                name = m.group(1)
                found.append(f"{path.name}:{number}: viewer.{name} -> {DEPRECATED[name]}")
    assert not found, found


def test_camera_helper_prefers_the_scene_camera():
    from types import SimpleNamespace

    from napari_backmice._state import camera

    scene_camera, old_camera = object(), object()
    new = SimpleNamespace(scene=SimpleNamespace(camera=scene_camera), camera=old_camera)
    assert camera(new) is scene_camera
    assert camera(SimpleNamespace(camera=old_camera)) is old_camera
