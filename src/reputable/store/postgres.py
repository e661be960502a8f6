"""The PostgreSQL store: the same tables and SQL as SQLite, over a psycopg connection pool.

:class:`PostgresStore` is :class:`~reputable.store.sqlite.SQLStore` (every mixin) on
:class:`PgConnection`, an adapter with the part of the ``sqlite3.Connection`` interface the
mixins use. Each statement is translated once (store/dialect.py). Outside a transaction a
statement borrows a pooled connection for itself; ``BEGIN IMMEDIATE`` pins one connection to
the calling thread until ``COMMIT``/``ROLLBACK``, so the store may be shared by threads (each
gets its own transaction) and by asyncio tasks (a transaction block never awaits).

``BEGIN IMMEDIATE`` means what it means in SQLite: one writer at a time. Every write (a
transaction, or a lone INSERT/UPDATE/DELETE) first takes the transaction-level advisory lock
:data:`WRITE_LOCK`. Ids are then handed out in commit order, which the id cursors rely on
(the policy's evidence cursor, the dashboard's counts, the webhooks' audit cursor): with
concurrent writers a reader could otherwise pass id 11 before id 10 commits and skip it.
Readers never wait for it.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from reputable.core.errors import StoreError
from reputable.store.dialect import postgres
from reputable.store.sqlite import SQLStore
from reputable.store.sqlite_tx import DriverError, DriverIntegrityError

if TYPE_CHECKING:
    import psycopg
    from psycopg_pool import ConnectionPool

#: pg_advisory_xact_lock key every write takes (b"reputabl" as a big-endian int64).
WRITE_LOCK: Final = 0x7265707574616256
#: Connections one process keeps to one DSN at most (shared by every store opened on it).
POOL_MAX: Final = 10
#: Seconds to wait for a free pooled connection (or the first connection) before failing.
POOL_TIMEOUT: Final = 30.0

_WRITE: Final = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def redact(dsn: str) -> str:
    """Return *dsn* with its password replaced by ``***`` (for messages and logs)."""
    try:
        parts = urlsplit(dsn)
    except ValueError:
        return "postgresql://(unparsable DSN)"
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[-1]}"))


class Result:
    """The rows and row count of one finished statement (fetched in full, connection returned)."""

    __slots__ = ("_at", "_rows", "rowcount")

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._at = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        """Return the next row, or None."""
        if self._at >= len(self._rows):
            return None
        self._at += 1
        return self._rows[self._at - 1]

    def fetchall(self) -> list[Any]:
        """Return the remaining rows."""
        rest, self._at = self._rows[self._at :], len(self._rows)
        return rest

    def fetchmany(self, size: int = 1, /) -> list[Any]:
        """Return up to *size* of the remaining rows."""
        chunk = self._rows[self._at : self._at + size]
        self._at += len(chunk)
        return chunk

    def __iter__(self) -> Iterator[Any]:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        """Drop the remaining rows."""
        self._rows, self._at = [], 0


_POOLS: dict[str, tuple[ConnectionPool, int]] = {}
_POOLS_LOCK = threading.Lock()


def _acquire_pool(dsn: str, shown: str) -> ConnectionPool:
    """Return the process's pool for *dsn*, opening it (and checking the server) the first time."""
    import psycopg
    from psycopg_pool import ConnectionPool

    with _POOLS_LOCK:
        known = _POOLS.get(dsn)
        if known is not None:
            _POOLS[dsn] = (known[0], known[1] + 1)
            return known[0]
        try:  # one direct connection first: its error says why (the pool's only "timed out")
            psycopg.connect(dsn, connect_timeout=10).close()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
            raise StoreError(
                f"cannot connect to PostgreSQL at {shown}: {first}; check store.dsn (host, port,"
                " user, password, database) and that the server is running and accepts you"
            ) from exc
        pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=POOL_MAX,
            kwargs={"autocommit": True},
            timeout=POOL_TIMEOUT,
            name=f"reputable {shown}",
            open=False,
        )
        pool.open(wait=True, timeout=POOL_TIMEOUT)
        _POOLS[dsn] = (pool, 1)
        return pool


def _release_pool(dsn: str) -> None:
    with _POOLS_LOCK:
        known = _POOLS.get(dsn)
        if known is None:
            return
        if known[1] > 1:
            _POOLS[dsn] = (known[0], known[1] - 1)
            return
        del _POOLS[dsn]
    known[0].close()


def close_pool(dsn: str) -> bool:
    """Close this process's pool for *dsn* even if stores still use it; True if there was one.

    For owners of a database's lifetime (a test dropping its schema, ``store copy`` done):
    stores left open on it fail on their next statement instead of holding connections.
    """
    with _POOLS_LOCK:
        known = _POOLS.pop(dsn, None)
    if known is None:
        return False
    known[0].close()
    return True


