"""Bulk writes of listings: millions of rows in one transaction, no object per row.

`load_listings` takes plain row tuples and runs of rows that differ only in their subject
(`Run`; `reputable.listings.imports.rbldnsd.Stream.parts` yields both) and writes them all or
none. On SQLite it is a fast path: rows go in sorted chunks through ``executemany`` (a chunk
of one run through a single ``INSERT ... SELECT FROM json_each``), with a larger page
cache, and when the load is large against the table the listings' secondary indexes are
dropped and built again at the end inside the same transaction (one sort instead of millions
of random index inserts). When the table is empty or nearly so, the unique key
(``listings_unique``, migration 0023) goes too: the rows are plain INSERTs and the key is
built once at the end; if that finds the same key twice (a
line repeated in the file, or a row that was already there), the duplicates are folded as
the upsert folds them (the first row keeps its id, the last row's reason and times win)
before the key is built again. Such a load also leaves WAL for a rollback journal when no
other connection has the database open (`_rollback_journal`: each page written once, not
to the WAL and again by the checkpoint). Any other store (the PostgreSQL back-end) gets a correct,
slower path: the rows become one `Batch` for ``store.apply`` (COPY underneath; memory grows
with the load there).

Measured on 1M bare IPv4 rows into an in-memory table (2-core sandbox, load ~5-7,
`python ins2.py`/`ins3.py` throw-away scripts, CPU seconds): no index 2.5 s; the unique
index in random order 5.8-6.8 s, in 100k sorted chunks 4.8 s; all five indexes 10.4 s;
unique index kept and the four others built afterwards 8.9 s. Into a WAL file database
(session 6, a throw-away script, load ~3.5, 50k sorted chunks, unique key only): upsert
with the key 4.4-4.5 s; plain INSERT then the key built at the end 3.0-3.2 s; the same
with 115 duplicate keys to fold 4.8 s.
"""

from __future__ import annotations

import re
import sqlite3
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import chain, groupby
from operator import itemgetter
from typing import Protocol, TypeAlias

from reputable.store.sqlite_tx import transaction

#: (subject, family, cause, reason, source, listed_at, expires_at), timestamps in seconds.
Row: TypeAlias = tuple[str, int, str, str, str, float, float | None]
Bound: TypeAlias = tuple[object, ...]  # the columns of a row left to bind (see _shared)

CHUNK = 50_000  # rows sorted and written per executemany
CACHE_KIB = 128 * 1024  # SQLite page cache during a bulk load (the default is 2 MiB)
#: A bigger load gets up to this much cache, 128 bytes per expected row: the index builds
#: at the end sort in memory up to the cache's size (SQLite's sorter, at most 512 MiB a
#: run) instead of merging runs through temporary files. Issue 16 allows 300 MB at 1M
#: rows (128 MiB is kept there) and 2 GB at 10M.
CACHE_MAX_KIB = 768 * 1024
#: A load of at most this many rows writes one audit row per subject, as ``apply`` does for
#: a batch of this size (store/sqlite.py), so the overlay, a rebuilt base's ``since`` and
#: IXFR name what it moved; a bigger one writes one row naming ``*`` (compared whole).
NAMED_MAX = 100
DEFER_MIN = 50_000  # loads smaller than this keep the indexes up to date row by row
KEY_INDEX = "listings_unique"  # the (subject, cause, source) key, migration 0023
KEY_SHARE = 4  # the key is built at the end when the table holds at most 1/KEY_SHARE of the load
_PLAIN = re.compile(r'[0-9.]+(?:","[0-9.]+)*').fullmatch  # a run's subjects, joined

#: Insert a listing, or refresh the one with its (subject, cause, source): `apply` uses it too.
LISTING_UPSERT = (
    "INSERT INTO listings (subject, family, cause, reason, source, listed_at, expires_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (subject, cause, source)"
    " DO UPDATE SET reason = excluded.reason, expires_at = excluded.expires_at,"
    " listed_at = excluded.listed_at"
)
LISTING_INSERT = LISTING_UPSERT.split(" ON CONFLICT", 1)[0]  # while the key is not there


