"""The shipped schema migrations: one file per version number, applied in order."""

from __future__ import annotations

import sqlite3
from collections import Counter
from importlib import resources
from pathlib import Path

import pytest

from reputable.store.migrate import POSTGRES_SUFFIX, migrations, split_statements
from reputable.store.sqlite import SQLiteStore


def test_every_migration_has_its_own_version_number() -> None:
    """Two files with one number would let the second be skipped silently on upgrade."""
    names = [
        entry.name
        for entry in resources.files("reputable.store.migrations").iterdir()
        if entry.name.endswith(".sql")
    ]
    assert sorted(names), "no migration shipped"
    for postgres in (False, True):  # a .postgres.sql file replaces its number's on PostgreSQL
        versions = Counter(
            int(name.split("_", 1)[0])
            for name in names
            if name.endswith(POSTGRES_SUFFIX) == postgres
        )
        assert [v for v, n in versions.items() if n > 1] == [], sorted(names)
    plain = {int(n.split("_", 1)[0]) for n in names if not n.endswith(POSTGRES_SUFFIX)}
    variants = {int(n.split("_", 1)[0]) for n in names if n.endswith(POSTGRES_SUFFIX)}
    assert variants <= plain, "a PostgreSQL variant without its SQLite migration"


def test_migrations_come_in_version_order() -> None:
    """The migrator applies them by ascending version, whatever the directory order."""
    for postgres in (False, True):
        found = [m.version for m in migrations(postgres=postgres)]
        assert found == sorted(found) and len(found) == len(set(found))


def test_postgres_variant_replaces_its_number_on_postgres_only() -> None:
    sqlite = {m.version: m.name for m in migrations()}
    pg = {m.version: m.name for m in migrations(postgres=True)}
    assert sqlite.keys() == pg.keys()
    assert sqlite[23] == "0023_listings_unique.sql"
    assert pg[23] == "0023_listings_unique.postgres.sql"
    assert all(sqlite[v] == pg[v] for v in sqlite if v != 23)


def test_0023_keeps_listings_and_ids_and_enforces_the_key(tmp_path: Path) -> None:
    """An existing database (schema 22, a UNIQUE constraint) upgrades with its rows intact."""
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    for migration in migrations():
        if migration.version >= 23:
            break
        for statement in split_statements(migration.sql):
            db.execute(statement)
        db.execute("INSERT INTO schema_version VALUES (?)", (migration.version,))
    rows = [
        (7, "192.0.2.1", 4, "spam", "r1", "manual", 1.0, None),
        (9, "192.0.2.0/24", 4, "network", "r2", "manual", 2.0, 5.0),
    ]
    db.executemany("INSERT INTO listings VALUES (?,?,?,?,?,?,?,?)", rows)
    db.close()
    store = SQLiteStore(path)
    try:
        assert store.schema_version() == max(m.version for m in migrations())
        got = store._db.execute("SELECT * FROM listings ORDER BY id").fetchall()
        assert got == rows
        names = {
            n for (n,) in store._db.execute("SELECT name FROM sqlite_master WHERE type='index'")
        }
        assert {"listings_unique", "listings_expires", "listings_cause", "listings_source"} <= (
            names
        )
        assert "listings_ranges" in names
        assert not any(n.startswith("sqlite_autoindex_listings") for n in names)
        with pytest.raises(sqlite3.IntegrityError):
            store._db.execute(
                "INSERT INTO listings (subject, family, cause, reason, source, listed_at)"
                " VALUES ('192.0.2.1', 4, 'spam', 'again', 'manual', 3.0)"
            )
        plan = " ".join(
            str(r)
            for r in store._db.execute(
                "EXPLAIN QUERY PLAN SELECT subject FROM listings WHERE family = 4 ORDER BY subject"
            )
        )
        assert "listings_unique" in plan and "TEMP B-TREE" not in plan  # exports walk the key
    finally:
        store.close()
