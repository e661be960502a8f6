"""DNS list queries against the loopback fixture, and the pure classification of answers."""

from __future__ import annotations

import asyncio
from ipaddress import IPv6Address, ip_address
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reputable.checker.catalogue import Zone, load_zone_file
from reputable.checker.dnsbl import check_zones, classify, query_name, query_names
from reputable.checker.model import Status, ZoneResult
from reputable.core.address import Domain, IPAddress, parse_domain
from reputable.core.cause import Cause
from reputable.core.dnsclient import DnsClient, Lookup, Nameserver, Outcome, parse_nameserver
from tests.checker.conftest import LISTED_IP, V6, V6_NIBBLES, ZONE_FILE
from tests.checker.dnsfixture import DnsFixture


def zones(path: Path) -> dict[str, Zone]:
    """Return the test catalogue by name."""
    return {z.name: z for z in load_zone_file(path)}


def run_check(
    world: DnsFixture, path: Path, subject: str, timeout: float = 0.3
) -> dict[str, ZoneResult]:
    """Query every test zone about *subject* through the fixture and return results by zone."""

    async def go() -> tuple[ZoneResult, ...]:
        async with DnsClient(parse_nameserver(world.nameserver), timeout=timeout) as client:
            target = parse_domain(subject) if subject[0].isalpha() else ip_address(subject)
            return await check_zones(target, list(zones(path).values()), client)

    return {r.zone: r for r in asyncio.run(go())}


def test_listed_ip_gets_codes_meanings_causes_and_txt(world: DnsFixture, zone_file: Path) -> None:
    """A listed IP reports both return codes, their documented meanings, causes and the TXT."""
    result = run_check(world, zone_file, LISTED_IP)["listed.test"]
    assert result.status is Status.LISTED
    assert result.codes == ("127.0.0.2", "127.0.0.4")
    assert result.causes == (Cause.SPAM, Cause.COMPROMISED)
    assert "infected host" in result.meaning
    assert "198.51.100.25" in result.txt
    assert result.removal_url == "https://listed.test/remove"


def test_each_failure_mode_has_its_own_status(world: DnsFixture, zone_file: Path) -> None:
    """NXDOMAIN is clean; refusal codes, REFUSED, silence and non-127 answers are never listed."""
    results = run_check(world, zone_file, LISTED_IP)
    assert results["clean.test"].status is Status.CLEAN
    assert results["quota.test"].status is Status.REFUSED
    assert "127.255.255.254" in results["quota.test"].meaning
    assert results["rcode.test"].status is Status.REFUSED
    assert results["slow.test"].status is Status.TIMEOUT
    assert results["odd.test"].status is Status.REFUSED
    assert "outside 127.0.0.0/8" in results["odd.test"].meaning
    assert results["allow.test"].status is Status.LISTED and results["allow.test"].allow


def test_timeout_is_retried_once(world: DnsFixture, zone_file: Path) -> None:
    """A zone that never answers gets exactly one retry before being reported as no answer."""
    before = world.count("25.100.51.198.slow.test")
    result = run_check(world, zone_file, LISTED_IP, timeout=0.2)["slow.test"]
    assert result.status is Status.TIMEOUT
    assert world.count("25.100.51.198.slow.test") - before == 2


def test_ipv6_only_asked_of_zones_that_support_it(world: DnsFixture, zone_file: Path) -> None:
    """An IPv6 address is queried by nibbles on IPv6 zones and skipped on IPv4-only zones."""
    results = run_check(world, zone_file, V6)
    assert results["listed.test"].status is Status.LISTED
    assert "v4only.test" not in results
    assert world.count(f"{V6_NIBBLES}.listed.test") >= 1


def test_domain_subject_uses_domain_zones_and_bitmasks(world: DnsFixture, zone_file: Path) -> None:
    """A domain is asked only of domain zones; bitmask answers are split into their bits."""
    results = run_check(world, zone_file, "spam.example.net")
    assert set(results) == {"dbl.test", "bits.test"}
    assert results["dbl.test"].status is Status.LISTED and results["dbl.test"].txt == "spam domain"
    assert results["bits.test"].causes == (Cause.MALWARE_HOST, Cause.SPAM)


