"""Big reads and writes on both back-ends: batched reads (a server-side cursor on PostgreSQL)
and many-row inserts (COPY on PostgreSQL) give exactly what SQLite's row-by-row path gives."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

import pytest

from reputable.core.errors import StoreError
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLStore
from reputable.store.sqlite_tx import transaction

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
UPSERT = (
    "INSERT INTO listings (subject, family, cause, reason, source, listed_at, expires_at)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT (subject, cause, source) DO UPDATE SET"
    " reason = excluded.reason, expires_at = excluded.expires_at, listed_at = excluded.listed_at"
)


def _ip(i: int) -> str:
    return str(IPv4Address(int(IPv4Address("10.0.0.0")) + i))


def _listings(store: SQLStore) -> list[tuple[object, ...]]:
    rows = store._db.execute(
        "SELECT subject, family, cause, reason, source, listed_at, expires_at FROM listings"
        " ORDER BY id"  # the order of the ids, not their values: PostgreSQL's sequence has gaps
    ).fetchall()
    return [tuple(row) for row in rows]


def _write(store: SQLStore, sql: str, rows: object) -> int:
    with transaction(store._db, "test write") as db:
        return db.executemany(sql, rows).rowcount  # type: ignore[arg-type]


@pytest.fixture
def sqlite_reference(tmp_path: Path) -> Iterator[SQLStore]:
    """A SQLite store to compare with (row-by-row executemany)."""
    store = open_dsn(f"sqlite:///{tmp_path}/reference.db")
    try:
        yield store
    finally:
        store.close()


def test_upsert_many_equals_row_by_row(any_store: SQLStore, sqlite_reference: SQLStore) -> None:
    """1,000 upserts with repeated keys and a second batch over them: the same rows and ids."""
    first = [(_ip(i % 700), 4, "spam", f"r{i}", "policy", 1.0 + i, None) for i in range(1000)]
    second = [(_ip(i), 4, "spam", f"again {i}", "policy", 5000.0 + i, 9e9) for i in range(500, 900)]
    for store in (any_store, sqlite_reference):
        _write(store, UPSERT, first)
        _write(store, UPSERT, iter(second))  # a generator, as the store's own callers pass
    assert _listings(any_store) == _listings(sqlite_reference)
    rows = _listings(any_store)
    assert len(rows) == 900
    assert rows[0][:4] == ("10.0.0.0", 4, "spam", "r700")  # the last row of a key wins ...
    assert [r[0] for r in rows[:700]] == [_ip(i) for i in range(700)]  # ... where it first came


def test_insert_or_ignore_many_keeps_the_first_and_counts_the_new(
    any_store: SQLStore, sqlite_reference: SQLStore
) -> None:
    """OR IGNORE over 600 rows with in-batch and stored duplicates: same rows, same count."""
    sql = "INSERT OR IGNORE INTO hosting (ip, domain) VALUES (?, ?)"
    rows = [(_ip(i % 400), f"d{i % 400}.example") for i in range(600)]
    counts = []
    for store in (any_store, sqlite_reference):
        _write(store, sql, rows[:250])
        before = store._db.total_changes
        _write(store, sql, rows)
        counts.append(store._db.total_changes - before)
    assert counts == [150, 150]
    query = "SELECT ip, domain FROM hosting ORDER BY ip, domain"
    assert [tuple(r) for r in any_store._db.execute(query).fetchall()] == [
        tuple(r) for r in sqlite_reference._db.execute(query).fetchall()
    ]


def test_a_refused_row_in_a_big_insert_stores_none_of_them(any_store: SQLStore) -> None:
    """A NOT NULL violation in row 300 of 500 fails the whole write; nothing is stored."""
    sql = "INSERT INTO audit (at, actor, action, subject, cause, detail) VALUES (?,?,?,?,?,?)"
    rows = [(1.0, "t", "list", _ip(i), None, "d") for i in range(500)]
    rows[300] = (1.0, None, "list", _ip(300), None, "d")
    with pytest.raises(StoreError):
        _write(any_store, sql, rows)
    assert any_store._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 0
    _write(any_store, sql, rows[:300])  # the store (and its connection) still works
    assert any_store._db.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 300


def test_batched_reads_give_every_row_in_order(any_store: SQLStore) -> None:
    """_batches gives the query's rows in order in lists of the batch size; _each row by row."""
    rows = [(_ip(i), 4, "spam", "r", "s", float(i), None) for i in range(4500)]
    _write(any_store, UPSERT, rows)
    sql = "SELECT subject, listed_at FROM listings WHERE listed_at >= ? ORDER BY id"
    batches = list(any_store._batches(sql, (10.0,), 1000))
    assert [len(b) for b in batches] == [1000, 1000, 1000, 1000, 490]
    flat = [tuple(r) for b in batches for r in b]
    assert flat == [(_ip(i), float(i)) for i in range(10, 4500)]
    assert [tuple(r) for r in any_store._each(sql, (10.0,))] == flat


