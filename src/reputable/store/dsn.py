"""Which back-end a ``store.dsn`` names, and opening it."""

from __future__ import annotations

from pathlib import Path

from reputable.core.errors import ConfigError
from reputable.store.sqlite import SQLiteStore, SQLStore

SQLITE_PREFIX = "sqlite:///"
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def is_postgres(dsn: str) -> bool:
    """True when *dsn* names a PostgreSQL database."""
    return dsn.startswith(POSTGRES_PREFIXES)


def shown(dsn: str) -> str:
    """Return *dsn* as it may be printed: a PostgreSQL password becomes ``***``."""
    if is_postgres(dsn):
        from reputable.store.postgres import redact

        return redact(dsn)
    return dsn


def open_dsn(dsn: str) -> SQLStore:
    """Open (and migrate) the store *dsn* names: ``sqlite:///FILE`` or ``postgresql://...``."""
    if dsn.startswith(SQLITE_PREFIX):
        path = Path(dsn.removeprefix(SQLITE_PREFIX))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(path)
    if is_postgres(dsn):
        from reputable.store.postgres import PostgresStore

        return PostgresStore(dsn)
    raise ConfigError(
        f"store.dsn {shown(dsn)!r}: use sqlite:///FILE or postgresql://USER:PASSWORD@HOST/DB"
    )
