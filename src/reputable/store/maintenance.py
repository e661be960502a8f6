"""Operations on a SQLite store file that need no migration: online backup and read-only counts.

Both open the file themselves, so they never create one: a missing store is an error naming
the path, not an empty ``reputable.db`` in the current folder.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from reputable.core.errors import StoreError


@dataclass(frozen=True)
class BackupResult:
    """What ``store backup`` copied."""

    source: Path
    target: Path
    pages: int
    bytes: int


def open_read_only(path: Path) -> sqlite3.Connection:
    """Open the existing store at *path* read-only (never creates the file)."""
    if not path.is_file():
        raise StoreError(
            f"store {path} does not exist: check store.dsn (or data_dir) in the config,"
            " or run `reputable serve` once to create it"
        )
    try:
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path} read-only: {exc}") from exc


def backup(source: Path, target: Path, *, pages_per_step: int = 1024) -> BackupResult:
    """Copy the live store *source* to *target* with SQLite's online backup API.

    Writers keep going while it runs (the copy restarts a step when they change a page it
    already copied); the result is a consistent single file, not a WAL pair.
    """
    if target.exists():
        raise StoreError(f"backup target {target} exists; choose a new file name or remove it")
    if not target.parent.is_dir():
        raise StoreError(f"backup target folder {target.parent} does not exist; create it first")
    src = open_read_only(source)
    try:
        dst = sqlite3.connect(str(target))
    except sqlite3.Error as exc:
        src.close()
        raise StoreError(f"cannot create backup {target}: {exc}") from exc
    try:
        src.backup(dst, pages=pages_per_step)
        pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
        check = dst.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise StoreError(f"backup {target} failed its integrity check: {check}")
    except sqlite3.Error as exc:
        raise StoreError(f"backup of {source} to {target} failed: {exc}") from exc
    finally:
        dst.close()
        src.close()
    return BackupResult(source, target, pages, target.stat().st_size)


def listing_counts(path: Path, now: datetime) -> dict[tuple[int, str], int]:
    """Return the active listings of the store at *path* by (family, cause); {} if absent."""
    if not path.is_file():
        return {}
    db = open_read_only(path)
    try:
        rows = db.execute(
            "SELECT family, cause, COUNT(*) FROM listings"
            " WHERE expires_at IS NULL OR expires_at > ? GROUP BY family, cause",
            (now.timestamp(),),
        ).fetchall()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot count listings in {path}: {exc}") from exc
    finally:
        db.close()
    return {(int(family), str(cause)): int(count) for family, cause, count in rows}
