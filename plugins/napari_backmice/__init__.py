"""napari plugin for backmice (npe2 manifest ``backmice``; see ``docs/user_guide.md``).

Contributions (``napari.yaml``): the DICOM reader (:mod:`._reader`), the
sample studies (:mod:`._sample_data`), the NIfTI and DICOM SEG writers
(:mod:`._writer`) and the Analyze, Review, Edit and Measure widgets, which
share one :class:`._state.ViewerState` per viewer. Every layer lives in one
world, DICOM patient coordinates in mm with the axis order reversed to
(z, y, x) (:mod:`._layers`). ``backmice view`` is :mod:`._view`.

Nothing is imported here, so napari can list the plugin without loading Qt.
"""

__all__: list[str] = []
