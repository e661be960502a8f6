-- Issue 12: webhooks. The listings the detector last saw (so each change becomes one event),
-- and the durable delivery queue: one row per event and endpoint, kept after delivery.
CREATE TABLE webhook_known (
    subject TEXT NOT NULL,
    cause   TEXT NOT NULL,
    PRIMARY KEY (subject, cause)
);

CREATE TABLE webhook_queue (
    id           INTEGER PRIMARY KEY,
    endpoint     TEXT NOT NULL,        -- [[webhooks]] name
    event        TEXT NOT NULL,        -- listed, delisted, removal_requested, removal_decided
    body         TEXT NOT NULL,        -- the exact JSON POSTed, its id included
    created_at   REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_at      REAL NOT NULL,        -- not before this
    delivered_at REAL,                 -- NULL until a 2xx answer
    dead_at      REAL,                 -- set when given up
    last_error   TEXT
);
CREATE INDEX webhook_queue_due ON webhook_queue (next_at) WHERE delivered_at IS NULL AND dead_at IS NULL;
