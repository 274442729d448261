"""What the widgets docked in one viewer share.

The Analyze widget produces an :class:`~backmice.analysis.Analysis`; the Review,
Edit and Measure widgets work on it. They never reach into each other: each
asks :func:`state_for` for the viewer's :class:`ViewerState` and connects to its
signals.

Layer names are shared conventions (the ``LAYER_*`` constants), so a widget
finds the layers another one made.
"""

from __future__ import annotations

import weakref
from typing import Any

from psygnal import Signal

__all__ = [
    "LAYER_BODY",
    "LAYER_FASCIA",
    "LAYER_NODULES",
    "LAYER_PREVIEW",
    "ViewerState",
    "camera",
    "state_for",
]

#: Labels layer, one label per nodule (label value = ``nodule_id``).
LAYER_NODULES = "nodules"
#: The fascia, as an editable layer (see the Edit widget for its representation).
LAYER_FASCIA = "fascia"
#: The body / skin outline.
LAYER_BODY = "body outline"
#: The live fat-threshold overlay on the current slice.
LAYER_PREVIEW = "fat preview"


def camera(viewer: Any) -> Any:
    """The viewer's camera: ``viewer.scene.camera`` since napari 0.9 (``viewer.camera``,
    deprecated there, before)."""
    scene = getattr(viewer, "scene", None)
    found = getattr(scene, "camera", None)
    return found if found is not None else viewer.camera


class ViewerState:
    """The study, analysis and review session of one viewer.

    Attributes
    ----------
    study_path : str or None
        What was opened (folder, file or DICOMDIR).
    analysis : backmice.analysis.Analysis or None
        The latest finished analysis.
    session : object or None
        The review session (store-backed) built on the analysis, if any.
    """

    #: Emitted with the Analysis when an analysis finishes.
    analysis_ready = Signal(object)
    #: Emitted with a nodule_id (or None) when the selected nodule changes.
    nodule_selected = Signal(object)
    #: Emitted when nodule rows changed (after an edit, a re-measure or a review action).
    nodules_changed = Signal()

    def __init__(self) -> None:
        self.study_path: str | None = None
        self.analysis: Any = None
        self.session: Any = None

    def set_analysis(self, analysis: Any) -> None:
        """Make ``analysis`` current and tell every widget."""
        self.analysis = analysis
        self.analysis_ready.emit(analysis)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def state_for(viewer: Any) -> ViewerState:
    """The shared state of ``viewer`` (created on first use)."""
    try:
        return _STATES[viewer]
    except KeyError:
        state = _STATES[viewer] = ViewerState()
        return state
