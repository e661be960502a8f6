"""Bulk loads (store/bulk.py): the deferred unique key folds duplicates exactly as the upsert."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from reputable.core.address import format_subject
from reputable.listings.model import Batch
from reputable.store import bulk
from reputable.store.bulk import Item, Row, load_listings
from reputable.store.sqlite import SQLiteStore

SOURCE = "rbldnsd:f"


def _db(store: SQLiteStore) -> sqlite3.Connection:
    db = store._db
    assert isinstance(db, sqlite3.Connection)
    return db


def _row(subject: str, reason: str, at: float, expires: float | None = None) -> Row:
    return (subject, 4, "spam", reason, SOURCE, at, expires)


def _table(path: Path) -> list[tuple[object, ...]]:
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return db.execute(
            "SELECT subject, family, cause, reason, source, listed_at, expires_at"
            " FROM listings ORDER BY id"
        ).fetchall()
    finally:
        db.close()


def _load(path: Path, rows: list[Item], *, deferred: bool) -> list[str]:
    """Load *rows* into the store at *path*; return the SQL it ran (to see which way it went)."""
    store = SQLiteStore(path)
    ran: list[str] = []
    _db(store).set_trace_callback(ran.append)
    try:
        expected = bulk.DEFER_MIN if deferred else 0
        count = sum(1 if isinstance(x, tuple) else len(x.subjects) for x in rows)
        assert load_listings(store, rows, actor="t", action="import", expected=expected) == count
    finally:
        _db(store).set_trace_callback(None)
        store.close()
    return ran


EXISTING = [_row("192.0.2.1", "old one", 1.0), _row("192.0.2.9", "old nine", 1.0, 50.0)]
LOAD = [
    _row("192.0.2.5", "five", 2.0),
    _row("192.0.2.1", "one again", 2.0, 90.0),  # already in the table
    _row("192.0.2.5", "five again", 3.0),  # twice in the file
    _row("192.0.2.7", "seven", 2.0),
    _row("192.0.2.5", "five last", 4.0, 99.0),
]


@pytest.mark.parametrize("existing", [[], EXISTING])
def test_deferred_key_gives_what_the_upsert_gives(tmp_path: Path, existing: list[Row]) -> None:
    for name, deferred in (("upsert.db", False), ("deferred.db", True)):
        if existing:
            _load(tmp_path / name, existing, deferred=False)
        ran = _load(tmp_path / name, LOAD, deferred=deferred)
        folded = any("listings_load_twice" in sql for sql in ran)
        assert folded == deferred, ran  # the deferred load met the duplicates and folded them
    want = _table(tmp_path / "upsert.db")
    assert _table(tmp_path / "deferred.db") == want
    assert [r[:4] for r in want if r[0] == "192.0.2.5"] == [("192.0.2.5", 4, "spam", "five last")]
    if existing:
        assert want[0][3:] == ("one again", SOURCE, 2.0, 90.0)  # first place, last values


def test_deferred_key_without_duplicates_builds_the_key_once(tmp_path: Path) -> None:
    rows = [_row(f"198.51.100.{i}", f"r{i}", 1.0) for i in range(200)]
    ran = _load(tmp_path / "r.db", rows, deferred=True)
    assert any(sql.startswith('DROP INDEX "listings_unique"') for sql in ran)
    assert not any("listings_load_twice" in sql for sql in ran)
    assert _table(tmp_path / "r.db") == sorted(rows)  # each chunk goes in subject order
    db = sqlite3.connect(tmp_path / "r.db")
    try:
        (sql,) = db.execute(
            "SELECT sql FROM sqlite_master WHERE name = 'listings_unique'"
        ).fetchone()
        assert sql.startswith("CREATE UNIQUE INDEX")
        with pytest.raises(sqlite3.IntegrityError):
            db.execute(
                "INSERT INTO listings VALUES (NULL, '198.51.100.3', 4, 'spam', 'x', ?, 1, NULL)",
                (SOURCE,),
            )
    finally:
        db.close()


def test_a_big_table_keeps_its_key_during_a_load(tmp_path: Path) -> None:
    """Only an empty or nearly empty table loads without the key (a re-import upserts)."""
    _load(
        tmp_path / "r.db", [_row(f"198.51.100.{i}", "r", 1.0) for i in range(100)], deferred=False
    )
    store = SQLiteStore(tmp_path / "r.db")
    ran: list[str] = []
    _db(store).set_trace_callback(ran.append)
    try:
        load_listings(
            store, [_row("198.51.100.1", "new", 2.0)], actor="t", action="i", expected=300
        )
    finally:
        store.close()
    assert not any("listings_unique" in sql for sql in ran)
    assert _table(tmp_path / "r.db")[1][3] == "new"


def test_a_failed_deferred_load_leaves_table_and_key_as_they_were(tmp_path: Path) -> None:
    _load(tmp_path / "r.db", EXISTING, deferred=False)

    def rows() -> Iterator[Row]:
        yield from LOAD
        raise ValueError("bad line")

    store = SQLiteStore(tmp_path / "r.db")
    try:
        with pytest.raises(ValueError, match="bad line"):
            load_listings(store, rows(), actor="t", action="i", expected=bulk.DEFER_MIN)
    finally:
        store.close()
    assert _table(tmp_path / "r.db") == EXISTING
    db = sqlite3.connect(tmp_path / "r.db")
    try:
        names = {n for (n,) in db.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        db.close()
    assert {"listings_unique", "listings_cause", "listings_source", "listings_expires"} <= names


@pytest.mark.parametrize(
    "rows",
    [
        [("192.0.2.1", 4, "spam", "r", "rbldnsd:/tmp/it's; DROP TABLE x", 1.5, None)] * 1
        + [("192.0.2.2", 4, "spam", "q", "rbldnsd:/tmp/it's; DROP TABLE x", 2.5, None)],
        [
            ("192.0.2.1", 4, "spam", "r", "s", 1.5, 7.25),
            ("192.0.2.2", 4, "spam", "q", "s", 2.5, None),
        ],
        [
            ("192.0.2.1", 4, "spam", "r", "s", 1.5, 7.25),
            ("2001:db8::1", 6, "harvest", "q", "s", 2.5, 8.5),
        ],
        [
            ("192.0.2.1", 4, "spam", "r", "s\0", 1.5, None),
            ("192.0.2.2", 4, "spam", "q", "s\0", 2.5, None),
        ],
    ],
    ids=["quoted-source-null-expiry", "bound-expiry", "mixed-columns", "unprintable-source"],
)
@pytest.mark.parametrize("deferred", [False, True])
def test_shared_columns_are_stored_as_given(
    tmp_path: Path, rows: list[Row], deferred: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Columns that all rows share are written as SQL literals: the table must not tell."""
    shared = bulk._shared
    made: list[str | None] = []

    def spy(statement: str, chunk: list[Row]) -> object:
        got = shared(statement, chunk)
        made.append(None if got is None else got[0])
        return got

    monkeypatch.setattr(bulk, "_shared", spy)
    _load(tmp_path / "r.db", rows, deferred=deferred)
    assert _table(tmp_path / "r.db") == sorted(rows)
    literal = rows[0][4] != "s\0" and rows[0][1] == rows[1][1]
    assert [sql is not None and "VALUES (?,4,'spam',?," in sql for sql in made] == [literal]


