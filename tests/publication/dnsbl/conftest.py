"""A responder over a small snapshot, shared by the wire tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl.wire import Responder
from reputable.publication.dnsbl.worker import Worker, zone_specs
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
LONG_REASON = "x" * 300 + " end"


def _listing(subject: str, cause: Cause, reason: str) -> Listing:
    return Listing(
        subject=parse_subject(subject), cause=cause, reason=reason, source="t", listed_at=NOW
    )


def make_responder(directory: Path) -> Responder:
    """Return a responder over the standard test listings."""
    config = parse_config(DEFAULT_TOML, directory / "reputable.toml")
    store = MemoryStore()
    many = tuple(
        _listing(f"192.0.2.{i}", c, f"cause {c.value} on $")
        for i in (50,)
        for c in (
            Cause.SPAM,
            Cause.HARVEST,
            Cause.COMPROMISED,
            Cause.OPEN_RELAY,
            Cause.OPEN_PROXY,
            Cause.MALWARE_HOST,
            Cause.RDNS,
            Cause.NETWORK,
            Cause.MANUAL,
        )
    )
    store.apply(
        Batch(
            listings=(
                _listing("198.51.100.7", Cause.SPAM, "spam trap hits"),
                _listing("198.51.100.0/24", Cause.COMPROMISED, "botnet segment"),
                _listing("2001:db8:1::/48", Cause.MANUAL, "operator"),
                _listing("evil.example", Cause.MALWARE_HOST, "phishing kit"),
                _listing("203.0.113.9", Cause.SPAM, LONG_REASON),
                *many,
            ),
            allows=(
                AllowEntry(
                    subject=parse_subject("198.51.100.9"),
                    note="partner MX",
                    source="t",
                    created_at=NOW,
                ),
            ),
        ),
        actor="t",
        action="t",
    )
    publish(store, config, NOW)
    dns = config.dns
    return Responder(
        Snapshot(config.snapshot_path),
        zone_specs(config),
        nameservers=dns.nameservers,
        hostmaster=dns.hostmaster,
        negative_ttl=dns.negative_ttl,
    )


@pytest.fixture(scope="module")
def responder(tmp_path_factory: pytest.TempPathFactory) -> Responder:
    """A responder over the standard test listings."""
    return make_responder(tmp_path_factory.mktemp("wire"))


@contextmanager
def udp_worker(config: Config) -> Iterator[Worker]:
    """Run a Worker's UDP loop over *config*'s published snapshot on 127.0.0.1:0 from a thread."""
    worker = Worker(config, 0)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.5)
    thread = threading.Thread(target=worker.udp_loop, args=(sock,), daemon=True)
    thread.start()
    worker.udp.append(sock)
    try:
        yield worker
    finally:
        worker.stopping.set()
        thread.join(timeout=5)
        sock.close()