def test_a_read_stopped_early_gives_its_connection_back(any_store: SQLStore) -> None:
    """Stopping a batched read halfway, again and again, never runs the pool dry."""
    _write(any_store, UPSERT, [(_ip(i), 4, "spam", "r", "s", 1.0, None) for i in range(300)])
    for _ in range(30):  # more than the pool's connections
        reader = any_store._batches("SELECT subject FROM listings ORDER BY id", (), 10)
        assert len(next(reader)) == 10
        reader.close()
    assert any_store._db.execute("SELECT COUNT(*) FROM listings").fetchone()[0] == 300


def test_a_batched_read_inside_a_transaction_sees_its_writes(any_store: SQLStore) -> None:
    """Inside a write transaction the read sees the transaction's own uncommitted rows."""
    with transaction(any_store._db, "test") as db:
        db.executemany(UPSERT, [(_ip(i), 4, "spam", "r", "s", 1.0, None) for i in range(250)])
        seen = sum(len(b) for b in any_store._batches("SELECT subject FROM listings", (), 100))
        db.execute("DELETE FROM listings")
    assert seen == 250


def test_listing_rows_memory_stays_flat(any_store: SQLStore) -> None:
    """Reading 40,000 listings peaks at a small fraction of holding them (one batch at a time)."""
    n = 40_000
    _write(any_store, UPSERT, [(_ip(i), 4, "spam", "a reason", "s", 1.0, None) for i in range(n)])
    tracemalloc.start()
    try:
        count = sum(1 for _ in any_store.listing_rows(active_at=NOW))
        _, peak_stream = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        held = any_store._db.execute(
            "SELECT subject, family, cause, reason, listed_at, expires_at FROM listings"
        ).fetchall()
        _, peak_whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == n and len(held) == n
    assert peak_stream < peak_whole / 4, (peak_stream, peak_whole)


def _evidence(store: SQLStore, n: int) -> None:
    rows = [
        (f"k{i}", _ip(i % 300), _ip(i % 300), "spam" if i % 3 else "harvest", f"src{i % 7}",
         1000.0 + i, 1.0, None, f'{{"detector": "d{i % 5}"}}' if i % 4 == 0 else "{}")
        for i in range(n)
    ]  # fmt: skip
    store.add_evidence_rows(rows)


def test_evidence_labels_scan_and_in_lists_agree(
    any_store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many targets (one pass over the table) or few (IN lists): the same labels of the same rows."""
    from reputable.store import postgres, sqlite_policy, sqlite_tx

    _evidence(any_store, 1200)
    wanted = [_ip(i) for i in range(0, 300, 2)]  # 150 of the 300 targets
    monkeypatch.setattr(sqlite_tx, "IN_LIST", 40)  # IN lists of 40 targets, 4 of them
    monkeypatch.setattr(postgres.PgConnection, "in_list_size", 40)
    scans: list[str] = []
    each = any_store._each
    monkeypatch.setattr(any_store, "_each", lambda *args: scans.append(args[0]) or each(*args))
    by_lists = sorted(any_store.evidence_labels(wanted))  # 150 targets, not over 5,000
    assert scans == []
    monkeypatch.setattr(sqlite_policy, "_SCAN_MIN_TARGETS", 100)  # 150 > 100, >= 5 % of 1,200
    by_scan = sorted(any_store.evidence_labels(wanted))
    assert len(scans) == 1 and "IN" not in scans[0]
    assert by_scan == by_lists
    assert len(by_scan) == 600 and {row[0] for row in by_scan} == set(wanted)
    assert (_ip(2), "spam", 1002.0, "src2") in by_scan  # no detector: the source
    assert (_ip(4), "spam", 1304.0, "d4") in by_scan  # row 304 names detector d4


@pytest.mark.parametrize("store_backend", ["postgresql"])  # SQLite plans without statistics
def test_a_table_that_doubled_by_bulk_inserts_is_analysed(
    any_store: SQLStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: a commit that doubles a table (by at least ANALYZE_MIN_ROWS) analyses it.

    Without statistics the planner read 5,000 targets' evidence by scanning the whole table.
    """
    from reputable.store import postgres

    monkeypatch.setattr(postgres, "ANALYZE_MIN_ROWS", 500)
    # Only the store's own ANALYZE counts here, not the server's autovacuum.
    any_store._db.execute("ALTER TABLE evidence SET (autovacuum_enabled = false)")

    def analysed() -> tuple[float, int]:
        row = any_store._db.execute(
            "SELECT c.reltuples, COALESCE(s.analyze_count, 0) FROM pg_class c"
            " JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'evidence'::regclass"
        ).fetchone()
        return float(row[0]), int(row[1])

    _evidence(any_store, 400)  # under the minimum: no ANALYZE
    assert analysed()[0] <= 0
    _evidence(any_store, 500)  # keys k0..k499: 100 new; 500 inserted in all now
    assert analysed()[0] == 500.0  # the first ANALYZE: the table's 500 rows
    _evidence(any_store, 900)  # 400 new: 400 since, fewer than the 500 then
    assert analysed()[0] == 500.0
    _evidence(any_store, 1400)  # 500 more: 900 since >= 500 -> analysed at 1,400 rows
    assert analysed()[0] == 1400.0
