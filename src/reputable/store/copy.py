"""`reputable store copy`: move every table of one store to another (SQLite <-> PostgreSQL).

The target is opened (and so migrated) by the store itself first; both ends must then be at
the same schema version. Each table is copied in one transaction of its own, streamed in
batches (a server-side cursor on PostgreSQL, COPY into PostgreSQL), so memory stays flat
whatever the size; after each table the target's row count must equal the rows read and
the source's count, else the copy stops with an error naming the table. ``meta`` (the
change serial) goes last, its serial raised above the target's old one, so nodes already
following the target rebuild their snapshots once the copy is complete.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reputable.core.errors import InputError, StoreError
from reputable.store.coordination import is_postgres, redact

#: Rows per batch read from the source and written to the target.
BATCH: Final = 5000
#: Tables that are the target's own: its migrations already wrote them.
SKIPPED: Final = frozenset({"schema_version"})


@dataclass(frozen=True, slots=True)
class TableCopy:
    """One table's outcome."""

    name: str
    rows: int
    seconds: float


@dataclass(slots=True)
class CopyResult:
    """What `store copy` did, table by table."""

    source: str
    target: str
    schema_version: int
    tables: list[TableCopy] = field(default_factory=list)
    serial: int = 0

    @property
    def rows(self) -> int:
        """Rows copied in all."""
        return sum(t.rows for t in self.tables)


