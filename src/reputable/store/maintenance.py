"""Operations on a SQLite store file that need no migration: online backup and read-only counts.

Both open the file themselves, so they never create one: a missing store is an error naming
the path, not an empty ``reputable.db`` in the current folder.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reputable.core.clock import parse_duration
from reputable.core.errors import ConfigError, InputError, StoreError
from reputable.store.sqlite_tx import Connection


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


@dataclass(frozen=True)
class StoreGauges:
    """What /metrics reports from the store: listings, evidence, feeds, log followers."""

    listings: dict[tuple[int, str], int] = field(default_factory=dict)
    evidence: dict[str, int] = field(default_factory=dict)
    #: feed name -> (last success or None, last error or None)
    feeds: dict[str, tuple[float | None, str | None]] = field(default_factory=dict)
    #: follower name -> (bytes not yet read, seconds the unread bytes have waited)
    followers: dict[str, tuple[int, float]] = field(default_factory=dict)


def _follower_lag(name: str, offset: int, updated_at: float) -> tuple[int, float] | None:
    """Return (bytes, seconds) behind for the follower of the file in *name* (KIND:PATH)."""
    _, sep, path = name.partition(":")
    if not sep:
        return None
    try:
        info = Path(path).stat()
    except OSError:
        return None
    behind = max(0, info.st_size - offset)
    return behind, (max(0.0, info.st_mtime - updated_at) if behind else 0.0)


def store_gauges(path: Path, now: datetime) -> StoreGauges:
    """Return the store's gauges, read-only; empty when the store does not exist yet."""
    if not path.is_file():
        return StoreGauges()
    db = open_read_only(path)
    try:
        return gauges_of(db, now)
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the gauges of store {path}: {exc}") from exc
    finally:
        db.close()


def gauges_of(db: Connection, now: datetime) -> StoreGauges:
    """Return the gauges read through *db* (a read-only SQLite file, or a PostgreSQL store's)."""
    listings = {
        (int(family), str(cause)): int(count)
        for family, cause, count in db.execute(
            "SELECT family, cause, COUNT(*) FROM listings"
            " WHERE expires_at IS NULL OR expires_at > ? GROUP BY family, cause",
            (now.timestamp(),),
        )
    }
    evidence = {
        str(source): int(count)
        for source, count in db.execute("SELECT source, COUNT(*) FROM evidence GROUP BY source")
    }
    feeds = {
        str(name): (success, error)
        for name, success, error in db.execute("SELECT name, last_success, last_error FROM feeds")
    }
    followers: dict[str, tuple[int, float]] = {}
    for name, offset, updated_at in db.execute(
        'SELECT name, "offset", updated_at FROM source_positions'
    ):
        lag = _follower_lag(str(name), int(offset), float(updated_at))
        if lag is not None:
            followers[str(name)] = lag
    return StoreGauges(listings, evidence, feeds, followers)


#: Evidence kept when ``[retention] evidence`` is not set.
DEFAULT_EVIDENCE_RETENTION = timedelta(days=400)


def evidence_retention(section: Any, minimum: timedelta) -> timedelta | None:
    """Return how long evidence is kept, from ``[retention]`` (None: "forever").

    *minimum* is what the policy needs to look back (recidivism window plus the longest
    listing); a shorter value would change decisions, so it is refused with the minimum named.
    """
    raw = section.get("evidence") if isinstance(section, dict) else None
    if raw is None:
        return max(DEFAULT_EVIDENCE_RETENTION, minimum)
    if str(raw).strip().lower() == "forever":
        return None
    try:
        keep = parse_duration(str(raw))
    except (ValueError, InputError) as exc:
        raise ConfigError(f'retention.evidence = {raw!r}: {exc}; e.g. "400d" or "forever"') from exc
    if keep < minimum:
        raise ConfigError(
            f"retention.evidence = {raw!r} is shorter than the {minimum.days} days the policy"
            " looks back (policy.recidivism_window + policy.max_listing); raise it or use"
            ' "forever"'
        )
    return keep


def prune_evidence(
    db: Connection, before: datetime, *, after_id: int = 0, batch: int = 1000
) -> tuple[int, int]:
    """Delete up to *batch* evidence rows observed before *before*, walking ids upwards.

    *db* must be in autocommit mode (``isolation_level=None``; the PostgreSQL adapter is). Returns (rows deleted, last id
    looked at): call again with ``after_id`` set to it until nothing is deleted. Each call is
    one short transaction, so writers wait milliseconds at most.
    """
    ids = [
        int(row[0])
        for row in db.execute(
            "SELECT id FROM evidence WHERE id > ? AND observed_at < ? ORDER BY id LIMIT ?",
            (after_id, before.timestamp(), batch),
        )
    ]
    if not ids:
        return 0, after_id
    db.execute("BEGIN IMMEDIATE")  # *db* is in autocommit mode: one transaction a batch
    try:
        db.executemany("DELETE FROM evidence WHERE id = ?", [(i,) for i in ids])
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return len(ids), ids[-1]
