"""rDNS, SPF, DMARC, DKIM and MX diagnostics against the loopback fixture, and their pure parts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from ipaddress import ip_address
from typing import TypeVar

import pytest
import spf

from reputable.checker import mailauth, rdns
from reputable.checker.model import Finding, Severity
from reputable.core.cause import Cause
from reputable.core.dnsclient import DnsClient, parse_nameserver, sync_resolver
from tests.checker.conftest import GENERIC_IP, LISTED_IP, NO_PTR_IP, SILENT_IP
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
    ("helo", "severity", "words"),
    [
        ("mail.example.net", Severity.WARNING, "resolves to 198.51.100.25, not to 198.51.100.27"),
        ("nothing-here.example.net", Severity.WARNING, "does not resolve"),
        ("helo27.example.net", Severity.OK, "resolves to 198.51.100.27"),
        ("localhost", Severity.WARNING, "not a fully qualified"),
    ],
)
def test_helo_is_checked_without_a_ptr(
    world: DnsFixture, helo: str, severity: Severity, words: str
) -> None:
    """Regression: with no PTR the HELO name is still judged, and one that does not resolve is a finding."""
    findings = with_client(world, lambda c: rdns.diagnose(c, ip_address(NO_PTR_IP), helo))
    helo_findings = [f for f in findings if f.check == "helo"]
    assert len(helo_findings) == 1, findings
    assert helo_findings[0].severity is severity
    assert words in helo_findings[0].message
    assert any("no reverse DNS" in f.message for f in findings)


def test_unresolvable_helo_is_a_finding_next_to_a_ptr(world: DnsFixture) -> None:
    """Regression: a HELO name without A/AAAA record is reported as such, not as a PTR mismatch."""
    findings = with_client(
        world, lambda c: rdns.diagnose(c, ip_address(LISTED_IP), "gone.example.net")
    )
    helo = [f for f in findings if f.check == "helo"]
    assert [f.message for f in helo] == [
        "HELO gone.example.net does not resolve (no A/AAAA record)"
    ]
    assert (
        helo[0].is_problem
        and "A/AAAA record gone.example.net -> 198.51.100.25" in helo[0].remediation
    )


def test_dmarc_p_none_is_reported_once(world: DnsFixture) -> None:
    """Regression: p=none is one warning (checkdmarc's own p=none warning is not added again)."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.dmarc_blocking("none.example", resolver)
    about_none = [
        f
        for f in findings
        if f.is_problem and ("p=none" in f.message or "value of none" in f.message)
    ]
    assert len(about_none) == 1, [f.message for f in findings]
    assert "p=quarantine" in about_none[0].remediation


def test_spf_dmarc_of_good_domain_pass_for_its_ip(world: DnsFixture) -> None:
    """A domain whose SPF lists the IP and has p=reject yields no problem through the libraries."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.spf_dmarc("example.net", ip_address(LISTED_IP), "", resolver)
    assert not [f for f in findings if f.severity.is_problem], findings
    assert any("authorises 198.51.100.25" in m for m in by_severity(findings, Severity.OK))
    assert any("p=reject" in m for m in by_severity(findings, Severity.OK))


def test_spf_plus_all_and_missing_dmarc_are_reported(world: DnsFixture) -> None:
    """+all is an error and a missing DMARC record a warning, both cause mail_auth."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    findings = mailauth.spf_dmarc("bad.example", ip_address(GENERIC_IP), "", resolver)
    assert any("+all" in m for m in by_severity(findings, Severity.ERROR))
    assert any("no valid DMARC" in m for m in by_severity(findings, Severity.WARNING))
    assert {f.cause for f in findings} == {"mail_auth"}


def test_spf_not_authorising_ip_is_an_error(world: DnsFixture) -> None:
    """pyspf's fail for an unlisted IP becomes an error naming the IP."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
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


@pytest.mark.serial  # a wall-clock limit: no other worker's test runs meanwhile
def test_silent_domain_is_inconclusive_not_missing_and_checked_at_once(
    world: DnsFixture,
) -> None:
    """SPF, DMARC and DKIM of a domain whose nameserver never answers are "could not check",
    never broken/missing, and cost about one timeout and retry, not one per lookup."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.2, 1)

    async def go() -> tuple[list[Finding], float]:
        async with DnsClient(parse_nameserver(world.nameserver), timeout=0.2) as client:
            started = time.monotonic()
            found = await mailauth.mail_auth(client, resolver, "x.slow.test", ip_address(LISTED_IP))
            return found, time.monotonic() - started

    findings, elapsed = asyncio.run(go())
    assert {f.check for f in findings} == {"spf", "dmarc", "dkim"}
    assert all(f.inconclusive and not f.is_problem for f in findings), findings
    assert any(
        f.message == "could not check SPF of x.slow.test: no answer from the nameserver (timeout)"
        for f in findings
    )
    text = " ".join(f.message + f.remediation for f in findings)
    for wrong in ("broken", "no valid", "no DKIM key found", "Fix the record", "Publish"):
        assert wrong not in text
    assert all("resolver" in f.remediation for f in findings)
    assert elapsed < 1.5, elapsed  # 18 selectors one after another alone took 18 x 0.4 s


def test_refusing_nameserver_is_inconclusive(world: DnsFixture) -> None:
    """REFUSED from the nameserver says nothing about the records either."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.2, 1)
    findings = mailauth.spf_dmarc("x.rcode.test", None, "", resolver)
    assert [f.inconclusive for f in findings] == [True, True]
    assert "refused the query" in findings[0].message


def test_silent_mx_is_inconclusive(world: DnsFixture) -> None:
    """An MX lookup without answer is not "no MX record: publish one"."""
    findings, hosts = with_client(world, lambda c: mailauth.mx_findings(c, "x.slow.test"))
    assert hosts == [] and len(findings) == 1
    assert findings[0].inconclusive and "could not check MX" in findings[0].message
    assert "Publish" not in findings[0].remediation


def test_silent_reverse_zone_is_inconclusive(world: DnsFixture) -> None:
    """A PTR lookup that times out is a "could not check", not a missing PTR."""
    findings = with_client(world, lambda c: rdns.diagnose(c, ip_address(SILENT_IP)))
    assert len(findings) == 1 and findings[0].inconclusive
    assert "could not check the PTR" in findings[0].message


def test_dkim_selectors_are_asked_concurrently(world: DnsFixture) -> None:
    """All common selectors of a silent domain time out together, not one after another."""
    started = time.monotonic()
    findings = with_client(world, lambda c: mailauth.dkim_findings(c, "y.slow.test"))
    # Sequential would be 18 selectors x (0.5 s + a retry) = 18 s at least; half of that
    # proves they overlap and leaves a loaded machine room (this test is not serial).
    assert time.monotonic() - started < 9.0
    assert len(findings) == 1 and findings[0].inconclusive


def test_pyspf_temperror_is_inconclusive() -> None:
    """pyspf's temperror (a DNS failure) is not "fix your SPF record"."""
    finding = mailauth.spf_eval_finding("example.net", ip_address(LISTED_IP), "temperror", "DNS")
    assert finding.inconclusive and "resolver" in finding.remediation


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("The resolution lifetime expired after 0.600 seconds: Server Do53:127.0.0.1@53"
         " answered The DNS operation timed out.", "timeout"),
        ("All nameservers failed to answer the query x. IN TXT: Server Do53:127.0.0.1@53"
         " answered SERVFAIL", "SERVFAIL"),
        ("All nameservers failed to answer the query x. IN TXT: Server Do53:127.0.0.1@53"
         " answered REFUSED", "REFUSED"),
        ("The domain has multiple SPF TXT records", ""),
        ("The domain x.example does not exist.", ""),
    ],
)  # fmt: skip
def test_library_dns_errors_are_told_apart_from_record_errors(error: str, expected: str) -> None:
    """checkdmarc's texts for timeouts and SERVFAIL/REFUSED map to a reason; others do not."""
    reason = mailauth.dns_failure(error)
    assert (expected in reason) if expected else reason == ""


