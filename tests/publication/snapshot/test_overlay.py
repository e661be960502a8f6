"""The incremental overlay answers exactly as a full rebuild would, and only when it can."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from reputable.config import DEFAULT_TOML, Config, parse_config
from reputable.core.address import parse_subject
from reputable.core.cause import Cause
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl import fastpath
from reputable.publication.dnsbl.wire import Responder
from reputable.publication.dnsbl.worker import zone_specs
from reputable.publication.snapshot.overlay import overlay_path
from reputable.publication.snapshot.publish import (
    CHANGED,
    FRESH,
    freshness,
    publish,
    publish_overlay,
)
from reputable.publication.snapshot.view import Snapshot
from reputable.store.sqlite import SQLStore
from tests.publication.dnsbl.conftest import udp_worker

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
ZONE = "bl.reputable.test"
WL = "wl.reputable.test"


def _listing(subject: str, cause: Cause, reason: str, **kw: object) -> Listing:
    return Listing(
        subject=parse_subject(subject),
        cause=cause,
        reason=reason,
        source=str(kw.get("source", "t")),
        listed_at=NOW - timedelta(hours=1),
        expires_at=kw.get("expires_at"),  # type: ignore[arg-type]
    )


def _allow(subject: str, note: str) -> AllowEntry:
    return AllowEntry(subject=parse_subject(subject), note=note, source="t", created_at=NOW)


def _config(directory: Path) -> Config:
    directory.mkdir(parents=True, exist_ok=True)
    return parse_config(DEFAULT_TOML, directory / "reputable.toml")


def _seed(store: SQLStore) -> None:
    store.apply(
        Batch(
            listings=(
                _listing("198.51.100.7", Cause.SPAM, "spam trap hits on $"),
                _listing("198.51.100.0/24", Cause.COMPROMISED, "botnet segment"),
                _listing("203.0.113.0/24", Cause.NETWORK, "escalated"),
                _listing("192.0.2.8", Cause.SPAM, "to be removed"),
                _listing("192.0.2.9", Cause.OPEN_PROXY, "open proxy"),
                _listing("2001:db8:1::/48", Cause.MANUAL, "operator"),
                _listing("evil.example", Cause.MALWARE_HOST, "phishing kit"),
            ),
            allows=(_allow("203.0.113.200", "partner MX"),),
        ),
        actor="cli",
        action="list",
    )


def _change(store: SQLStore) -> None:
    """One-entry changes of every kind an overlay holds (each its own transaction)."""
    for listing in (
        _listing("198.51.100.7", Cause.HARVEST, "unknown recipients"),  # second cause
        _listing("198.51.100.20", Cause.SPAM, "new inside a range"),
        _listing("203.0.113.200", Cause.SPAM, "listed but allowlisted"),
        _listing("192.0.2.77", Cause.MANUAL, "brand new"),
        _listing("2001:db8:2::5", Cause.SPAM, "v6 host"),
    ):
        store.apply(Batch(listings=(listing,)), actor="cli", action="list")
    store.remove_listings(parse_subject("192.0.2.8"), cause=None, source=None, actor="cli")
    store.apply(Batch(allows=(_allow("192.0.2.9", "vouched"),)), actor="cli", action="allow")


def _responder(snapshot: Snapshot, config: Config) -> Responder:
    dns_ = config.dns
    return Responder(
        snapshot,
        zone_specs(config),
        nameservers=dns_.nameservers,
        hostmaster=dns_.hostmaster,
        negative_ttl=dns_.negative_ttl,
    )


def _reverse(address: str) -> str:
    if ":" in address:
        from ipaddress import IPv6Address

        nibbles = f"{int(IPv6Address(address)):032x}"
        return ".".join(reversed(nibbles))
    return ".".join(reversed(address.split(".")))


SAMPLES = (
    "198.51.100.7",
    "198.51.100.20",
    "198.51.100.21",
    "203.0.113.200",
    "203.0.113.5",
    "192.0.2.77",
    "192.0.2.8",
    "192.0.2.9",
    "192.0.2.10",
    "2001:db8:2::5",
    "2001:db8:1::9",
    "127.0.0.2",
)


def _answers(responder: Responder, engine: fastpath.Engine | None) -> list[tuple[str, ...]]:
    """Return (name, type, rcode, sorted rdata) for every sample in both zones, A and TXT."""
    out = []
    for address in SAMPLES:
        for zone in (ZONE, WL):
            for qtype in ("A", "TXT"):
                query = dns.message.make_query(f"{_reverse(address)}.{zone}", qtype)
                query.id = 7
                wire = query.to_wire()
                reply_wire = None
                if engine is not None:
                    got = engine.respond(wire, 512)
                    reply_wire = None if got is None else got[0]
                if reply_wire is None:
                    reply_wire = responder.respond(wire, 512)
                assert reply_wire is not None
                reply = dns.message.from_wire(reply_wire)
                rdata = sorted(r.to_text() for rrset in reply.answer for r in rrset)
                out.append((address, zone, qtype, dns.rcode.to_text(reply.rcode()), *rdata))
    return out


def test_overlay_answers_like_a_full_rebuild(any_store: SQLStore, tmp_path: Path) -> None:
    """Added, second-cause, in-range, allowlisted, delisted and IPv6 changes, via the overlay."""
    config = _config(tmp_path / "overlay")
    _seed(any_store)
    publish(any_store, config, NOW)
    _change(any_store)
    serial = any_store.serial()
    assert freshness(config.snapshot_path, serial=serial, digest=_digest(config), now=NOW) == (
        CHANGED
    )
    result = publish_overlay(any_store, config, NOW)
    assert result is not None and result.serial == serial
    assert result.listings == 7  # the changed addresses
    assert freshness(config.snapshot_path, serial=serial, digest=_digest(config), now=NOW) == (
        FRESH
    )
    base = Snapshot(config.snapshot_path)
    assert base.attach_overlay(overlay_path(config.snapshot_path))
    layered = _responder(base, config)

    full_config = _config(tmp_path / "full")
    publish(any_store, full_config, NOW)
    full = _responder(Snapshot(full_config.snapshot_path), full_config)

    expected = _answers(full, None)
    assert _answers(layered, None) == expected
    module = fastpath.extension()
    if module is not None:  # the compiled loop leaves the changed addresses to Python
        assert _answers(layered, fastpath.engine_for(layered, module)) == expected
    # The changes really show (not two equally stale answers).
    by_key = {row[:3]: row[3:] for row in expected}
    assert by_key[("192.0.2.77", ZONE, "A")] == ("NOERROR", "127.0.0.10")
    assert by_key[("192.0.2.8", ZONE, "A")][0] == "NXDOMAIN"
    assert by_key[("192.0.2.9", ZONE, "A")][0] == "NXDOMAIN"
    assert by_key[("192.0.2.9", WL, "A")][0] == "NOERROR"
    assert by_key[("198.51.100.7", ZONE, "A")] == ("NOERROR", "127.0.0.2", "127.0.0.3", "127.0.0.4")
    assert by_key[("2001:db8:2::5", ZONE, "A")] == ("NOERROR", "127.0.0.2")


def _digest(config: Config) -> str:
    from reputable.publication.snapshot.publish import fingerprint

    return fingerprint(config)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda s: s.apply(
                Batch(listings=(_listing("10.9.0.0/16", Cause.SPAM, "range"),)),
                actor="cli",
                action="list",
            ),
            id="range",
        ),
        pytest.param(
            lambda s: s.apply(
                Batch(listings=(_listing("bad.example", Cause.SPAM, "domain"),)),
                actor="cli",
                action="list",
            ),
            id="domain",
        ),
        pytest.param(
            lambda s: s.apply(
                Batch(listings=(_listing("192.0.2.5", Cause.SPAM, "policy"),)),
                actor="policy",
                action="list",
            ),
            id="policy",
        ),
        pytest.param(
            lambda s: s.apply(
                Batch(
                    listings=tuple(
                        _listing(f"10.1.{i // 256}.{i % 256}", Cause.SPAM, "bulk")
                        for i in range(101)
                    )
                ),
                actor="cli",
                action="import",
            ),
            id="bulk",
        ),
    ],
)
def test_changes_an_overlay_cannot_express_ask_for_a_rebuild(
    any_store: SQLStore, tmp_path: Path, change: object
) -> None:
    """Ranges, domains, policy runs and bulk writes: publish_overlay says None (rebuild)."""
    config = _config(tmp_path)
    _seed(any_store)
    publish(any_store, config, NOW)
    change(any_store)  # type: ignore[operator]
    assert publish_overlay(any_store, config, NOW) is None


def test_full_rebuild_retires_the_overlay(any_store: SQLStore, tmp_path: Path) -> None:
    """A new base holds what the overlay held; the overlay file goes, answers stay."""
    config = _config(tmp_path)
    _seed(any_store)
    publish(any_store, config, NOW)
    any_store.apply(
        Batch(listings=(_listing("192.0.2.77", Cause.MANUAL, "new"),)), actor="cli", action="list"
    )
    assert publish_overlay(any_store, config, NOW) is not None
    assert overlay_path(config.snapshot_path).exists()
    publish(any_store, config, NOW)
    assert not overlay_path(config.snapshot_path).exists()
    snapshot = Snapshot(config.snapshot_path)
    assert not snapshot.attach_overlay(overlay_path(config.snapshot_path))
    assert snapshot.atoms(snapshot.v4_value(0xC000024D))  # 192.0.2.77


def _query(sock: socket.socket, qid: int, name: str) -> bytes | None:
    sock.send(dns.message.make_query(name, "A", id=qid).to_wire())
    try:
        reply = sock.recv(4096)
    except TimeoutError:
        return None
    return reply if struct.unpack_from(">H", reply)[0] == qid else None


def _rdata_within(client: socket.socket, name: str, want: list[str], seconds: float) -> bool:
    """True when *name* answers A *want* (empty: NXDOMAIN) within *seconds*.

    Callers give 30 s: it returns at the first such answer, and a worker thread on a loaded
    machine may take seconds to swap in a new responder.
    """
    deadline = time.monotonic() + seconds
    qid = 100
    while time.monotonic() < deadline:
        qid += 1
        raw = _query(client, qid, name)
        if raw is not None:
            reply = dns.message.from_wire(raw)
            got = [r.to_text() for rrset in reply.answer for r in rrset]
            if got == want and (want or reply.rcode() == dns.rcode.NXDOMAIN):
                return True
        time.sleep(0.01)
    return False


def test_worker_swaps_overlay_and_base_without_losing_a_query(
    tmp_path: Path, store: SQLStore
) -> None:
    """A query stream during overlay writes and a full rebuild: every query answered; the
    added address answers from the overlay, the delisted one stops answering."""
    config = _config(tmp_path)
    _seed(store)
    publish(store, config, NOW)
    name = f"{_reverse('192.0.2.77')}.{ZONE}"
    with udp_worker(config) as worker:
        port = worker.udp[0].getsockname()[1]
        sent = answered = 0
        stop = threading.Event()

        def load() -> None:
            nonlocal sent, answered
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.connect(("127.0.0.1", port))
            client.settimeout(2.0)
            while not stop.is_set():
                sent += 1
                addr = "198.51.100.7" if sent % 2 else "192.0.2.9"
                if _query(client, sent & 0xFFFF, f"{_reverse(addr)}.{ZONE}") is not None:
                    answered += 1
            client.close()

        thread = threading.Thread(target=load)
        thread.start()
        try:
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.connect(("127.0.0.1", port))
            client.settimeout(2.0)
            before = dns.message.from_wire(_query(client, 1, name) or b"")
            assert before.rcode() == 3  # NXDOMAIN: not listed yet
            store.apply(
                Batch(listings=(_listing("192.0.2.77", Cause.MANUAL, "new"),)),
                actor="cli",
                action="list",
            )
            store.remove_listings(parse_subject("192.0.2.9"), cause=None, source=None, actor="c")
            assert publish_overlay(store, config, NOW) is not None
            assert worker.reload_if_changed()
            # The compiled loop takes the new responder between batches: the batch in flight
            # at the swap may still answer from the old one, so look for up to 2 s.
            assert _rdata_within(client, name, ["127.0.0.10"], 30)
            assert _rdata_within(client, f"{_reverse('192.0.2.9')}.{ZONE}", [], 30)
            time.sleep(0.2)
            publish(store, config, NOW)  # the background rebuild folds the overlay in
            assert worker.reload_if_changed()
            assert worker.responder.snapshot.overlay is None
            assert _rdata_within(client, name, ["127.0.0.10"], 30)
            time.sleep(0.2)
            client.close()
        finally:
            stop.set()
            thread.join(timeout=10)
        assert sent > 10
        assert answered == sent, f"{sent - answered} of {sent} queries lost during the swaps"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    """A SQLite store (the UDP test needs one back-end only)."""
    from reputable.store.sqlite import SQLiteStore

    opened = SQLiteStore(tmp_path / "reputable.db")
    yield opened
    opened.close()


def test_worker_keeps_its_overlay_while_a_rebuild_swaps_in(tmp_path: Path, store: SQLStore) -> None:
    """The overlay file going (or turning stale) before the new base is in place must not
    make a worker answer from the base alone, which lacks the overlaid change."""
    config = _config(tmp_path)
    _seed(store)
    publish(store, config, NOW)
    name = f"{_reverse('192.0.2.77')}.{ZONE}"
    with udp_worker(config) as worker:
        port = worker.udp[0].getsockname()[1]
        client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        client.connect(("127.0.0.1", port))
        client.settimeout(2.0)
        try:
            store.apply(
                Batch(listings=(_listing("192.0.2.77", Cause.MANUAL, "new"),)),
                actor="cli",
                action="list",
            )
            assert publish_overlay(store, config, NOW) is not None
            assert worker.reload_if_changed()
            assert _rdata_within(client, name, ["127.0.0.10"], 30)
            overlay_path(config.snapshot_path).unlink()  # the rebuild's first step, say
            assert not worker.reload_if_changed()
            assert worker.responder.snapshot.overlay is not None
            assert _rdata_within(client, name, ["127.0.0.10"], 30)
            publish(store, config, NOW)  # the new base arrives: it holds the change
            assert worker.reload_if_changed()
            assert worker.responder.snapshot.overlay is None
            assert _rdata_within(client, name, ["127.0.0.10"], 30)
        finally:
            client.close()
