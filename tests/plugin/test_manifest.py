"""The napari plugin's npe2 manifest is installed and valid (no napari or display needed)."""

from __future__ import annotations

from importlib.metadata import entry_points

from npe2 import PluginManifest


def test_manifest_is_found_through_the_entry_point():
    eps = entry_points(group="napari.manifest")
    ours = [ep for ep in eps if ep.name == "backmice"]
    assert [ep.value for ep in ours] == ["napari_backmice:napari.yaml"]


def test_manifest_is_valid_and_named_like_the_distribution():
    manifest = PluginManifest.from_distribution("backmice")
    # napari drops a plugin whose manifest name differs from the distribution name.
    assert manifest.name == "backmice"
    manifest.validate_imports()
    for command in manifest.contributions.commands or []:
        assert command.id.startswith("backmice.")
