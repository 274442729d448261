"""A writer process for the reliability tests (run as a script, not collected by pytest).

``python writer_child.py DB READER N`` records N notes as READER on study ``s``
and prints ``<event id> <i>`` after each one is committed (flushed at once).
"""

from __future__ import annotations

import sys

from backmice.store import Action, Project


def main(db: str, reader: str, n: int) -> None:
    with Project.open(db, create=False) as project:
        for i in range(n):
            event = project.record(
                "s", Action.SET_NOTE, reader=reader, nodule_id=1 + i % 3, value=f"{reader}-{i}"
            )
            print(event.id, i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
