"""One write transaction on a SQLite connection: BEGIN IMMEDIATE, COMMIT or ROLLBACK, one error."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from reputable.core.errors import StoreError


@contextmanager
def transaction(db: sqlite3.Connection, failure: str) -> Iterator[sqlite3.Connection]:
    """Run the block in one write transaction; a database error becomes ``StoreError(failure: ...)``.

    Anything raised inside rolls the transaction back and propagates unchanged, except
    sqlite3 errors, which are reported as StoreError naming *failure* (e.g. "cannot write
    evidence to /var/lib/reputable/reputable.db").
    """
    try:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    except sqlite3.Error as exc:
        raise StoreError(f"{failure}: {exc}") from exc
