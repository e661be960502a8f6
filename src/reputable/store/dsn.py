"""Which back-end a ``store.dsn`` names, and opening it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from reputable.core import log
from reputable.core.errors import ConfigError
from reputable.store.sqlite import SQLiteStore, SQLStore

if TYPE_CHECKING:
    from reputable.config import Config

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


def open_store(config: Config, *, read_only: bool = False) -> SQLStore:
    """Open the store named by ``store.dsn`` (SQLite by default, or PostgreSQL), migrating it.

    *read_only* callers (commands that only show things) never create the file or its folder:
    a missing store is shown as an empty one (in memory), with a warning that names it.
    """
    dsn = config.store_dsn
    if dsn.startswith("sqlite:///"):
        path = Path(dsn.removeprefix("sqlite:///"))
        if read_only and not path.is_file():
            log.warning(
                "store_missing",
                path=path,
                hint="nothing recorded yet, showing an empty store; check --config or data_dir",
            )
            return SQLiteStore(":memory:")
    return open_dsn(dsn)