def test_multiple_spf_records_get_specific_remediation(world: DnsFixture) -> None:
    """Two v=spf1 records: the fix says to merge them, not a generic "Fix the record"."""
    resolver = sync_resolver(parse_nameserver(world.nameserver), 0.5, 1)
    (spf_finding,) = [f for f in mailauth.spf_blocking("two.example", None, "", resolver)]
    assert spf_finding.severity is Severity.ERROR
    assert "Merge the SPF records into one" in spf_finding.remediation


def test_checkdmarc_warnings_carry_remediation() -> None:
    """Warnings passed through from checkdmarc get something to do, never an empty string."""
    result = {
        "valid": True,
        "record": "v=spf1 ptr -all",
        "dns_lookups": 1,
        "parsed": {"all": "fail"},
        "warnings": ["The ptr mechanism should not be used (RFC 7208 § 5.5)", "Something new"],
    }
    warnings = [f for f in mailauth.spf_record_findings("x.example", result)
                if f.severity is Severity.WARNING]  # fmt: skip
    assert len(warnings) == 2 and all(f.remediation for f in warnings)
    assert "ip4:" in warnings[0].remediation
    no_rua = "rua tag (destination for aggregate reports) not found."
    tags = {"p": {"value": "reject"}}
    dmarc = mailauth.dmarc_findings(
        "x.example", {"valid": True, "tags": tags, "warnings": [no_rua]}
    )
    assert all(f.remediation for f in dmarc if f.severity is Severity.WARNING)
