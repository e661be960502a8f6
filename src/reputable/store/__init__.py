"""Storage: SQLite (default), PostgreSQL, memory; schema migrations."""
