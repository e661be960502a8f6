"""A snapshot with a few listings, built the way serve builds it, for the policy tests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.builder import publish_now
from reputable.config import Config, load_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLiteStore
from reputable.testing import free_port, write_config

T0 = datetime(2026, 1, 1, tzinfo=UTC)
LISTED = {
    "192.0.2.66": Cause.SPAM,
    "192.0.2.88": Cause.RDNS,
    "198.51.100.0/24": Cause.COMPROMISED,
    "spammy.example": Cause.SPAM,
    "2001:db8::66": Cause.OPEN_PROXY,
}
ALLOWED = ("198.51.100.10", "good.spammy.example")
TRAPS = '[traps]\naddresses = ["trap@example.net"]\nweight = 3.0\n'


def build(folder: Path, extra: str = "") -> tuple[Config, Snapshot]:
    """Write a config in *folder*, store the listings, build the snapshot; return both."""
    path = write_config(folder, dns_port=free_port(), extra=TRAPS + extra)
    config = load_config(path)
    # SQLite only: the policy service reads the snapshot, never the store; a snapshot built
    # from PostgreSQL answers the same (tests/store/test_publish_both.py).
    store = SQLiteStore(config.store_dsn.removeprefix("sqlite:///"))
    listings = tuple(
        Listing(subject=parse_subject(s), cause=c, reason="test", source="t", listed_at=T0)
        for s, c in LISTED.items()
    )
    allows = tuple(
        AllowEntry(subject=parse_subject(s), note="ok", source="t", created_at=T0) for s in ALLOWED
    )
    store.apply(Batch(listings=listings, allows=allows), actor="t", action="list")
    store.close()
    publish_now(config)
    return config, Snapshot(config.snapshot_path)


@pytest.fixture
def built(tmp_path: Path) -> tuple[Config, Snapshot]:
    """The configuration and snapshot of :func:`build`."""
    return build(tmp_path)
