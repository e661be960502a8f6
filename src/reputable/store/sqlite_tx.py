"""What every table mixin shares: the connection, the change serial, the audit log, and one
write transaction (BEGIN IMMEDIATE, COMMIT or ROLLBACK, one error).

The mixins are written once, in SQLite's dialect with ``?`` placeholders. ``_db`` is either a
:class:`sqlite3.Connection` or the PostgreSQL adapter (store/postgres.py), which translates each
statement once and raises :class:`DriverError` for the driver's errors; both satisfy
:class:`Connection`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Protocol

from reputable.core.errors import StoreError


class DriverError(StoreError):
    """A database error from a driver other than sqlite3 (the message is the driver's).

    A StoreError, so a failure outside a transaction (the server went away during a read)
    is still one clear line for the CLI and a logged error for serve's loops.
    """


class DriverIntegrityError(DriverError):
    """A constraint (unique key, not null) refused a write."""


#: What a database call may raise, whichever back-end runs it.
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, DriverError)
#: The subset meaning "a constraint refused the row".
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, DriverIntegrityError)


class Cursor(Protocol):
    """The part of a DB-API cursor the mixins use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def fetchmany(self, size: int = ..., /) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...

    def close(self) -> None: ...


class Connection(Protocol):
    """The part of :class:`sqlite3.Connection` the mixins use (statements in SQLite's dialect)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Cursor: ...

    @property
    def total_changes(self) -> int: ...


@contextmanager
def transaction(db: Connection, failure: str) -> Iterator[Connection]:
    """Run the block in one write transaction; a database error becomes ``StoreError(failure: ...)``.

    Anything raised inside rolls the transaction back and propagates unchanged, except
    database errors, which are reported as StoreError naming *failure* (e.g. "cannot write
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
    except DB_ERRORS as exc:
        raise StoreError(f"{failure}: {exc}") from exc


#: Rows per batch of :meth:`SQLiteTables._batches`.
READ_BATCH = 2000
#: Values in one ``IN (...)`` list (SQLite's limit on host parameters is 32766), unless the
#: connection says otherwise (``in_list_size``: PostgreSQL, see store/postgres.py).
IN_LIST = 5000


class SQLiteTables:
    """Base of the stores and their table mixins: the connection, serial and audit log."""

    _db: Connection
    path: str

    def _batches(self, sql: str, params: Any = (), batch: int = READ_BATCH) -> Iterator[list[Any]]:
        """Yield the rows of a big read in lists of at most *batch*, memory flat at any size.

        SQLite steps its cursor; PostgreSQL reads through a server-side cursor
        (``PgConnection.stream``) instead of fetching the whole result first.
        """
        stream = getattr(self._db, "stream", None)
        if stream is not None:
            yield from stream(sql, params, batch)
            return
        cursor = self._db.execute(sql, params)
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        finally:
            cursor.close()

    def _chunks(self, items: Sequence[str]) -> Iterator[Sequence[str]]:
        """Yield *items* in slices of one ``IN (...)`` list each (:data:`IN_LIST` or the connection's)."""
        size: int = getattr(self._db, "in_list_size", IN_LIST)
        for i in range(0, len(items), size):
            yield items[i : i + size]

    def _each(self, sql: str, params: Any = ()) -> Iterator[Any]:
        """Yield the rows of a big read one by one, memory flat at any size (see :meth:`_batches`)."""
        if getattr(self._db, "stream", None) is None:
            yield from self._db.execute(sql, params)  # SQLite's cursor steps as it is read
            return
        for rows in self._batches(sql, params):
            yield from rows

    def _bump(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial'")

    def _audit(self, actor: str, action: str, subject: str, cause: str | None, detail: str) -> None:
        self._db.execute(
            "INSERT INTO audit (at, actor, action, subject, cause, detail) VALUES (?,?,?,?,?,?)",
            (datetime.now(UTC).timestamp(), actor, action, subject, cause, detail),
        )