def test_zone_specific_refusal_code_is_refused(world: DnsFixture, zone_file: Path) -> None:
    """A bitmask zone answering its documented refusal code 127.0.0.1 is refused, not listed."""
    assert run_check(world, zone_file, "blocked.example")["bits.test"].status is Status.REFUSED


def test_query_names_follow_rfc5782(zone_file: Path) -> None:
    """IPv4 octets and IPv6 nibbles are reversed; IPv4-mapped IPv6 is asked as IPv4."""
    zone = zones(zone_file)["v4only.test"]
    assert query_name(ip_address("192.0.2.1"), zone) == "1.2.0.192.v4only.test"
    assert query_name(ip_address("::ffff:192.0.2.1"), zone) == "1.2.0.192.v4only.test"
    assert query_name(ip_address("2001:db8::1"), zone) is None
    assert query_name(parse_domain("example.com"), zone) is None


SUBJECTS = st.one_of(
    st.ip_addresses(v=4),
    st.ip_addresses(v=6),
    st.ip_addresses(v=4).map(lambda a: IPv6Address(f"::ffff:{a}")),
    st.lists(st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True), min_size=2, max_size=4).map(
        lambda labels: parse_domain(".".join(labels))
    ),
)


@given(subject=SUBJECTS)
def test_query_names_agree_with_query_name(subject: IPAddress | Domain) -> None:
    """The bulk helper asks the same zones the same names as query_name, in catalogue order."""
    catalogue = load_zone_file(ZONE_FILE)
    expected = [(z, n) for z in catalogue if (n := query_name(subject, z)) is not None]
    assert query_names(subject, catalogue) == expected


def test_check_zones_works_with_a_plain_resolver(zone_file: Path) -> None:
    """A Resolver with only lookup() (a fake) gets the same A-then-TXT questions, in order."""

    class Fake:
        def __init__(self) -> None:
            self.asked: list[tuple[str, str]] = []

        async def lookup(self, name: str, rdtype: str, server: Nameserver | None = None) -> Lookup:
            self.asked.append((name, rdtype))
            if name.endswith(".listed.test"):
                if rdtype == "TXT":
                    return Lookup(Outcome.ANSWER, ("why",))
                return Lookup(Outcome.ANSWER, ("127.0.0.2",))
            return Lookup(Outcome.NXDOMAIN)

    fake = Fake()
    chosen = [zones(zone_file)[n] for n in ("clean.test", "listed.test", "v4only.test")]
    results = asyncio.run(check_zones(ip_address("192.0.2.1"), chosen, fake))
    assert [(r.zone, r.status, r.txt) for r in results] == [
        ("clean.test", Status.CLEAN, ""),
        ("listed.test", Status.LISTED, "why"),
        ("v4only.test", Status.CLEAN, ""),
    ]
    assert fake.asked == [
        ("1.2.0.192.clean.test", "A"),
        ("1.2.0.192.listed.test", "A"),
        ("1.2.0.192.v4only.test", "A"),
        ("1.2.0.192.listed.test", "TXT"),
    ]


@pytest.mark.parametrize(
    ("answers", "status"),
    [
        (("127.0.0.2",), Status.LISTED),
        (("127.255.255.255",), Status.REFUSED),
        (("127.0.0.2", "127.255.255.252"), Status.REFUSED),
        (("192.0.2.1",), Status.REFUSED),
        (("::1",), Status.REFUSED),
    ],
)
def test_classify_answers(zone_file: Path, answers: tuple[str, ...], status: Status) -> None:
    """Any 127.255.255.x or non-127/8 answer makes the whole result refused."""
    zone = zones(zone_file)["listed.test"]
    assert classify(zone, Lookup(Outcome.ANSWER, answers)).status is status


def test_undocumented_code_is_listed_with_zone_cause(zone_file: Path) -> None:
    """A code the catalogue does not document still lists, named by its code."""
    result = classify(zones(zone_file)["listed.test"], Lookup(Outcome.ANSWER, ("127.0.0.9",)))
    assert result.status is Status.LISTED
    assert result.meaning == "listed (return code 127.0.0.9)"
    assert result.causes == (Cause.SPAM,)


def test_servfail_is_error_not_clean(zone_file: Path) -> None:
    """SERVFAIL is an error, never clean."""
    result = classify(zones(zone_file)["clean.test"], Lookup(Outcome.SERVFAIL, detail="x"))
    assert result.status is Status.ERROR
