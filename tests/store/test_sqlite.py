"""The store on both back-ends (SQLite, PostgreSQL): migrations, upserts, removal, serial, audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import StoreError
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.store.dsn import open_dsn
from reputable.store.migrate import migrations
from reputable.store.sqlite import SQLiteStore, SQLStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def listing(subject: str, cause: Cause = Cause.SPAM, **kw: object) -> Listing:
    """Return a listing of *subject* at NOW."""
    fields: dict[str, object] = {"reason": "r", "source": "cli", "listed_at": NOW, **kw}
    return Listing(subject=parse_subject(subject), cause=cause, **fields)  # type: ignore[arg-type]


def test_wal_and_schema(tmp_path: Path) -> None:
    """A new database is in WAL mode at the newest schema version."""
    store = SQLiteStore(tmp_path / "r.db")
    assert store.schema_version() >= 1
    mode = sqlite3.connect(tmp_path / "r.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()


def test_reopen_keeps_data(store_dsn: str) -> None:
    """Reopening runs no migration twice and keeps the listings."""
    store = open_dsn(store_dsn)
    version = store.schema_version()
    store.apply(Batch(listings=(listing("198.51.100.7"),)), actor="t", action="list")
    store.close()
    again = open_dsn(store_dsn)
    assert [x.subject_text for x in again.listings()] == ["198.51.100.7"]
    assert again.schema_version() == version
    (count,) = again._db.execute("SELECT COUNT(*) FROM schema_version").fetchone()
    assert count == len({m.version for m in migrations()})
    again.close()


def test_newer_schema_is_refused(store_dsn: str) -> None:
    """A database from a newer reputable is refused with advice."""
    store = open_dsn(store_dsn)
    store._db.execute("INSERT INTO schema_version VALUES (999)")
    store.close()
    with pytest.raises(StoreError, match="upgrade reputable"):
        open_dsn(store_dsn)


def test_upsert_and_serial(any_store: SQLStore) -> None:
    """Re-adding a listing updates it in place and every change moves the serial."""
    store = any_store
    s0 = store.serial()
    store.apply(
        Batch(listings=(listing("198.51.100.7", reason="first"),)), actor="t", action="list"
    )
    s1 = store.serial()
    store.apply(
        Batch(listings=(listing("198.51.100.7", reason="second"),)), actor="t", action="list"
    )
    rows = list(store.listings())
    assert s0 < s1 < store.serial()
    assert [r.reason for r in rows] == ["second"]


def test_expired_filtered(any_store: SQLStore) -> None:
    """Only listings active at the given time are returned when asked."""
    store = any_store
    store.apply(
        Batch(
            listings=(
                listing("198.51.100.7", expires_at=NOW + timedelta(hours=1)),
                listing("198.51.100.8"),
            )
        ),
        actor="t",
        action="list",
    )
    later = NOW + timedelta(hours=2)
    assert {r.subject_text for r in store.listings(active_at=later)} == {"198.51.100.8"}
    assert len(list(store.listings())) == 2
    assert [r[0] for r in store.listing_rows(active_at=later)] == ["198.51.100.8"]


def test_remove_by_cause(any_store: SQLStore) -> None:
    """Removing with a cause leaves the subject's other causes listed."""
    store = any_store
    store.apply(
        Batch(
            listings=(listing("2001:db8::/48", Cause.SPAM), listing("2001:db8::/48", Cause.MANUAL))
        ),
        actor="t",
        action="list",
    )
    assert (
        store.remove_listings(
            parse_subject("2001:db8::/48"), cause=Cause.SPAM, source=None, actor="t"
        )
        == 1
    )
    assert [r.cause for r in store.listings()] == [Cause.MANUAL]
    assert (
        store.remove_listings(parse_subject("2001:db8::/48"), cause=None, source=None, actor="t")
        == 1
    )
    assert list(store.listings()) == []


def test_batch_is_atomic(any_store: SQLStore) -> None:
    """A batch that fails half way leaves nothing behind."""
    store = any_store
    serial = store.serial()
    entry = AllowEntry(subject=parse_subject("x.example"), note="n", source="s", created_at=NOW)
    # A broken allow entry fails after the listings were inserted in the same transaction.
    object.__setattr__(entry, "subject", object())
    bad = Batch(listings=(listing("198.51.100.1"),), allows=(entry,))
    with pytest.raises(AttributeError):
        store.apply(bad, actor="t", action="list")
    assert list(store.listings()) == []
    assert store.serial() == serial
