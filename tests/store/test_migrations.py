"""The shipped schema migrations: one file per version number, applied in order."""

from __future__ import annotations

from collections import Counter
from importlib import resources

from reputable.store.migrate import migrations


def test_every_migration_has_its_own_version_number() -> None:
    """Two files with one number would let the second be skipped silently on upgrade."""
    names = [
        entry.name
        for entry in resources.files("reputable.store.migrations").iterdir()
        if entry.name.endswith(".sql")
    ]
    versions = Counter(int(name.split("_", 1)[0]) for name in names)
    assert sorted(names), "no migration shipped"
    assert [v for v, n in versions.items() if n > 1] == [], sorted(names)


def test_migrations_come_in_version_order() -> None:
    """The migrator applies them by ascending version, whatever the directory order."""
    found = [m.version for m in migrations()]
    assert found == sorted(found) and len(found) == len(set(found))
