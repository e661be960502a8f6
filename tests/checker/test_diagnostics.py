"""rDNS, SPF, DMARC, DKIM and MX diagnostics against the loopback fixture, and their pure parts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import TypeVar

import pytest
import spf

from reputable.checker import libdns, mailauth, rdns
from reputable.checker.model import Finding, Severity
from reputable.checker.transport import DnsClient, parse_nameserver
from reputable.core.cause import Cause
from tests.checker.conftest import GENERIC_IP, LISTED_IP, NO_PTR_IP
from tests.checker.dnsfixture import DnsFixture

T = TypeVar("T")


def with_client(world: DnsFixture, work: Callable[[DnsClient], Awaitable[T]]) -> T:
    """Run *work* with a client that asks only the fixture."""

    async def go() -> T:
        async with DnsClient(parse_nameserver(world.nameserver), timeout=0.5) as client:
            return await work(client)

    return asyncio.run(go())


def by_severity(findings: list[Finding], severity: Severity) -> list[str]:
    """Return the messages of *findings* with *severity*."""
    return [f.message for f in findings if f.severity is severity]


def test_forward_confirmed_ptr_matching_helo_is_ok(world: DnsFixture) -> None:
    """A PTR that resolves back and equals the HELO name gives no problem."""
    findings = with_client(
        world, lambda c: rdns.diagnose(c, ip_address(LISTED_IP), "mail.example.net")
    )
    assert not [f for f in findings if f.severity.is_problem]
    assert any("FCrDNS" in m for m in by_severity(findings, Severity.OK))


def test_generic_unconfirmed_ptr_and_foreign_helo_are_problems(world: DnsFixture) -> None:
    """A dynamic-looking PTR without forward record and a mismatching HELO are rdns problems."""
    findings = with_client(
        world, lambda c: rdns.diagnose(c, ip_address(GENERIC_IP), "mail.example.net")
    )
    errors = by_severity(findings, Severity.ERROR)
    warnings = by_severity(findings, Severity.WARNING)
    assert any("does not resolve back" in m for m in errors)
    assert any("looks generic" in m for m in warnings)
    assert any("HELO mail.example.net" in m for m in warnings)
    assert {f.cause for f in findings} == {Cause.RDNS}


def test_missing_ptr_is_an_error_with_remediation(world: DnsFixture) -> None:
    """No PTR at all is an error telling the admin who can set it."""
    findings = with_client(world, lambda c: rdns.diagnose(c, ip_address(NO_PTR_IP)))
    assert len(findings) == 1 and findings[0].severity is Severity.ERROR
    assert "hosting provider" in findings[0].remediation


@pytest.mark.parametrize(
    ("name", "generic"),
    [
        ("198-51-100-7.dyn.example.net", True),
        ("host7.pool.example.net", True),
        ("c-198-51-100-7.hsd1.ca.comcast.example", True),
        ("mail.example.net", False),
        ("mx1.mailhost.example", False),
    ],
)
def test_generic_name_heuristic(name: str, generic: bool) -> None:
    """Pool names with the address or dynamic keywords are generic, chosen server names are not."""
    assert rdns.looks_generic(name, ip_address("198.51.100.7")) is generic


def test_spf_dmarc_of_good_domain_pass_for_its_ip(world: DnsFixture) -> None:
    """A domain whose SPF lists the IP and has p=reject yields no problem through the libraries."""
    resolver = libdns.sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.spf_dmarc("example.net", ip_address(LISTED_IP), "", resolver)
    assert not [f for f in findings if f.severity.is_problem], findings
    assert any("authorises 198.51.100.25" in m for m in by_severity(findings, Severity.OK))
    assert any("p=reject" in m for m in by_severity(findings, Severity.OK))


def test_spf_plus_all_and_missing_dmarc_are_reported(world: DnsFixture) -> None:
    """+all is an error and a missing DMARC record a warning, both cause mail_auth."""
    resolver = libdns.sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.spf_dmarc("bad.example", ip_address(GENERIC_IP), "", resolver)
    assert any("+all" in m for m in by_severity(findings, Severity.ERROR))
    assert any("no valid DMARC" in m for m in by_severity(findings, Severity.WARNING))
    assert {f.cause for f in findings} == {"mail_auth"}


def test_spf_not_authorising_ip_is_an_error(world: DnsFixture) -> None:
    """pyspf's fail for an unlisted IP becomes an error naming the IP."""
    resolver = libdns.sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.spf_dmarc("example.net", ip_address(GENERIC_IP), "", resolver)
    assert any(
        "does not authorise 198.51.100.26" in m for m in by_severity(findings, Severity.ERROR)
    )


def test_pyspf_without_bound_resolver_never_uses_system_resolver() -> None:
    """Outside libdns.bound, pyspf lookups fail with TempError instead of asking the machine."""
    with pytest.raises(spf.TempError):
        spf.DNSLookup("example.net", "TXT", True, 1)


def test_dkim_common_selectors_find_published_key(world: DnsFixture) -> None:
    """Without selectors, the common list finds the 'default' key and reports its size."""
    findings = with_client(world, lambda c: mailauth.dkim_findings(c, "example.net"))
    assert by_severity(findings, Severity.OK) == [
        "DKIM key default._domainkey.example.net: RSA-1024"
    ]


def test_dkim_named_selector_missing_is_an_error(world: DnsFixture) -> None:
    """A selector the user names that is not published is an error."""
    findings = with_client(world, lambda c: mailauth.dkim_findings(c, "example.net", ("s2026",)))
    assert by_severity(findings, Severity.ERROR) == ["no DKIM key at s2026._domainkey.example.net"]


@pytest.mark.parametrize(
    ("record", "severity"),
    [
        ("v=DKIM1; k=rsa; p=", Severity.WARNING),
        ("v=DKIM1; k=rsa; p=not-base64!!", Severity.ERROR),
        ("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=", Severity.OK),
    ],
)
def test_dkim_record_assessment(record: str, severity: Severity) -> None:
    """Revoked keys warn, unparsable keys are errors, ed25519 keys are fine."""
    assert mailauth.dkim_key_finding("example.net", "s", record).severity is severity


def test_mx_hosts_are_returned_in_preference_order(world: DnsFixture) -> None:
    """The MX lookup yields the hosts whose addresses a domain check runs through IP lists."""
    findings, hosts = with_client(world, lambda c: mailauth.mx_findings(c, "example.net"))
    assert hosts == ["mail.example.net"]
    _, none = with_client(world, lambda c: mailauth.mx_findings(c, "bad.example"))
    assert none == []
    assert findings[0].severity is Severity.OK
