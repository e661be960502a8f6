-- Evidence (one fact each), the shared-hosting map, policy periods and delisting requests.
CREATE TABLE evidence (
    id          INTEGER PRIMARY KEY,
    key         TEXT NOT NULL UNIQUE,     -- idempotency key: the same fact counts once
    subject     TEXT NOT NULL,            -- as observed: 198.51.100.7, 2001:db8::1, evil.example
    target      TEXT NOT NULL,            -- what is scored: the IP, its IPv6 /64, or the domain
    cause       TEXT NOT NULL,
    source      TEXT NOT NULL,
    observed_at REAL NOT NULL,
    weight      REAL NOT NULL,
    domain      TEXT,                     -- related domain (sending or hosted domain)
    detail      TEXT NOT NULL             -- JSON object
);
CREATE INDEX evidence_target ON evidence (target);
CREATE INDEX evidence_subject ON evidence (subject);
CREATE INDEX evidence_domain ON evidence (domain);

CREATE TABLE hosting (
    ip     TEXT NOT NULL,
    domain TEXT NOT NULL,
    PRIMARY KEY (ip, domain)
);
CREATE INDEX hosting_domain ON hosting (domain);

-- One row per listing period the policy made: recidivism looks back at these.
CREATE TABLE policy_periods (
    id        INTEGER PRIMARY KEY,
    subject   TEXT NOT NULL,
    cause     TEXT NOT NULL,
    listed_at REAL NOT NULL,
    min_until REAL NOT NULL,              -- no delisting before this (minimum time, recidivism)
    ends_at   REAL NOT NULL,
    ended_by  TEXT                         -- NULL while open; 'decay', 'request', 'operator'
);
CREATE INDEX policy_periods_subject ON policy_periods (subject, cause);

CREATE TABLE delist_requests (
    id         INTEGER PRIMARY KEY,
    subject    TEXT NOT NULL,
    contact    TEXT NOT NULL,
    note       TEXT NOT NULL,
    created_at REAL NOT NULL,
    status     TEXT NOT NULL,              -- pending, granted, denied
    decided_at REAL,
    decided_by TEXT,
    why        TEXT
);
CREATE INDEX delist_requests_subject ON delist_requests (subject);

CREATE TABLE cursors (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