class Run(Protocol):
    """Rows that differ only in their subject (rbldnsd.HostRun): stored from the subjects' text.

    Every subject is a canonical dotted quad (digits and dots only, so it is written into a
    JSON array as it is); the reason of subject S is ``head`` when ``tail`` is None, else
    ``head + S + tail``.
    """

    subjects: list[str]
    family: int
    cause: str
    head: str
    tail: str | None
    source: str
    listed_at: float
    expires_at: float | None

    def rows(self, subjects: Iterable[str]) -> Iterator[Row]:
        """Yield the rows of *subjects* under this run's shared columns."""
        ...


Item: TypeAlias = Row | Run  # what a load takes: single rows and runs, in file order


class _Applies(Protocol):
    def apply(self, batch: object, *, actor: str, action: str) -> None: ...


def load_listings(
    store: object, rows: Iterable[Item], *, actor: str, action: str, expected: int = 0
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


class _Part:
    """Some subjects of a run, in a chunk being filled."""

    __slots__ = ("run", "subjects")

    def __init__(self, run: Run, subjects: list[str]) -> None:
        self.run = run
        self.subjects = subjects


#: A chunk of a load: its rows, or (run, subjects) when they all share a run's columns.
Chunk: TypeAlias = list[Row] | tuple[Run, list[str]]


def _chunks(items: Iterable[Item]) -> Iterator[Chunk]:
    """Cut *items* into chunks of CHUNK rows, each in subject order (nearby keys: fewer index
    pages touched per chunk); the chunks and order are the same whether the rows come one by
    one or in runs, and so are the ids the rows get."""
    pieces: list[Row | _Part] = []
    size = 0
    for item in items:
        if isinstance(item, tuple):
            pieces.append(item)
            size += 1
            if size == CHUNK:
                yield from _chunk(pieces)
                pieces, size = [], 0
            continue
        subjects, at = item.subjects, 0
        while at < len(subjects):
            room = CHUNK - size
            part = subjects if at == 0 and len(subjects) <= room else subjects[at : at + room]
            pieces.append(_Part(item, part))
            size += len(part)
            at += len(part)
            if size == CHUNK:
                yield from _chunk(pieces)
                pieces, size = [], 0
    if pieces:
        yield from _chunk(pieces)


def _chunk(pieces: list[Row | _Part]) -> list[Chunk]:
    """Return one chunk of *pieces* sorted by subject (stable: a repeated key keeps its order),
    as consecutive segments: the subjects of runs that share their columns, and rows.

    A file's ranges among its hosts (a few in every chunk) used to turn the whole chunk into
    rows: a 1M-line rbldnsd file with a /24 every 100 hosts cost 6.5 s CPU to import against
    2.8 s without them (docs/benchmarks.md, "Ranges among the hosts of an import"). Now the
    rows stand between segments of the run's subjects, each segment one statement.
    """
    parts = [p for p in pieces if isinstance(p, _Part)]
    run = parts[0].run if parts else None
    if run is not None and all(p.run is run or _columns(p.run) == _columns(run) for p in parts):
        subjects = list(chain.from_iterable(p.subjects for p in parts))
        subjects.sort()  # every other column is the same: subject order is row order
        if len(parts) == len(pieces):
            return [(run, subjects)]
        rows = [p for p in pieces if not isinstance(p, _Part)]
        rows.sort(key=itemgetter(0))
        cuts = [bisect_left(subjects, row[0]) for row in rows]
        shared = (
            at < len(subjects) and subjects[at] == row[0]
            for at, row in zip(cuts, rows, strict=True)
        )
        if not any(shared):
            return _segments(run, subjects, rows, cuts)
        # (a row whose subject a run has too keeps the one list: their order is the file's)
    rows = []
    for piece in pieces:
        if isinstance(piece, _Part):
            rows.extend(piece.run.rows(piece.subjects))
        else:
            rows.append(piece)
    rows.sort(key=itemgetter(0))
    return [rows]


def _segments(run: Run, subjects: list[str], rows: list[Row], cuts: list[int]) -> list[Chunk]:
    """Return *subjects* (sorted) and *rows* (sorted) merged in subject order as segments:
    *cuts*[i] is where rows[i] falls among the subjects."""
    out: list[Chunk] = []
    done = 0
    for at, group in groupby(range(len(rows)), key=cuts.__getitem__):
        if at > done:
            out.append((run, subjects[done:at]))
            done = at
        out.append([rows[i] for i in group])
    if done < len(subjects):
        out.append((run, subjects[done:]))
    return out


def _columns(run: Run) -> tuple[object, ...]:
    """Return the columns every row of *run* shares."""
    return (run.family, run.cause, run.head, run.tail, run.source, run.listed_at, run.expires_at)


def _rows(items: Iterable[Item]) -> Iterator[Row]:
    """Yield every row of *items*, runs written out."""
    for item in items:
        if isinstance(item, tuple):
            yield item
        else:
            yield from item.rows(item.subjects)


def _json_each(db: sqlite3.Connection) -> bool:
    """True when this SQLite has json_each (built in since 3.38; an option before)."""
    try:
        db.execute("SELECT COUNT(*) FROM json_each('[]')").fetchone()
    except sqlite3.OperationalError:
        return False
    return True


def _run_statement(statement: str, templated: bool) -> str:
    """Return *statement* inserting a run from a JSON array of its subjects (json_each).

    One statement for a whole chunk: the rows are made inside SQLite, none in Python (1M
    rows into an empty table, session 7, load ~3.5, `/tmp/import3/proto.py`: executemany of
    3-column tuples 2.4-2.6 s CPU, this 1.2-1.25 s, the Python sort of the subjects
    included). ``WHERE true`` lets an upsert follow the FROM clause (SQLite's parsing rule).
    """
    head, _, tail = statement.partition(" VALUES (?,?,?,?,?,?,?)")
    reason = "? || value || ?" if templated else "?"
    return f"{head} SELECT value, ?, ?, {reason}, ?, ?, ? FROM json_each(?) WHERE true{tail}"


def _run_args(run: Run, subjects: list[str]) -> tuple[object, ...] | None:
    """Return the parameters of `_run_statement` for *subjects*; None: not plain dotted quads."""
    body = '","'.join(subjects)
    if not _PLAIN(body):
        return None  # JSON would unescape or reject it: bind row by row instead
    array = f'["{body}"]'
    reason = (run.head,) if run.tail is None else (run.head, run.tail)
    return (run.family, run.cause, *reason, run.source, run.listed_at, run.expires_at, array)


def _literal(value: object) -> str | None:
    """Return *value* as an SQLite literal (an int or a string), or None if it cannot be one."""
    if type(value) is int:
        return str(value)
    if type(value) is str and "\0" not in value and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    return None


def _shared(statement: str, chunk: list[Row]) -> tuple[str, Callable[[Row], Bound]] | None:
    """Return *statement* with family, cause and source written as literals (and a NULL
    expiry too) and the getter of the columns left to bind, when every row of *chunk* shares
    them; None: bind every column as given.

    Binding costs per parameter, NULL most (1M rows into an in-memory table, CPython 3.11,
    SQLite 3.40, session 6: 7 bound columns 1.6 s; subject, reason and listed_at bound, the
    others literals, 0.85 s; with the expiry bound as well 1.4 s when it is NULL). Finding
    the shared columns costs ~0.1 s per 1M rows.
    """
    head, found, tail = statement.partition(" VALUES (?,?,?,?,?,?,?)")
    literals: list[str] = []
    for column in (1, 2, 4):
        values = set(map(itemgetter(column), chunk))
        text = _literal(values.pop()) if len(values) == 1 else None
        if not found or text is None:
            return None
        literals.append(text)
    family, cause, source = literals
    if set(map(itemgetter(6), chunk)) == {None}:
        sql = f"{head} VALUES (?,{family},{cause},?,{source},?,NULL){tail}"
        return sql, itemgetter(0, 3, 5)
    sql = f"{head} VALUES (?,{family},{cause},?,{source},?,?){tail}"
    return sql, itemgetter(0, 3, 5, 6)


def _sqlite(
    store: object,
    db: sqlite3.Connection,
    rows: Iterable[Item],
    *,
    actor: str,
    action: str,
    expected: int,
) -> int:
    path = getattr(store, "path", "the database")
    cache = db.execute("PRAGMA cache_size").fetchone()[0]
    kib = min(max(CACHE_KIB, expected * 128 // 1024), CACHE_MAX_KIB)
    db.execute(f"PRAGMA cache_size = -{kib}")
    count = 0
    rollback = False
    if expected >= DEFER_MIN and not db.in_transaction:
        size = db.execute("SELECT COALESCE(MAX(id), 0) FROM listings").fetchone()[0]
        rollback = size * KEY_SHARE <= expected and _rollback_journal(db)
    try:
        with transaction(db, f"cannot write to {path}"):
            indexes: list[str] = []
            key: str | None = None
            if expected >= DEFER_MIN:
                size = db.execute("SELECT COALESCE(MAX(id), 0) FROM listings").fetchone()[0]
                if expected * 2 >= size:
                    indexes = _drop_indexes(db)
                if size * KEY_SHARE <= expected:
                    key = _drop_key(db)
            statement = LISTING_UPSERT if key is None else LISTING_INSERT
            runs = _json_each(db)
            named: list[tuple[str, str, str]] | None = []  # (subject, cause, reason) while few
            for chunk in _chunks(rows):
                if isinstance(chunk, tuple):
                    run, subjects = chunk
                    named = _named(named, run.rows(subjects) if named is not None else ())
                    args = _run_args(run, subjects) if runs else None
                    if args is not None:
                        db.execute(_run_statement(statement, run.tail is not None), args)
                        count += len(subjects)
                        continue
                    chunk_rows = list(run.rows(subjects))
                else:
                    chunk_rows = chunk
                    named = _named(named, chunk_rows)
                shared = _shared(statement, chunk_rows)
                if shared is None:
                    db.executemany(statement, chunk_rows)
                else:
                    db.executemany(shared[0], map(shared[1], chunk_rows))
                count += len(chunk_rows)
            if key is not None:
                _build_key(db, key)
            for sql in indexes:
                db.execute(sql)
            at = datetime.now(UTC).timestamp()
            audit = (
                [(at, actor, action, "*", None, f"{count} listings")]
                if named is None
                else [(at, actor, action, *row) for row in named]
            )
            db.executemany(
                "INSERT INTO audit (at, actor, action, subject, cause, detail)"
                " VALUES (?,?,?,?,?,?)",
                audit,
            )
            db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'serial'")
    finally:
        db.execute(f"PRAGMA cache_size = {int(cache)}")
        if rollback:
            _wal_again(db)
    return count


def _named(
    named: list[tuple[str, str, str]] | None, rows: Iterable[Row]
) -> list[tuple[str, str, str]] | None:
    """Return *named* with the (subject, cause, reason) of *rows* added, or None once the
    load holds more than :data:`NAMED_MAX` rows (it is then audited as ``*``)."""
    if named is None:
        return None
    for row in rows:
        if len(named) >= NAMED_MAX:
            return None
        named.append((row[0], row[2], row[3]))
    return named


def _rollback_journal(db: sqlite3.Connection) -> bool:
    """Leave WAL for a rollback journal during a load into an empty or near-empty table, if
    no other connection has the database open; return whether it did.

    In WAL mode every page of the load is written twice: to the WAL, then by the checkpoint
    after the commit into the database file (~0.5 GB for 1M rows). With a rollback journal
    the new pages go straight to the file and only the few pages that existed before are
    journaled. Durability is SQLite's rollback-journal guarantee (the load is one
    transaction; a crash leaves a hot journal and the next opener rolls back to the old
    state). The switch needs the database to itself, so it fails at once (busy timeout 0)
    when another process holds it open (a running serve): the load then stays in WAL. A
    process that opens the database during the load waits for its commit (SQLiteStore's
    30 s busy timeout, then "database is locked"; a 10M load takes longer) where WAL would
    have let it read the old state. Measured (1M rows, session 6 round
    2, docs/benchmarks.md): 0.35-0.4 s less CPU and half the bytes written.
    """
    if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        return False
    return _journal_mode(db, "DELETE") == "delete"


def _wal_again(db: sqlite3.Connection) -> None:
    """Go back to WAL after a load `_rollback_journal` switched out of it.

    If another process opened the database meanwhile, this fails at once and the file stays
    in rollback mode until the next SQLiteStore opens it (opening sets WAL, store/sqlite.py).
    """
    _journal_mode(db, "WAL")


def _journal_mode(db: sqlite3.Connection, mode: str) -> str | None:
    """Set the journal mode without waiting for other connections; None: one is open."""
    (timeout,) = db.execute("PRAGMA busy_timeout").fetchone()
    db.execute("PRAGMA busy_timeout = 0")
    try:
        return str(db.execute(f"PRAGMA journal_mode = {mode}").fetchone()[0])
    except sqlite3.OperationalError:
        return None  # "database is locked": another connection has it open
    finally:
        db.execute(f"PRAGMA busy_timeout = {int(timeout)}")


def _drop_indexes(db: sqlite3.Connection) -> list[str]:
    """Drop the listings' secondary indexes (not the unique one); return their CREATE SQL."""
    found = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'listings'"
        " AND sql IS NOT NULL AND sql NOT LIKE 'CREATE UNIQUE%'"
    ).fetchall()
    for name, _ in found:
        db.execute(f'DROP INDEX "{name}"')
    return [sql for _, sql in found]


def _drop_key(db: sqlite3.Connection) -> str | None:
    """Drop the listings' unique key; return its CREATE SQL (None: no such index, kept)."""
    found = db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (KEY_INDEX,)
    ).fetchone()
    if found is None:
        return None
    db.execute(f'DROP INDEX "{KEY_INDEX}"')
    return str(found[0])


def _build_key(db: sqlite3.Connection, sql: str) -> None:
    """Build the unique key again; first fold rows that share a key, as the upsert would."""
    try:
        db.execute(sql)
        return
    except sqlite3.IntegrityError:
        pass  # the same key twice: only that statement failed, the transaction goes on
    db.execute("CREATE INDEX listings_load_key ON listings (subject, cause, source)")
    db.execute(
        "CREATE TEMP TABLE listings_load_twice AS SELECT MIN(id) AS keep, MAX(id) AS last"
        " FROM listings GROUP BY subject, cause, source HAVING COUNT(*) > 1"
    )
    db.execute(  # the first row of a key takes the last one's values (the upsert's SET)
        "UPDATE listings SET (reason, expires_at, listed_at) = (SELECT l.reason, l.expires_at,"
        " l.listed_at FROM listings_load_twice t JOIN listings l ON l.id = t.last"
        " WHERE t.keep = listings.id) WHERE id IN (SELECT keep FROM listings_load_twice)"
    )
    db.execute(
        "DELETE FROM listings WHERE id IN (SELECT l.id FROM listings_load_twice t"
        " JOIN listings k ON k.id = t.keep JOIN listings l ON l.subject = k.subject"
        " AND l.cause = k.cause AND l.source = k.source AND l.id <> k.id)"
    )
    db.execute("DROP TABLE listings_load_twice")
    db.execute("DROP INDEX listings_load_key")
    db.execute(sql)


def _generic(store: object, rows: Iterable[Item], *, actor: str, action: str) -> int:
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
        for subject, _family, cause, reason, source, listed_at, expires_at in _rows(rows)
    )
    applier: _Applies = store  # type: ignore[assignment]
    applier.apply(Batch(listings=listings), actor=actor, action=action)
    return len(listings)
