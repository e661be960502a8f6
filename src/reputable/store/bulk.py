"""Bulk writes of listings: millions of rows in one transaction, no object per row.

`load_listings` takes plain row tuples (as `reputable.listings.imports.rbldnsd.Stream` yields
them) and writes them all or none. On SQLite it is a fast path: rows go in sorted chunks
through ``executemany``, with a larger page cache, and when the load is large against the
table the listings' secondary indexes are dropped and built again at the end inside the same
transaction (one sort instead of millions of random index inserts). Any other store (the
PostgreSQL back-end) gets a correct, slower path: the rows become one `Batch` for
``store.apply`` (memory grows with the load there).

Measured on 1M bare IPv4 rows into an in-memory table (2-core sandbox, load ~5-7,
`python ins2.py`/`ins3.py` throw-away scripts, CPU seconds): no index 2.5 s; the unique
index in random order 5.8-6.8 s, in 100k sorted chunks 4.8 s; all five indexes 10.4 s;
unique index kept and the four others built afterwards 8.9 s.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import Protocol, TypeAlias

from reputable.store.sqlite_tx import transaction

#: (subject, family, cause, reason, source, listed_at, expires_at), timestamps in seconds.
Row: TypeAlias = tuple[str, int, str, str, str, float, float | None]

CHUNK = 50_000  # rows sorted and written per executemany
CACHE_KIB = 128 * 1024  # SQLite page cache during a bulk load (the default is 2 MiB)
DEFER_MIN = 50_000  # loads smaller than this keep the indexes up to date row by row

#: Insert a listing, or refresh the one with its (subject, cause, source): `apply` uses it too.
LISTING_UPSERT = (
    "INSERT INTO listings (subject, family, cause, reason, source, listed_at, expires_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (subject, cause, source)"
    " DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at,"
    " listed_at = excluded.listed_at"
)


class _Applies(Protocol):
    def apply(self, batch: object, *, actor: str, action: str) -> None: ...


def load_listings(
    store: object, rows: Iterable[Row], *, actor: str, action: str, expected: int = 0
) -> int:
    """Insert or replace every row of *rows* in one transaction; return how many were read.

    *expected* is the caller's estimate of the number of rows (e.g. from the file size):
    with SQLite, a load of at least DEFER_MIN rows and at least half the table's size builds
    the secondary indexes once at the end. An exception raised while *rows* is iterated (a
    bad line) rolls everything back and propagates unchanged.
    """
    db = getattr(store, "_db", None)
    if isinstance(db, sqlite3.Connection):
        return _sqlite(store, db, rows, actor=actor, action=action, expected=expected)
    return _generic(store, rows, actor=actor, action=action)


def _chunks(rows: Iterable[Row]) -> Iterator[list[Row]]:
    iterator = iter(rows)
    while chunk := list(islice(iterator, CHUNK)):
        chunk.sort(key=itemgetter(0))  # nearby keys: fewer index pages touched per chunk
        yield chunk


def _sqlite(
    store: object,
    db: sqlite3.Connection,
    rows: Iterable[Row],
    *,
    actor: str,
    action: str,
    expected: int,
) -> int:
    path = getattr(store, "path", "the database")
    cache = db.execute("PRAGMA cache_size").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    count = 0
    try:
        with transaction(db, f"cannot write to {path}"):
            indexes: list[str] = []
            if expected >= DEFER_MIN:
                size = db.execute("SELECT COALESCE(MAX(id), 0) FROM listings").fetchone()[0]
                if expected * 2 >= size:
                    indexes = _drop_indexes(db)
            for chunk in _chunks(rows):
                db.executemany(LISTING_UPSERT, chunk)
                count += len(chunk)
            for sql in indexes:
                db.execute(sql)
            db.execute(
                "INSERT INTO audit (at, actor, action, subject, cause, detail)"
                " VALUES (?,?,?,?,?,?)",
                (datetime.now(UTC).timestamp(), actor, action, "*", None, f"{count} listings"),
            )
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial'")
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache)}")
    return count


def _drop_indexes(db: sqlite3.Connection) -> list[str]:
    """Drop the listings' secondary indexes (not the unique one); return their CREATE SQL."""
    found = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'listings'"
        " AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
    ).fetchall()
    for name, _ in found:
        db.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def _generic(store: object, rows: Iterable[Row], *, actor: str, action: str) -> int:
    """Any store with ``apply``: one Batch (correct; memory grows with the load)."""
    from reputable.core.address import parse_subject
    from reputable.core.cause import Cause
    from reputable.listings.model import Batch, Listing

    def when(value: float | None) -> datetime | None:
        return None if value is None else datetime.fromtimestamp(value, UTC)

    listings = tuple(
        Listing(
            subject=parse_subject(subject),
            cause=Cause(cause),
            reason=reason,
            source=source,
            listed_at=datetime.fromtimestamp(listed_at, UTC),
            expires_at=when(expires_at),
        )
        for subject, _family, cause, reason, source, listed_at, expires_at in rows
    )
    applier: _Applies = store  # type: ignore[assignment]
    applier.apply(Batch(listings=listings), actor=actor, action=action)
    return len(listings)