def _journal(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return str(db.execute("PRAGMA journal_mode").fetchone()[0])
    finally:
        db.close()


def test_a_load_into_an_empty_store_uses_a_rollback_journal_then_wal_again(
    tmp_path: Path,
) -> None:
    """Alone with an empty table, the load leaves WAL for its transaction and comes back to it."""
    rows = [_row(f"198.51.100.{i}", f"r{i}", 1.0) for i in range(200)]
    ran = _load(tmp_path / "r.db", rows, deferred=True)
    assert ran.index("PRAGMA journal_mode = DELETE") < ran.index("BEGIN IMMEDIATE")
    assert "PRAGMA journal_mode = WAL" in ran[ran.index("COMMIT") :]
    assert _journal(tmp_path / "r.db") == "wal"
    assert _table(tmp_path / "r.db") == sorted(rows)


def test_a_load_stays_in_wal_while_another_connection_has_the_store(tmp_path: Path) -> None:
    """Another process's open connection (a running serve) keeps the load in WAL, and it works."""
    _load(tmp_path / "r.db", [], deferred=False)
    reader = sqlite3.connect(tmp_path / "r.db")
    try:
        assert reader.execute("SELECT COUNT(*) FROM listings").fetchone() == (0,)
        rows = [_row(f"198.51.100.{i}", f"r{i}", 1.0) for i in range(200)]
        ran = _load(tmp_path / "r.db", rows, deferred=True)
        assert "PRAGMA journal_mode = DELETE" in ran  # tried, refused at once
        assert "PRAGMA journal_mode = WAL" not in ran
        assert reader.execute("SELECT COUNT(*) FROM listings").fetchone() == (200,)
    finally:
        reader.close()
    assert _journal(tmp_path / "r.db") == "wal"


def test_a_load_killed_in_rollback_mode_leaves_the_old_state(tmp_path: Path) -> None:
    """A process that dies mid-load (pages already spilled to the file) leaves the old table."""
    path = tmp_path / "r.db"
    _load(path, EXISTING, deferred=False)
    before = path.stat().st_size
    child = f"""
import os
from reputable.store import bulk
from reputable.store.sqlite import SQLiteStore
bulk.CACHE_KIB = 64  # a small cache: the load's pages spill into the database file
bulk.CHUNK = 1000
def rows():
    for i in range(60_000):
        yield ('10.%d.%d.%d' % (i >> 16, (i >> 8) & 255, i & 255), 4, 'spam', 'r' * 80, 'rbldnsd:f', 2.0, None)
    os._exit(3)  # no rollback, no close: as a crash
bulk.load_listings(SQLiteStore({str(path)!r}), rows(), actor='t', action='i', expected=60_000)
"""
    done = subprocess.run([sys.executable, "-c", child], check=False, timeout=120)
    assert done.returncode == 3
    assert Path(f"{path}-journal").stat().st_size > 0  # a hot journal: the file was written
    assert path.stat().st_size > before + 500_000
    SQLiteStore(path).close()  # the next opener rolls back and sets WAL
    assert _table(path) == EXISTING
    assert _journal(path) == "wal"


@dataclass
class _Run:
    """A run as rbldnsd.HostRun gives it (the Run protocol)."""

    subjects: list[str]
    cause: str = "spam"
    head: str = "listed: "
    tail: str | None = " now"
    source: str = SOURCE
    listed_at: float = 2.5
    expires_at: float | None = None
    family: int = 4

    def rows(self, subjects: Iterable[str]) -> Iterator[Row]:
        for s in subjects:
            reason = self.head if self.tail is None else f"{self.head}{s}{self.tail}"
            yield (s, 4, self.cause, reason, self.source, self.listed_at, self.expires_at)


@pytest.mark.parametrize("deferred", [False, True])
def test_a_run_is_stored_as_its_rows(
    tmp_path: Path, deferred: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk of one run goes in with one statement when its subjects are plain dotted quads,
    else row by row (JSON would unescape ``\\u0031``); the table holds the run's rows."""
    monkeypatch.setattr(bulk, "CHUNK", 3)
    plain = _Run(["192.0.2.9", "192.0.2.10", "192.0.2.1"], tail=None, expires_at=9.5)
    odd = _Run(['192.0.2.\\u0031"', "192.0.2.3", "192.0.2.4"])
    ran = _load(tmp_path / "r.db", [plain, odd, _row("192.0.2.2", "x", 1.0)], deferred=deferred)
    assert sum(" FROM json_each('[\"" in sql for sql in ran) == 1  # the plain one
    rows = [*plain.rows(plain.subjects), *odd.rows(odd.subjects), _row("192.0.2.2", "x", 1.0)]
    assert _table(tmp_path / "r.db") == sorted(rows[:3]) + sorted(rows[3:6]) + rows[6:]


def test_another_store_gets_the_rows_of_a_run() -> None:
    """The PostgreSQL path (`apply` of one Batch) writes a run out as its rows."""
    got: list[object] = []

    class Store:
        def apply(self, batch: Batch, *, actor: str, action: str) -> None:
            got.extend((format_subject(x.subject), x.reason) for x in batch.listings)

    run = _Run(["192.0.2.1", "192.0.2.2"])
    assert load_listings(Store(), [run, _row("192.0.2.3", "r", 1.0)], actor="t", action="i") == 3
    assert got == [
        ("192.0.2.1", "listed: 192.0.2.1 now"),
        ("192.0.2.2", "listed: 192.0.2.2 now"),
        ("192.0.2.3", "r"),
    ]
