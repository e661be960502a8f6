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

Big reads and writes do not go row by row. :meth:`PgConnection.stream` reads through a
server-side (named) cursor, a batch at a time, so an export or a full policy evaluation holds
one batch in memory, not the table. :meth:`PgConnection.executemany` of a plain
``INSERT INTO t (cols) VALUES (?, ...)`` (also ``OR IGNORE`` and ``ON CONFLICT``) with many rows
COPYs them into a temporary table and inserts them with one statement, in the same order, with
the same result as one INSERT per row (see :func:`_bulk_insert`).

The planner needs statistics to use the indexes: a policy run right after an import of 1M
evidence rows, on a table never analysed, read 5,000 targets by a sequential scan of the whole
table, each chunk (autovacuum analyses a minute later at best, and may be off). So a commit
that brought a table's inserted rows since its last ANALYZE to :data:`ANALYZE_MIN_ROWS` and to
its size at that ANALYZE (the table doubled) analyses it before the connection goes back to
the pool (:meth:`PgConnection._analyze_grown`): an import of 400,000 evidence rows in the
CLI's batches analysed the table 3 times.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from reputable.core import log
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

#: Rows inserted into a table (by this process, since its last ANALYZE) before one is considered.
ANALYZE_MIN_ROWS: Final = 10_000

_WRITE: Final = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)
#: Rows in one FETCH of a server-side cursor (:meth:`PgConnection.stream`).
STREAM_BATCH: Final = 2000
#: executemany of at least this many rows goes through COPY (:func:`_bulk_insert`).
COPY_MIN_ROWS: Final = 200
#: ``INSERT [OR IGNORE] INTO table (columns) VALUES (?, ..., ?) [tail]``, placeholders only.
_PLAIN_INSERT: Final = re.compile(
    r"^\s*INSERT\s+(OR\s+IGNORE\s+)?INTO\s+(\w+)\s*\(([\w\s,]+)\)\s*"
    r"VALUES\s*\(\s*\?(?:\s*,\s*\?)*\s*\)\s*(.*?)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_DO_NOTHING: Final = re.compile(r"^ON\s+CONFLICT(\s*\([\w\s,]+\))?\s+DO\s+NOTHING$", re.I)
_DO_UPDATE: Final = re.compile(
    r"^ON\s+CONFLICT\s*\(([\w\s,]+)\)\s*DO\s+UPDATE\s+SET\s+(.+)$", re.I | re.S
)
_FROM_EXCLUDED: Final = re.compile(r"^(\w+)\s*=\s*excluded\.(\w+)$", re.IGNORECASE)


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


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",")]


@lru_cache(maxsize=256)
def _bulk_plan(sql: str) -> tuple[str, list[str], str] | None:
    """Return (table, columns, INSERT ... SELECT from the batch table) for *sql*, or None.

    Only statements whose result is the same as one INSERT per row, in order: a plain INSERT,
    ``OR IGNORE`` / ``ON CONFLICT ... DO NOTHING`` (a later duplicate is skipped either way),
    and ``ON CONFLICT (key) DO UPDATE SET col = excluded.col, ...`` (the last row of a key
    wins either way: the rows are reduced to the last of each key, ordered by the first).
    """
    match = _PLAIN_INSERT.match(sql)
    if match is None:
        return None
    ignore, table, column_text, tail = match.groups()
    columns = _words(column_text)
    if sql.count("?") != len(columns):
        return None
    listed = ", ".join(columns)
    source = "_rep_batch"
    if not tail or _DO_NOTHING.match(tail):
        if ignore and not tail:
            tail = "ON CONFLICT DO NOTHING"
        elif ignore:
            return None
        select = f"SELECT {listed} FROM {source} ORDER BY _n"
    else:
        update = _DO_UPDATE.match(tail)
        if ignore or update is None:
            return None
        keys = _words(update.group(1))
        sets = [_FROM_EXCLUDED.match(part) for part in _words(update.group(2))]
        if not keys or not all(m is not None and m.group(1) == m.group(2) for m in sets):
            return None
        if not set(keys) <= set(columns):
            return None
        key_list = ", ".join(keys)
        not_null = " AND ".join(f"{k} IS NOT NULL" for k in keys)
        # The last row of each key, placed where its key first came; a NULL key never
        # conflicts (each such row is inserted), so those rows pass as they are.
        reduced = (
            f"SELECT {listed}, _first FROM (SELECT DISTINCT ON ({key_list}) *,"
            f" min(_n) OVER (PARTITION BY {key_list}) AS _first FROM {source}"
            f" WHERE {not_null} ORDER BY {key_list}, _n DESC) AS last_of_key"
            f" UNION ALL SELECT {listed}, _n FROM {source} WHERE NOT ({not_null})"
        )
        select = f"SELECT {listed} FROM ({reduced}) AS batch ORDER BY _first"
    return table, columns, f"INSERT INTO {table} ({listed}) {select} {tail}".rstrip()


def _bulk_insert(
    conn: psycopg.Connection[Any], plan: tuple[str, list[str], str], rows: Iterable[Any]
) -> int:
    """COPY *rows* into a temporary table shaped like the target's columns; insert them at once.

    Inside the caller's transaction (the temporary table is dropped before it ends). Returns
    the rows inserted or updated, as the row-by-row statements would count them.
    """
    table, columns, insert = plan
    listed = ", ".join(columns)
    conn.execute(
        f"CREATE TEMP TABLE _rep_batch AS SELECT 0::bigint AS _n, {listed} FROM {table} WITH NO DATA"
    )
    with conn.cursor() as cur:
        with cur.copy(f"COPY _rep_batch (_n, {listed}) FROM STDIN") as copy:
            for n, row in enumerate(rows):
                copy.write_row((n, *row))
        cur.execute(insert)
        count = cur.rowcount
    conn.execute("DROP TABLE _rep_batch")  # after an error the rollback drops it
    return count


