"""A throw-away PostgreSQL database for the several-nodes tests (serve processes, CLI, triggers).

A whole database per test, not the store fixture's schema per test: several `serve`
processes, LISTEN/NOTIFY and advisory locks are what is tested, and a database keeps them
apart from every other test. The server is ``REPUTABLE_TEST_PG_DSN`` (a maintenance database
on it, as in tests/conftest.py); the tests skip, saying why, only when no server answers, and
fail instead when ``REPUTABLE_TEST_REQUIRE_PG`` is set (CI).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

SERVER = os.environ.get("REPUTABLE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
PREFIX = os.environ.get("REPUTABLE_TEST_PG_PREFIX", "rep_test_") + "nodes_"


def _base(dsn: str) -> str:
    return dsn.split("?", 1)[0].rsplit("/", 1)[0]


@contextmanager
def fresh_database() -> Iterator[str]:
    """Create an empty database, yield its DSN, drop it (and its sessions) afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(SERVER, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        why = f"no PostgreSQL server answers at {SERVER}: {exc}".strip()
        if os.environ.get("REPUTABLE_TEST_REQUIRE_PG"):
            pytest.fail(why + "; REPUTABLE_TEST_REQUIRE_PG is set (CI)")
        pytest.skip(why)
    name = PREFIX + secrets.token_hex(6)
    try:
        admin.execute(f"CREATE DATABASE {name}")
        yield f"{_base(SERVER)}/{name}"
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
