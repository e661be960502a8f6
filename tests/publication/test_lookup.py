"""The shared lookup answers exactly what the DNS server answers over a real socket."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address, IPv6Address, ip_network
from pathlib import Path

import dns.message
import dns.query
import dns.rdatatype
import pytest

from reputable.config import Config, load_config
from reputable.core.address import Domain, Subject, address_qname, parse_subject
from reputable.core.cause import LISTING_CAUSES
from reputable.listings.model import AllowEntry, Batch, Listing
from reputable.publication.dnsbl.worker import Worker
from reputable.publication.lookup import Lookup, Zones, lookup, lookup_text
from reputable.publication.snapshot.publish import publish
from reputable.publication.snapshot.view import Snapshot
from reputable.testing import MemoryStore, free_port, write_config

NOW = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
REASONS = ["trap hits on $", "botnet C2", "cost $$5", "", "operator decision", "x" * 300]


def random_listings(rng: random.Random, n: int) -> tuple[list[Listing], list[AllowEntry]]:
    """Return *n* random overlapping listings (v4, v6, domains) and some allowlist entries."""
    listings: list[Listing] = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.5:
            subject: Subject = parse_subject(f"10.0.{rng.randrange(8)}.{rng.randrange(256)}")
        elif kind < 0.7:
            plen = rng.randrange(20, 32)
            subject = ip_network(f"10.0.{rng.randrange(8)}.{rng.randrange(256)}/{plen}", False)
        elif kind < 0.85:
            plen = rng.choice([48, 56, 64, 128])
            raw = f"2001:db8:{rng.randrange(4):x}:{rng.randrange(4):x}::{rng.randrange(16):x}"
            subject = ip_network(f"{raw}/{plen}", strict=False)
        else:
            subject = parse_subject(
                rng.choice(["", "www.", "a.b."]) + f"d{rng.randrange(40)}.example"
            )
        expires = rng.choice([None, NOW + timedelta(days=3), NOW - timedelta(hours=1)])
        listings.append(
            Listing(
                subject=subject,
                cause=rng.choice(LISTING_CAUSES),
                reason=rng.choice(REASONS),
                source="test",
                listed_at=NOW - timedelta(minutes=rng.randrange(5000)),
                expires_at=expires,
            )
        )
    allows = [
        AllowEntry(
            subject=parse_subject(text),
            note=rng.choice(["partner MX", ""]),
            source="test",
            created_at=NOW,
            expires_at=rng.choice([None, NOW + timedelta(days=1)]),
        )
        for text in (
            *(f"10.0.{rng.randrange(8)}.{rng.randrange(256)}" for _ in range(20)),
            "10.0.3.0/28",
            "2001:db8:1::/64",
            "d7.example",
            "www.d8.example",
        )
    ]
    return listings, allows


def sampled_subjects(rng: random.Random, listings: list[Listing], n: int) -> Iterator[str]:
    """Yield *n* subjects: listed ones, addresses inside listed ranges, and unlisted ones."""
    fixed = ["127.0.0.1", "127.0.0.2", "::ffff:10.0.1.1", "test", "invalid", "example"]
    yield from fixed
    for _ in range(n - len(fixed)):
        pick = rng.random()
        item = rng.choice(listings).subject
        if pick < 0.4 and not isinstance(item, Domain):
            offset = rng.randrange(min(item.num_addresses, 1 << 20))
            yield str(item.network_address + offset)
        elif pick < 0.6 and isinstance(item, Domain):
            yield rng.choice(["", "mail.", "x.y."]) + item.name
        elif pick < 0.8:
            yield str(IPv4Address(0x0A000000 + rng.randrange(8 * 256)))
        elif pick < 0.9:
            yield str(IPv6Address(int(IPv6Address("2001:db8::")) + rng.randrange(1 << 70)))
        else:
            yield f"d{rng.randrange(60)}.example"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Config, Snapshot, int, random.Random]]:
    """A snapshot of 3,000 random listings, and a DNS worker answering from it on loopback."""
    rng = random.Random(20261205)
    port = free_port()
    config = load_config(write_config(tmp_path, dns_port=port))
    listings, allows = random_listings(rng, 3000)
    store = MemoryStore()
    store.apply(Batch(listings=tuple(listings), allows=tuple(allows)), actor="t", action="t")
    publish(store, config, NOW)
    worker = Worker(config, 0)
    worker.start()
    try:
        yield config, Snapshot(config.snapshot_path), port, rng
    finally:
        worker.stop()
    store.close()


def dns_answer(port: int, qname: str) -> tuple[set[str], set[str]]:
    """Return the (A, TXT) sets the server answers for *qname* (one query each; TCP when truncated).

    Not one ANY query: the server answers ANY with the A RRset alone (RFC 8482 §4.2).
    """
    codes: set[str] = set()
    texts: set[str] = set()
    for rdtype in (dns.rdatatype.A, dns.rdatatype.TXT):
        query = dns.message.make_query(qname, rdtype, use_edns=0, payload=4096)
        response, _ = dns.query.udp_with_fallback(query, "127.0.0.1", port=port, timeout=2)
        for rrset in response.answer:
            for rdata in rrset:
                if rrset.rdtype == dns.rdatatype.A:
                    codes.add(rdata.address)
                elif rrset.rdtype == dns.rdatatype.TXT:
                    texts.add(b"".join(rdata.strings).decode("utf-8", "replace"))
    return codes, texts


def api_answer(found: Lookup, *, allow: bool) -> tuple[set[str], set[str]]:
    """Return the (A, TXT) sets the lookup reports for one zone."""
    answers = found.allows if allow else found.listings
    return {str(a.code) for a in answers}, {a.txt for a in answers}


def qname(subject: str, zone: str) -> str:
    """Return the DNSBL query name of *subject* (address or domain) under *zone*."""
    parsed = parse_subject(subject)
    if isinstance(parsed, Domain):
        return f"{parsed.name}.{zone}"
    return address_qname(parsed.network_address, zone)


def test_lookup_equals_dns_for_10000_sampled_subjects(
    served: tuple[Config, Snapshot, int, random.Random],
) -> None:
    """For 10,000 sampled subjects, lookup reports the same codes and TXTs as DNS, zone by zone."""
    config, snapshot, port, rng = served
    zones = Zones.of(config)
    listings, _ = random_listings(random.Random(20261205), 3000)  # the fixture's listings
    disagreements: list[str] = []
    listed = 0
    for subject in sampled_subjects(rng, listings, 10_000):
        found = lookup_text(snapshot, subject, zones)
        is_domain = isinstance(parse_subject(subject), Domain)
        block_zone = config.domain_zone.name if is_domain else config.ip_zone.name
        for zone, allow in ((block_zone, False), (config.allow_zone.name, True)):
            want = dns_answer(port, qname(subject, zone))
            got = api_answer(found, allow=allow)
            if got != want:
                disagreements.append(f"{subject} in {zone}: lookup {got} != DNS {want}")
        listed += found.listed
    assert disagreements == []
    assert listed > 2000  # the sample really exercises listed subjects, not just misses


def test_lookup_reports_cause_times_and_listed_subject(tmp_path: Path) -> None:
    """A host inside a listed /24 reports the /24's cause, reason, since and until."""
    config = load_config(write_config(tmp_path, dns_port=free_port()))
    store = MemoryStore()
    until = NOW + timedelta(days=2)
    store.apply(
        Batch(
            listings=(
                Listing(
                    subject=parse_subject("192.0.2.0/24"),
                    cause=LISTING_CAUSES[2],
                    reason="botnet segment $",
                    source="t",
                    listed_at=NOW - timedelta(hours=1),
                    expires_at=until,
                ),
            )
        ),
        actor="t",
        action="t",
    )
    publish(store, config, NOW)
    snapshot = Snapshot(config.snapshot_path)
    found = lookup(snapshot, parse_subject("192.0.2.77"), Zones.of(config))
    (answer,) = found.listings
    assert (answer.cause.value, str(answer.code)) == ("compromised", "127.0.0.4")
    assert answer.since == NOW - timedelta(hours=1)
    assert answer.until == until
    assert answer.reason == "botnet segment $"
    assert answer.txt == "botnet segment $ http://127.0.0.1:8080/lookup/192.0.2.77"
    assert answer.listed_subject == "192.0.2.0/24"
    wide = lookup(snapshot, parse_subject("192.0.0.0/16"), Zones.of(config))
    assert [a.listed_subject for a in wide.listings] == ["192.0.2.0/24"]
    assert not lookup(snapshot, parse_subject("192.0.3.1"), Zones.of(config)).listed
