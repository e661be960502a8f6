"""A throw-away PostgreSQL database on 127.0.0.1:5432 for the several-nodes tests.

``REPUTABLE_TEST_PG_DSN`` names the server (a maintenance database on it); the tests skip,
saying why, only when no server answers there.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("REPUTABLE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


def _base(dsn: str) -> str:
    return dsn.rsplit("/", 1)[0]


@contextmanager
def fresh_database(prefix: str = "rep_pgnodes_") -> Iterator[str]:
    """Create an empty database, yield its DSN, drop it (and its sessions) afterwards."""
    psycopg = pytest.importorskip("psycopg", reason="the postgres extra (psycopg) is not installed")
    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {SERVER}: {exc}".strip())
    name = prefix + secrets.token_hex(6)
    try:
        admin.execute(f"CREATE DATABASE {name}")
        yield f"{_base(SERVER)}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


def needs_postgres_store() -> None:
    """Skip until the PostgreSQL store (reputable.store.postgres) is part of this build."""
    pytest.importorskip("reputable.store.postgres", reason="the PostgreSQL store is not merged yet")
