-- Imported feeds: their definitions and the state of their last syncs (issue 5).
CREATE TABLE feeds (
    name          TEXT PRIMARY KEY,        -- listings and evidence carry source 'feed:NAME'
    url           TEXT NOT NULL,           -- file:///path, http:// or https://
    kind          TEXT NOT NULL,           -- drop, plain, urlhaus, phishtank, openphish, csv
    refresh       REAL NOT NULL,           -- seconds between syncs
    options       TEXT NOT NULL,           -- JSON: CSV column mapping, broad
    created_at    REAL NOT NULL,
    etag          TEXT,                    -- validators of the last good download
    last_modified TEXT,
    content_hash  TEXT,
    last_attempt  REAL,
    last_success  REAL,                    -- last good sync (304 included)
    last_error    TEXT,                    -- NULL once a sync succeeds again
    entries       INTEGER NOT NULL DEFAULT 0
);
