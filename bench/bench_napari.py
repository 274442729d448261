"""napari plugin timings: open a 512x512x160 study, the threshold preview, one re-measure.

Run under a display (Xvfb in CI or on a server)::

    xvfb-run -a python bench/bench_napari.py [--slices 160] [--size 512] [--repeat 5] [--dir DIR]

1. **open**: the plugin's reader on the series folder (``get_reader`` header scan
   plus ``load``) and ``viewer.add_image`` with the first draw of the canvas;
   the series is the one ``bench_load.py`` writes (int16, shuffled names), kept
   in ``--dir`` when given.
2. **threshold preview**, on a phantom T1 study of the same size (the one
   ``bench_analysis.py`` writes: body, fat, muscle, nodules):
   the fat score, once per stack, as the Analyze widget's background worker
   computes it (:func:`backmice.preview.fat_score`: body mask, N4, fat score);
   then one slider move (threshold the current 512x512 slice with
   :func:`backmice.preview.threshold_slice`, update the overlay layer and draw
   it) and one move to another slice, each timed up to the drawn canvas
   (target: under 100 ms a change).
3. **re-measure after an edit**: paint a 5x5 voxel patch onto a nodule of the
   ``t1_axial`` sample's analysis and re-measure it (``backmice.edit.Editor``;
   ``measure_nodules`` of all nodules when that is not available), as the Edit
   widget does on every stroke (target: under 1 s).

Prints a table of medians and minima (seconds) over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _draw(viewer) -> None:
    """Process pending events and paint the canvas now."""
    from qtpy.QtWidgets import QApplication

    QApplication.processEvents()
    viewer.window._qt_viewer.canvas._scene_canvas.render()


def bench_open(folder: Path, repeat: int) -> list[float]:
    import napari

    from napari_backmice._reader import get_reader

    times = []
    for _ in range(repeat):
        viewer = napari.Viewer(show=True)
        t0 = time.perf_counter()
        reader = get_reader(str(folder))
        for data, kwargs, _ in reader(str(folder)):
            viewer.add_image(data, **kwargs)
        _draw(viewer)
        times.append(time.perf_counter() - t0)
        viewer.close()
    return times


def bench_preview(study: Path, repeat: int) -> tuple[list[float], list[float], list[float]]:
    """(fat score once, per slider move, per slice move) seconds on ``study``."""
    import napari

    from backmice.preview import fat_score
    from napari_backmice._analyze import AnalyzeWidget
    from napari_backmice._reader import read_study

    viewer = napari.Viewer(show=True)
    (data, kwargs, _), *_ = read_study(str(study))
    viewer.add_image(data, **kwargs)
    widget = AnalyzeWidget(viewer)
    t0 = time.perf_counter()
    score = fat_score(str(study))  # what the widget's background worker runs
    once = [time.perf_counter() - t0]
    widget._on_score(score)
    widget.preview_button.setChecked(True)
    middle = data.shape[0] // 2
    viewer.dims.set_current_step(0, middle)
    _draw(viewer)
    values = iter(np.linspace(20, 80, repeat + 1).round().astype(int))
    next(values)

    def move_slider() -> None:
        widget.slider.setValue(int(next(values)))
        _draw(viewer)

    steps = iter(range(1, repeat + 1))

    def move_slice() -> None:
        viewer.dims.set_current_step(0, middle + next(steps))
        _draw(viewer)

    slider = _timed(move_slider, repeat)
    slices = _timed(move_slice, repeat)
    viewer.close()
    return once, slider, slices


def bench_remeasure(repeat: int, cache: Path) -> tuple[list[float], str]:
    import os

    os.environ.setdefault("BACKMICE_CACHE", str(cache))
    from backmice.analysis import analyze
    from napari_backmice._sample_data import sample_dir

    analysis = analyze(sample_dir("t1_axial"))
    nodule = analysis.nodules[0]["nodule_id"]
    ks, rs, cs = np.nonzero(analysis.labels == nodule)
    k = int(np.median(ks))
    rows = rs[ks == k]
    r = int(np.median(rows))
    c_edge = int(cs[(ks == k) & (rs == r)].max())
    # A 5x4 patch just beyond the nodule's edge: painted on odd runs, erased on even
    # runs, so every run is a real change of the nodule.
    patch = np.zeros(analysis.labels.shape, dtype=bool)
    patch[k, r - 2 : r + 3, c_edge + 1 : c_edge + 5] = True
    try:
        from backmice.edit import Editor
    except ImportError:
        Editor = None
    if Editor is not None:
        editor = Editor.from_analysis(analysis)
        turn = iter(range(repeat))

        def edit() -> None:
            change = editor.paint(patch, nodule if next(turn) % 2 == 0 else 0)
            assert nodule in change.measured, change

        return _timed(edit, repeat), "Editor.paint"

    from backmice.analysis import _grid
    from backmice.measure.nodules import SiteMaps, measure_nodules

    affine, _, calibrated = _grid(analysis.volume)
    fat = analysis.fat
    site = SiteMaps(
        signed_fascia_mm=analysis.fascia.signed_mm,
        skin_depth_mm=analysis.body.depth_mm,
        image=fat.image,
        subcutaneous=analysis.subcutaneous,
        fat=fat.mask & analysis.body.mask,
        midline_x_mm=None,
        fat_fraction=fat.fat_fraction,
    )
    labels = analysis.labels.copy()

    def remeasure() -> None:
        labels[patch] = nodule
        measure_nodules(labels, affine, site, calibrated=calibrated)

    return _timed(remeasure, repeat), "measure_nodules (all)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=160, help="slices of the series (160)")
    parser.add_argument("--size", type=int, default=512, help="rows = columns (512)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each (5)")
    parser.add_argument("--dir", type=Path, help="keep the generated series here")
    args = parser.parse_args(argv)

    from bench_analysis import prepare
    from bench_load import _ensure_series

    with tempfile.TemporaryDirectory() as tmp:
        root = args.dir or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        folder = _ensure_series(root, args.slices, args.size)
        shape = f"{args.slices}x{args.size}x{args.size}"
        t1, _ = prepare(
            root / f"t1_{shape}",
            shape=(args.slices, args.size, args.size),
            spacing=(1.0, 0.8, 0.8),
            seed=0,
        )
        once, slider, slices = bench_preview(t1, args.repeat)
        rows = [
            (f"open {shape} in the viewer", bench_open(folder, max(1, min(args.repeat, 3)))),
            (f"fat score for the preview, once per stack ({shape} T1)", once),
            (f"threshold preview: slider move, one {args.size}x{args.size} slice", slider),
            (f"threshold preview: move to another slice, {args.size}x{args.size}", slices),
        ]
        remeasure, how = bench_remeasure(args.repeat, root / "samples")
        rows.append((f"re-measure after a paint edit ({how}, t1_axial)", remeasure))
    width = max(len(name) for name, _ in rows)
    print(f"\n{'what':<{width}}  {'median s':>9}  {'min s':>7}  runs")
    for name, times in rows:
        median = statistics.median(times)
        print(f"{name:<{width}}  {median:>9.3f}  {min(times):>7.3f}  {len(times)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
