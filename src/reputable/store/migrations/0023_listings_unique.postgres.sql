-- Issue 16 on PostgreSQL (SQLite: 0023_listings_unique.sql): the listings' key becomes the named
-- unique index listings_unique, as on SQLite. ON CONFLICT (subject, cause, source) works with
-- either; the bulk path here is COPY and keeps the index.
ALTER TABLE listings DROP CONSTRAINT listings_subject_cause_source_key;
CREATE UNIQUE INDEX listings_unique ON listings (subject, cause, source);
