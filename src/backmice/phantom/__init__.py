"""Synthetic lower-back studies with exact ground truth.

The phantom is an analytic model of an axial section of the lower back at the
sacroiliac level, in LPS millimetres (:mod:`~backmice.phantom.anatomy`), with
lesions placed relative to the deep fascia (:mod:`~backmice.phantom.lesions`).
It is rendered on any voxel grid with partial volume, bias field and Rician
noise (:mod:`~backmice.phantom.render`), or as B-mode ultrasound
(:mod:`~backmice.phantom.ultrasound`), written as DICOM with a ``truth.json``
(:mod:`~backmice.phantom.study`, :mod:`~backmice.phantom.truth`), and offered
as named samples (:mod:`~backmice.phantom.samples`). See ``docs/phantom.md``.
The same nodules, with the same truth, can be drawn into a real study
(:mod:`~backmice.phantom.insert`, ``docs/insert.md``).

Typical use::

    from backmice.phantom import write_sample
    written = write_sample("t1_axial", "out/t1_axial", seed=0)
    written.truth["lesions"][0]["core_volume_mm3"]
"""

from __future__ import annotations

from backmice.phantom.lesions import Lesion, LesionKind, PlacementError, Relation
from backmice.phantom.render import Grid, Rendered, acquire, coil_bias, render
from backmice.phantom.samples import (
    SAMPLES,
    Sample,
    get_sample,
    sample_names,
    sample_scene,
    write_sample,
)
from backmice.phantom.scene import Scene, make_scene
from backmice.phantom.shapes import Ellipsoid
from backmice.phantom.study import MRSeries, StudyWritten, UltrasoundSeries, write_study
from backmice.phantom.tissues import Contrast, Tissue
from backmice.phantom.truth import TRUTH_SCHEMA_VERSION, lesion_truth, read_truth
from backmice.phantom.ultrasound import UltrasoundPlane, plane_over, render_ultrasound

__all__ = [
    "SAMPLES",
    "TRUTH_SCHEMA_VERSION",
    "Contrast",
    "Ellipsoid",
    "Grid",
    "Lesion",
    "LesionKind",
    "MRSeries",
    "PlacementError",
    "Relation",
    "Rendered",
    "Sample",
    "Scene",
    "StudyWritten",
    "Tissue",
    "UltrasoundPlane",
    "UltrasoundSeries",
    "acquire",
    "coil_bias",
    "get_sample",
    "lesion_truth",
    "make_scene",
    "plane_over",
    "read_truth",
    "render",
    "render_ultrasound",
    "sample_names",
    "sample_scene",
    "write_sample",
    "write_study",
]
