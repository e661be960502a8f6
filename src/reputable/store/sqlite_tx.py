"""What every SQLite table mixin shares: the connection, the change serial, the audit log, and
one write transaction (BEGIN IMMEDIATE, COMMIT or ROLLBACK, one error)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

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


class SQLiteTables:
    """Base of SQLiteStore and its table mixins: the connection, serial and audit log."""

    _db: sqlite3.Connection
    path: str

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial'")

    def _audit(self, actor: str, action: str, subject: str, cause: str | None, detail: str) -> None:
        self._db.execute(
            "INSERT INTO audit (at, actor, action, subject, cause, detail) VALUES (?,?,?,?,?,?)",
            (datetime.now(UTC).timestamp(), actor, action, subject, cause, detail),
        )