def _driver_error(exc: Exception, shown: str) -> DriverError:
    import psycopg

    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, psycopg.IntegrityError):
        return DriverIntegrityError(text)
    if isinstance(exc, psycopg.OperationalError):
        return DriverError(f"{text} (PostgreSQL at {shown}: is the server up and reachable?)")
    return DriverError(text)


class PgConnection:
    """The sqlite3-shaped face of a psycopg pool (see the module docstring)."""

    def __init__(self, pool: ConnectionPool, shown: str) -> None:
        self._pool = pool
        self._shown = shown
        self._local = threading.local()

    # -- transactions ---------------------------------------------------------------------
    def _pinned(self) -> psycopg.Connection[Any] | None:
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        return conn

    def _begin(self) -> None:
        if self._pinned() is not None:
            raise DriverError("cannot start a transaction within a transaction")
        import psycopg

        try:
            conn = self._pool.getconn()
        except psycopg.Error as exc:
            raise _driver_error(exc, self._shown) from exc
        try:
            conn.execute("BEGIN")
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except psycopg.Error as exc:
            with contextlib.suppress(psycopg.Error):
                conn.execute("ROLLBACK")
            self._pool.putconn(conn)
            raise _driver_error(exc, self._shown) from exc
        self._local.conn = conn

    def _end(self, verb: str) -> None:
        import psycopg

        conn = self._pinned()
        if conn is None:
            raise DriverError(f"{verb} without a transaction")
        self._local.conn = None
        try:
            conn.execute(verb)
        except psycopg.Error as exc:
            if verb == "COMMIT":
                raise _driver_error(exc, self._shown) from exc
        finally:
            self._pool.putconn(conn)  # a broken connection is discarded by the pool

    # -- statements -----------------------------------------------------------------------
    def _run(self, conn: psycopg.Connection[Any], sql: str, params: Any, many: bool) -> Result:
        import psycopg

        try:
            with conn.cursor() as cur:
                if many:
                    cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
                rows = cur.fetchall() if cur.description is not None else []
                count = cur.rowcount
        except psycopg.Error as exc:
            raise _driver_error(exc, self._shown) from exc
        if cur.description is None and count > 0:
            self._local.changes = getattr(self._local, "changes", 0) + count
        return Result(rows, count)

    def _statement(self, sql: str, params: Any, many: bool) -> Result:
        conn = self._pinned()
        text = postgres(sql)
        if conn is not None:
            return self._run(conn, text, params, many)
        if _WRITE.match(sql):  # a lone write takes the writer lock too (ids in commit order)
            self._begin()
            try:
                result = self._statement(sql, params, many)
            except BaseException:
                self._end("ROLLBACK")
                raise
            self._end("COMMIT")
            return result
        import psycopg

        try:
            with self._pool.connection() as pooled:
                return self._run(pooled, text, params, many)
        except psycopg.Error as exc:  # no connection came (pool timeout, server down)
            raise _driver_error(exc, self._shown) from exc

    def execute(self, sql: str, parameters: Any = (), /) -> Result:
        """Run one statement (SQLite dialect) and return its rows."""
        verb = sql.strip().upper()
        if verb in ("BEGIN", "BEGIN IMMEDIATE"):
            self._begin()
            return Result([], -1)
        if verb in ("COMMIT", "ROLLBACK"):
            self._end(verb)
            return Result([], -1)
        return self._statement(sql, parameters, many=False)

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Result:
        """Run one statement for each parameter tuple; the row count is their sum."""
        return self._statement(sql, parameters, many=True)

    @property
    def total_changes(self) -> int:
        """Rows changed by this thread's statements so far (as ``sqlite3`` counts them)."""
        return int(getattr(self._local, "changes", 0))

    def close(self) -> None:
        """Give back a connection left pinned by this thread (none after a finished block)."""
        conn = self._pinned()
        if conn is not None:
            self._local.conn = None
            self._pool.putconn(conn)


class PostgresStore(SQLStore):
    """Every store contract of :class:`SQLStore`, on a PostgreSQL database."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.path = redact(dsn)
        self._range_cache = {}
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError as exc:
            raise StoreError(
                f"store.dsn {self.path} is PostgreSQL, but its driver is not installed:"
                " pip install 'reputable[postgres]' (psycopg 3 and psycopg_pool)"
            ) from exc
        pool = _acquire_pool(dsn, self.path)
        self._pg = PgConnection(pool, self.path)
        self._db = self._pg
        self._closed = False
        try:
            self._migrate()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Give the pooled connections back (the pool closes with the last store on its DSN)."""
        if self._closed:
            return
        self._closed = True
        self._pg.close()
        _release_pool(self.dsn)
