"""The annotation store: one SQLite database per project (see ``docs/store.md``).

Open a project with :meth:`Project.open`, add analysed studies, read their
nodules, labels and fascia, and record what each reader does.
"""

from __future__ import annotations

from backmice.store._schema import SCHEMA_VERSION
from backmice.store.project import (
    DB_NAME,
    Action,
    Event,
    NotAProjectError,
    PendingAction,
    Project,
    ReaderState,
    StoreError,
    StudyRecord,
)

__all__ = [
    "DB_NAME",
    "SCHEMA_VERSION",
    "Action",
    "Event",
    "NotAProjectError",
    "PendingAction",
    "Project",
    "ReaderState",
    "StoreError",
    "StudyRecord",
]
