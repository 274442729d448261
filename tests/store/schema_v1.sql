-- The backmice store's schema v1, frozen as released (commit f9f89fe).
-- Never edit: tests/store/test_migration.py builds a v1 database from it.
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
PRAGMA application_id = 1112369507;
PRAGMA user_version = 1;
