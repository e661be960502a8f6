"""Schema migrations: numbered SQL files applied in order, recorded in ``schema_version``.

Each ``NNNN_name.sql`` is written once in SQLite's dialect and runs on both back-ends
(store/dialect.py translates it for PostgreSQL). Where the two cannot share a statement (SQLite
rebuilds a table to drop a constraint, PostgreSQL drops it), ``NNNN_name.postgres.sql``
replaces that one migration on PostgreSQL: same number, same place in the order.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered schema step."""

    version: int
    name: str
    sql: str


POSTGRES_SUFFIX = ".postgres.sql"


def migrations(*, postgres: bool = False) -> list[Migration]:
    """Return the shipped migrations in version order, for PostgreSQL when *postgres*."""
    found: dict[int, Migration] = {}
    for entry in sorted(
        resources.files("reputable.store.migrations").iterdir(),
        key=lambda e: e.name.endswith(POSTGRES_SUFFIX),  # the PostgreSQL variants last
    ):
        if not entry.name.endswith(".sql"):
            continue
        if entry.name.endswith(POSTGRES_SUFFIX) and not postgres:
            continue
        version = int(entry.name.split("_", 1)[0])
        found[version] = Migration(version, entry.name, entry.read_text(encoding="utf-8"))
    return sorted(found.values(), key=lambda m: m.version)


def split_statements(sql: str) -> list[str]:
    """Split a migration file into statements (no semicolons inside our literals)."""
    lines = [line.split("--", 1)[0] for line in sql.splitlines()]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
