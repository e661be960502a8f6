"""The SQLite store: migrations, WAL, upserts, removal, serial and audit."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.core.errors import StoreError
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.store.sqlite import SQLiteStore

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


def test_reopen_keeps_data(tmp_path: Path) -> None:
    """Reopening runs no migration twice and keeps the listings."""
    store = SQLiteStore(tmp_path / "r.db")
    store.apply(Batch(listings=(listing("198.51.100.7"),)), actor="t", action="list")
    store.close()
    again = SQLiteStore(tmp_path / "r.db")
    assert [x.subject_text for x in again.listings()] == ["198.51.100.7"]
    again.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database from a newer reputable is refused with advice."""
    SQLiteStore(tmp_path / "r.db").close()
    db = sqlite3.connect(tmp_path / "r.db")
    db.execute("INSERT INTO schema_version VALUES (999)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="upgrade reputable"):
        SQLiteStore(tmp_path / "r.db")


def test_upsert_and_serial(tmp_path: Path) -> None:
    """Re-adding a listing updates it in place and every change moves the serial."""
    store = SQLiteStore(tmp_path / "r.db")
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
    store.close()


def test_expired_filtered(tmp_path: Path) -> None:
    """Only listings active at the given time are returned when asked."""
    store = SQLiteStore(tmp_path / "r.db")
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
    store.close()


def test_remove_by_cause(tmp_path: Path) -> None:
    """Removing with a cause leaves the subject's other causes listed."""
    store = SQLiteStore(tmp_path / "r.db")
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
    store.close()


def test_batch_is_atomic(tmp_path: Path) -> None:
    """A batch that fails half way leaves nothing behind."""
    store = SQLiteStore(tmp_path / "r.db")
    serial = store.serial()
    entry = AllowEntry(subject=parse_subject("x.example"), note="n", source="s", created_at=NOW)
    # A broken allow entry fails after the listings were inserted in the same transaction.
    object.__setattr__(entry, "subject", object())
    bad = Batch(listings=(listing("198.51.100.1"),), allows=(entry,))
    with pytest.raises(AttributeError):
        store.apply(bad, actor="t", action="list")
    assert list(store.listings()) == []
    assert store.serial() == serial
    store.close()
