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


def test_npe2_validate_with_imports_passes():
    # What CI runs: `npe2 validate backmice --imports` imports every python_name.
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "backmice", "--imports"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout


def test_manifest_contributes_reader_writer_samples_and_widgets():
    manifest = PluginManifest.from_distribution("backmice")
    contributions = manifest.contributions
    assert [r.command for r in contributions.readers] == ["backmice.get_reader"]
    assert contributions.readers[0].accepts_directories
    writers = {w.command for w in contributions.writers}
    assert writers == {"backmice.write_labels", "backmice.write_seg"}
    assert {s.key for s in contributions.sample_data} == {"t1_axial", "dixon", "us"}
    names = {w.display_name for w in contributions.widgets}
    assert {"Analyze", "Measure"} <= names
