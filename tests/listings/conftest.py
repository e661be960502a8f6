"""Fixtures shared by the listings tests: the default configuration and a fresh store."""

from __future__ import annotations

from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.store.sqlite import SQLStore


@pytest.fixture
def config(tmp_path: Path) -> Config:
    """The default configuration in a temporary folder."""
    return parse_config(DEFAULT_TOML, tmp_path / "reputable.toml")


@pytest.fixture
def store(any_store: SQLStore) -> SQLStore:
    """A fresh store, on SQLite and on PostgreSQL (tests/conftest.py)."""
    return any_store
