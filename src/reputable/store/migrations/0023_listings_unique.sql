-- Issue 16: the listings' key (subject, cause, source) as a named unique index, listings_unique.
-- It was a UNIQUE constraint inside CREATE TABLE (0001), whose automatic index cannot be
-- dropped; a bulk load into an empty or near-empty table now inserts without it and builds
-- it once at the end (store/bulk.py: 2.5 s less CPU per 1M rows). SQLite cannot drop a
-- constraint, so the table is rebuilt with the same ids and indexes. PostgreSQL runs
-- 0023_listings_unique.postgres.sql instead (drop the constraint, add the index).
CREATE TABLE listings_new (
    id         INTEGER PRIMARY KEY,
    subject    TEXT NOT NULL,
    family     INTEGER NOT NULL,
    cause      TEXT NOT NULL,
    reason     TEXT NOT NULL,
    source     TEXT NOT NULL,
    listed_at  REAL NOT NULL,
    expires_at REAL
);
INSERT INTO listings_new (id, subject, family, cause, reason, source, listed_at, expires_at)
    SELECT id, subject, family, cause, reason, source, listed_at, expires_at FROM listings;
DROP TABLE listings;
ALTER TABLE listings_new RENAME TO listings;
CREATE UNIQUE INDEX listings_unique ON listings (subject, cause, source);
CREATE INDEX listings_expires ON listings (expires_at);
CREATE INDEX listings_cause ON listings (cause);
CREATE INDEX listings_source ON listings (source);
CREATE INDEX listings_ranges ON listings (family) WHERE instr(subject, '/') > 0;
