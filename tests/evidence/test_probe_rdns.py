"""The rDNS probe through a loopback authoritative DNS fixture: PTR, FCrDNS, generic names."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import ip_address, ip_network

import pytest

from reputable.config import parse_config
from reputable.core.cause import Cause
from reputable.evidence.model import Evidence
from reputable.evidence.sources.probes.auto import auto_rdns_round, probe_new_senders
from reputable.evidence.sources.probes.guard import RateLimiter
from reputable.evidence.sources.probes.model import ProbeResult
from reputable.evidence.sources.probes.runner import run_probe
from reputable.evidence.sources.resolver import DnsResolver
from reputable.evidence.sources.settings import parse_settings
from reputable.store.dsn import open_dsn
from reputable.store.sqlite import SQLiteStore
from tests.checker.dnsfixture import DnsFixture, ZoneData

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
TEST_NET = [ip_network("192.0.2.0/24")]


@pytest.fixture(scope="module")
def world() -> Iterator[DnsFixture]:
    """PTR and forward records for four addresses of 192.0.2.0/24."""
    data = ZoneData(
        zones=["in-addr.arpa", "test"],
        records={
            ("10.2.0.192.in-addr.arpa", "PTR"): ["mail.good.test."],
            ("mail.good.test", "A"): ["192.0.2.10"],
            ("11.2.0.192.in-addr.arpa", "PTR"): ["dsl-192-0-2-11.pool.isp.test."],
            ("dsl-192-0-2-11.pool.isp.test", "A"): ["192.0.2.11"],
            ("12.2.0.192.in-addr.arpa", "PTR"): ["mx.liar.test."],
            ("mx.liar.test", "A"): ["192.0.2.99"],
        },
    )
    fixture = DnsFixture(data).start()
    yield fixture
    fixture.stop()


def probe(world: DnsFixture, dsn: str, ip: str) -> tuple[ProbeResult, SQLiteStore]:
    """Run the rdns probe of *ip* with the fixture as the configured nameserver."""
    config = parse_config(f'[resolver]\nnameserver = "{world.nameserver}"\n')
    store = open_dsn(dsn)
    result = asyncio.run(
        run_probe(
            "rdns",
            ip,
            settings=parse_settings(config.extra),
            store=store,
            now=NOW,
            allow=TEST_NET,
        )
    )
    return result, store


def test_confirmed_specific_ptr_passes(world: DnsFixture, store_dsn: str) -> None:
    """A PTR that resolves back and names a server passes and gives clean evidence."""
    result, store = probe(world, store_dsn, "192.0.2.10")
    assert result.result == "pass"
    assert result.facts["ptr"] == ["mail.good.test"]
    assert result.facts["confirmed"] is True
    assert [r.cause for r in store.evidence_records(["192.0.2.10"])] == [Cause.CLEAN]


def test_missing_ptr_fails_with_full_weight(world: DnsFixture, store_dsn: str) -> None:
    """No PTR at all is rdns evidence of weight 1.0, enough to list under the default policy."""
    result, store = probe(world, store_dsn, "192.0.2.13")
    assert (result.result, result.facts["problems"]) == ("fail", ["no_ptr"])
    [record] = store.evidence_records(["192.0.2.13"])
    assert (record.cause, record.weight) == (Cause.RDNS, 1.0)
    assert record.detail["ptr"] == []


def test_generic_ptr_fails_even_when_confirmed(world: DnsFixture, store_dsn: str) -> None:
    """A forward-confirmed pool name is still generic: rdns evidence with the reasons."""
    result, store = probe(world, store_dsn, "192.0.2.11")
    assert result.result == "fail"
    assert result.facts["confirmed"] is True
    assert result.facts["problems"] == ["generic"]
    reasons = result.facts["generic"]["dsl-192-0-2-11.pool.isp.test"]
    assert "the address's digits are in the name" in reasons
    assert "dynamic-pool words: dsl, pool" in reasons
    assert store.evidence_records(["192.0.2.11"])[0].weight == 0.5


def test_ptr_not_resolving_back_fails(world: DnsFixture, store_dsn: str) -> None:
    """A PTR name whose address is another one fails forward confirmation."""
    result, _ = probe(world, store_dsn, "192.0.2.12")
    assert result.result == "fail"
    assert result.facts["problems"] == ["not_confirmed"]
    assert "C: A/AAAA mx.liar.test" in result.transcript


def test_dead_nameserver_is_an_error_without_evidence(store_dsn: str) -> None:
    """When the configured nameserver does not answer the result is error and nothing is stored."""
    config = parse_config('[resolver]\nnameserver = "127.0.0.1:9"\ntimeout = "0.3s"\n')
    store = open_dsn(store_dsn)
    result = asyncio.run(
        run_probe(
            "rdns",
            "192.0.2.10",
            settings=parse_settings(config.extra),
            store=store,
            now=NOW,
            allow=TEST_NET,
        )
    )
    assert result.result == "error"
    assert store.evidence_records(["192.0.2.10"]) == []


def test_auto_rdns_probes_new_mail_senders_once(world: DnsFixture, store_dsn: str) -> None:
    """serve's automatic rDNS probes addresses seen in mail logs, not feed-only ones, once each."""
    config = parse_config(
        f'[resolver]\nnameserver = "{world.nameserver}"\n[probes]\nauto_rdns = true\n'
    )
    settings = parse_settings(config.extra)
    store = open_dsn(store_dsn)
    for ip, source in [
        ("192.0.2.10", "maillog:/var/log/mail.log"),
        ("192.0.2.13", "maillog:/var/log/mail.log"),
        ("192.0.2.11", "feed:urlhaus"),
    ]:
        store.add_evidence(
            [Evidence(subject=ip_address(ip), cause=Cause.SPAM, source=source, observed_at=NOW)]
        )
    limiter = RateLimiter(per_target=600, per_minute=30)
    resolver = DnsResolver(settings.resolver)

    def one_round() -> int:
        """Run one round of the automatic probe."""
        return asyncio.run(auto_rdns_round(store, settings, deque(), limiter, resolver, NOW))

    assert one_round() == 2
    assert one_round() == 0
    probed = {
        r.subject: r.cause
        for r in store.evidence_records(["192.0.2.10", "192.0.2.11", "192.0.2.13"])
        if r.source == "probe:rdns"
    }
    assert probed == {"192.0.2.10": Cause.CLEAN, "192.0.2.13": Cause.RDNS}


def test_auto_rdns_is_off_by_default() -> None:
    """Without [probes] auto_rdns the serve hook returns at once without opening a store."""
    opened: list[int] = []

    def factory() -> SQLiteStore:
        """Fail the test if called."""
        opened.append(1)
        raise AssertionError("store opened")

    asyncio.run(probe_new_senders(parse_config(""), factory, asyncio.Event()))
    assert opened == []
