"""The database schema and its migrations (``PRAGMA user_version``).

``MIGRATIONS[v]`` turns a version-``v`` database into version ``v + 1``; version
0 is an empty file. Each step runs in its own transaction, so an interrupted
migration leaves the database at the last complete version. A step is only ever
appended, never changed once released: the tests keep a frozen copy of every
earlier schema and migrate it.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]

_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE studies (
    key       TEXT PRIMARY KEY,
    source    TEXT,
    study_uid TEXT,
    method    TEXT,
    units     TEXT NOT NULL DEFAULT 'mm',
    shape     TEXT NOT NULL,          -- JSON [slice, row, col]
    affine    TEXT NOT NULL,          -- JSON 4x4, index -> LPS mm
    params    TEXT NOT NULL,          -- JSON: analysis parameters
    fascia    BLOB,                   -- zlib(float16) signed distance, mm
    added     TEXT NOT NULL,          -- ISO 8601 UTC
    added_by  TEXT
);
CREATE TABLE stacks (
    study       TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    position    INTEGER NOT NULL,     -- 0: the analysed stack
    series_uid  TEXT NOT NULL,
    role        TEXT NOT NULL,
    description TEXT,
    shape       TEXT NOT NULL,        -- JSON
    spacing_mm  TEXT NOT NULL,        -- JSON, null where unknown
    affine      TEXT,                 -- JSON 4x4
    PRIMARY KEY (study, position)
);
CREATE TABLE nodules (
    study     TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    nodule_id INTEGER NOT NULL,
    row       TEXT NOT NULL,          -- JSON: the SPEC row as measured
    box       TEXT NOT NULL,          -- JSON [k0, r0, c0, k1, r1, c1]
    mask      BLOB NOT NULL,          -- zlib(packbits(mask[box]))
    PRIMARY KEY (study, nodule_id)
);
CREATE TABLE reviews (
    study     TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    nodule_id INTEGER NOT NULL,
    reader    TEXT NOT NULL,
    status    TEXT NOT NULL DEFAULT 'candidate',
    subtype   TEXT,
    note      TEXT,
    updated   TEXT NOT NULL,
    event     INTEGER NOT NULL,       -- the event that last changed it
    PRIMARY KEY (study, nodule_id, reader)
);
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    study     TEXT,
    reader    TEXT,
    at        TEXT NOT NULL,
    action    TEXT NOT NULL,
    nodule_id INTEGER,
    before    TEXT,                   -- JSON
    after     TEXT                    -- JSON
);
CREATE INDEX events_study ON events(study, id);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the event log is append-only'); END;
"""

#: v2: each reader's own geometry. ``nodule_edits`` holds a reader's mask and
#: re-measured row of a nodule (``edit``), a nodule they added (``added``) or
#: removed from their view (``deleted``); ``fascia_edits`` their corrected signed
#: fascia map (append-only: the latest per reader wins, older ones are history).
_V2 = """
CREATE TABLE nodule_edits (
    study     TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    nodule_id INTEGER NOT NULL,
    reader    TEXT NOT NULL,
    kind      TEXT NOT NULL CHECK (kind IN ('edit', 'added', 'deleted')),
    row       TEXT,                   -- JSON SPEC row (null when deleted)
    box       TEXT,                   -- JSON [k0, r0, c0, k1, r1, c1]
    mask      BLOB,                   -- zlib(packbits(mask[box]))
    updated   TEXT NOT NULL,
    event     INTEGER NOT NULL,
    PRIMARY KEY (study, nodule_id, reader)
);
CREATE TABLE fascia_edits (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    study      TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    reader     TEXT NOT NULL,
    map        BLOB NOT NULL,         -- zlib(float16) signed distance, mm
    correction TEXT,                  -- JSON: what the reader drew (points, region)
    updated    TEXT NOT NULL,
    event      INTEGER NOT NULL
);
CREATE INDEX fascia_edits_study ON fascia_edits(study, reader, id);
INSERT OR REPLACE INTO meta (key, value) VALUES ('reader_edits', 'nodule_edits, fascia_edits');
"""

#: v3: the maps an analysis measured its nodules with (skin depth, image, fat
#: mask, fat share or fraction; ``backmice.measure.nodules.SiteMaps``), exactly,
#: so an edited mask is re-measured as the analysis measures (the scalars,
#: midline and reference signal, are in ``studies.params``). A study imported
#: from a result folder has none.
_V3 = """
CREATE TABLE site_maps (
    study TEXT NOT NULL REFERENCES studies(key) ON DELETE CASCADE,
    name  TEXT NOT NULL,              -- a SiteMaps field
    dtype TEXT NOT NULL,              -- numpy dtype.str, or 'bool' (packed bits)
    data  BLOB NOT NULL,              -- zlib of the array's bytes, study grid
    PRIMARY KEY (study, name)
);
"""

#: Every migration step, in order: ``MIGRATIONS[v]`` takes version v to v + 1.
MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)

#: The schema version this backmice writes.
SCHEMA_VERSION = len(MIGRATIONS)
