"""Range listings are read from a per-serial cache that follows every change, from any connection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import Batch, Listing
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLStore

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)


def _listing(subject: str, expires: datetime | None = None) -> Listing:
    return Listing(
        subject=parse_subject(subject), cause=Cause.NETWORK, reason="r", source="test",
        listed_at=NOW, expires_at=expires,
    )  # fmt: skip


def _ranges(store: SQLStore, at: datetime = NOW) -> set[str]:
    return {item.subject_text for item in store.listings_where(like="%/%", family=4, active_at=at)}


def test_range_cache_follows_writes_from_another_connection(store_dsn: str) -> None:
    """Ranges added, expired or removed through another connection show at the next read."""
    reader, writer = open_dsn(store_dsn), open_dsn(store_dsn)
    try:
        writer.apply(
            Batch(listings=(_listing("192.0.2.0/24"), _listing("192.0.2.7"))),
            actor="t",
            action="list",
        )
        assert _ranges(reader) == {"192.0.2.0/24"}
        writer.apply(
            Batch(listings=(_listing("198.51.100.0/24", NOW + timedelta(hours=1)),)),
            actor="t",
            action="list",
        )
        assert _ranges(reader) == {"192.0.2.0/24", "198.51.100.0/24"}
        assert _ranges(reader, NOW + timedelta(hours=2)) == {"192.0.2.0/24"}
        writer.remove_listings(parse_subject("192.0.2.0/24"), cause=None, source=None, actor="t")
        assert _ranges(reader) == {"198.51.100.0/24"}
        assert {
            i.subject_text for i in reader.listings_where(like="%/%", family=6, active_at=NOW)
        } == set()
    finally:
        reader.close()
        writer.close()
