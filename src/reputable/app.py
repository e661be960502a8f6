"""Composition root: the only place (with cli/ and testing.py) that wires concrete parts."""

from __future__ import annotations

from pathlib import Path

from reputable.config import Config
from reputable.core.errors import ConfigError
from reputable.listings.ports import ListingStore
from reputable.listings.rules import Limits
from reputable.store.sqlite import SQLiteStore


def open_store(config: Config) -> ListingStore:
    """Open the store named by ``store.dsn`` (SQLite by default), migrating it if needed."""
    dsn = config.store_dsn
    if dsn.startswith("sqlite:///"):
        path = Path(dsn.removeprefix("sqlite:///"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return SQLiteStore(path)
    raise ConfigError(f"store.dsn {dsn!r}: this build supports sqlite:///FILE only")


def limits(config: Config) -> Limits:
    """Return the listing breadth limits of *config*."""
    return Limits(max_prefix_v4=config.max_prefix_v4, max_prefix_v6=config.max_prefix_v6)
