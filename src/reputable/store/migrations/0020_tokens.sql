-- API tokens: only a SHA-256 digest of each secret is kept; revoked tokens stay for the audit.
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY,
    digest     TEXT NOT NULL UNIQUE,      -- hex SHA-256 of the secret
    scopes     TEXT NOT NULL,             -- space-separated: evidence:write admin bouncer
    created_at REAL NOT NULL,
    revoked_at REAL                       -- NULL while valid
);
