-- Listings, allowlist, audit history and the change serial.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO meta (key, value) VALUES ('serial', '1');

CREATE TABLE listings (
    id         INTEGER PRIMARY KEY,
    subject    TEXT NOT NULL,      -- canonical text: 198.51.100.7, 203.0.113.0/24, evil.example
    family     INTEGER NOT NULL,   -- 4, 6, or 0 for a domain
    cause      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    listed_at  REAL NOT NULL,      -- seconds since the epoch, UTC
    expires_at REAL,               -- NULL: until removed
    UNIQUE (subject, cause, source)
);
CREATE INDEX listings_expires ON listings (expires_at);
CREATE INDEX listings_cause ON listings (cause);

CREATE TABLE allow (
    id         INTEGER PRIMARY KEY,
    subject    TEXT NOT NULL,
    family     INTEGER NOT NULL,
    note       TEXT NOT NULL,
    source     TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL,
    UNIQUE (subject, source)
);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      REAL NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,         -- list, delist, allow, unallow, import
    subject TEXT NOT NULL,
    cause   TEXT,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_subject ON audit (subject);