class PgConnection:
    """The sqlite3-shaped face of a psycopg pool (see the module docstring)."""

    #: Values per ``IN (...)`` list of the mixins (``SQLiteTables._chunks``): the planner read
    #: 5,000 targets' evidence (~32,000 of 1M rows) by a parallel scan of the table, 0.33 s,
    #: and 1,000 by the index (bench/policy_scale.py --pg, incremental run).
    in_list_size: Final = 1000

    def __init__(self, pool: ConnectionPool, shown: str) -> None:
        self._pool = pool
        self._shown = shown
        self._local = threading.local()
        #: Per table: rows inserted since its last ANALYZE, and its size then (None: not read).
        self._grown: dict[str, list[Any]] = {}
        self._grown_lock = threading.Lock()

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
        inserted: dict[str, int] = getattr(self._local, "inserted", None) or {}
        self._local.inserted = None
        try:
            conn.execute(verb)
            if verb == "COMMIT" and inserted:
                self._analyze_grown(conn, inserted)
        except psycopg.Error as exc:
            if verb == "COMMIT":
                raise _driver_error(exc, self._shown) from exc
        finally:
            self._pool.putconn(conn)  # a broken connection is discarded by the pool

    def _count_inserted(self, sql: str, count: int) -> None:
        """Note *count* rows inserted by *sql* in this thread's transaction (see _analyze_grown)."""
        plan = _bulk_plan(sql)
        if plan is not None and count > 0:
            inserted = getattr(self._local, "inserted", None)
            if inserted is None:
                inserted = self._local.inserted = {}
            inserted[plan[0]] = inserted.get(plan[0], 0) + count

    def _analyze_grown(self, conn: psycopg.Connection[Any], inserted: dict[str, int]) -> None:
        """ANALYZE the tables that doubled (and grew by ANALYZE_MIN_ROWS) since their last one.

        The size at the last ANALYZE is ``pg_class.reltuples`` (-1 or 0 before any, so a new
        table's first 10,000 rows trigger one). A failure (another node's ANALYZE holding the
        lock too long, no right to analyse) is logged; the write itself has committed.
        """
        import psycopg

        due: list[str] = []
        with self._grown_lock:
            for table, count in inserted.items():
                grown = self._grown.setdefault(table, [0, None])
                grown[0] += count
                if grown[0] >= ANALYZE_MIN_ROWS:
                    due.append(table)
        for table in due:
            try:
                with self._grown_lock:
                    size = self._grown[table][1]
                if size is None:
                    row = conn.execute(
                        "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)
                    ).fetchone()
                    size = max(float(row[0]) if row else 0.0, 0.0)
                with self._grown_lock:
                    grown = self._grown[table]
                    grown[1] = size
                    if grown[0] < size:
                        continue
                    grown[0] = 0
                conn.execute(f"ANALYZE {table}")
                row = conn.execute(
                    "SELECT reltuples FROM pg_class WHERE oid = %s::regclass", (table,)
                ).fetchone()
                with self._grown_lock:
                    self._grown[table][1] = max(float(row[0]) if row else 0.0, 0.0)
            except psycopg.Error as exc:
                log.warning("store_analyze_failed", table=table, error=str(exc).strip())

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

    def _copy_many(self, conn: psycopg.Connection[Any], sql: str, params: Any) -> Result | None:
        """Run executemany of *sql* through COPY (:func:`_bulk_insert`) if it qualifies, else None.

        Returns None with *params* untouched when the statement does not qualify; when it
        does but has fewer than :data:`COPY_MIN_ROWS` rows, runs them the ordinary way.
        """
        plan = _bulk_plan(sql)
        if plan is None:
            return None
        import psycopg

        rows = iter(params)
        head = list(itertools.islice(rows, COPY_MIN_ROWS))
        if len(head) < COPY_MIN_ROWS:
            result = self._run(conn, postgres(sql), head, many=True)
            self._count_inserted(sql, result.rowcount)
            return result
        try:
            count = _bulk_insert(conn, plan, itertools.chain(head, rows))
        except psycopg.Error as exc:
            raise _driver_error(exc, self._shown) from exc
        if count > 0:
            self._local.changes = getattr(self._local, "changes", 0) + count
            self._count_inserted(sql, count)
        return Result([], count)

    def _statement(self, sql: str, params: Any, many: bool) -> Result:
        conn = self._pinned()
        text = postgres(sql)
        if conn is not None:
            if many and (copied := self._copy_many(conn, sql, params)) is not None:
                return copied
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

    def stream(
        self, sql: str, parameters: Any = (), /, batch: int = STREAM_BATCH
    ) -> Iterator[list[Any]]:
        """Yield the rows of one query (SQLite dialect) in lists of at most *batch*.

        Outside a transaction the rows come from a server-side cursor on a pooled connection,
        *batch* per FETCH: memory holds one batch, however many rows. Inside this thread's
        transaction (whose connection is busy with other statements between batches) the
        rows are fetched whole, as :meth:`execute` does. Stopping early closes the cursor.
        """
        if self._pinned() is not None:
            result = self.execute(sql, parameters)
            while rows := result.fetchmany(batch):
                yield rows
            return
        import psycopg

        text = postgres(sql)
        try:
            with (
                self._pool.connection() as conn,
                conn.transaction(),
                conn.cursor(name="reputable_stream") as cur,
            ):
                cur.execute(text, parameters)
                while rows := cur.fetchmany(batch):
                    yield rows
        except psycopg.Error as exc:
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