class _End:
    """One end of the copy: a DB-API connection and the few SQL differences we need."""

    def __init__(self, dsn: str, *, reader: bool) -> None:
        """Connect; a *reader* reads everything in one consistent snapshot (one transaction),
        a writer runs each statement on its own except inside :meth:`transaction`."""
        self.dsn = dsn
        self.shown = redact(dsn)
        self.postgres = is_postgres(dsn)
        self.conn: Any
        if self.postgres:
            try:
                import psycopg
            except ImportError as exc:
                raise StoreError(
                    f"{self.shown}: PostgreSQL needs the postgres extra:"
                    " pip install 'reputable[postgres]'"
                ) from exc
            try:
                self.conn = psycopg.connect(dsn, connect_timeout=10, autocommit=not reader)
                if reader:
                    self.conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                    self.conn.read_only = True
            except psycopg.Error as exc:
                raise StoreError(f"cannot connect to {self.shown}: {exc}".strip()) from exc
            self.errors: tuple[type[Exception], ...] = (psycopg.Error,)
        elif dsn.startswith("sqlite:///"):
            path = Path(dsn.removeprefix("sqlite:///"))
            self.conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
            self.errors = (sqlite3.Error,)
            if reader:
                self.conn.execute("BEGIN")  # one read snapshot for the whole copy
        else:
            raise StoreError(f"{dsn!r}: store copy handles sqlite:///FILE and postgresql:// DSNs")

    def mark(self, count: int) -> str:
        return ",".join(["%s" if self.postgres else "?"] * count)

    def rows(self, sql: str, args: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        sql = sql.replace("?", "%s") if self.postgres else sql
        return list(self.conn.execute(sql, args).fetchall())

    def run(self, sql: str, args: Sequence[object] = ()) -> None:
        """Run a statement that returns no rows."""
        self.conn.execute(sql.replace("?", "%s") if self.postgres else sql, args)

    def tables(self) -> list[str]:
        if self.postgres:
            found = self.rows(
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        else:
            found = self.rows(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        return sorted(str(name) for (name,) in found)

    def columns(self, table: str) -> list[str]:
        if self.postgres:
            return [
                str(c)
                for (c,) in self.rows(
                    "SELECT column_name FROM information_schema.columns WHERE table_schema ="
                    " current_schema() AND table_name = ? ORDER BY ordinal_position",
                    (table,),
                )
            ]
        return [str(row[1]) for row in self.rows(f'PRAGMA table_info("{table}")')]

    def count(self, table: str) -> int:
        return int(self.rows(f'SELECT COUNT(*) FROM "{table}"')[0][0])

    def schema_version(self) -> int:
        return int(self.rows("SELECT MAX(version) FROM schema_version")[0][0] or 0)

    def stream(self, table: str, columns: list[str], batch: int) -> Iterator[list[tuple[Any, ...]]]:
        """Yield the rows of *table* in batches (ordered by its first column, for resuming)."""
        names = ",".join(f'"{c}"' for c in columns)
        sql = f'SELECT {names} FROM "{table}" ORDER BY 1'
        if self.postgres:
            cursor = self.conn.cursor(name=f"reputable_copy_{table}")  # server side: flat memory
            cursor.itersize = batch
            cursor.execute(sql)
        else:
            cursor = self.conn.execute(sql)
        try:
            while chunk := cursor.fetchmany(batch):
                yield chunk
        finally:
            cursor.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        if self.postgres:
            with self.conn.transaction():
                yield
            return
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def write(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        names = ",".join(f'"{c}"' for c in columns)
        if self.postgres:
            # COPY: ~10x executemany; it writes identity columns as given (like OVERRIDING
            # SYSTEM VALUE), so the ids that cursors and the evidence log rely on survive.
            with self.conn.cursor().copy(f'COPY "{table}" ({names}) FROM STDIN') as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self.conn.executemany(
            f'INSERT INTO "{table}" ({names}) VALUES ({self.mark(len(columns))})', rows
        )

    def reset_sequences(self, table: str, columns: list[str]) -> None:
        """PostgreSQL: move each serial/identity sequence of *table* past the copied ids."""
        if not self.postgres:
            return
        for column in columns:
            (sequence,) = self.rows("SELECT pg_get_serial_sequence(?, ?)", (f'"{table}"', column))[
                0
            ]
            if sequence is not None:
                self.rows(
                    f'SELECT setval(?, COALESCE((SELECT MAX("{column}") FROM "{table}"), 0) + 1,'
                    " false)",
                    (sequence,),
                )

    def close(self) -> None:
        if not self.postgres and self.conn.in_transaction:
            self.conn.execute("ROLLBACK")
        self.conn.close()


def _empty(target: _End, tables: list[str]) -> list[str]:
    """Return the tables of *target* holding data of their own (a fresh store holds none)."""
    busy = []
    for table in tables:
        if table == "meta":
            if target.rows("SELECT value FROM meta WHERE key <> 'serial' LIMIT 1"):
                busy.append(table)
        elif target.count(table):
            busy.append(table)
    return busy


def copy_store(
    source_dsn: str,
    target_dsn: str,
    *,
    migrate: Callable[[str], None],
    force: bool = False,
    batch: int = BATCH,
    progress: Callable[[str, int], None] | None = None,
) -> CopyResult:
    """Copy every table of *source_dsn* into *target_dsn*; return the per-table summary.

    *migrate* opens a DSN with the store (creating and migrating its schema) and closes it.
    A target holding data is refused unless *force*, which empties each table first (in the
    same transaction as its copy).
    """
    if source_dsn == target_dsn:
        raise StoreError(f"store copy: source and target are the same store ({redact(source_dsn)})")
    if source_dsn.startswith("sqlite:///"):
        path = Path(source_dsn.removeprefix("sqlite:///"))
        if not path.is_file():
            raise StoreError(f"store copy: no SQLite store at {path}; check --from")
    migrate(source_dsn)
    migrate(target_dsn)
    source = _End(source_dsn, reader=True)
    try:
        target = _End(target_dsn, reader=False)
    except StoreError:
        source.close()
        raise
    try:
        return _copy(source, target, force=force, batch=batch, progress=progress)
    except (*source.errors, *target.errors) as exc:
        raise StoreError(
            f"store copy {source.shown} -> {target.shown} failed: {exc}".strip()
        ) from exc
    finally:
        source.close()
        target.close()


def _copy(
    source: _End,
    target: _End,
    *,
    force: bool,
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> CopyResult:
    version, theirs = source.schema_version(), target.schema_version()
    if version != theirs:
        raise StoreError(
            f"store copy: {source.shown} is at schema version {version}, {target.shown} at"
            f" {theirs}; upgrade reputable where it is older, then open both once"
        )
    tables = [t for t in source.tables() if t not in SKIPPED]
    target_tables = set(target.tables())
    missing = [t for t in tables if t not in target_tables]
    if missing:
        raise StoreError(f"store copy: {target.shown} has no table {', '.join(missing)}")
    busy = _empty(target, tables)
    if busy and not force:  # nothing changed, and the user has a choice: an input error (exit 2)
        raise InputError(
            f"store copy: {target.shown} already holds data (tables {', '.join(busy)});"
            " copy into a fresh store, or pass --force to replace its contents"
        )
    old_serial = int(target.rows("SELECT value FROM meta WHERE key = 'serial'")[0][0])
    result = CopyResult(source.shown, target.shown, version)
    for table in sorted(tables, key=lambda t: (t == "meta", t)):  # meta, with the serial, last
        result.tables.append(_copy_table(source, target, table, batch, progress))
    result.serial = _raise_serial(target, old_serial)
    return result


def _copy_table(
    source: _End,
    target: _End,
    table: str,
    batch: int,
    progress: Callable[[str, int], None] | None,
) -> TableCopy:
    began = time.perf_counter()
    columns = source.columns(table)
    extra = sorted(set(columns) - set(target.columns(table)))
    if extra:
        raise StoreError(
            f"store copy: {target.shown} table {table} has no column {', '.join(extra)}"
        )
    copied = 0
    with target.transaction():
        target.run(f'DELETE FROM "{table}"')
        for rows in source.stream(table, columns, batch):
            target.write(table, columns, rows)
            copied += len(rows)
            if progress is not None:
                progress(table, copied)
        landed = target.count(table)
        if landed != copied:
            raise StoreError(
                f"store copy: table {table}: read {copied} rows but the target holds {landed}"
            )
        target.reset_sequences(table, columns)
    expected = source.count(table)
    if expected != copied:
        raise StoreError(
            f"store copy: table {table}: the source holds {expected} rows but {copied} were"
            " read; is something writing to it? stop serve and ingests, then copy again"
        )
    return TableCopy(table, copied, time.perf_counter() - began)


def _raise_serial(target: _End, old: int) -> int:
    """Set the target's serial above both the copied one and its own old one; return it."""
    with target.transaction():
        copied = int(target.rows("SELECT value FROM meta WHERE key = 'serial'")[0][0])
        serial = max(copied, old + 1)
        target.run("UPDATE meta SET value = ? WHERE key = 'serial'", (str(serial),))
    return serial
